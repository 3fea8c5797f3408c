#!/usr/bin/env bash
# `zstream token TOKEN` of OpenZFS 2.3's own userland, on a host without the zfs module.
#
#   bash scripts/openzfs/zstream_token.sh TOKEN
#
# zstream's token verb opens /dev/zfs (libzfs_init) only to have a handle for error messages;
# decoding the token and printing it are libzfs's and libnvpair's own code. A preloaded shim
# gives zstream a zeroed handle instead, so the text is the real zstream's.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# == 1 ]] || { printf 'usage: zstream_token.sh TOKEN\n' >&2; exit 2; }
T="$(mktemp -d "${TMPDIR:-/tmp}/zsend-zstream-token.XXXXXX")"
trap 'rm -rf "$T"' EXIT
cat >"$T/shim.c" <<'C'
#include <stdlib.h>
/* Big enough for libzfs_handle_t of any 2.x release; zeroed = no error recorded yet. */
void *libzfs_init(void) { return calloc(1, 1 << 20); }
void libzfs_fini(void *hdl) { free(hdl); }
C
cc -shared -fPIC -o "$T/shim.so" "$T/shim.c"
status=0
LD_PRELOAD="$T/shim.so" bash "$here/tool.sh" zstream token "$1" || status=$?
exit "$status"
