#!/usr/bin/env bash
# Real OpenZFS 2.3 in a QEMU guest: the kernel module cannot load into this machine's kernel, so
# a small VM boots Debian's cloud kernel with OpenZFS 2.3's spl.ko and zfs.ko built from the
# zfs-dkms source, and runs one guest script.
#
#   bash scripts/openzfs/vm.sh build
#       Downloads (apt-get download, never installs) the cloud kernel, its headers and OpenZFS
#       2.3's packages; builds the module; writes the initramfs. Reused from the cache while the
#       versions and the guest's files are the same. Prints the cache folder.
#   bash scripts/openzfs/vm.sh run GUEST_SCRIPT OUTDIR [INPUT...]
#       Boots the guest, runs GUEST_SCRIPT there with bash as `GUEST_SCRIPT /out` in /in (the
#       INPUT files and folders are copied into /in first), and unpacks what the script left in
#       /out into OUTDIR. The guest's console goes to OUTDIR/console.log. Exit status is the
#       script's (or 124 on time-out, 125 when the guest died without saying).
#
# The guest has busybox, bash, coreutils, findutils, tar, attr and acl tools, and OpenZFS's
# zfs, zpool, zdb and zstream. Files move in and out through virtio disks that hold tar
# archives (the cloud kernel has no 9p). Make pools on files in tmpfs (no udev for partitions).
#
# Environment:
#   ZSEND_OPENZFS_CACHE     cache folder (default <repo>/.tools/openzfs)
#   ZSEND_VM_MEMORY         guest memory (default 4G)
#   ZSEND_VM_TIMEOUT        seconds before the guest is killed (default 3600: the corpus takes 6-11 minutes, more on a busy host)
#   ZSEND_VM_OUT_SIZE       size of the output disk (default 8G, sparse)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/openzfs/common.sh
source "$here/common.sh"

host_packages() {
  local missing=() p
  for p in qemu-system-x86:qemu-system-x86_64 busybox-static:busybox cpio:cpio attr:getfattr \
    acl:getfacl make:make gcc:gcc; do
    command -v "${p#*:}" >/dev/null 2>&1 || missing+=("${p%%:*}")
  done
  [[ -e /usr/include/stdio.h ]] || missing+=(libc6-dev)
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" == 0 ]] || die "missing host packages (not root): ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q </dev/null >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    </dev/null >/dev/null
}

# The cloud kernel that apt serves as linux-image-cloud-amd64 (bookworm's own, not backports').
kernel_abi() {
  local v
  v="$(apt-cache depends "linux-image-cloud-amd64=$(kernel_meta_version)" 2>/dev/null |
    sed -n 's/.*Depends: linux-image-\(.*-cloud-amd64\)$/\1/p' | head -n 1)"
  [[ -n "$v" ]] || die "cannot tell which kernel linux-image-cloud-amd64 is"
  printf '%s\n' "$v"
}
kernel_meta_version() {
  apt-cache policy linux-image-cloud-amd64 | awk '/Candidate:/ {print $2; exit}'
}

build_kernel() { # -> $KDIR with boot/vmlinuz-*, lib/modules/*, usr/src/linux-headers-*
  local abi="$1" kver
  KDIR="$OPENZFS_CACHE/kernel-$abi"
  [[ -f "$KDIR/.done" ]] && return 0
  kver="$(apt-cache policy "linux-image-$abi" | awk '/Candidate:/ {print $2; exit}')"
  local debs="$OPENZFS_CACHE/debs"
  mkdir -p "$debs"
  local common="linux-headers-${abi%-cloud-amd64}-common"
  local kbuild
  kbuild="$(apt-cache depends "linux-headers-$abi" | sed -n 's/.*Depends: \(linux-kbuild-.*\)$/\1/p' | head -n 1)"
  (cd "$debs" && apt_fetch "linux-image-$abi=$kver" "linux-headers-$abi=$kver" "$common=$kver" \
    "$kbuild=$kver")
  rm -rf "$KDIR" && mkdir -p "$KDIR"
  local d
  for d in "$debs/linux-image-${abi}_"*.deb "$debs/linux-headers-${abi}_"*.deb \
    "$debs/${common}_"*.deb "$debs/${kbuild}_"*.deb; do
    dpkg-deb -x "$d" "$KDIR"
  done
  # The headers' Makefile includes the common tree by its absolute /usr/src path.
  sed -i "s#/usr/src/#$KDIR/usr/src/#" "$KDIR/usr/src/linux-headers-$abi/Makefile"
  touch "$KDIR/.done"
  say "kernel $abi ($kver) unpacked"
}

build_module() { # -> $MDIR with spl.ko, zfs.ko
  local abi="$1" zver="$2"
  MDIR="$OPENZFS_CACHE/module-${zver}-$abi"
  [[ -f "$MDIR/zfs.ko" && -f "$MDIR/spl.ko" ]] && return 0
  local debs="$OPENZFS_CACHE/debs" src="$OPENZFS_CACHE/zfs-src"
  mkdir -p "$debs"
  (cd "$debs" && apt_fetch "zfs-dkms=$zver")
  rm -rf "$src" && mkdir -p "$src"
  dpkg-deb -x "$debs/zfs-dkms_${zver//:/%3a}_all.deb" "$src"
  local tree
  tree="$(find "$src/usr/src" -maxdepth 1 -name 'zfs-*' -type d | head -n 1)"
  [[ -n "$tree" ]] || die "zfs-dkms has no source tree"
  local hdr="$KDIR/usr/src/linux-headers-$abi" common
  common="$(find "$KDIR/usr/src" -maxdepth 1 -name 'linux-headers-*-common' | head -n 1)"
  say "building spl.ko and zfs.ko for $abi (a few minutes)"
  local started=$SECONDS log="$OPENZFS_CACHE/module-build.log"
  (
    cd "$tree"
    ./configure --with-config=kernel --with-linux="$common" --with-linux-obj="$hdr" >"$log" 2>&1
    make -s -j"$(nproc)" -C module >>"$log" 2>&1
  ) || die "module build failed: see $log"
  mkdir -p "$MDIR.tmp"
  strip --strip-debug -o "$MDIR.tmp/spl.ko" "$tree/module/spl.ko"
  strip --strip-debug -o "$MDIR.tmp/zfs.ko" "$tree/module/zfs.ko"
  rm -rf "$MDIR" && mv "$MDIR.tmp" "$MDIR"
  rm -rf "$src"
  say "module built in $((SECONDS - started))s"
}

# Copies a host program and the shared libraries it needs into the guest root.
copy_with_libs() {
  local root="$1" prog="$2" lib
  install -D -m 755 "$prog" "$root$prog"
  while read -r lib; do
    [[ -e "$root$lib" ]] || install -D -m 755 "$lib" "$root$lib"
  done < <(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
}

GUEST_TOOLS=(bash find xargs sort tar sha256sum stat dd truncate head tail od tr cut wc
  mknod mkfifo chown chmod touch ln mv cp rm mkdir cat date sed grep awk sleep sync
  getfattr setfattr getfacl setfacl seq ls env basename dirname comm diff cmp split sum)

build_initramfs() { # -> $INITRD
  local abi="$1" zver="$2" userland="$3"
  local key
  key="$(cat "$here/vm.sh" "$here/guest/init.sh" | sha256sum | cut -c1-12)"
  INITRD="$OPENZFS_CACHE/initramfs-${zver}-${abi}-$key.cpio.gz"
  [[ -f "$INITRD" ]] && return 0
  local root="$OPENZFS_CACHE/initramfs.tmp"
  rm -rf "$root" && mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,in,out,mnt,modules,etc,root}
  cp /bin/busybox "$root/bin/busybox"
  local t p
  for t in "${GUEST_TOOLS[@]}"; do
    p="$(type -P "$t")" || die "host tool $t not found"
    p="$(readlink -f "$p")"
    copy_with_libs "$root" "$p"
    [[ -e "$root/bin/$t" ]] || ln -s "$p" "$root/bin/$t"
  done
  for t in zfs zpool zdb zstream; do
    install -D -m 755 "$userland/sbin/$t" "$root/sbin/$t"
    while read -r p; do
      [[ -e "$root$p" ]] || install -D -m 755 "$p" "$root$p"
    done < <(LD_LIBRARY_PATH="$userland/lib/x86_64-linux-gnu" ldd "$userland/sbin/$t" |
      grep -o '/[^ ]*' | sort -u | grep -v "^$userland")
  done
  mkdir -p "$root/lib/x86_64-linux-gnu"
  cp -a "$userland/lib/x86_64-linux-gnu/." "$root/lib/x86_64-linux-gnu/"
  # pthread_cancel dlopens libgcc_s: ldd does not list it.
  cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$root/lib/x86_64-linux-gnu/"
  # The dynamic loader where binaries look for it.
  mkdir -p "$root/lib64"
  cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
  local m
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    p="$(find "$KDIR/lib/modules/$abi" -name "$m.ko*" | head -n 1)"
    [[ -n "$p" ]] || die "kernel module $m not found"
    cp "$p" "$root/modules/"
  done
  cp "$MDIR/spl.ko" "$MDIR/zfs.ko" "$root/modules/"
  printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  install -m 755 "$here/guest/init.sh" "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$root"
  say "initramfs $(basename "$INITRD"): $(du -h "$INITRD" | cut -f1)"
}

build_all() {
  host_packages
  openzfs_apt_source
  local zver abi userland
  zver="$(openzfs_version)"
  abi="$(kernel_abi)"
  userland="$(bash "$here/userland.sh")"
  build_kernel "$abi"
  build_module "$abi" "$zver"
  build_initramfs "$abi" "$zver" "$userland"
  VMLINUZ="$KDIR/boot/vmlinuz-$abi"
}

run_guest() {
  local script="$1" out="$2"
  shift 2
  [[ -f "$script" ]] || die "no guest script $script"
  build_all
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/zsend-vm.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  mkdir -p "$work/in"
  cp "$script" "$work/in/guest.sh"
  local f
  for f in "$@"; do cp -a "$f" "$work/in/"; done
  tar -C "$work/in" -cf "$work/in.tar" .
  truncate -s "${ZSEND_VM_OUT_SIZE:-8G}" "$work/out.img"
  local timeout="${ZSEND_VM_TIMEOUT:-3600}" status=0
  local accel="tcg,thread=multi"
  timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
    -accel "$accel" -cpu max -smp "$(nproc)" -m "${ZSEND_VM_MEMORY:-4G}" \
    -nographic -no-reboot -monitor none -serial "file:$out/console.log" \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" \
    -drive "file=$work/in.tar,if=virtio,format=raw,readonly=on" \
    -drive "file=$work/out.img,if=virtio,format=raw" </dev/null >/dev/null 2>&1 || status=$?
  if ((status == 124)); then
    say "the guest ran out of time (${timeout}s): see $out/console.log"
    return 124
  fi
  tar -C "$out" -xf "$work/out.img" 2>/dev/null || true
  if [[ ! -f "$out/.status" ]]; then
    say "the guest ended without a status: see $out/console.log"
    tail -n 30 "$out/console.log" >&2 || true
    return 125
  fi
  status="$(cat "$out/.status")"
  rm -f "$out/.status"
  return "$status"
}

case "${1:-}" in
  build)
    build_all
    printf '%s\n' "$OPENZFS_CACHE"
    ;;
  run)
    shift
    [[ $# -ge 2 ]] || die "usage: vm.sh run GUEST_SCRIPT OUTDIR [INPUT...]"
    run_guest "$@"
    ;;
  *) die "usage: vm.sh build | vm.sh run GUEST_SCRIPT OUTDIR [INPUT...]" ;;
esac
