#!/usr/bin/env bash
# `deno task compile`: one executable, build/zsend, with the native library inside.
#
# `deno compile` needs Deno's `denort` runtime and downloads it on first use. Where that
# download cannot be reached, point DENORT_BIN at a local denort of the same Deno version:
#   DENORT_BIN=/path/to/denort deno task compile
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deno="${DENO:-.tools/node_modules/.bin/deno}"
[[ -x "$deno" ]] || deno="$(command -v deno)"

bash scripts/build_native.sh >/dev/null
mkdir -p build
out="${ZSEND_COMPILE_OUT:-build/zsend}"
if [[ -n "${DENORT_BIN:-}" ]]; then
  [[ -x "$DENORT_BIN" ]] || { echo "compile: DENORT_BIN=$DENORT_BIN is not an executable" >&2; exit 1; }
  echo "compile: using denort from DENORT_BIN=$DENORT_BIN"
  export DENORT_BIN
fi
"$deno" compile --allow-all --quiet \
  --include build/libzsend_native.so \
  --output "$out" cli.ts
# A binary that is really denort + our program answers our own --help; a wrong runtime
# (plain deno passed as DENORT_BIN) would start the deno CLI instead.
if ! "$out" --help 2>/dev/null | grep -q '^zsend:'; then
  echo "compile: $out does not run as zsend (is DENORT_BIN a real denort?)" >&2
  rm -f "$out"
  exit 1
fi
echo "compile: wrote $out"
