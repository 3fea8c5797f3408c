#!/usr/bin/env bash
# Runs inside the OpenZFS 2.3 guest (scripts/openzfs/vm.sh): real `zfs receive` of streams that
# zsend wrote, then the manifests, xattrs and images of what was received. Inputs in /in:
# plan.txt, lib_tree.sh, guest_lib.sh and the streams; OUT = $1 gets results.txt (one line per step:
# `ok STEP...` or `fail STEP...: what zfs said`) and the files that the steps name.
#
# plan.txt, one step a line:
#   recv FLAGS TARGET STREAM     zfs receive [FLAGS] POOL/TARGET < /in/STREAM (FLAGS "-" for none,
#                                commas for spaces: -F,-u; TARGET "-" for the pool itself)
#   mkdir DATASET                zfs create -p POOL/DATASET (a parent for what is received)
#   load-key DATASET             zfs load-key with the passphrase in /in/passphrase.txt
#   load-key-r DATASET           zfs load-key -r: every encryption root at or below DATASET
#   crypt                        crypt.txt: zfs list -o name,encryption,encryptionroot,keystatus
#   manifest SNAP NAME           NAME.manifest.txt, NAME.xattrs.txt and NAME.acls.txt of POOL/SNAP
#                                (through a clone)
#   image SNAP NAME              NAME.img: the bytes of volume snapshot POOL/SNAP (a clone)
#   list                         list.txt: zfs list -t all -o name,guid,origin
set -uo pipefail
OUT="$1"
export LC_ALL=C
T=/tmp/work
mkdir -p "$T" "$OUT"
# shellcheck source=scripts/lib_tree.sh
source /in/lib_tree.sh
# shellcheck source=scripts/openzfs/guest/guest_lib.sh
source /in/guest_lib.sh
P=zr
truncate -s 3G /tmp/pool.img
zpool create -O mountpoint=none "$P" /tmp/pool.img || exit 1
: >"$OUT/results.txt"
result() { printf '%s\n' "$*" >>"$OUT/results.txt"; }


while read -r op a b c; do
  [[ -z "$op" || "$op" == \#* ]] && continue
  case "$op" in
    recv)
      flags=()
      [[ "$a" != - ]] && IFS=, read -ra flags <<<"$a"
      target="$P"
      [[ "$b" != - ]] && target="$P/$b"
      # -u: a -R stream sets the sender's mountpoint (the same for several receives here);
      # trees are read through clones mounted where the manifest step says.
      if zfs receive -u "${flags[@]}" "$target" <"/in/$c" 2>"$T/err"; then
        result "ok recv $a $b $c"
      else
        result "fail recv $a $b $c: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    mkdir)
      if zfs create -p "$P/$a" 2>"$T/err"; then
        result "ok mkdir $a"
      else
        result "fail mkdir $a: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    load-key)
      if zfs load-key "$P/$a" <"/in/passphrase.txt" 2>"$T/err"; then
        result "ok load-key $a"
      else
        result "fail load-key $a: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    load-key-r)
      # One line of the passphrase for each encryption root that reads it.
      if for _ in 1 2 3 4 5 6 7 8; do cat /in/passphrase.txt; echo; done |
        zfs load-key -r "$P/$a" 2>"$T/err"; then
        result "ok load-key-r $a"
      else
        result "fail load-key-r $a: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    crypt)
      zfs list -t filesystem,volume -H -o name,encryption,encryptionroot,keystatus -r "$P" \
        >"$OUT/crypt.txt"
      result "ok crypt"
      ;;
    manifest)
      if zfs clone -o readonly=on -o acltype=posix -o mountpoint=/mnt/view "$P/$a" "$P/view" \
        2>"$T/err"; then
        manifest /mnt/view "$OUT/$b.manifest.txt"
        attrs /mnt/view "$OUT/$b"
        zfs destroy "$P/view"
        result "ok manifest $a $b"
      else
        result "fail manifest $a $b: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    image)
      before="$(ls /sys/block)"
      if zfs clone "$P/$a" "$P/view" 2>"$T/err" && dev="$(zvol_dev "$before")"; then
        dd if="$dev" of="$OUT/$b.img" bs=1M status=none
        zfs destroy "$P/view"
        result "ok image $a $b"
      else
        result "fail image $a $b: $(tr '\n' ' ' <"$T/err")"
      fi
      ;;
    list)
      zfs list -t all -H -p -o name,guid,origin -r "$P" >"$OUT/list.txt"
      result "ok list"
      ;;
    *) result "fail $op: unknown step" ;;
  esac
done </in/plan.txt
zpool destroy "$P"
