#!/usr/bin/env bash
# Make fresh send streams with real zfs-fuse, from a file tree that nobody chose by hand.
#
#   sudo bash scripts/make_streams.sh OUTDIR        (ZSEND_SEED=N to repeat a run)
#
# Needs root, /dev/fuse and Debian's zfs-fuse; starts the daemon when it is not running
# (scripts/zfs_fuse.sh). Makes a pool zsf<pid> on a sparse file, a filesystem fs mounted in a
# temporary directory, and walks it through these snapshots:
#   fs@a         every kind of entry: a fat-ZAP directory of 3000 files, 255-byte and UTF-8 names,
#                multi-block random files, sparse files, hard links, short and long symlinks,
#                odd modes and owners, old and negative mtimes, block-boundary sizes, empty
#                files, nested and empty directories, a fifo, a character and a block device
#   fs@b         middle rewrites, truncation, appends, mass deletion, renames across
#                directories, metadata-only changes, type changes, a copy (dedup material)
#   fs@c         more deletions (the big directory emptied), a file cut to nothing and regrown,
#                a file grown from one small block to many, a locked 0000 directory
#   clone@c1     a clone of fs@b with changes
#   fs@r         fs/child created (compression=on, recordsize=16K) and `zfs snapshot -r fs@r`
# and writes into OUTDIR:
#   full-a.zstream      zfs send fs@a
#   incr-a-b.zstream    zfs send -i @a fs@b
#   incr-b-c.zstream    zfs send -i @b fs@c
#   incrI-a-c.zstream   zfs send -I @a fs@c
#   dedup-b.zstream     zfs send -D fs@b
#   replicate-r.zstream zfs send -R fs@r
#   clone-b-c1.zstream  zfs send -i fs@b clone@c1
#   NAME.dump.txt       zfs-fuse's `zstreamdump -v` of each stream
#   DATASET-SNAP.manifest.txt   the tree of each snapshot (fs-a, fs-b, fs-c, fs-r, fs-child-r,
#                       clone-c1), read from a read-only clone of the snapshot
#   streams.json        what each stream was made with, its snapshots, their guids and manifests
# The pool and its backing file are destroyed at the end, also when something fails.
#
# Manifest format: one line a path, sorted by path (C locale, bytes), paths as `./a/b`, the root
# itself not listed; MODE is `stat -c %a` (octal, with setuid/setgid/sticky), MTIME seconds
# since the epoch:
#   PATH d MODE UID GID                                   directory
#   PATH l MODE UID GID -> TARGET                         symbolic link
#   PATH f MODE UID GID SIZE NLINK MTIME SHA256           regular file
# and, beyond the shipped fixtures' kinds:
#   PATH p MODE UID GID                                   fifo
#   PATH c MODE UID GID MAJOR MINOR                       character device (decimal numbers)
#   PATH b MODE UID GID MAJOR MINOR                       block device
#   PATH s MODE UID GID                                   socket (none are made)
# No name made here holds a space, a tab, a newline or another control character.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C

say() { printf 'make_streams: %s\n' "$*"; }
die() {
  printf 'make_streams: %s\n' "$*" >&2
  exit 1
}

[[ $# == 1 ]] || die "usage: bash scripts/make_streams.sh OUTDIR"
[[ "$(id -u)" == 0 ]] || die "must run as root (zfs-fuse needs it)"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
for cmd in zfs zpool zstreamdump sha256sum; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (apt-get install zfs-fuse)"
done
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"

if [[ -n "${ZSEND_SEED:-}" ]]; then
  [[ "$ZSEND_SEED" =~ ^[0-9]+$ ]] || die "ZSEND_SEED must be a decimal number"
  SEED=$((10#$ZSEND_SEED))
else
  SEED=$((RANDOM * 32768 + RANDOM))
fi
RANDOM=$SEED
say "seed $SEED (ZSEND_SEED=$SEED repeats this run)"
started=$SECONDS

bash "$here/zfs_fuse.sh" start

POOL="zsf$$"
T="$(mktemp -d "${TMPDIR:-/tmp}/zsend-streams.XXXXXX")"
FS="$POOL/fs"
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
    zpool list -H -o name "$POOL" >/dev/null 2>&1 && say "could not destroy pool $POOL" >&2
  fi
  # Nothing may stay mounted under the temporary directory before it is removed.
  local mnt
  while read -r _ mnt _; do
    mnt="$(printf '%b' "$mnt")"
    case "$mnt" in "$T" | "$T"/*) umount -l "$mnt" 2>/dev/null ;; esac
  done < <(cat /proc/self/mounts)
  rm -rf --one-file-system "$T"
  if ((status != 0)); then
    say "FAILED (status $status); seed was $SEED" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source "$here/lib_tree.sh"
tree_random_source

# --- the pool --------------------------------------------------------------------------------
truncate -s 512M "$T/disk"
zpool create -m none "$POOL" "$T/disk" >/dev/null
mkdir -p "$M"
zfs create -o mountpoint="$M" "$FS"
cd "$M"

# --- @a: every kind of entry ------------------------------------------------------------------
say "filling $FS for @a"
tree_fill_a

zfs snapshot "$FS@a"

# --- @b: changes ------------------------------------------------------------------------------
say "changing $FS for @b"
tree_change_b

zfs snapshot "$FS@b"

# --- @c: more changes -------------------------------------------------------------------------
say "changing $FS for @c"
tree_change_c

zfs snapshot "$FS@c"

# --- clone of @b, @c1 -------------------------------------------------------------------------
say "clone of $FS@b, @c1"
zfs clone -o mountpoint="$T/clone" "$FS@b" "$POOL/clone"
printf 'only in the clone\n' >"$T/clone/clone-only.txt"
write_at "$T/clone/data/big3.bin" 200000 5000 clone-big3
rm "$T/clone/many/f-2"
chmod 0700 "$T/clone/data"
zfs snapshot "$POOL/clone@c1"

# --- child filesystem, recursive @r -------------------------------------------------------------
say "child filesystem, recursive @r"
zfs create -o compression=on -o recordsize=16K "$FS/child"
rnd child/random.bin 300000 >"$M/child/random.bin"
head -c 200000 /dev/zero >"$M/child/zeros.bin" # compression=on: zero blocks become holes
for ((i = 1; i <= 100; i++)); do printf 'c%d\n' "$i" >"$M/child/small-$i"; done
ln -s random.bin "$M/child/link"
printf 'r\n' >"$M/r-marker"
zfs snapshot -r "$FS@r"

cd /

# --- manifests --------------------------------------------------------------------------------

# destroy DATASET: zfs-fuse unmounts asynchronously, so the first `zfs destroy` of a dataset that
# was just mounted tends to say "dataset is busy" (it unmounts it all the same); a moment later
# it goes through.
destroy() {
  local try
  for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    zfs destroy "$1" 2>/dev/null && return 0
    sleep 0.25
  done
  zfs destroy "$1"
}

declare -A MANIFEST=()
for snap in fs@a fs@b fs@c fs@r fs/child@r clone@c1; do
  file="$(tr '/@' '--' <<<"$snap").manifest.txt"
  zfs clone -o readonly=on -o mountpoint="$T/view" "$POOL/$snap" "$POOL/view"
  manifest "$T/view" "$OUT/$file"
  destroy "$POOL/view"
  MANIFEST[$snap]="$file"
  say "manifest $file: $(wc -l <"$OUT/$file") entries"
done

# --- streams ----------------------------------------------------------------------------------
STREAMS=()
declare -A CMD=() KIND=() FROM=() TO=() CONTAINS=()
send() {
  local name="$1" kind="$2" from="$3" to="$4" contains="$5"
  shift 5
  zfs send "$@" >"$OUT/$name.zstream"
  zstreamdump -v <"$OUT/$name.zstream" >"$OUT/$name.dump.txt"
  if grep -q '^Expected checksum' "$OUT/$name.dump.txt"; then
    die "zstreamdump finds a bad checksum in $name.zstream"
  fi
  STREAMS+=("$name")
  CMD[$name]="zfs send $*"
  KIND[$name]="$kind"
  FROM[$name]="$from"
  TO[$name]="$to"
  CONTAINS[$name]="$contains"
  say "$name.zstream: $(stat -c %s "$OUT/$name.zstream") bytes ($*)"
}
send full-a full "" fs@a "fs@a" "$FS@a"
send incr-a-b incremental fs@a fs@b "fs@b" -i @a "$FS@b"
send incr-b-c incremental fs@b fs@c "fs@c" -i @b "$FS@c"
send incrI-a-c incremental-compound fs@a fs@c "fs@b fs@c" -I @a "$FS@c"
send dedup-b full-dedup "" fs@b "fs@b" -D "$FS@b"
send replicate-r replicate "" fs@r "fs@a fs@b fs@c fs@r fs/child@r" -R "$FS@r"
send clone-b-c1 clone-incremental fs@b clone@c1 "clone@c1" -i "$FS@b" "$POOL/clone@c1"

# --- streams.json -----------------------------------------------------------------------------
json_list() { # words -> ["a", "b"]
  local out="" w
  for w in "$@"; do out+="${out:+, }\"$w\""; done
  printf '[%s]' "$out"
}
json_or_null() { if [[ -n "$1" ]]; then printf '"%s"' "$1"; else printf 'null'; fi; }
{
  printf '{\n'
  printf '  "made_by": "scripts/make_streams.sh",\n'
  printf '  "zfs_fuse_version": "%s",\n' "$(dpkg-query -W -f='${Version}' zfs-fuse 2>/dev/null || echo unknown)"
  printf '  "seed": %s,\n' "$SEED"
  printf '  "random_source": "%s",\n' "$RANDOM_SOURCE"
  printf '  "pool": "%s",\n' "$POOL"
  printf '  "made_at": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "datasets": {\n'
  printf '    "fs": {"name": "%s", "origin": null},\n' "$FS"
  printf '    "fs/child": {"name": "%s/child", "origin": null},\n' "$FS"
  printf '    "clone": {"name": "%s/clone", "origin": "fs@b"}\n' "$POOL"
  printf '  },\n'
  printf '  "snapshots": {\n'
  first=1
  for snap in fs@a fs@b fs@c fs@r fs/child@r clone@c1; do
    guid="$(zfs get -H -p -o value guid "$POOL/$snap")" # without -p: "1.24E"
    creation="$(zfs get -H -p -o value creation "$POOL/$snap")"
    ((first)) || printf ',\n'
    first=0
    printf '    "%s": {"name": "%s", "guid": "%s", "guid_hex": "%x", "creation": %s, "manifest": "%s"}' \
      "$snap" "$POOL/$snap" "$guid" "$guid" "$creation" "${MANIFEST[$snap]}"
  done
  printf '\n  },\n'
  printf '  "streams": [\n'
  first=1
  for name in "${STREAMS[@]}"; do
    ((first)) || printf ',\n'
    first=0
    read -ra contains <<<"${CONTAINS[$name]}"
    printf '    {"file": "%s.zstream", "dump": "%s.dump.txt", "command": "%s", "kind": "%s",\n' \
      "$name" "$name" "${CMD[$name]}" "${KIND[$name]}"
    printf '     "from": %s, "to": "%s", "snapshots": %s,\n' \
      "$(json_or_null "${FROM[$name]}")" "${TO[$name]}" "$(json_list "${contains[@]}")"
    printf '     "bytes": %s, "sha256": "%s"}' "$(stat -c %s "$OUT/$name.zstream")" \
      "$(sha256sum <"$OUT/$name.zstream" | cut -d' ' -f1)"
  done
  printf '\n  ]\n}\n'
} >"$OUT/streams.json"

say "done in $((SECONDS - started))s: $OUT (seed $SEED)"
