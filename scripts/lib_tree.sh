# The file tree that the fresh-stream scripts make (zfs-fuse's scripts/make_streams.sh and the
# OpenZFS 2.3 guest's scripts/openzfs/guest/corpus.sh), and the manifest of a tree. Sourced, not
# run. Needs SEED (a number) and T (a scratch folder) set, and bash with GNU coreutils/findutils.
#
#   tree_random_source [PRNG_BINARY]   rnd/put/write_at and TEXT (compiles the PRNG without one)
#   tree_fill_a / tree_change_b / tree_change_c   run in the filesystem's root folder
#   manifest DIR OUT                   the tree under DIR in the manifest format

tree_random_source() {
  # rnd TAG N: N bytes that depend only on the seed and TAG (splitmix64), so a run can be repeated.
  PRNG="${1:-$T/prng}"
  if [[ -x "$PRNG" ]] || { command -v cc >/dev/null 2>&1 && cc -O2 -o "$PRNG" -x c - 2>/dev/null; } <<'EOF'; then
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  uint64_t s = 1469598103934665603ULL; /* FNV-1a of "SEED:TAG" */
  for (int a = 1; a <= 2; a++) {
    for (const char *p = argv[a]; *p; p++) { s ^= (unsigned char)*p; s *= 1099511628211ULL; }
    if (a == 1) { s ^= ':'; s *= 1099511628211ULL; }
  }
  unsigned long long n = strtoull(argv[3], 0, 10);
  static unsigned char buf[1 << 16];
  while (n > 0) {
    size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
    for (size_t i = 0; i < k; i += 8) {
      uint64_t v = next(&s);
      for (size_t j = 0; j < 8 && i + j < k; j++) buf[i + j] = (unsigned char)(v >> (8 * j));
    }
    if (fwrite(buf, 1, k, stdout) != k) return 1;
    n -= k;
  }
  return 0;
}
EOF
    RANDOM_SOURCE="splitmix64"
    rnd() { "$PRNG" "$SEED" "$1" "$2"; }
  else
    RANDOM_SOURCE="urandom"
    say "no C compiler: file contents come from /dev/urandom and do not repeat with the seed" >&2
    rnd() { head -c "$2" /dev/urandom; }
  fi
  # put PATH N: a new file of N random bytes.
  put() { rnd "$1" "$2" >"$1"; }
  # write_at PATH OFFSET N TAG: N random bytes at OFFSET, the rest of the file kept.
  write_at() {
    rnd "$4" "$3" | dd of="$1" bs=65536 seek="$2" oflag=seek_bytes iflag=fullblock conv=notrunc \
      status=none
  }
  # Printable text to cut small files from without a process each.
  TEXT="$(rnd text 49152 | od -An -v -tx1 | tr -d ' \n')"

}

# @a: every kind of entry.
tree_fill_a() {
  mkdir many
  for ((i = 1; i <= 3000; i++)); do
    n=$((RANDOM % 1400))
    o=$((RANDOM % 90000))
    printf '%s' "${TEXT:o:n}" >"many/f-$i"
  done

  mkdir sizes
  for n in 0 1 511 512 513 4095 4096 4097 131071 131072 131073 262145; do
    put "sizes/sz-$n" "$n"
  done

  mkdir data
  put data/big1.bin $((2 * 1024 * 1024))
  put data/big2.bin $((2 * 1024 * 1024))
  put data/big3.bin $((512 * 1024 + 12345))
  put data/dup-src.bin $((256 * 1024))
  rnd block 131072 >"$T/block"
  cat "$T/block" "$T/block" "$T/block" "$T/block" >data/repeat.bin # four equal blocks
  head -c 300000 /dev/zero >data/zeros.bin                        # zeros, stored as data

  mkdir sparse
  truncate -s 8M sparse/mid
  write_at sparse/mid $((3 * 1024 * 1024 + 777)) 100000 sparse-mid
  truncate -s 5M sparse/hole-only
  put sparse/ends 1000
  write_at sparse/ends $((6 * 1024 * 1024 - 10)) 10 sparse-ends
  put sparse/tail-hole 200000
  truncate -s 4M sparse/tail-hole

  mkdir names
  long255="$(printf 'n%.0s' {1..255})"
  touch "names/$long255"
  utf255="$(printf 'é%.0s' {1..127})x" # 127 two-byte characters and one: 255 bytes
  printf 'utf8\n' >"names/$utf255"
  printf 'grüße\n' >"names/grüße-κόσμε-日本語-😀"
  printf 'cyr\n' >"names/Привет"
  mkdir "names/dír-ñ"
  printf 'inside\n' >"names/dír-ñ/fïle"
  for name in .hidden ..dots -dash 'q?mark' 'star*' 'back\slash' 'colon:semi;' '#hash' '~tilde' \
    '=eq' "it's" '"dq"' '[br]' '{cb}' '$dollar' '%pct' '&amp' '@at' '+plus' ',comma'; do
    printf '%s\n' "$name" >"names/$name"
  done

  mkdir links
  put links/orig 5000
  ln links/orig links/hl1
  mkdir -p dirs/nested/a/b/c/d/e/f/g/h
  ln links/orig dirs/nested/hl2
  ln -s orig links/short
  ln -s "../data/$(printf 'p%.0s' {1..60})" links/medium
  ln -s "$(printf 'x/../%.0s' {1..50})orig" links/long   # 254 bytes
  ln -s "$(printf 'L%.0s' {1..1000})" links/verylong     # dangling, 1000 bytes
  ln -s /etc/passwd links/absolute                       # outside the tree: never follow
  ln -s ../dirs links/to-dir
  ln -s nowhere links/dangling
  ln -s "grüße-😀" links/utf8-target
  ln -s loop2 links/loop1
  ln -s loop1 links/loop2
  ln -s medium links/chain
  chown -h 1001:2002 links/short

  mkdir modes
  for m in 4755 2755 6755 7777 0000 0777 0755 0644 0600 0200 1644; do
    put "modes/m-$m" 100
    chmod "$m" "modes/m-$m"
  done
  mkdir modes/sticky-dir modes/setgid-dir modes/private-dir modes/open-dir
  chmod 1777 modes/sticky-dir
  chmod 2775 modes/setgid-dir
  chmod 0700 modes/private-dir
  chmod 0777 modes/open-dir
  printf 'x\n' >modes/private-dir/secret

  mkdir owners
  printf 'u\n' >owners/u1001-g2002
  chown 1001:2002 owners/u1001-g2002
  printf 'n\n' >owners/nobody
  chown 65534:65534 owners/nobody
  printf 'g\n' >owners/g2002
  chown 0:2002 owners/g2002
  mkdir owners/dir-1001
  chown 1001:2002 owners/dir-1001
  printf 'in\n' >owners/dir-1001/file
  chown 65534:2002 owners/dir-1001/file

  mkdir times
  printf 'a\n' >times/epoch
  printf 'b\n' >times/negative
  printf 'c\n' >times/old
  printf 'd\n' >times/late
  touch -d '1970-01-01 00:00:00 UTC' times/epoch
  touch -d '1969-07-20 20:17:40 UTC' times/negative
  touch -d '2001-02-03 04:05:06 UTC' times/old
  touch -d '2037-12-31 23:59:59 UTC' times/late

  mkdir -p dirs/empty dirs/nested/a/b/empty
  printf 'deep\n' >dirs/nested/a/b/c/d/e/f/g/h/file
  for i in 1 2 3 4 5; do put "dirs/nested/a/file-$i" $((RANDOM % 3000)); done
  mkdir empty
  : >empty/e1
  : >empty/e2
  : >empty-at-root

  mkdir special
  mkfifo special/fifo
  mknod special/chr c 1 3
  mknod special/blk b 7 0
  chmod 0620 special/chr

}

# @b: changes.
tree_change_b() {
  write_at data/big1.bin $((1024 * 1024 - 5000)) 10000 big1-mid # across a block boundary
  truncate -s 1572881 data/big2.bin
  rnd big3-append 300000 >>data/big3.bin
  cp data/dup-src.bin data/dup-copy.bin # same blocks: WRITE_BYREF in the dedup stream
  put data/new.bin $((1024 * 1024))
  for ((i = 3; i <= 3000; i += 3)); do rm "many/f-$i"; done # mass deletion
  for ((i = 1; i <= 200; i++)); do
    printf '%s' "${TEXT:$((RANDOM % 90000)):$((RANDOM % 700))}" >"many/g-$i"
  done
  printf 'again\n' >>many/f-1

  mv "names/grüße-κόσμε-日本語-😀" dirs/nested/a/renamed-utf8 # across directories
  mv dirs/nested/a/b/c dirs/moved-c                           # a whole subtree
  mv links/hl1 dirs/hl1-moved                                 # a hard link
  mv sizes/sz-1 names/                                        # across, same name
  mv sizes/sz-4097 sizes/sz-511                               # over an existing file
  rm -rf dirs/nested/a/b                                      # a subtree deleted

  chmod 0600 sizes/sz-4096                                    # metadata only
  chown 1001:2002 sizes/sz-512
  touch -d '2010-10-10 10:10:10 UTC' sizes/sz-131072
  chmod 0750 dirs/nested
  chown -h 65534:65534 links/medium
  chmod 4711 modes/m-0755

  ln links/orig links/hl3
  rm dirs/nested/hl2
  rm links/short
  ln -s hl3 links/short                                       # same name, new target
  rm sizes/sz-513
  mkdir sizes/sz-513                                          # file became a directory
  printf 'was a dir\n' >sizes/sz-513/inside
  rm special/fifo
  printf 'was a fifo\n' >special/fifo                         # fifo became a file
  rm -r dirs/empty
  printf 'was an empty dir\n' >dirs/empty                      # directory became a file

  write_at sparse/hole-only $((3 * 1024 * 1024)) 4096 hole-fill # data in the middle of a hole
  truncate -s 64M sparse/ends                                   # a bigger hole
  truncate -s 2M sparse/mid                                     # cuts off its data: all hole

}

# @c: more changes.
tree_change_c() {
  rm -f many/f-*                              # the fat-ZAP directory nearly emptied
  for ((i = 1; i <= 50; i++)); do printf 'h%d\n' "$i" >"many/h-$i"; done
  : >data/big1.bin                            # cut to nothing
  rnd big1-regrow 1000 >>data/big1.bin
  rm data/dup-src.bin
  put sizes/sz-131071 131071                  # rewritten whole, same size
  rnd sz-0-grow 200000 >>sizes/sz-0           # empty file grows to many blocks
  write_at sizes/sz-4095 0 4095 sz-4095-again # one block rewritten
  mv data/big2.bin dirs/big2-moved.bin
  mkdir modes/locked
  printf 'locked\n' >modes/locked/file
  chmod 0000 modes/locked
  rm links/orig                               # the hard link count falls
  touch -d '2001-02-03 04:05:06 UTC' times/late
  chown 1001:2002 times/epoch
  put dirs/moved-c/new-in-moved 70000
  rm -f special/blk
  mknod special/blk2 b 8 1

}

# manifest DIR OUT: the tree under DIR in the format described at the top.
manifest() {
  local dir="$1" out="$2" list="$T/find.list" sums="$T/find.sums"
  (
    cd "$dir"
    find . -mindepth 1 -printf '%y\0%m\0%U\0%G\0%s\0%n\0%Ts\0%l\0%p\0' >"$list"
    find . -mindepth 1 -type f -print0 | xargs -0 -r sha256sum -z >"$sums"
    declare -A sha=()
    local rec y m u g s n t l p
    while IFS= read -r -d '' rec; do sha["${rec#*  }"]="${rec%%  *}"; done <"$sums"
    while IFS= read -r -d '' y && IFS= read -r -d '' m && IFS= read -r -d '' u &&
      IFS= read -r -d '' g && IFS= read -r -d '' s && IFS= read -r -d '' n &&
      IFS= read -r -d '' t && IFS= read -r -d '' l && IFS= read -r -d '' p; do
      case "$y" in
        d) printf '%s d %s %s %s\n' "$p" "$m" "$u" "$g" ;;
        l) printf '%s l %s %s %s -> %s\n' "$p" "$m" "$u" "$g" "$l" ;;
        f) printf '%s f %s %s %s %s %s %s %s\n' "$p" "$m" "$u" "$g" "$s" "$n" "$t" "${sha[$p]}" ;;
        p | s) printf '%s %s %s %s %s\n' "$p" "$y" "$m" "$u" "$g" ;;
        c | b) printf '%s %s %s %s %s %s\n' "$p" "$y" "$m" "$u" "$g" "$(stat -c '%Hr %Lr' -- "$p")" ;;
        *)
          echo "unexpected file type $y at $p" >&2
          exit 1
          ;;
      esac
    done <"$list"
  ) | sort -t ' ' -k1,1 >"$out"
}
