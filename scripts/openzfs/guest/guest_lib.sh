# Shared by the OpenZFS guest scripts (corpus.sh, receive.sh); sourced from /in, where vm.sh's
# callers put it.

# zvol_dev BEFORE: the /dev/zdN of a volume that appeared since `ls /sys/block` printed BEFORE
# (there is no udev in the guest to make /dev/zvol links).
zvol_dev() {
  local before="$1" d
  for _ in $(seq 1 100); do
    for d in /sys/block/zd*; do
      [[ -e "$d" ]] || continue
      grep -qx "$(basename "$d")" <<<"$before" && continue
      printf '/dev/%s\n' "$(basename "$d")"
      return 0
    done
    sleep 0.1
  done
  return 1
}

# attrs DIR BASE: every extended attribute under DIR (getfattr's text, hex values; ZFS does not
# list its POSIX ACLs as xattrs) into BASE.xattrs.txt, every ACL beyond the mode bits (getfacl's
# text) into BASE.acls.txt.
attrs() {
  (cd "$1" && getfattr -R -h -d -m - -e hex . 2>/dev/null || true) >"$2.xattrs.txt"
  (cd "$1" && getfacl -R -s -p . 2>/dev/null || true) >"$2.acls.txt"
}
