#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command:
#
#   bash scripts/test.sh [deno test arguments...]
#
# 1. scripts/setup.sh (Deno into .tools/, Debian packages when root, the native library);
# 2. the zfs-fuse daemon, when root with /dev/fuse (else the tests that need real ZFS skip
#    themselves and say so); under CI=true a daemon that does not start fails the run, so that
#    CI never skips the tests against real ZFS;
# 3. ZSEND_OPENZFS_FIXTURES=<repo>/../shared/fixtures/openzfs when that folder exists;
# 4. real OpenZFS 2.3, when root: the QEMU guest built or reused (scripts/openzfs/vm.sh build:
#    the cloud kernel, spl.ko/zfs.ko from zfs-dkms, the initramfs) and a fresh corpus made in
#    it (scripts/openzfs/make_corpus.sh, about 7 minutes); under CI=true a failure fails the
#    run. ZSEND_OPENZFS_CORPUS=DIR set beforehand reuses a corpus made earlier;
# 5. `deno task test`, whose exit status is this script's.
# Exported for the tests: ZSEND_ZFS_FUSE=1 when the daemon answers (0 otherwise),
# ZSEND_OPENZFS_FIXTURES, ZSEND_OPENZFS_VM=1 when the guest is built and ZSEND_OPENZFS_CORPUS.
# The daemon is left running afterwards.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'test: %s\n' "$*"; }
ci=false
case "${CI:-}" in true | 1 | yes) ci=true ;; esac

bash scripts/setup.sh

export ZSEND_ZFS_FUSE=0
if [[ "$(id -u)" == 0 && -c /dev/fuse ]] && command -v zfs-fuse >/dev/null 2>&1; then
  if bash scripts/zfs_fuse.sh start; then
    ZSEND_ZFS_FUSE=1
  elif [[ "$ci" == true ]]; then
    say "CI: zfs-fuse did not start; the tests against real ZFS cannot run" >&2
    exit 1
  else
    say "zfs-fuse did not start: the tests that need real ZFS will be skipped"
  fi
else
  why="not root"
  [[ "$(id -u)" == 0 ]] && why="no /dev/fuse"
  [[ "$(id -u)" == 0 && -c /dev/fuse ]] && why="zfs-fuse not installed"
  if [[ "$ci" == true ]]; then
    say "CI: cannot run zfs-fuse ($why); the tests against real ZFS cannot run" >&2
    exit 1
  fi
  say "zfs-fuse not started ($why): the tests that need real ZFS will be skipped"
fi

if [[ -d "$root/../shared/fixtures/openzfs" ]]; then
  ZSEND_OPENZFS_FIXTURES="$(cd "$root/../shared/fixtures/openzfs" && pwd)"
  export ZSEND_OPENZFS_FIXTURES
  say "OpenZFS fixtures: $ZSEND_OPENZFS_FIXTURES"
elif [[ -n "${ZSEND_OPENZFS_FIXTURES:-}" ]]; then
  say "OpenZFS fixtures (from the environment): $ZSEND_OPENZFS_FIXTURES"
else
  say "no ../shared/fixtures/openzfs: the tests on OpenZFS's streams will be skipped"
fi

export ZSEND_OPENZFS_VM=0
openzfs_fail() {
  if [[ "$ci" == true ]]; then
    say "CI: $*; the tests against OpenZFS 2.3 cannot run" >&2
    exit 1
  fi
  say "$*: the tests against OpenZFS 2.3 will be skipped"
}
if [[ "$(id -u)" == 0 ]]; then
  say "OpenZFS 2.3 guest (scripts/openzfs/vm.sh build)"
  if bash scripts/openzfs/vm.sh build >/dev/null; then
    ZSEND_OPENZFS_VM=1
    if [[ -z "${ZSEND_OPENZFS_CORPUS:-}" ]]; then
      corpus="$root/tests/tmp/openzfs-corpus"
      if bash scripts/openzfs/make_corpus.sh "$corpus"; then
        export ZSEND_OPENZFS_CORPUS="$corpus"
      else
        openzfs_fail "the OpenZFS 2.3 corpus could not be made"
      fi
    fi
  else
    openzfs_fail "the OpenZFS 2.3 guest could not be built"
  fi
else
  openzfs_fail "not root (the guest needs Debian's packages)"
fi

say "deno task test $*"
status=0
.tools/node_modules/.bin/deno task test "$@" || status=$?
say "exit status $status"
exit "$status"
