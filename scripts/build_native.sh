#!/usr/bin/env bash
# Builds build/libzsend_native.so from io/native/zsend_native.c and io/native/blake3.c with the
# system C compiler.
#
# No -march=native: the SIMD variants carry their own target attributes and are chosen at run
# time, so the library runs on any x86-64 (or other) CPU. Idempotent: rebuilds only when a
# source, this script or the compiler flags are newer than the library. Set CC / CFLAGS to
# override; FORCE=1 rebuilds regardless.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
srcs=("$root/io/native/zsend_native.c" "$root/io/native/blake3.c")
out_dir="$root/build"
out="$out_dir/libzsend_native.so"
cc="${CC:-cc}"
cflags="${CFLAGS:--O3}"
flags=(-std=c11 -Wall -Wextra -fPIC -shared -fvisibility=hidden)
stamp="$out_dir/.libzsend_native.flags"
want="$cc $cflags ${flags[*]}"

mkdir -p "$out_dir"
fresh=0
if [[ "${FORCE:-0}" != 1 && -f "$out" && "$out" -nt "${BASH_SOURCE[0]}" && -f "$stamp" &&
  "$(cat "$stamp")" == "$want" ]]; then
  fresh=1
  for src in "${srcs[@]}"; do
    [[ "$out" -nt "$src" ]] || fresh=0
  done
fi
if [[ "$fresh" == 1 ]]; then
  echo "up to date: $out"
  exit 0
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# shellcheck disable=SC2086 # CFLAGS is a list of words
"$cc" $cflags "${flags[@]}" -o "$tmp" "${srcs[@]}"
mv -f "$tmp" "$out"
echo "$want" >"$stamp"
echo "wrote $out"
