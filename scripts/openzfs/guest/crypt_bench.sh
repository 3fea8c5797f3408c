#!/usr/bin/env bash
# Runs inside the OpenZFS 2.3 guest (scripts/openzfs/vm.sh), started by
# scripts/bench/make_crypt_stream.sh: the bench input of encrypted extract. One aes-256-gcm
# passphrase-encrypted filesystem and one unencrypted filesystem, both compression=off and
# recordsize=128K, hold the same tree: four random files of /in/big_mib MiB each and
# /in/small_count small random files (the PRNG of lib_tree.sh, seeded by /in/seed), written
# into the encrypted one and copied with `cp -a` into the plain one. Writes into OUT (= $1):
# crypt.zstream (`zfs send -w`), plain.zstream (`zfs send`), passphrase.txt, info.txt.
set -euo pipefail
OUT="$1"
export LC_ALL=C
say() { printf 'crypt_bench: %s\n' "$*"; }
SEED="$(cat /in/seed)"
BIG_MIB="$(cat /in/big_mib)"
SMALL="$(cat /in/small_count)"
RANDOM=$SEED
T=/tmp/work
mkdir -p "$T" "$OUT"
# shellcheck source=scripts/lib_tree.sh
source /in/lib_tree.sh
tree_random_source /in/prng
started=$SECONDS
# The pool lives in tmpfs, the streams in the guest's root: keep the ARC small.
echo $((512 * 1024 * 1024)) >/sys/module/zfs/parameters/zfs_arc_max || true

P=zb
PASS=zsend-bench-passphrase
truncate -s $((4 * BIG_MIB * 2 + 1024))M /tmp/pool.img
zpool create -O mountpoint=none -O compression=off -O recordsize=128K "$P" /tmp/pool.img
printf '%s\n' "$PASS" | zfs create -o encryption=aes-256-gcm -o keyformat=passphrase \
  -o mountpoint=/mnt/enc "$P/enc"
zfs create -o mountpoint=/mnt/plain "$P/plain"

say "writing 4 x $BIG_MIB MiB and $SMALL small files into $P/enc"
cd /mnt/enc
for i in 1 2 3 4; do put "big-$i.bin" $((BIG_MIB * 1024 * 1024)); done
mkdir small
for ((i = 1; i <= SMALL; i++)); do put "small/f-$i" $((RANDOM % 8192)); done
cd /
say "copying the tree into $P/plain ($((SECONDS - started))s)"
cp -a /mnt/enc/. /mnt/plain/
zfs snapshot "$P/enc@bench"
zfs snapshot "$P/plain@bench"

say "zfs send -w $P/enc@bench ($((SECONDS - started))s)"
zfs send -w "$P/enc@bench" >"$OUT/crypt.zstream"
say "zfs send $P/plain@bench ($((SECONDS - started))s)"
zfs send "$P/plain@bench" >"$OUT/plain.zstream"
printf '%s' "$PASS" >"$OUT/passphrase.txt"
{
  zfs version | head -n 1
  printf 'seed %s big_mib %s small %s\n' "$SEED" "$BIG_MIB" "$SMALL"
  zfs get -H -p -o name,property,value encryption,compression,recordsize,used,referenced \
    "$P/enc" "$P/plain"
} >"$OUT/info.txt"
zpool destroy "$P"
say "done in $((SECONDS - started))s"
