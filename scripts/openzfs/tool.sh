#!/usr/bin/env bash
# Runs one OpenZFS 2.3 userland command on the host (zstream above all), unpacking it first.
#
#   bash scripts/openzfs/tool.sh zstream dump -v FILE
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(bash "$here/userland.sh")"
tool="${1:?usage: tool.sh COMMAND [ARG...]}"
shift
export LD_LIBRARY_PATH="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$root/sbin/$tool" "$@"
