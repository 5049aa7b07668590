#!/usr/bin/env bash
# accel-index's file map, end to end.  A source tree of awkward files
# (deep directories, empty and sparse files, a file whose extent tree
# has an index node, hard links, 255-byte and non-ASCII names, a
# directory of 3000 files, files larger than a chunk, a symlink and a
# fifo) is made into ext4 (4 KiB and 1 KiB blocks), ext3 (block maps
# with indirect blocks), ext2, squashfs images (uncompressed, 4 KiB
# blocks, compressed, with fragments) and erofs images (tail-packed,
# whole blocks, extended inodes, chunk-based with block addresses and
# with chunk indexes, compressed), plus ext4 with inline data and ext4
# with uninitialized extents.  Each is indexed, and
# tests/helpers/filemap-check rebuilds EVERY regular file of the source
# from the image using only the manifest's extents (through the real
# reader: manifest_open, manifest_file_extents, manifest_foreach_file)
# and compares it byte for byte, holes as zeros; sizes, modes and the
# number of rows are checked too (for erofs also against the image as
# the kernel mounts it, when root).  For compressed squashfs and erofs
# only the extents that exist are checked, and compressible files must
# have none.
# Then damaged images: truncated to half, bytes flipped in superblocks,
# inodes, directory and block map blocks, a directory loop, a repeated
# name, and random flips in the metadata; accel-index must exit 1 with a
# one-line message (or 0 with a manifest the reader accepts), never
# crash or hang.  One damaged image of each kind also runs under
# valgrind.
. "$(dirname "$0")/lib/functions.sh"
requires mke2fs; requires debugfs; requires dumpe2fs; requires mksquashfs
requires mkfs.erofs; requires dump.erofs
requires sqlite3; requires timeout; requires od
idx="$top/indexer/accel-index"
check="$top/tests/helpers/filemap-check"
[ -x "$idx" ] || fail "$idx is not built"
[ -x "$check" ] || fail "$check is not built"
make_tmpdir
src="$tmp/src"

# build_tree DIR: the awkward files.
build_tree () {
  local d=$1 i p
  # 40 levels of directories, a file at the bottom.
  p="$d"
  for i in $(seq 40); do p="$p/d$i"; done
  mkdir -p "$p" "$d/empty-dir"
  echo "at the bottom" > "$p/deep.txt"
  : > "$d/empty"
  : > "$d/d1/d2/empty"
  # Sparse: a few bytes in the middle of a hole; data at both ends;
  # 100 islands of data (more extents than fit in an ext4 inode).
  truncate -s 5M "$d/sparse.bin"
  printf 'middle' | dd of="$d/sparse.bin" bs=1 seek=3000000 conv=notrunc \
    status=none
  truncate -s 3M "$d/ends.bin"
  head -c 5000 /dev/urandom | dd of="$d/ends.bin" conv=notrunc status=none
  printf 'the end' | dd of="$d/ends.bin" bs=1 seek=$((3 * 1048576 - 7)) \
    conv=notrunc status=none
  truncate -s 20M "$d/islands.bin"
  for i in $(seq 0 99); do
    head -c 3000 /dev/urandom |
      dd of="$d/islands.bin" bs=1 seek=$((i * 200000)) conv=notrunc status=none
  done
  # Larger than a chunk: random, and compressible text.
  head -c 3000000 /dev/urandom > "$d/big.bin"
  seq 1 400000 > "$d/numbers.txt"
  # Hard links: two paths and three paths, across directories.
  ln "$d/big.bin" "$d/d1/big-link.bin"
  ln "$d/numbers.txt" "$d/d1/d2/n1"
  ln "$d/numbers.txt" "$d/n2"
  # Long and non-ASCII names (255 bytes is the ext4 limit).
  echo long > "$d/$(printf 'L%.0s' $(seq 255))"
  echo long-utf8 > "$d/$(printf 'é%.0s' $(seq 127))x"
  mkdir "$d/ünïcødé dir"
  echo "名前" > "$d/ünïcødé dir/ファイル.txt"
  echo smile > "$d/😀.txt"
  echo odd > "$d/new
line -and 'quotes'"
  # Many small files: a directory of many blocks (htree in ext4).
  mkdir "$d/many"
  for i in $(seq 3000); do echo "file $i" > "$d/many/f-$i.txt"; done
  # Modes.
  echo '#!/bin/sh' > "$d/run.sh"
  chmod 0755 "$d/run.sh"
  echo secret > "$d/secret"
  chmod 0600 "$d/secret"
  # Not regular files: no rows.
  ln -s big.bin "$d/symlink"
  mkfifo "$d/fifo"
}
build_tree "$src"
nr_src=$(find "$src" -type f -printf x | wc -c)
echo "source tree: $nr_src regular files"

# index IMAGE: accel-index into IMAGE.m, summary kept in IMAGE.err.
index () {
  timeout 120 "$idx" "$1" -o "$1.m" 2> "$1.err" ||
    fail "accel-index $1: $(cat "$1.err")"
  grep -q '^accel-index: file map: ' "$1.err" ||
    fail "$1: no file map summary: $(cat "$1.err")"
}

# check_exact IMAGE [SRC]: every source file rebuilt exactly from its
# extents.
check_exact () {
  local out
  out=$("$check" "$1.m" "$1" "${2:-$src}") || fail "filemap-check $1: $out"
  echo "ok: $(basename "$1"): $out"
  [[ $out == "files $nr_src, rows $nr_src, "*", missing 0, "* ]] ||
    fail "$1: expected $nr_src rows and none missing: $out"
  grep -q "file map: $nr_src files, .* 0 bytes not mapped, 0 files left out" \
    "$1.err" || fail "$1: summary: $(cat "$1.err")"
}

# extents_of MANIFEST PATH: the extents of PATH as one line.
extents_of () {
  sqlite3 "$1" "SELECT group_concat (e.file_offset || ':' || e.image_offset
                || ':' || e.length, ' ') FROM extents e JOIN files f
                ON f.id = e.file_id WHERE f.path = '$2'"
}

# 1. Images that map completely.
mk_ext () {
  local img="$tmp/$1.img"; shift
  mke2fs -q -F "$@" -d "$src" "$img" 48M > "$tmp/mke2fs.log" 2>&1 ||
    fail "mke2fs $*: $(cat "$tmp/mke2fs.log")"
}
mk_ext ext4-4k -t ext4 -b 4096
mk_ext ext4-1k -t ext4 -b 1024
mk_ext ext3-1k -t ext3 -b 1024
mk_ext ext2-4k -t ext2 -b 4096
mksquashfs "$src" "$tmp/sq.img" -noappend -noD -no-fragments -quiet \
  > /dev/null || fail "mksquashfs"
mksquashfs "$src" "$tmp/sq-4k.img" -noappend -noD -no-fragments -b 4096 \
  -quiet > /dev/null || fail "mksquashfs -b 4096"
mksquashfs "$src" "$tmp/sq-noi.img" -noappend -noI -noD -no-fragments \
  -quiet > /dev/null || fail "mksquashfs -noI"
for i in ext4-4k ext4-1k ext3-1k ext2-4k sq sq-4k sq-noi; do
  index "$tmp/$i.img"
  check_exact "$tmp/$i.img"
done

# erofs: tail-packed inline data (mkfs.erofs's default), whole blocks
# (-E noinline_data, as accel-mkimage makes it), extended inodes, and
# chunk-based files with 4-byte block addresses (4 KiB chunks, each
# distinct chunk stored once) and with 8-byte chunk indexes.  NB:
# mkfs.erofs 1.5 fails on names of 255 bytes: its tree has them cut to
# 254.
erosrc="$tmp/erosrc"
cp -a "$src" "$erosrc"
mv "$erosrc/$(printf 'L%.0s' $(seq 255))" "$erosrc/$(printf 'L%.0s' $(seq 254))"
mv "$erosrc/$(printf 'é%.0s' $(seq 127))x" "$erosrc/$(printf 'é%.0s' $(seq 127))"
mk_erofs () {
  local img="$tmp/$1.img"; shift
  mkfs.erofs --quiet --all-root "$@" "$img" "$erosrc" > "$tmp/mkfs.log" 2>&1 ||
    fail "mkfs.erofs $*: $(cat "$tmp/mkfs.log")"
}
mk_erofs ero
mk_erofs ero-plain -E noinline_data
mk_erofs ero-ext -E force-inode-extended
mk_erofs ero-chunk --chunksize=4096
mk_erofs ero-index --chunksize=65536 -E force-chunk-indexes
for i in ero ero-plain ero-ext ero-chunk ero-index; do
  index "$tmp/$i.img"
  check_exact "$tmp/$i.img" "$erosrc"
done

# The index node really is there, and ext3 really uses indirect blocks.
debugfs -R "ex /islands.bin" "$tmp/ext4-4k.img" 2>/dev/null |
  grep -q '^ 0/ 1 ' || fail "islands.bin has no extent index node"
debugfs -R "stat /big.bin" "$tmp/ext3-1k.img" 2>/dev/null |
  grep -q '(DIND):' || fail "big.bin on ext3 has no double indirect block"
# The erofs images use the layouts they are named for (dump.erofs:
# 2 flat inline, 0 flat plain, 4 chunk based; 64-byte inodes).
ero_field () {
  dump.erofs --path="$3" "$tmp/$1.img" | sed -n "s/.*$2: *\([0-9]*\).*/\1/p"
}
[ "$(ero_field ero Layout /big.bin)" = 2 ] &&
  [ "$(ero_field ero-plain Layout /big.bin)" = 0 ] &&
  [ "$(ero_field ero-chunk Layout /big.bin)" = 4 ] &&
  [ "$(ero_field ero-index Layout /big.bin)" = 4 ] &&
  [ "$(ero_field ero-ext 'Inode size' /big.bin)" = 64 ] ||
  fail "an erofs image does not have the layout it is named for"
# Chunk-based: identical chunks (here, zeros) are one chunk of the image.
[ "$(sqlite3 "$tmp/ero-chunk.img.m" "SELECT count (*) >
     count (DISTINCT image_offset) FROM extents")" = 1 ] ||
  fail "ero-chunk: no two extents share their image bytes"
# Hard links have the same extents; a sparse file maps only its data
# block.
for i in ext4-4k ext3-1k sq ero ero-chunk; do
  m="$tmp/$i.img.m"
  [ "$(extents_of "$m" /big.bin)" = "$(extents_of "$m" /d1/big-link.bin)" ] &&
    [ "$(extents_of "$m" /numbers.txt)" = "$(extents_of "$m" /d1/d2/n1)" ] ||
    fail "$i: hard links have different extents"
done
[ "$(sqlite3 "$tmp/ext4-4k.img.m" "SELECT sum (e.length) FROM extents e
     JOIN files f ON f.id = e.file_id WHERE f.path = '/sparse.bin'")" = 4096 ] ||
  fail "sparse.bin should map only the block with its 6 bytes of data"
# Byte-identical when run again.
"$idx" "$tmp/ext4-1k.img" -o "$tmp/again.m" 2>/dev/null || fail "rerun"
cmp "$tmp/ext4-1k.img.m" "$tmp/again.m" || fail "a rerun differs"

# The erofs maps against the files as the kernel reads them.
if [ "$(id -u)" = 0 ] && [ -e /proc/filesystems ] &&
   grep -qw erofs /proc/filesystems && losetup -f > /dev/null 2>&1; then
  for i in ero ero-chunk; do
    mnt="$tmp/mnt-$i"
    mkdir "$mnt"
    dev=$(losetup -f --show -r "$tmp/$i.img") || fail "losetup $i"
    on_exit "loop_detach_file '$tmp/$i.img'"
    mount -t erofs -o ro "$dev" "$mnt" || fail "mount $i"
    on_exit "umount '$mnt'"
    out=$("$check" "$tmp/$i.img.m" "$tmp/$i.img" "$mnt") ||
      fail "filemap-check $i against the mount: $out"
    [[ $out == "files $nr_src, rows $nr_src, "*", missing 0, "* ]] ||
      fail "$i mounted: expected $nr_src rows and none missing: $out"
    echo "ok: $i, mounted: $out"
    umount "$mnt" && losetup -d "$dev" || fail "umount $i"
  done
else
  echo "skipped the erofs mounts: needs root, erofs and a free loop device"
fi

# 2. Compressed squashfs: only stored blocks map; text compresses.
mksquashfs "$src" "$tmp/sq-comp.img" -noappend -quiet > /dev/null ||
  fail "mksquashfs (compressed)"
mksquashfs "$src" "$tmp/sq-frag.img" -noappend -noD -quiet > /dev/null ||
  fail "mksquashfs -noD"
for i in sq-comp sq-frag; do
  img="$tmp/$i.img"
  index "$img"
  out=$("$check" "$img.m" "$img" "$src" --partial) ||
    fail "filemap-check $i: $out"
  echo "ok: $i: $out"
  [[ $out == "files $nr_src, rows $nr_src, "*", missing 0, "* ]] ||
    fail "$i: expected $nr_src rows: $out"
  grep -q 'note: compressed blocks and fragments cannot be mapped' \
    "$img.err" || fail "$i: no note about unmapped data"
  # Files smaller than a block live in fragments: no extents.
  [ -z "$(extents_of "$img.m" /many/f-1.txt)" ] ||
    fail "$i: a fragment got an extent"
done
[ -z "$(extents_of "$tmp/sq-comp.img.m" /numbers.txt)" ] ||
  fail "sq-comp: compressed text got extents"
[ -n "$(extents_of "$tmp/sq-comp.img.m" /big.bin)" ] ||
  fail "sq-comp: random data (stored uncompressed) got no extents"
# Compressed erofs: compressed files are unmapped, files that do not
# compress (random data) are stored, and mapped, as they are.
mk_erofs ero-comp -zlz4hc
img="$tmp/ero-comp.img"
index "$img"
out=$("$check" "$img.m" "$img" "$erosrc" --partial) ||
  fail "filemap-check ero-comp: $out"
echo "ok: ero-comp: $out"
[[ $out == "files $nr_src, rows $nr_src, "*", missing 0, "* ]] ||
  fail "ero-comp: expected $nr_src rows: $out"
grep -q 'note: compressed files cannot be mapped' "$img.err" ||
  fail "ero-comp: no note about unmapped data"
[ -z "$(extents_of "$img.m" /numbers.txt)" ] ||
  fail "ero-comp: compressed text got extents"
[ -n "$(extents_of "$img.m" /big.bin)" ] ||
  fail "ero-comp: random data (stored uncompressed) got no extents"

# 3. ext4 inline data: small files live in their inode (i_block and a
#    system.data attribute after it) and are mapped there, for 256-byte
#    inodes (up to 128 bytes inline) and 1 KiB ones (up to 896, as
#    accel-mkimage makes them), with sizes on both sides of each edge.
#    NB: no sparse files here (mke2fs -d with inline_data drops their
#    trailing holes, e2fsprogs 1.47.0).
mkdir "$tmp/small"
cp -a "$src/big.bin" "$src/many" "$src/ünïcødé dir" "$tmp/small/"
for n in 1 59 60 61 127 128 129 500 895 896 897; do
  head -c "$n" /dev/urandom > "$tmp/small/edge-$n"
done
for isize in 256 1024; do
  img=$tmp/inline-$isize.img
  mke2fs -q -F -t ext4 -b 4096 -I "$isize" -O inline_data -d "$tmp/small" "$img" 48M \
    > /dev/null 2>&1 || fail "mke2fs -O inline_data -I $isize"
  index "$img"
  out=$("$check" "$img.m" "$img" "$tmp/small") ||
    fail "filemap-check inline ($isize-byte inodes): $out"
  echo "ok: inline, $isize-byte inodes: $out"
  # The edges really are inline (debugfs: "Size of inline data").
  for n in 60 61 $(( isize == 256 ? 128 : 896 )); do
    debugfs -R "stat /edge-$n" "$img" 2>/dev/null | grep -q "inline data" ||
      fail "inline: /edge-$n is not inline in $img"
  done
  # An inline file's bytes past i_block are in the inode table, not at
  # a block boundary.
  ext=$(extents_of "$img.m" /edge-61 | awk '{ print $NF }')
  [ -n "$ext" ] && [ $(( $(cut -d: -f2 <<< "$ext") % 4096 )) -ne 0 ] ||
    fail "inline: /edge-61's extents ($ext) are not inside its inode"
done
grep -q " 0 files left out" "$tmp/inline-1024.img.err" ||
  fail "inline: files left out: $(cat "$tmp/inline-1024.img.err")"
# A damaged inline file: its system.data attribute says a size the
# file's does not leave (the value size of the only in-inode attribute
# of /edge-500).  No metadata_csum: the checksum would catch it first.
mke2fs -q -F -t ext4 -b 4096 -I 1024 -O inline_data,^metadata_csum -d "$tmp/small" \
  "$tmp/inline-bad.img" 48M > /dev/null 2>&1 ||
  fail "mke2fs -O inline_data,^metadata_csum"
ino=$(debugfs -R "stat /edge-500" "$tmp/inline-bad.img" 2>/dev/null |
        sed -n 's/^Inode: \([0-9]*\).*/\1/p')
[ -n "$ino" ] || fail "inline: no inode for /edge-500"
ipg=$(dumpe2fs -h "$tmp/inline-bad.img" 2>/dev/null |
        sed -n 's/^Inodes per group: *//p')
table=$(dumpe2fs "$tmp/inline-bad.img" 2>/dev/null |
          sed -n "/^Group $(( (ino - 1) / ipg )):/,/Inode table/s/.*Inode table at \([0-9]*\)-.*/\1/p")
[ -n "$table" ] || fail "inline: no inode table found for inode $ino"
at=$(( table * 4096 + (ino - 1) % ipg * 1024 ))
# 128 + i_extra_isize (32) + magic (4): the first entry; its value size
# at +8.
printf '\x10\x00\x00\x00' |
  dd of="$tmp/inline-bad.img" bs=1 seek=$(( at + 164 + 8 )) conv=notrunc \
     status=none
if timeout 120 "$idx" "$tmp/inline-bad.img" -o "$tmp/inline-bad.img.m" \
     2> "$tmp/inline-bad.err"; then
  fail "accel-index accepted an inline file whose attribute is too short"
fi
grep -q "inline data of 500 bytes without an attribute" "$tmp/inline-bad.err" ||
  fail "inline, damaged: $(cat "$tmp/inline-bad.err")"
echo "ok: inline, damaged attribute: $(tail -n 1 "$tmp/inline-bad.err")"

# 4. Uninitialized extents read as zeros: no extents.
mkdir "$tmp/zero"
truncate -s 1M "$tmp/zero/prealloc.bin"
mke2fs -q -F -t ext4 -d "$tmp/zero" "$tmp/uninit.img" 16M > /dev/null 2>&1 ||
  fail "mke2fs (uninit)"
debugfs -w -R "fallocate /prealloc.bin 0 255" "$tmp/uninit.img" 2>/dev/null
debugfs -R "ex /prealloc.bin" "$tmp/uninit.img" 2>/dev/null | grep -q Uninit ||
  fail "debugfs fallocate made no uninitialized extent"
index "$tmp/uninit.img"
out=$("$check" "$tmp/uninit.img.m" "$tmp/uninit.img" "$tmp/zero") ||
  fail "filemap-check uninit: $out"
[ -z "$(extents_of "$tmp/uninit.img.m" /prealloc.bin)" ] ||
  fail "an uninitialized extent was mapped"
echo "ok: uninit: $out"

# 5. Damaged images.  expect_bad IMAGE REGEX: exit 1, one line on
# stderr matching REGEX, nothing left behind.
expect_bad () {
  local rc
  timeout 60 "$idx" "$1" -o "$tmp/bad.m" > /dev/null 2> "$tmp/bad.err"
  rc=$?
  [ $rc = 1 ] || fail "$1: exit $rc, wanted 1: $(cat "$tmp/bad.err")"
  [ "$(wc -l < "$tmp/bad.err")" = 1 ] && grep -Eq "^accel-index: .*$2" \
    "$tmp/bad.err" || fail "$1: stderr lacks '$2': $(cat "$tmp/bad.err")"
  [ ! -e "$tmp/bad.m" ] && [ ! -e "$tmp/bad.m.tmp" ] ||
    fail "$1: a failed run left a manifest"
  echo "ok: refused: $(cat "$tmp/bad.err")"
}
# poke IMAGE OFFSET HEX...: write bytes.
poke () {
  local img=$1 off=$2 b
  shift 2
  for b in "$@"; do
    printf "\\x$b" | dd of="$img" bs=1 seek="$off" conv=notrunc status=none
    off=$((off + 1))
  done
}
# copy NAME FROM: a scratch copy of an image.
copy () { cp "$tmp/$2.img" "$tmp/$1.img"; }

for i in ero ero-chunk ext4-4k ext3-1k sq sq-comp; do
  copy half "$i"
  truncate -s $(( $(stat -c %s "$tmp/half.img") / 2 )) "$tmp/half.img"
  expect_bad "$tmp/half.img" "larger than the image .*truncated image"
done

# ext4 with metadata checksums: superblock, root inode, a directory
# block, an extent tree block, an extent tree shared by two files.
copy bad ext4-4k
poke "$tmp/bad.img" $((1024 + 4)) 01
expect_bad "$tmp/bad.img" "cannot open the file system: Superblock checksum"
itable=$(dumpe2fs "$tmp/ext4-4k.img" 2>/dev/null |
  sed -n 's/^ *Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
isize=$(dumpe2fs -h "$tmp/ext4-4k.img" 2>/dev/null |
  sed -n 's/^Inode size: *//p')
copy bad ext4-4k
poke "$tmp/bad.img" $((itable * 4096 + isize + 40)) ff ff
expect_bad "$tmp/bad.img" "root directory: Inode checksum does not match"
dblk=$(debugfs -R "blocks /many" "$tmp/ext4-4k.img" 2>/dev/null |
  cut -d' ' -f2)
copy bad ext4-4k
poke "$tmp/bad.img" $((dblk * 4096 + 100)) 5a 5a
expect_bad "$tmp/bad.img" "/many: reading the directory: .*checksum"
etb=$(debugfs -R "ex /islands.bin" "$tmp/ext4-4k.img" 2>/dev/null |
  awk '$1 == "0/" { print $8; exit }')
copy bad ext4-4k
poke "$tmp/bad.img" $((etb * 4096 + 20)) 77
expect_bad "$tmp/bad.img" "/islands.bin: extent tree: .*checksum"
valgrind_bad_ext4="$tmp/valgrind-ext4.img"
cp "$tmp/bad.img" "$valgrind_bad_ext4"
# Two files sharing one extent tree (the tree block is claimed twice).
copy bad ext4-4k
debugfs -w -R "copy_inode /islands.bin /secret" "$tmp/bad.img" 2>/dev/null
expect_bad "$tmp/bad.img" "/secret: block map block [0-9]+ is used twice"

# ext3 (no checksums): a directory entry's rec_len, an indirect block
# pointing outside, indirect blocks shared by two files, a directory
# loop, a name repeated in a directory.
dblk=$(debugfs -R "blocks /many" "$tmp/ext3-1k.img" 2>/dev/null |
  cut -d' ' -f3)
copy bad ext3-1k
poke "$tmp/bad.img" $((dblk * 1024 + 4)) 03 00
expect_bad "$tmp/bad.img" "/many: reading the directory: .*corrupted"
ind=$(debugfs -R "stat /big.bin" "$tmp/ext3-1k.img" 2>/dev/null |
  grep -o '(IND):[0-9]*' | head -n 1 | cut -d: -f2)
copy bad ext3-1k
poke "$tmp/bad.img" $((ind * 1024 + 8)) ff ff ff 0f
expect_bad "$tmp/bad.img" "/big.bin: block .* outside the file system"
copy bad ext3-1k
debugfs -w -R "copy_inode /big.bin /secret" "$tmp/bad.img" 2>/dev/null
expect_bad "$tmp/bad.img" "/secret: block map block [0-9]+ is used twice"
copy bad ext3-1k
debugfs -w -R "link /d1 /d1/d2/d3/loop" "$tmp/bad.img" 2>/dev/null
expect_bad "$tmp/bad.img" "/d1/d2/d3/loop: directory inode [0-9]+ is reached twice"
copy bad ext3-1k
debugfs -w -R "link /run.sh /d1/d2/empty-x" "$tmp/bad.img" 2>/dev/null
python3 - "$tmp/bad.img" <<'EOF' || fail "could not repeat a name"
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'empty-x')
assert i > 0 and d.count(b'empty-x') == 1
d[i:i + 7] = b'empty\0\0'
d[i - 2] = 5  # name_len
open(sys.argv[1], 'wb').write(d)
EOF
expect_bad "$tmp/bad.img" "writing file /d1/d2/empty: UNIQUE constraint failed"

# squashfs: superblock fields, a metadata block of the inode table and
# of the directory table.
sb () { od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }
copy bad sq
poke "$tmp/bad.img" 47 01
expect_bad "$tmp/bad.img" "squashfs: the file system .* is larger than the image"
copy bad sq
poke "$tmp/bad.img" 22 0c
expect_bad "$tmp/bad.img" "squashfs: bad block size"
copy bad sq
poke "$tmp/bad.img" 72 00 00 00 00
expect_bad "$tmp/bad.img" "squashfs: the superblock's tables are out of order"
copy bad sq
poke "$tmp/bad.img" $(( $(sb "$tmp/sq.img" 64) + 10 )) 00 00 00 00 00 00
expect_bad "$tmp/bad.img" "squashfs: .*cannot read or decompress the metadata block"
copy bad sq
poke "$tmp/bad.img" $(( $(sb "$tmp/sq.img" 72) + 10 )) 00 00 00 00 00 00
expect_bad "$tmp/bad.img" "squashfs: .*cannot read or decompress the metadata block"
valgrind_bad_sq="$tmp/valgrind-sq.img"
cp "$tmp/bad.img" "$valgrind_bad_sq"
# A directory loop: in the uncompressed directory table of sq-noi, make
# the entry d3 of /d1/d2 point to the inode of /d1/d2 itself.
copy bad sq-noi
python3 - "$tmp/bad.img" <<'EOF' || fail "could not make a squashfs loop"
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
dt = struct.unpack_from('<Q', d, 72)[0]
# An entry: offset, inode number delta, type (1: directory), size - 1, name.
d2 = d.find(b'\x01\x00\x01\x00d2', dt)
d3 = d.find(b'\x01\x00\x01\x00d3', dt)
assert d2 > 0 and d3 > 0
d[d3 - 4:d3 - 2] = d[d2 - 4:d2 - 2]
open(sys.argv[1], 'wb').write(d)
EOF
expect_bad "$tmp/bad.img" "squashfs: /d1/d2/d3: the directory at inode reference 0x[0-9a-f]+ is reached twice"

# erofs: the superblock (its checksum; with the checksum feature turned
# off, the block size and an unknown incompatible feature), a directory
# entry pointing outside the image, a directory loop, data blocks and a
# chunk outside the file system.  Inodes are at 32 * NID (the metadata
# starts at block 0 in these images).  NB: the superblock's checksum
# covers the rest of block 0, where the first inodes are: it is turned
# off (copy_nocsum) before they are changed.
sbx () { od -An -t u1 -j $((1024 + $2)) -N 1 "$1" | tr -d ' '; }
copy_nocsum () {
  copy bad "$1"
  poke "$tmp/bad.img" $((1024 + 8)) \
    "$(printf %02x $(($(sbx "$tmp/$1.img" 8) & ~1)))"
}
dump.erofs -s "$tmp/ero.img" | grep -q 'inode metadata start block: *0$' ||
  fail "ero: the metadata does not start at block 0"
nid () { ero_field "$1" NID "$2"; }
# ero_dirent IMAGE DIR NAME NID: point DIR's entry NAME at inode NID.
ero_dirent () {
  python3 - "$@" <<'EOF2' || fail "could not change the entry $3 of $2"
import re, struct, subprocess, sys
img, d, name, nid = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
out = subprocess.run(["dump.erofs", "--path=" + d, "-e", img],
                     capture_output=True, text=True, check=True).stdout
data = bytearray(open(img, "rb").read())
for start, end in re.findall(r":\s+(\d+)\.\.\s+(\d+)\s+\|\s+\d+\s*$", out, re.M):
    start, end = int(start), int(end)
    blk = data[start:end]
    n = struct.unpack_from("<H", blk, 8)[0] // 12
    for i in range(n):
        a = struct.unpack_from("<H", blk, 12 * i + 8)[0]
        b = struct.unpack_from("<H", blk, 12 * i + 20)[0] if i + 1 < n else len(blk)
        if bytes(blk[a:b]).rstrip(b"\0") == name:
            struct.pack_into("<Q", data, start + 12 * i, nid)
            open(img, "wb").write(data)
            sys.exit(0)
sys.exit("not found")
EOF2
}
copy bad ero
poke "$tmp/bad.img" $((1024 + 40)) 01
expect_bad "$tmp/bad.img" "erofs: superblock checksum does not match"
copy_nocsum ero
cp "$tmp/bad.img" "$tmp/ero-nocsum.img"
"$idx" "$tmp/bad.img" -o "$tmp/bad.m" 2> "$tmp/bad.err" ||
  fail "checksum turned off: $(cat "$tmp/bad.err")"
rm "$tmp/bad.m"
poke "$tmp/bad.img" $((1024 + 12)) 20
expect_bad "$tmp/bad.img" "erofs: unsupported block size 2\\^32"
cp "$tmp/ero-nocsum.img" "$tmp/bad.img"
poke "$tmp/bad.img" $((1024 + 80)) 80
expect_bad "$tmp/bad.img" "erofs: unsupported incompatible features 0x80"
copy_nocsum ero
ero_dirent "$tmp/bad.img" / secret $((1 << 40))
expect_bad "$tmp/bad.img" "erofs: /secret: inode number 1099511627776 points outside the image"
valgrind_bad_ero="$tmp/valgrind-ero.img"
cp "$tmp/bad.img" "$valgrind_bad_ero"
copy_nocsum ero
ero_dirent "$tmp/bad.img" /d1/d2 d3 "$(nid ero /d1/d2)"
expect_bad "$tmp/bad.img" "erofs: /d1/d2/d3: the directory at inode [0-9]+ is reached twice"
copy_nocsum ero-plain
poke "$tmp/bad.img" $(($(nid ero-plain /big.bin) * 32 + 16)) ff ff ff 7f
expect_bad "$tmp/bad.img" "erofs: /big.bin: 733 data blocks at block 2147483647 lie outside the file system"
copy_nocsum ero-chunk
# The chunk array follows the inode (no xattrs here).
poke "$tmp/bad.img" $(($(nid ero-chunk /big.bin) * 32 + \
  $(ero_field ero-chunk 'Inode size' /big.bin) + 4 * 5)) 00 00 00 7f
expect_bad "$tmp/bad.img" "erofs: /big.bin: chunk 5 at block 2130706432 lies outside the file system"
# A damaged magic is no longer erofs: a raw image, without a file map.
copy bad ero
poke "$tmp/bad.img" 1024 00
"$idx" "$tmp/bad.img" -o "$tmp/bad.m" 2> "$tmp/bad.err" ||
  fail "no erofs magic: $(cat "$tmp/bad.err")"
[ "$(sqlite3 "$tmp/bad.m" "SELECT value FROM meta WHERE key = 'fs_type'")" = raw ] ||
  fail "an image without the erofs magic is not raw"
rm -f "$tmp/bad.m"
echo "ok: without its magic, an erofs image is indexed as raw"

# Random flips of 1 to 8 bytes in the metadata: exit 0 with a manifest
# the reader accepts, or exit 1 with one line; never a crash or a hang.
# A few dozen runs per image: each run indexes (hashes) the whole
# image, and the libFuzzer targets of `make fuzz` (tests/fuzz/
# fuzz-index-*.c) search the same parsers far deeper.
# fuzz IMAGE RUNS LO:HI...: each flip lands in one of the byte ranges.
fuzz () {
  local img=$1 runs=$2 i j r off rc refused=0
  shift 2
  local ranges=("$@")
  cp "$img" "$tmp/fuzz.img"
  for i in $(seq "$runs"); do
    local offs=()
    for j in $(seq $((1 + RANDOM % 8))); do
      r=${ranges[RANDOM % ${#ranges[@]}]}
      off=$(( ${r%:*} + ((RANDOM << 15) | RANDOM) % (${r#*:} - ${r%:*}) ))
      offs+=("$off")
      poke "$tmp/fuzz.img" "$off" "$(printf %02x $((RANDOM % 256)))"
    done
    timeout 60 "$idx" "$tmp/fuzz.img" -o "$tmp/fuzz.m" > /dev/null \
      2> "$tmp/fuzz.err"
    rc=$?
    case $rc in
    0) "$check" "$tmp/fuzz.m" "$tmp/fuzz.img" --open-only > /dev/null \
         2> "$tmp/check.err" ||
         fail "$img flipped at ${offs[*]}: manifest refused: $(cat "$tmp/check.err")" ;;
    1) refused=$((refused + 1))
       [ "$(wc -l < "$tmp/fuzz.err")" = 1 ] &&
         grep -q '^accel-index: ' "$tmp/fuzz.err" ||
         fail "$img flipped at ${offs[*]}: stderr: $(cat "$tmp/fuzz.err")" ;;
    *) cp "$tmp/fuzz.img" "/tmp/accel-filemap-crash.img"
       fail "$img flipped at ${offs[*]}: exit $rc (image kept in /tmp/accel-filemap-crash.img): $(cat "$tmp/fuzz.err")" ;;
    esac
    # Undo the flips.
    for off in "${offs[@]}"; do
      dd if="$img" of="$tmp/fuzz.img" bs=1 skip="$off" seek="$off" count=1 \
        conv=notrunc status=none
    done
  done
  echo "ok: $(basename "$img"): $runs runs flipping bytes in $*: $refused refused"
}
# dir_ranges IMAGE BLOCKSIZE PATH...: the byte ranges of (up to 8 of)
# the blocks of each directory.
dir_ranges () {
  local img=$1 bs=$2 b p
  shift 2
  for p in "$@"; do
    for b in $(debugfs -R "blocks \"$p\"" "$img" 2>/dev/null | tr ' ' '\n' |
                 grep . | head -n 8); do
      echo "$((b * bs)):$(((b + 1) * bs))"
    done
  done
}
RANDOM=42
for i in ext4-1k ext3-1k; do
  img="$tmp/$i.img"
  itable=$(dumpe2fs "$img" 2>/dev/null |
    sed -n 's/^ *Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
  isize=$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Inode size: *//p')
  # The used inodes (all in group 0), then directories.
  fuzz "$img" 20 "$((itable * 1024)):$((itable * 1024 + 3200 * isize))"
  # shellcheck disable=SC2046
  fuzz "$img" 20 $(dir_ranges "$img" 1024 / /d1 /many "/ünïcødé dir")
done
for i in sq sq-noi sq-comp; do
  img="$tmp/$i.img"
  fuzz "$img" 10 0:96
  fuzz "$img" 20 "$(sb "$img" 64):$(sb "$img" 40)"
done
# erofs (superblock checksum off, so that flips there reach further):
# the superblock, the inodes and inline data of directories and files,
# the blocks of a large directory, and a chunk array.
# ero_ranges IMAGE PATH...: each PATH's inode and what follows it, and
# (up to 8 of) its data blocks if it is a directory.
ero_ranges () {
  local img=$1 p n
  shift
  for p in "$@"; do
    n=$(dump.erofs --path="$p" "$tmp/$img.img" | sed -n 's/^NID: *\([0-9]*\).*/\1/p')
    echo "$((n * 32)):$((n * 32 + 320))"
    dump.erofs --path="$p" "$tmp/$img.img" | grep -q 'directory$' || continue
    dump.erofs --path="$p" -e "$tmp/$img.img" |
      sed -n 's/.*: *\([0-9]*\)\.\. *\([0-9]*\) | *[0-9]* *$/\1:\2/p' | head -n 8
  done
}
# shellcheck disable=SC2046
fuzz "$tmp/ero-nocsum.img" 30 1024:1152 $(ero_ranges ero / /d1 /many \
  "/ünïcødé dir" /big.bin /islands.bin /sparse.bin)
# shellcheck disable=SC2046
fuzz "$tmp/ero-chunk.img" 20 $(ero_ranges ero-chunk / /many /islands.bin)

# 6. valgrind: no invalid access or leak on a damaged image.
if command -v valgrind > /dev/null 2>&1; then
  for img in "$valgrind_bad_ext4" "$valgrind_bad_sq" "$valgrind_bad_ero" \
             "$tmp/half.img"; do
    valgrind -q --leak-check=full --error-exitcode=99 "$idx" "$img" \
      -o "$tmp/vg.m" > /dev/null 2> "$tmp/vg.err"
    rc=$?
    [ $rc = 1 ] || fail "valgrind $img: exit $rc: $(cat "$tmp/vg.err")"
    [ "$(wc -l < "$tmp/vg.err")" = 1 ] ||
      fail "valgrind $img: $(cat "$tmp/vg.err")"
    echo "ok: valgrind clean: $(cat "$tmp/vg.err")"
  done
else
  echo "valgrind is not installed: skipped"
fi
echo "all file map checks passed"
