#!/usr/bin/env bash
# OpenZFS 2.3 userland (zstream, zfs, zpool, zdb) unpacked from Debian bookworm-backports, without
# installing it (zfsutils-linux conflicts with zfs-fuse). Idempotent; prints the unpacked root.
#
#   root="$(bash scripts/openzfs/userland.sh)"
#   LD_LIBRARY_PATH="$root/lib/x86_64-linux-gnu" "$root/sbin/zstream" dump -v FILE
#
# Environment: ZSEND_OPENZFS_CACHE (default <repo>/.tools/openzfs) holds the .debs and the tree.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/openzfs/common.sh
source "$here/common.sh"

openzfs_apt_source
version="$(openzfs_version)"
dest="$OPENZFS_CACHE/userland-$version"
if [[ ! -x "$dest/sbin/zstream" ]]; then
  debs="$OPENZFS_CACHE/debs"
  mkdir -p "$debs"
  pkgs=(zfsutils-linux libzfs6linux libzpool6linux libnvpair3linux libuutil3linux)
  (cd "$debs" && apt_fetch "${pkgs[@]/%/=$version}")
  tmp="$dest.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  for p in "${pkgs[@]}"; do dpkg-deb -x "$debs/${p}_${version//:/%3a}_amd64.deb" "$tmp"; done
  rm -rf "$dest" && mv "$tmp" "$dest"
  say "OpenZFS $version userland unpacked in $dest"
fi
printf '%s\n' "$dest"
