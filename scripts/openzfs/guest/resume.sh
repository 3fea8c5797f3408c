#!/usr/bin/env bash
# Runs inside the OpenZFS 2.3 guest (scripts/openzfs/vm.sh): real `zfs send -t` and `zfs
# receive -s` with resume tokens that zsend made. The pool is named zc, as the corpus's pool, so
# that a token's toname (zc/fs@a) names a snapshot here once the corpus's streams are received
# (a receive keeps the snapshots' guids). Inputs in /in: plan.txt, lib_tree.sh, the streams and
# token files; OUT = $1 gets results.txt (`ok STEP...` or `fail STEP...: what zfs said`) and the
# files the steps name.
#
# plan.txt, one step a line:
#   recv TARGET STREAM        zfs receive -u zc/TARGET < /in/STREAM
#   cut TARGET STREAM         zfs receive -s -u zc/TARGET < /in/STREAM (a cut stream: it must
#                             fail), then TARGET.kernel-token.txt: the receive_resume_token kept
#   token NAME FILE           NAME.zstream-token.txt: zstream token of the token in /in/FILE
#   send-t NAME FILE          NAME.zstream: zfs send -t of the token in /in/FILE
#   resume TARGET NAME        zfs receive -s -u zc/TARGET < NAME.zstream (made by send-t)
#   manifest SNAP NAME        NAME.manifest.txt of zc/SNAP (through a mounted clone)
set -uo pipefail
OUT="$1"
export LC_ALL=C
T=/tmp/work
mkdir -p "$T" "$OUT"
# shellcheck source=scripts/lib_tree.sh
source /in/lib_tree.sh
P=zc
truncate -s 2G /tmp/pool.img
zpool create -O mountpoint=none "$P" /tmp/pool.img || exit 1
: >"$OUT/results.txt"
result() { printf '%s\n' "$*" >>"$OUT/results.txt"; }
said() { tr '\n' ' ' <"$T/err"; }

while read -r op a b; do
  [[ -z "$op" || "$op" == \#* ]] && continue
  case "$op" in
    recv)
      if zfs receive -u "$P/$a" <"/in/$b" 2>"$T/err"; then result "ok recv $a $b"
      else result "fail recv $a $b: $(said)"; fi
      ;;
    cut)
      if zfs receive -s -u "$P/$a" <"/in/$b" 2>"$T/err"; then
        result "fail cut $a $b: the cut stream was received whole"
      else
        zfs get -H -o value receive_resume_token "$P/$a" >"$OUT/${a//\//-}.kernel-token.txt"
        result "ok cut $a $b: $(said)"
      fi
      ;;
    token)
      if zstream token "$(cat "/in/$b")" >"$OUT/$a.zstream-token.txt" 2>"$T/err"; then
        result "ok token $a $b"
      else result "fail token $a $b: $(said)"; fi
      ;;
    send-t)
      if zfs send -t "$(cat "/in/$b")" >"$OUT/$a.zstream" 2>"$T/err"; then
        result "ok send-t $a $b"
      else result "fail send-t $a $b: $(said)"; fi
      ;;
    resume)
      if zfs receive -s -u "$P/$a" <"$OUT/$b.zstream" 2>"$T/err"; then result "ok resume $a $b"
      else result "fail resume $a $b: $(said)"; fi
      ;;
    manifest)
      if zfs clone -o readonly=on -o mountpoint=/mnt/view "$P/$a" "$P/view" 2>"$T/err"; then
        manifest /mnt/view "$OUT/$b.manifest.txt"
        zfs destroy "$P/view"
        result "ok manifest $a $b"
      else result "fail manifest $a $b: $(said)"; fi
      ;;
    *) result "fail $op: unknown step" ;;
  esac
done </in/plan.txt
zpool destroy "$P"
