#!/usr/bin/env bash
# The bench input of encrypted extract, made by real OpenZFS 2.3 in the QEMU guest
# (scripts/openzfs/vm.sh, guest script scripts/openzfs/guest/crypt_bench.sh):
#
#   bash scripts/bench/make_crypt_stream.sh OUTDIR
#
# OUTDIR gets crypt.zstream (`zfs send -w` of an aes-256-gcm passphrase-encrypted filesystem),
# plain.zstream (`zfs send` of an unencrypted filesystem holding the same tree), passphrase.txt
# and info.txt. Both filesystems are compression=off, recordsize=128K: four random files of
# ZSEND_CRYPT_BIG_MIB MiB (default 256) and ZSEND_CRYPT_SMALL small files (default 1000), from
# a seeded PRNG (ZSEND_SEED, default 11). Takes several minutes (the guest is emulated); the
# guest gets ZSEND_VM_MEMORY (default here 10G) for its tmpfs pool and the 2 GiB of output.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { printf 'make_crypt_stream: %s\n' "$*" >&2; }
[[ $# == 1 ]] || { say "usage: make_crypt_stream.sh OUTDIR"; exit 2; }
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
T="$(mktemp -d "${TMPDIR:-/tmp}/zsend-crypt.XXXXXX")"
trap 'rm -rf "$T"' EXIT
SEED="${ZSEND_SEED:-11}"
# shellcheck source=scripts/lib_tree.sh
source "$here/../lib_tree.sh"
tree_random_source
[[ "$RANDOM_SOURCE" == splitmix64 ]] || { say "no C compiler for the PRNG"; exit 1; }
printf '%s\n' "$SEED" >"$T/seed"
printf '%s\n' "${ZSEND_CRYPT_BIG_MIB:-256}" >"$T/big_mib"
printf '%s\n' "${ZSEND_CRYPT_SMALL:-1000}" >"$T/small_count"
started=$SECONDS
status=0
ZSEND_VM_MEMORY="${ZSEND_VM_MEMORY:-10G}" bash "$here/../openzfs/vm.sh" run \
  "$here/../openzfs/guest/crypt_bench.sh" "$OUT" "$here/../lib_tree.sh" "$T/prng" "$T/seed" \
  "$T/big_mib" "$T/small_count" || status=$?
if ((status != 0)); then
  say "the guest failed (status $status): $OUT/console.log"
  tail -n 30 "$OUT/console.log" >&2 || true
  exit 1
fi
for f in crypt.zstream plain.zstream passphrase.txt; do
  [[ -s "$OUT/$f" ]] || { say "the guest left no $f"; exit 1; }
done
say "$(stat -c %s "$OUT/crypt.zstream") + $(stat -c %s "$OUT/plain.zstream") bytes in $((SECONDS - started))s: $OUT"
