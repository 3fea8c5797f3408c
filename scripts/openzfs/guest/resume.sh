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
#   cuthead TARGET STREAM N   as cut, of the first N bytes of /in/STREAM (head -c N)
#   same-token TARGET FILE    the token zc/TARGET keeps is the one in /in/FILE
#   token NAME FILE           NAME.zstream-token.txt: zstream token of the token in /in/FILE
#   send-t NAME FILE          NAME.zstream: zfs send -t of the token in /in/FILE (or in the
#                             file FILE that an earlier step wrote, such as a kernel token)
#   resume TARGET NAME        zfs receive -s -u zc/TARGET < NAME.zstream (made by send-t)
#   resume-in TARGET STREAM   zfs receive -s -u zc/TARGET < /in/STREAM (a resuming stream)
#   load-key DATASET          zfs load-key zc/DATASET with the passphrase in /in/passphrase.txt
#   manifest SNAP NAME        NAME.manifest.txt of zc/SNAP (through a mounted clone), and with
#                             /in/guest_lib.sh NAME.xattrs.txt and NAME.acls.txt
set -uo pipefail
OUT="$1"
export LC_ALL=C
T=/tmp/work
mkdir -p "$T" "$OUT"
# shellcheck source=scripts/lib_tree.sh
source /in/lib_tree.sh
if [[ -f /in/guest_lib.sh ]]; then
  # shellcheck source=scripts/openzfs/guest/guest_lib.sh
  source /in/guest_lib.sh
fi
P=zc
truncate -s 2G /tmp/pool.img
zpool create -O mountpoint=none "$P" /tmp/pool.img || exit 1
: >"$OUT/results.txt"
result() { printf '%s\n' "$*" >>"$OUT/results.txt"; }
said() { tr '\n' ' ' <"$T/err"; }
kept_token() { zfs get -H -o value receive_resume_token "$P/$1"; }
input() { if [[ -f "/in/$1" ]]; then printf '/in/%s\n' "$1"; else printf '%s/%s\n' "$OUT" "$1"; fi; }

while read -r op a b c; do
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
    cuthead)
      if head -c "$c" "/in/$b" | zfs receive -s -u "$P/$a" 2>"$T/err"; then
        result "fail cuthead $a $b $c: the cut stream was received whole"
      else
        kept_token "$a" >"$OUT/${a//\//-}.kernel-token.txt"
        result "ok cuthead $a $b $c: $(said)"
      fi
      ;;
    same-token)
      if [[ "$(kept_token "$a")" == "$(cat "/in/$b")" ]]; then result "ok same-token $a $b"
      else result "fail same-token $a $b: zc/$a keeps $(kept_token "$a")"; fi
      ;;
    resume-in)
      if zfs receive -s -u "$P/$a" <"/in/$b" 2>"$T/err"; then result "ok resume-in $a $b"
      else result "fail resume-in $a $b: $(said)"; fi
      ;;
    load-key)
      if zfs load-key "$P/$a" <"/in/passphrase.txt" 2>"$T/err"; then result "ok load-key $a"
      else result "fail load-key $a: $(said)"; fi
      ;;
    token)
      if zstream token "$(cat "/in/$b")" >"$OUT/$a.zstream-token.txt" 2>"$T/err"; then
        result "ok token $a $b"
      else result "fail token $a $b: $(said)"; fi
      ;;
    send-t)
      if zfs send -t "$(cat "$(input "$b")")" >"$OUT/$a.zstream" 2>"$T/err"; then
        result "ok send-t $a $b"
      else result "fail send-t $a $b: $(said)"; fi
      ;;
    resume)
      if zfs receive -s -u "$P/$a" <"$OUT/$b.zstream" 2>"$T/err"; then result "ok resume $a $b"
      else result "fail resume $a $b: $(said)"; fi
      ;;
    manifest)
      if zfs clone -o readonly=on -o acltype=posix -o mountpoint=/mnt/view "$P/$a" "$P/view" \
        2>"$T/err"; then
        manifest /mnt/view "$OUT/$b.manifest.txt"
        if declare -F attrs >/dev/null; then attrs /mnt/view "$OUT/$b"; fi
        zfs destroy "$P/view"
        result "ok manifest $a $b"
      else result "fail manifest $a $b: $(said)"; fi
      ;;
    *) result "fail $op: unknown step" ;;
  esac
done </in/plan.txt
zpool destroy "$P"
