#!/usr/bin/env bash
# Set up a machine to build and test zsend. Idempotent: run it as often as you like.
#
#   bash scripts/setup.sh
#
# - Deno (pinned, from the npm package `deno`) into .tools/ unless that exact version is there.
# - As root: the Debian packages that are missing (a C compiler and libc headers for the native
#   library, zfs-fuse for the tests against real ZFS, bzip2 for OpenZFS's fixtures, b3sum for
#   the BLAKE3 tests, zstd for the Zstandard round trips, npm when Deno has to be installed and
#   npm is absent). Not root: says what is missing and goes on.
# - The native library, with scripts/build_native.sh, when that script and a compiler exist.
#
# Environment: ZSEND_DENO_VERSION overrides the pinned Deno version.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DENO_VERSION="${ZSEND_DENO_VERSION:-2.9.6}"
DENO=".tools/node_modules/.bin/deno"

say() { printf 'setup: %s\n' "$*"; }

deno_ok() {
  [[ -x "$DENO" ]] && [[ "$("$DENO" --version 2>/dev/null | head -n 1)" == "deno $DENO_VERSION "* ]]
}
have_cc() {
  { command -v cc || command -v gcc; } >/dev/null 2>&1 && [[ -e /usr/include/stdio.h ]]
}

# 1. Which Debian packages are missing.
missing=()
if ! have_cc; then
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  [[ -e /usr/include/stdio.h ]] || missing+=(libc6-dev)
fi
command -v zfs-fuse >/dev/null 2>&1 || missing+=(zfs-fuse)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
command -v b3sum >/dev/null 2>&1 || missing+=(b3sum)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
if ! deno_ok && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # zfs-fuse's postinst starts the daemon through invoke-rc.d and fails the install when that
    # fails (as it does in containers); the tests start it themselves (scripts/zfs_fuse.sh).
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -q </dev/null >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    if [[ -n "$policy" ]]; then
      rm -f "$policy"
      trap - EXIT
    fi
    say "installed: ${missing[*]}"
  else
    say "missing (not root, not installing): ${missing[*]}; go on without them"
  fi
else
  say "Debian packages present (C compiler, zfs-fuse, bzip2, b3sum, zstd)"
fi

# 2. Deno, pinned, into .tools/.
if deno_ok; then
  say "deno $DENO_VERSION present in .tools"
elif command -v npm >/dev/null 2>&1; then
  say "installing deno@$DENO_VERSION from npm into .tools"
  mkdir -p .tools
  npm install --prefix .tools --save-exact --no-audit --no-fund --loglevel=error \
    "deno@$DENO_VERSION" </dev/null >/dev/null
  if ! deno_ok; then
    say "deno@$DENO_VERSION did not install: $("$DENO" --version 2>&1 | head -n 1 || true)" >&2
    exit 1
  fi
  say "deno $DENO_VERSION installed"
else
  say "npm is missing: cannot install Deno" >&2
  exit 1
fi

# 3. The native library.
if [[ -f scripts/build_native.sh ]]; then
  if have_cc; then
    say "building the native library (scripts/build_native.sh)"
    if ! bash scripts/build_native.sh; then
      say "scripts/build_native.sh failed" >&2
      exit 1
    fi
  else
    say "no C compiler: native library not built (the TypeScript fallback is used)"
  fi
else
  say "scripts/build_native.sh not there yet: native library not built"
fi
say "done"
