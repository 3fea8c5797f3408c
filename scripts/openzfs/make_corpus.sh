#!/usr/bin/env bash
# A fresh corpus of streams made by real OpenZFS 2.3 (in the QEMU guest of vm.sh):
#
#   bash scripts/openzfs/make_corpus.sh OUTDIR        (ZSEND_SEED=N repeats a run's file tree)
#
# The guest (guest/corpus.sh) fills datasets with every compression, large blocks, SA xattrs,
# ACLs, a clone, a child, a volume, encrypted datasets, a redacted send and an interrupted
# receive; OUTDIR gets the streams (*.zstream), the snapshots' manifests and xattrs, the
# volume's images, corpus.txt (what each stream and snapshot is) and, made here on the host
# with OpenZFS 2.3's own zstream, NAME.dump.txt = `zstream dump -v` of each stream.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { printf 'make_corpus: %s\n' "$*"; }
[[ $# == 1 ]] || { say "usage: make_corpus.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
rm -f "$OUT"/*.zstream "$OUT"/*.dump.txt "$OUT"/*.manifest.txt "$OUT"/corpus.txt

if [[ -n "${ZSEND_SEED:-}" ]]; then
  [[ "$ZSEND_SEED" =~ ^[0-9]+$ ]] || { say "ZSEND_SEED must be a decimal number" >&2; exit 2; }
  SEED=$((10#$ZSEND_SEED))
else
  SEED=$((RANDOM * 32768 + RANDOM))
fi
say "seed $SEED (ZSEND_SEED=$SEED repeats this run)"
T="$(mktemp -d "${TMPDIR:-/tmp}/zsend-corpus.XXXXXX")"
trap 'rm -rf "$T"' EXIT
# shellcheck source=scripts/lib_tree.sh
source "$here/../lib_tree.sh"
tree_random_source
[[ "$RANDOM_SOURCE" == splitmix64 ]] || { say "no C compiler for the PRNG" >&2; exit 1; }
printf '%s\n' "$SEED" >"$T/seed"

started=$SECONDS
status=0
bash "$here/vm.sh" run "$here/guest/corpus.sh" "$OUT" "$here/../lib_tree.sh" \
  "$here/guest/guest_lib.sh" "$T/prng" "$T/seed" || status=$?
if ((status != 0)); then
  say "the guest failed (status $status): $OUT/console.log" >&2
  tail -n 40 "$OUT/console.log" >&2 || true
  exit 1
fi
for s in "$OUT"/*.zstream; do
  name="$(basename "$s" .zstream)"
  [[ "$name" == *.cut ]] && continue
  bash "$here/tool.sh" zstream dump -v "$s" >"$OUT/$name.dump.txt"
done
say "$(grep -c '^stream ' "$OUT/corpus.txt") streams in $((SECONDS - started))s: $OUT"
