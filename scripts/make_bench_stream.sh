#!/usr/bin/env bash
# Make a send stream of more than 1 GiB with real zfs-fuse, for the benchmarks.
#
#   sudo bash scripts/make_bench_stream.sh [--dedup] OUTFILE
#
# One filesystem with four 256 MiB random files and 2000 small files, snapshot @bench,
# `zfs send` of it to OUTFILE. With --dedup, a dedup stream for redup instead: three 128 MiB
# random files, a copy of two of them and 500 small files, `zfs send -D` (about 390 MB of
# stream that redup makes about 660 MB of). Progress goes to stderr; stdout gets one line: the snapshot's
# guid in decimal (its hex form, as zstreamdump prints toguid, is on stderr). The pool (on a
# 2 GiB sparse file) is destroyed at the end, also when something fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

say() { printf 'make_bench_stream: %s\n' "$*" >&2; }
die() {
  printf 'make_bench_stream: %s\n' "$*" >&2
  exit 1
}

DEDUP=0
if [[ "${1:-}" == --dedup ]]; then
  DEDUP=1
  shift
fi
[[ $# == 1 ]] || die "usage: bash scripts/make_bench_stream.sh [--dedup] OUTFILE"
[[ "$(id -u)" == 0 ]] || die "must run as root (zfs-fuse needs it)"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
command -v zfs >/dev/null 2>&1 || die "zfs not found (apt-get install zfs-fuse)"
mkdir -p "$(dirname "$1")"
OUTFILE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
started=$SECONDS

bash "$here/zfs_fuse.sh" start >&2

POOL="zsb$$"
T="$(mktemp -d "${TMPDIR:-/tmp}/zsend-bench.XXXXXX")"
M="$T/fs"

cleanup() {
  local status=$?
  set +e
  cd /
  if zpool list -H -o name "$POOL" >/dev/null 2>&1; then
    local i
    for i in 1 2 3 4 5; do
      zpool destroy -f "$POOL" 2>/dev/null && break
      sleep 1
    done
    zpool list -H -o name "$POOL" >/dev/null 2>&1 && say "could not destroy pool $POOL"
  fi
  local mnt
  while read -r _ mnt _; do
    mnt="$(printf '%b' "$mnt")"
    case "$mnt" in "$T" | "$T"/*) umount -l "$mnt" 2>/dev/null ;; esac
  done < <(cat /proc/self/mounts)
  rm -rf --one-file-system "$T"
  ((status == 0)) || say "FAILED (status $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

truncate -s 2G "$T/disk"
zpool create -m none "$POOL" "$T/disk" >/dev/null 2>&1
mkdir -p "$M"
zfs create -o mountpoint="$M" "$POOL/fs"

small=2000
if ((DEDUP)); then
  say "writing 3 x 128 MiB random files and copies of two of them"
  for i in 1 2 3; do
    head -c $((128 * 1024 * 1024)) /dev/urandom >"$M/big-$i.bin"
  done
  cp "$M/big-1.bin" "$M/copy-1.bin"
  cp "$M/big-2.bin" "$M/copy-2.bin"
  small=500
else
  say "writing 4 x 256 MiB random files"
  for i in 1 2 3 4; do
    head -c $((256 * 1024 * 1024)) /dev/urandom >"$M/big-$i.bin"
  done
fi
say "writing $small small files"
mkdir "$M/small"
for ((i = 1; i <= small; i++)); do
  head -c $((RANDOM % 8192)) /dev/urandom >"$M/small/f-$i"
done
zfs snapshot "$POOL/fs@bench"

send=(zfs send)
((DEDUP)) && send+=(-D)
say "${send[*]} $POOL/fs@bench > $OUTFILE"
"${send[@]}" "$POOL/fs@bench" >"$OUTFILE"
guid="$(zfs get -H -p -o value guid "$POOL/fs@bench")"
say "$(stat -c %s "$OUTFILE") bytes in $OUTFILE; toguid $(printf '%x' "$guid"); $((SECONDS - started))s"
echo "$guid"
