#!/usr/bin/env bash
# Runs inside the OpenZFS 2.3 guest (scripts/openzfs/vm.sh), started by
# scripts/openzfs/make_corpus.sh: makes a pool in tmpfs, fills datasets of every kind modern ZFS
# has, and writes into OUT (= $1) the streams that real `zfs send` makes of them, the manifests
# of their snapshots (read through mounted clones), the xattrs and ACLs of those trees, the
# images of the volume, and corpus.txt, one line per stream and per snapshot (read by
# tests/_openzfs.ts). Inputs in /in: lib_tree.sh, guest_lib.sh, prng (the PRNG, built on the
# host), seed.
set -euo pipefail
OUT="$1"
export LC_ALL=C
say() { printf 'corpus: %s\n' "$*"; }
SEED="$(cat /in/seed)"
RANDOM=$SEED
T=/tmp/work
mkdir -p "$T" "$OUT"
# shellcheck source=scripts/lib_tree.sh
source /in/lib_tree.sh
# shellcheck source=scripts/openzfs/guest/guest_lib.sh
source /in/guest_lib.sh
tree_random_source /in/prng
started=$SECONDS

P=zc
PASS=zsend-corpus-passphrase
truncate -s 2G /tmp/pool.img
zpool create -O mountpoint=none "$P" /tmp/pool.img
mnt() { printf '/mnt/%s' "${1//\//_}"; }

# --- the main filesystem: zstd, 1 MiB records, SA xattrs, large dnodes, POSIX ACLs --------
FS="$P/fs"
zfs create -o mountpoint="$(mnt fs)" -o compression=zstd -o recordsize=1M -o xattr=sa \
  -o dnodesize=auto -o acltype=posix "$FS"
cd "$(mnt fs)"
say "filling $FS for @a"
tree_fill_a
# What ZFS 2011 did not have: large blocks, SA xattrs (small, 300-byte, empty, a dozen that
# large dnodes hold), ACLs, a compressible large file.
mkdir modern
put modern/large-2m5.bin $((2 * 1024 * 1024 + 512 * 1024))
for i in 1 2 3 4 5 6 7 8; do printf '%s' "$TEXT"; done >modern/text-384k.txt
head -c 3000000 /dev/zero >modern/zeros-3m.bin
printf 'x\n' >modern/xattrs
setfattr -n user.small -v hello modern/xattrs
setfattr -n user.big -v "0x$(rnd xattr-300 300 | od -An -v -tx1 | tr -d ' \n')" modern/xattrs
setfattr -n user.empty modern/xattrs
printf 'many\n' >modern/many-xattrs
for i in $(seq 1 12); do setfattr -n "user.attr-$i" -v "${TEXT:i*10:200}" modern/many-xattrs; done
mkdir modern/xdir
setfattr -n user.on-dir -v dir modern/xdir
ln -s "$(printf 's%.0s' {1..205})" modern/link-205
setfacl -m u:1001:rwx,g:2002:r-x modern/xattrs
setfacl -d -m u:1001:rwx modern/xdir
printf 'acl\n' >modern/xdir/inherits
zfs snapshot "$FS@a"

say "changing $FS for @b"
tree_change_b
setfattr -n user.small -v changed modern/xattrs
setfattr -x user.empty modern/xattrs
setfattr -n user.added -v new modern/xattrs
write_at modern/large-2m5.bin $((1024 * 1024 + 100)) 5000 large-mid
zfs snapshot "$FS@b"

say "changing $FS for @c"
tree_change_c
for i in $(seq 1 6); do setfattr -x "user.attr-$i" modern/many-xattrs; done
truncate -s 1500000 modern/large-2m5.bin
mv modern/text-384k.txt modern/text-renamed.txt
zfs snapshot "$FS@c"

say "clone of $FS@b, @c1"
zfs clone -o mountpoint="$(mnt clone)" "$FS@b" "$P/clone"
printf 'only in the clone\n' >"$(mnt clone)/clone-only.txt"
write_at "$(mnt clone)/data/big3.bin" 200000 5000 clone-big3
rm "$(mnt clone)/many/f-2"
zfs snapshot "$P/clone@c1"

say "child filesystem, recursive @r"
zfs create -o compression=lz4 -o recordsize=16K "$FS/child"
rnd child/random.bin 300000 >"$(mnt fs)/child/random.bin"
head -c 200000 /dev/zero >"$(mnt fs)/child/zeros.bin"
for i in $(seq 1 50); do printf 'c%d\n' "$i" >"$(mnt fs)/child/small-$i"; done
printf 'r\n' >"$(mnt fs)/r-marker"
zfs snapshot -r "$FS@r"
cd /

# --- a plain dataset: directory xattrs, legacy dnodes, no compression ------------------------
PL="$P/plain"
zfs create -o mountpoint="$(mnt plain)" -o compression=off -o xattr=dir -o dnodesize=legacy "$PL"
(
  cd "$(mnt plain)"
  put file 100000
  setfattr -n user.dirxattr -v "in a directory" file
  ln -s "$(printf 'q%.0s' {1..205})" link-205
  ln -s short link-short
  mkfifo fifo
  mknod null-twin c 1 3
  mknod loop-twin b 7 0
  mkdir d
  printf 'in d\n' >d/f
)
zfs snapshot "$PL@p1"

# --- SA xattrs in legacy dnodes: more than the bonus buffer holds goes to a spill block -------
SP="$P/spill"
zfs create -o mountpoint="$(mnt spill)" -o xattr=sa -o dnodesize=legacy "$SP"
(
  cd "$(mnt spill)"
  printf 'spill\n' >spilled
  for i in $(seq 1 12); do setfattr -n "user.attr-$i" -v "${TEXT:i*10:200}" spilled; done
  printf 'fits\n' >fits
  setfattr -n user.one -v 1 fits
)
zfs snapshot "$SP@s1"
setfattr -x user.attr-1 "$(mnt spill)/spilled"
setfattr -n user.new -v "${TEXT:0:150}" "$(mnt spill)/fits"
zfs snapshot "$SP@s2"

# --- zfs diff: names zfs diff escapes, hard links in one directory, xattr directories, a type
# change, a renamed directory, a file on the delete queue (tests/diff_openzfs_test.ts) ---------
DF="$P/diffs"
zfs create -o mountpoint="$(mnt diffs)" -o xattr=dir "$DF"
(
  cd "$(mnt diffs)"
  for n in keep 'sp ace' $'tab\there' $'nl\nline' $'ctl\001x' $'del\177' 'é-utf8' 'back\slash' \
    gone chg-type xa; do
    printf '%s\n' "$n" >"$n"
  done
  setfattr -n user.x -v one xa
  printf 'h\n' >hl-a
  ln hl-a hl-b
  printf 'c\n' >hl-c
  ln hl-c hl-c2
  mkdir -p mvdir/sub
  printf 'm\n' >mvdir/sub/f
  printf 'o\n' >open-then-removed
)
zfs snapshot "$DF@d1"
(
  cd "$(mnt diffs)"
  printf 'more\n' >>keep
  chmod 0600 'sp ace'
  mv $'tab\there' $'new\tname\001'
  rm gone
  printf 'new\n' >$'new\nfile'
  ln hl-a hl-d
  rm hl-c2
  setfattr -n user.x -v two xa
  setfattr -n user.new -v v keep
  rm chg-type
  mkdir chg-type
  mv mvdir renamed-dir
  mv 'é-utf8' 'ü-utf8'
  # Open while its last name goes: the snapshot holds it on the delete queue.
  exec 3<open-then-removed
  rm open-then-removed
  zfs snapshot "$DF@d2"
  exec 3<&-
)
(
  cd "$(mnt diffs)"
  rm -r renamed-dir/sub
  touch -d '2001-01-01 00:00:00 UTC' hl-b
  mkfifo fifo
  ln -s target symlink
  setfattr -x user.x xa
)
zfs snapshot "$DF@d3"

# --- one dataset per compression algorithm -------------------------------------------------
COMPS=(lz4 gzip-1 gzip-6 gzip-9 lzjb zle off zstd-1 zstd-19 zstd-fast)
for c in "${COMPS[@]}"; do
  ds="$P/comp-$c"
  zfs create -o mountpoint="$(mnt "comp-$c")" -o compression="$c" "$ds"
  (
    cd "$(mnt "comp-$c")"
    for i in 1 2 3 4 5 6 7; do printf '%s' "$TEXT"; done >text.txt
    put random.bin 150000
    head -c 300000 /dev/zero >zeros.bin
    { head -c 70000 /dev/zero; printf '%s' "${TEXT:0:70000}"; } >mixed.bin
    printf 'tiny\n' >tiny.txt
    truncate -s 3M sparse.bin
    write_at sparse.bin 1000000 20000 "sparse-$c"
  )
  zfs snapshot "$ds@s1"
done

# --- a volume with two snapshots --------------------------------------------------------------
VOL="$P/vol"
before="$(ls /sys/block)"
zfs create -V 24M -o volblocksize=16K "$VOL"
vdev="$(zvol_dev "$before")"
rnd vol-v1 $((12 * 1024 * 1024)) | dd of="$vdev" bs=1M conv=fsync status=none
dd if=/dev/zero of="$vdev" bs=16K seek=900 count=40 conv=fsync status=none
zfs snapshot "$VOL@v1"
dd if="$vdev" of="$OUT/vol-v1.img" bs=1M status=none
rnd vol-v2 300000 | dd of="$vdev" bs=16K seek=100 conv=fsync,notrunc status=none
dd if=/dev/zero of="$vdev" bs=16K seek=10 count=20 conv=fsync,notrunc status=none
rnd vol-v2-tail 100000 | dd of="$vdev" bs=16K seek=1400 conv=fsync,notrunc status=none
zfs snapshot "$VOL@v2"
dd if="$vdev" of="$OUT/vol-v2.img" bs=1M status=none

# --- encrypted datasets ------------------------------------------------------------------------
enc_fill() {
  cd "$1"
  put data.bin 400000
  for i in 1 2 3; do printf '%s' "$TEXT"; done >text.txt
  printf 'secret\n' >secret.txt
  setfattr -n user.enc -v sealed secret.txt
  ln -s secret.txt link
  mkdir dir
  printf 'in dir\n' >dir/f
  cd /
}
printf '%s\n' "$PASS" | zfs create -o encryption=aes-256-gcm -o keyformat=passphrase \
  -o mountpoint="$(mnt enc-gcm)" "$P/enc-gcm"
enc_fill "$(mnt enc-gcm)"
zfs snapshot "$P/enc-gcm@e1"
printf 'more\n' >>"$(mnt enc-gcm)/secret.txt"
put "$(mnt enc-gcm)/new.bin" 50000
zfs snapshot "$P/enc-gcm@e2"
printf '%s\n' "$PASS" | zfs create -o encryption=aes-128-ccm -o keyformat=passphrase \
  -o mountpoint="$(mnt enc-ccm)" "$P/enc-ccm"
enc_fill "$(mnt enc-ccm)"
zfs snapshot "$P/enc-ccm@e1"
rnd hexkey 32 | od -An -v -tx1 | tr -d ' \n' >"$OUT/enc-hex.key"
zfs create -o encryption=aes-256-gcm -o keyformat=hex -o keylocation="file://$OUT/enc-hex.key" \
  -o mountpoint="$(mnt enc-hex)" "$P/enc-hex"
enc_fill "$(mnt enc-hex)"
zfs snapshot "$P/enc-hex@e1"
printf '%s' "$PASS" >"$OUT/passphrase.txt"
# An encrypted volume.
before="$(ls /sys/block)"
printf '%s\n' "$PASS" | zfs create -V 8M -o volblocksize=8K -o encryption=aes-256-gcm \
  -o keyformat=passphrase "$P/encvol"
evdev="$(zvol_dev "$before")"
rnd encvol-v1 $((5 * 1024 * 1024)) | dd of="$evdev" bs=1M conv=fsync status=none
zfs snapshot "$P/encvol@ev1"
dd if="$evdev" of="$OUT/encvol-ev1.img" bs=1M status=none
# Encrypted trees for raw -R: an encryption root with a child that inherits its key, and an
# unencrypted parent with an encrypted child (its own encryption root); three recursive snapshots.
printf '%s\n' "$PASS" | zfs create -o encryption=aes-256-gcm -o keyformat=passphrase \
  -o mountpoint="$(mnt encR)" "$P/encR"
zfs create -o mountpoint="$(mnt encR/kid)" "$P/encR/kid"
zfs create -o mountpoint="$(mnt plainR)" "$P/plainR"
printf '%s\n' "$PASS" | zfs create -o encryption=aes-128-ccm -o keyformat=passphrase \
  -o mountpoint="$(mnt plainR/sec)" "$P/plainR/sec"
for d in encR encR/kid plainR plainR/sec; do enc_fill "$(mnt "$d")"; done
zfs snapshot -r "$P/encR@r1" "$P/plainR@r1"
printf 'more\n' >>"$(mnt encR)/secret.txt"
put "$(mnt encR/kid)/kid-r2.bin" 70000
rm "$(mnt plainR/sec)/text.txt"
zfs snapshot -r "$P/encR@r2" "$P/plainR@r2"
put "$(mnt encR)/r3.bin" 30000
printf 'r3\n' >>"$(mnt encR/kid)/dir/f"
zfs snapshot -r "$P/encR@r3"

# --- manifests ---------------------------------------------------------------------------------
# acltype is a property a clone does not take from its origin: without it the view hides ACLs.
snapline() { # SNAP MANIFEST: a corpus.txt line for a snapshot
  local guid creation
  guid="$(zfs get -H -p -o value guid "$P/$1")"
  creation="$(zfs get -H -p -o value creation "$P/$1")"
  printf 'snapshot %s %s %s %s %s\n' "$1" "$P/$1" "$guid" "$creation" "$2" >>"$OUT/corpus.txt"
}
: >"$OUT/corpus.txt"
SNAPS=(fs@a fs@b fs@c fs@r fs/child@r clone@c1 plain@p1 spill@s1 spill@s2 enc-gcm@e1 enc-gcm@e2 enc-ccm@e1
  enc-hex@e1 encR@r1 encR@r2 encR@r3 encR/kid@r1 encR/kid@r2 encR/kid@r3 plainR@r2 plainR/sec@r2)
for c in "${COMPS[@]}"; do SNAPS+=("comp-$c@s1"); done
for snap in "${SNAPS[@]}"; do
  base="$(tr '/@' '--' <<<"$snap")"
  zfs clone -o readonly=on -o acltype=posix -o mountpoint=/mnt/view "$P/$snap" "$P/view"
  manifest /mnt/view "$OUT/$base.manifest.txt"
  attrs /mnt/view "$OUT/$base"
  zfs destroy "$P/view"
  snapline "$snap" "$base.manifest.txt"
done
for snap in vol@v1 vol@v2 encvol@ev1; do snapline "$snap" "$(tr '/@' '--' <<<"$snap").img"; done

# --- streams -----------------------------------------------------------------------------------
# send NAME KIND FROM TO "SNAPSHOTS" ZFS-SEND-ARGS...
send() {
  local name="$1" kind="$2" from="$3" to="$4" snaps="$5"
  shift 5
  zfs send "$@" >"$OUT/$name.zstream"
  printf 'stream %s %s %s %s %s | zfs send %s\n' "$name" "$kind" "${from:--}" "$to" \
    "${snaps// /,}" "$*" >>"$OUT/corpus.txt"
  say "$name.zstream: $(stat -c %s "$OUT/$name.zstream") bytes (zfs send $*)"
}
send fs-a.full full "" fs@a fs@a "$FS@a"
send fs-a.c full "" fs@a fs@a -c "$FS@a"
send fs-a.Le full "" fs@a fs@a -L -e "$FS@a"
send fs-a.Lec full "" fs@a fs@a -L -e -c "$FS@a"
send fs-a-b.incr incremental fs@a fs@b fs@b -i @a "$FS@b"
send fs-a-b.Lec incremental fs@a fs@b fs@b -L -e -c -i @a "$FS@b"
send fs-b-c.incr incremental fs@b fs@c fs@c -i @b "$FS@c"
send fs-b-c.Lec incremental fs@b fs@c fs@c -L -e -c -i @b "$FS@c"
send fs-a-c.I incremental-compound fs@a fs@c "fs@b fs@c" -I @a "$FS@c"
send fs-r.R replicate "" fs@r "fs@a fs@b fs@c fs@r fs/child@r" -R "$FS@r"
send fs-r.RLec replicate "" fs@r "fs@a fs@b fs@c fs@r fs/child@r" -R -L -e -c "$FS@r"
send fs-c-r.Ri replicate-incremental fs@c fs@r "fs@r fs/child@r" -R -i @c "$FS@r"
send clone-b-c1.clone clone-incremental fs@b clone@c1 clone@c1 -i "$FS@b" "$P/clone@c1"
send clone-b-c1.Lec clone-incremental fs@b clone@c1 clone@c1 -L -e -c -i "$FS@b" "$P/clone@c1"
send plain-p1.full full "" plain@p1 plain@p1 "$PL@p1"
send spill-s1.full full "" spill@s1 spill@s1 "$SP@s1"
send spill-s1-s2.incr incremental spill@s1 spill@s2 spill@s2 -i @s1 "$SP@s2"
for c in "${COMPS[@]}"; do
  send "comp-$c.c" full "" "comp-$c@s1" "comp-$c@s1" -c "$P/comp-$c@s1"
done
send comp-zstd-19.full full "" comp-zstd-19@s1 comp-zstd-19@s1 "$P/comp-zstd-19@s1"
send vol-v1.full volume "" vol@v1 vol@v1 "$VOL@v1"
send vol-v1-v2.incr volume-incremental vol@v1 vol@v2 vol@v2 -i @v1 "$VOL@v2"
send vol-v1.c volume "" vol@v1 vol@v1 -c "$VOL@v1"
send diffs-d1.full full "" diffs@d1 diffs@d1 "$DF@d1"
send diffs-d1-d2.incr incremental diffs@d1 diffs@d2 diffs@d2 -i @d1 "$DF@d2"
send diffs-d2-d3.incr incremental diffs@d2 diffs@d3 diffs@d3 -i @d2 "$DF@d3"
send enc-gcm-e1.raw raw "" enc-gcm@e1 enc-gcm@e1 -w "$P/enc-gcm@e1"
send enc-gcm-e1-e2.raw raw-incremental enc-gcm@e1 enc-gcm@e2 enc-gcm@e2 -w -i @e1 "$P/enc-gcm@e2"
send enc-ccm-e1.raw raw "" enc-ccm@e1 enc-ccm@e1 -w "$P/enc-ccm@e1"
send enc-hex-e1.raw raw "" enc-hex@e1 enc-hex@e1 -w "$P/enc-hex@e1"
send encvol-ev1.raw raw-volume "" encvol@ev1 encvol@ev1 -w "$P/encvol@ev1"
send encR-r2.Rw raw-replicate "" encR@r2 "encR@r1 encR@r2 encR/kid@r1 encR/kid@r2" -R -w "$P/encR@r2"
send encR-r1-r2.Rwi raw-replicate-incremental encR@r1 encR@r2 "encR@r2 encR/kid@r2" -R -w -i @r1 \
  "$P/encR@r2"
send encR-r1-r3.RwI raw-replicate-incremental encR@r1 encR@r3 \
  "encR@r2 encR@r3 encR/kid@r2 encR/kid@r3" -R -w -I @r1 "$P/encR@r3"
send plainR-r2.Rw raw-replicate "" plainR@r2 "plainR@r1 plainR@r2 plainR/sec@r1 plainR/sec@r2" -R -w \
  "$P/plainR@r2"

say "redacted send"
zfs clone -o mountpoint="$(mnt redcl)" "$FS@c" "$P/redcl"
rm -rf "$(mnt redcl)/data/big3.bin" "$(mnt redcl)/sizes"
write_at "$(mnt redcl)/modern/large-2m5.bin" 0 4096 redact-change
zfs snapshot "$P/redcl@x"
zfs redact "$FS@c" book1 "$P/redcl@x"
send fs-c.redact redacted "" fs@c fs@c --redact book1 "$FS@c"
send fs-c.redactLec redacted "" fs@c fs@c -L -e -c --redact book1 "$FS@c"

say "interrupted receive and resume"
zfs send -c "$FS@a" >"$T/whole.zstream"
whole=$(stat -c %s "$T/whole.zstream")
head -c $((whole * 2 / 5)) "$T/whole.zstream" >"$OUT/fs-a.cut.zstream"
if zfs receive -s "$P/resumed" <"$OUT/fs-a.cut.zstream" 2>"$T/cut.err"; then
  say "the cut stream was received whole?" && exit 1
fi
token="$(zfs get -H -o value receive_resume_token "$P/resumed")"
[[ "$token" != "-" ]] || { say "no resume token"; exit 1; }
printf '%s\n' "$token" >"$OUT/fs-a.resume-token.txt"
printf 'stream fs-a.cut partial - fs@a fs@a | head -c %s of zfs send -c %s\n' \
  $((whole * 2 / 5)) "$FS@a" >>"$OUT/corpus.txt"
send fs-a.resume resuming "" fs@a fs@a -t "$token"
zfs receive -s "$P/resumed" <"$OUT/fs-a.resume.zstream"
zfs clone -o readonly=on -o mountpoint=/mnt/view "$P/resumed@a" "$P/view"
manifest /mnt/view "$T/resumed.manifest.txt"
zfs destroy "$P/view"
cmp "$T/resumed.manifest.txt" "$OUT/fs-a.manifest.txt" || { say "resumed tree differs"; exit 1; }

say "zfs diff"
# zdiff NAME FROM TO [FLAGS...]: `zfs diff` of two snapshots, plain, -FHt and each FLAGS given,
# into NAME.FLAGS.diff.txt (NAME.plain.diff.txt without flags), with a corpus.txt line
# "zdiff NAME FROM TO FLAGS FILE MOUNTPOINT STATUS" (FLAGS - for none; STATUS zfs diff's).
zdiff() {
  local name="$1" from="$2" to="$3" flags file mp status
  shift 3
  mp="$(zfs get -H -o value mountpoint "$P/${to%@*}")"
  for flags in - -FHt "$@"; do
    file="$name.${flags#-}.diff.txt"
    [[ "$flags" == - ]] && file="$name.plain.diff.txt"
    status=0
    # A zfs diff that does not end in 5 minutes is recorded as status 124, the corpus goes on.
    if [[ "$flags" == - ]]; then
      timeout 300 zfs diff "$P/$from" "$P/$to" >"$OUT/$file" 2>"$T/zdiff.err" || status=$?
    else
      timeout 300 zfs diff "$flags" "$P/$from" "$P/$to" >"$OUT/$file" 2>"$T/zdiff.err" ||
        status=$?
    fi
    say "zfs diff $flags $from $to: status $status, $(wc -l <"$OUT/$file") lines $(cat "$T/zdiff.err")"
    printf 'zdiff %s %s %s %s %s %s %s\n' "$name" "$from" "$to" "$flags" "$file" "$mp" \
      "$status" >>"$OUT/corpus.txt"
  done
}
zdiff fs-a-b fs@a fs@b
zdiff fs-b-c fs@b fs@c
zdiff fs-a-c fs@a fs@c -F
zdiff fs-c-r fs@c fs@r
zdiff spill-s1-s2 spill@s1 spill@s2
zdiff clone-b-c1 fs@b clone@c1
zdiff enc-gcm-e1-e2 enc-gcm@e1 enc-gcm@e2
zdiff diffs-d1-d2 diffs@d1 diffs@d2 -h -F -t -H
zdiff diffs-d2-d3 diffs@d2 diffs@d3 -h
zdiff diffs-d1-d3 diffs@d1 diffs@d3 -h

say "zfs send -n -v and -n -P"
# sendv NAME ARGS...: the estimate lines of `zfs send -n -v ARGS` and `zfs send -n -P ARGS`
# into NAME.sendv.txt and NAME.sendP.txt, with a corpus.txt line "sendv NAME | zfs send ARGS".
sendv() {
  local name="$1"
  shift
  zfs send -n -v "$@" >"$OUT/$name.sendv.txt"
  zfs send -n -P "$@" >"$OUT/$name.sendP.txt"
  printf 'sendv %s | zfs send %s\n' "$name" "$*" >>"$OUT/corpus.txt"
}
sendv fs-a "$FS@a"
sendv fs-a-b -i @a "$FS@b"
sendv fs-a-c.I -I @a "$FS@c"
sendv fs-r.R -R "$FS@r"

zfs version | head -n 1 >"$OUT/zfs-version.txt"
printf 'seed %s\n' "$SEED" >>"$OUT/corpus.txt"
zpool destroy "$P"
say "done in $((SECONDS - started))s"
