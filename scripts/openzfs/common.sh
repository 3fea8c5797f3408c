# Shared by the OpenZFS 2.3 scripts: the apt source of bookworm-backports, version look-ups and
# .deb downloads. Sourced, not run.
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPENZFS_CACHE="${ZSEND_OPENZFS_CACHE:-$root_dir/.tools/openzfs}"
mkdir -p "$OPENZFS_CACHE"
OPENZFS_CACHE="$(cd "$OPENZFS_CACHE" && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'openzfs: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# OpenZFS 2.3 is in bookworm-backports, component contrib: an apt source of our own beside
# Debian's (same archive host and keyring), added once, then one `apt-get update`.
openzfs_apt_source() {
  local list=/etc/apt/sources.list.d/zsend-bookworm-backports.sources
  if apt-cache policy zfsutils-linux 2>/dev/null | grep -q 'bookworm-backports/contrib'; then
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "not root: cannot add bookworm-backports to apt's sources"
  local uri
  uri="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)"
  [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
  [[ -n "$uri" ]] || die "cannot tell Debian's archive address from apt's sources"
  cat >"$list" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -q </dev/null >/dev/null
  apt-cache policy zfsutils-linux | grep -q 'bookworm-backports/contrib' ||
    die "bookworm-backports/contrib has no zfsutils-linux"
}

# The 2.3 version the archive serves (one of 2.3.x).
openzfs_version() {
  local v
  v="$(apt-cache madison zfsutils-linux | awk -F'|' '$2 ~ /2\.3\./ {gsub(/ /, "", $2); print $2; exit}')"
  [[ -n "$v" ]] || die "no OpenZFS 2.3 in apt's sources"
  printf '%s\n' "$v"
}

# apt-get download into the current folder, for the packages not already there.
apt_fetch() {
  local need=() p name ver
  for p in "$@"; do
    name="${p%%=*}"
    ver="${p#*=}"
    compgen -G "${name}_${ver//:/%3a}_*.deb" >/dev/null || need+=("$p")
  done
  ((${#need[@]} == 0)) && return 0
  # _apt cannot write into root-owned folders: download as root, quietly.
  apt-get download -q "${need[@]}" </dev/null 2>&1 | grep -v -e unsandboxed -e '^Get:' -e '^Fetched' >&2 || true
  for p in "${need[@]}"; do
    name="${p%%=*}"
    ver="${p#*=}"
    compgen -G "${name}_${ver//:/%3a}_*.deb" >/dev/null || die "apt-get download $p failed"
  done
}
