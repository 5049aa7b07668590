#!/usr/bin/env bash
# accel-index end to end: index small images made with dd and truncate
# (random data, zero regions, a single non-zero byte at either end of a
# chunk, a short last chunk, chunks spanning the indexer's 8 MiB read
# buffers) and check the manifest with the sqlite3 CLI against
# sha256sum of each chunk cut out with dd; check the zero flags, the
# meta values, file system detection, byte-identical reruns, and the
# error exits (1 for failures, 2 for bad usage) with nothing left behind.
. "$(dirname "$0")/lib/functions.sh"
requires sqlite3; requires sha256sum; requires dd; requires truncate
idx="$top/indexer/accel-index"
[ -x "$idx" ] || fail "$idx is not built"
make_tmpdir

# check_manifest IMAGE MANIFEST CHUNK_SIZE FS_TYPE: every rule of the
# format, with values computed independently of accel-index.
check_manifest () {
  local img=$1 m=$2 cs=$3 fs=$4 size nr i hash zero want_hash want_zero
  size=$(stat -c %s "$img")
  nr=$(( (size + cs - 1) / cs ))
  [ -f "$m" ] || fail "$m was not written"
  [ ! -e "$m.tmp" ] || fail "$m.tmp was left behind"
  [ "$(sqlite3 "$m" 'PRAGMA integrity_check')" = ok ] ||
    fail "$m: integrity_check"
  meta () { sqlite3 "$m" "SELECT value FROM meta WHERE key = '$1'"; }
  [ "$(meta format_version)" = 1 ] || fail "format_version $(meta format_version)"
  [ "$(meta image_size)" = "$size" ] || fail "image_size $(meta image_size) != $size"
  [ "$(meta chunk_size)" = "$cs" ] || fail "chunk_size $(meta chunk_size) != $cs"
  [ "$(meta fs_type)" = "$fs" ] || fail "fs_type $(meta fs_type) != $fs"
  [ "$(meta image_sha256)" = "$(sha256sum < "$img" | cut -d' ' -f1)" ] ||
    fail "image_sha256 differs from sha256sum"
  [ "$(sqlite3 "$m" 'SELECT count (*), min (idx), max (idx) FROM chunks')" = \
    "$nr|0|$((nr - 1))" ] || fail "chunks table is not idx 0..$((nr - 1))"
  sqlite3 "$m" "SELECT name FROM sqlite_master WHERE type = 'index'" |
    grep -qx chunks_sha256 || fail "no chunks_sha256 index"

  sqlite3 -separator ' ' "$m" \
    'SELECT idx, lower (hex (sha256)), zero FROM chunks ORDER BY idx' \
    > "$tmp/rows"
  [ "$(wc -l < "$tmp/rows")" = "$nr" ] || fail "wrong number of rows"
  while read -r i hash zero; do
    dd if="$img" of="$tmp/chunk" bs="$cs" skip="$i" count=1 status=none
    want_hash=$(sha256sum < "$tmp/chunk" | cut -d' ' -f1)
    [ "$hash" = "$want_hash" ] || fail "chunk $i: hash $hash != $want_hash"
    if [ "$(tr -d '\000' < "$tmp/chunk" | head -c 1 | wc -c)" = 0 ]; then
      want_zero=1
    else
      want_zero=0
    fi
    [ "$zero" = "$want_zero" ] || fail "chunk $i: zero flag $zero != $want_zero"
  done < "$tmp/rows"
  echo "ok: $m: $nr chunks of $cs checked"
}

# 1. 20 full chunks of 256 KiB and a short one of 12345 bytes.
k=262144
img="$tmp/disk.img"
truncate -s $((20 * k + 12345)) "$img"
dd if=/dev/urandom of="$img" bs=$k seek=0 count=2 conv=notrunc status=none
dd if=/dev/urandom of="$img" bs=$k seek=10 count=3 conv=notrunc status=none
# One non-zero byte at the very end of chunk 5, at the start of chunk 7.
printf '\001' | dd of="$img" bs=1 seek=$((6 * k - 1)) conv=notrunc status=none
printf '\001' | dd of="$img" bs=1 seek=$((7 * k)) conv=notrunc status=none
# The short last chunk is random.
dd if=/dev/urandom of="$img" bs=1 seek=$((20 * k)) count=12345 \
  conv=notrunc status=none
# Zero chunks: 2-4, 6, 8-9, 13-19.
want_zero="2 3 4 6 8 9 13 14 15 16 17 18 19"

"$idx" "$img" -o "$tmp/disk.manifest" --chunk-size 256K 2> "$tmp/err" ||
  fail "accel-index: $(cat "$tmp/err")"
cat "$tmp/err"
grep -Eq "^accel-index: indexed $((20 * k + 12345)) bytes in [0-9.]+ s \([0-9]+ MB/s\), 21 chunks, 13 zero$" \
  "$tmp/err" || fail "summary line"
check_manifest "$img" "$tmp/disk.manifest" $k raw
[ "$(sqlite3 "$tmp/disk.manifest" \
     'SELECT group_concat (idx, " ") FROM chunks WHERE zero = 1')" = \
  "$want_zero" ] || fail "zero chunks are not $want_zero"

# Byte-identical when run again; -v moves the summary to stdout.
"$idx" -v --chunk-size=256k -o "$tmp/again.manifest" "$img" \
  > "$tmp/out" 2> "$tmp/err" || fail "accel-index -v: $(cat "$tmp/err")"
grep -q '^accel-index: indexed .* 21 chunks, 13 zero$' "$tmp/out" ||
  fail "-v: no summary on stdout"
cmp "$tmp/disk.manifest" "$tmp/again.manifest" ||
  fail "a second run gave a different manifest"

# Default chunk size (1 MiB): 6 chunks, the last short.
"$idx" "$img" -o "$tmp/default.manifest" 2>/dev/null || fail "default size"
check_manifest "$img" "$tmp/default.manifest" 1048576 raw

# Smallest chunks on a one-byte image.
head -c 1 /dev/urandom > "$tmp/tiny.img"
"$idx" "$tmp/tiny.img" -o "$tmp/tiny.manifest" --chunk-size 4K 2>/dev/null ||
  fail "tiny image"
check_manifest "$tmp/tiny.img" "$tmp/tiny.manifest" 4096 raw

# Chunks larger than the 8 MiB read buffer, the last one short.
head -c $((20 * 1048576 + 5)) /dev/urandom > "$tmp/large.img"
not_a_filesystem "$tmp/large.img"
dd if=/dev/zero of="$tmp/large.img" bs=1M seek=16 count=4 conv=notrunc \
  status=none
"$idx" "$tmp/large.img" -o "$tmp/large.manifest" --chunk-size 16M \
  2>/dev/null || fail "16M chunks"
check_manifest "$tmp/large.img" "$tmp/large.manifest" 16777216 raw
"$idx" "$tmp/large.img" -o "$tmp/large.manifest" --chunk-size 1M \
  2>/dev/null || fail "1M chunks"
check_manifest "$tmp/large.img" "$tmp/large.manifest" 1048576 raw

# 2. File system detection (the file map has its own test,
# test-filemap.sh).
if command -v mksquashfs >/dev/null 2>&1; then
  mkdir "$tmp/sqsrc"
  echo hello > "$tmp/sqsrc/hello"
  mksquashfs "$tmp/sqsrc" "$tmp/sq.img" -noappend -quiet > /dev/null ||
    fail "mksquashfs"
  "$idx" "$tmp/sq.img" -o "$tmp/sq.manifest" 2>/dev/null || fail "squashfs"
  check_manifest "$tmp/sq.img" "$tmp/sq.manifest" 1048576 squashfs
else
  echo "mksquashfs is not installed: squashfs detection not tested"
fi
if command -v mkfs.erofs >/dev/null 2>&1; then
  mkdir "$tmp/erosrc"
  echo hello > "$tmp/erosrc/hello"
  mkfs.erofs --quiet "$tmp/ero.img" "$tmp/erosrc" || fail "mkfs.erofs"
  "$idx" "$tmp/ero.img" -o "$tmp/ero.manifest" 2>/dev/null || fail "erofs"
  check_manifest "$tmp/ero.img" "$tmp/ero.manifest" 1048576 erofs
else
  echo "mkfs.erofs is not installed: erofs detection not tested"
fi
if command -v mkfs.ext4 >/dev/null 2>&1; then
  truncate -s 8M "$tmp/ext4.img"
  mkfs.ext4 -q -F "$tmp/ext4.img" || fail "mkfs.ext4"
  "$idx" "$tmp/ext4.img" -o "$tmp/ext4.manifest" 2>/dev/null || fail "ext4"
  check_manifest "$tmp/ext4.img" "$tmp/ext4.manifest" 1048576 ext4
else
  echo "mkfs.ext4 is not installed: ext4 detection not tested"
fi

# 3. Errors.  expect_exit CODE MESSAGE-REGEX ARGS...: accel-index exits
# with CODE and says MESSAGE on stderr.
expect_exit () {
  local want=$1 msg=$2 rc
  shift 2
  "$idx" "$@" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  [ $rc = "$want" ] || fail "accel-index $*: exit $rc, wanted $want"
  grep -Eq "$msg" "$tmp/err" ||
    fail "accel-index $*: stderr lacks '$msg': $(cat "$tmp/err")"
  echo "ok: accel-index $* -> $rc: $(head -n 1 "$tmp/err")"
}
out="$tmp/err.manifest"
# Detected as squashfs by its magic, but nothing else is right.
truncate -s 1M "$tmp/fake-sq.img"
printf 'hsqs' | dd of="$tmp/fake-sq.img" conv=notrunc status=none
expect_exit 1 "^accel-index: $tmp/fake-sq.img: squashfs: not a squashfs 4.0 file system" \
  "$tmp/fake-sq.img" -o "$out"
# The same for erofs (magic 0xE0F5E1E2 at 1024): block size 2^0.
truncate -s 1M "$tmp/fake-ero.img"
printf '\342\341\365\340' |
  dd of="$tmp/fake-ero.img" bs=1 seek=1024 conv=notrunc status=none
expect_exit 1 "^accel-index: $tmp/fake-ero.img: erofs: unsupported block size 2\\^0" \
  "$tmp/fake-ero.img" -o "$out"
expect_exit 1 "^accel-index: $tmp/nope.img: open: No such file or directory$" \
  "$tmp/nope.img" -o "$out"
: > "$tmp/empty.img"
expect_exit 1 "^accel-index: $tmp/empty.img: image is empty$" \
  "$tmp/empty.img" -o "$out"
expect_exit 1 "not a regular file or block device" "$tmp" -o "$out"
expect_exit 1 "^accel-index: manifest: $tmp/no/such/dir/m.tmp: create: No such file or directory$" \
  "$img" -o "$tmp/no/such/dir/m"
cp "$img" "$tmp/same.img"
expect_exit 1 "would overwrite the image" "$tmp/same.img" -o "$tmp/same.img"
cmp "$img" "$tmp/same.img" || fail "the image was overwritten"
# 1 TiB sparse image with 4 KiB chunks: too many chunks.
truncate -s 1T "$tmp/huge.img"
expect_exit 1 "use a larger chunk size" "$tmp/huge.img" -o "$out" \
  --chunk-size 4K
[ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "a failed run left $out"

for bad in 3K 1000 2K 0 128M 4096K1 4X -4K " 4K" "" abc 99999999999999999999K; do
  expect_exit 2 "^accel-index: --chunk-size: '$bad' is not a power of two" \
    "$img" -o "$out" --chunk-size "$bad"
done
expect_exit 2 "no manifest given" "$img"
expect_exit 2 "no IMAGE given" -o "$out"
expect_exit 2 "more than one IMAGE" "$img" "$img" -o "$out"
expect_exit 2 "Try 'accel-index --help'" --frobnicate "$img" -o "$out"
[ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "a failed run left $out"

"$idx" --help > "$tmp/out" || fail "--help"
grep -q '^Usage: accel-index IMAGE -o MANIFEST' "$tmp/out" || fail "--help"
grep -q '^File map: for ext4, squashfs and erofs' "$tmp/out" ||
  fail "--help lacks the file map note"
"$idx" --version > "$tmp/out" || fail "--version"
grep -q '^accel-index .*manifest format 1' "$tmp/out" || fail "--version"
echo "all accel-index checks passed"
