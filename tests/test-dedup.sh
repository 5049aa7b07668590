#!/usr/bin/env bash
# Dedup by chunk hash, measured in origin bytes (through the counting
# proxy, against radosgw).
#
#  1. Versions.  The genome sample (images/genome/build) and a version 2
#     with one file changed (one base of one read in reads.fq) are
#     published with accel-mkimage (256 KiB chunks: see below).  v1 is
#     read whole, then v2 from the same cache directory: v2 must fetch
#     at most 5% of its image (manifest included; the figure is
#     printed), only chunks v1 does not have, and read back equal to
#     the v2 image.  Control: v2 with dedup=false on a copy of the same
#     cache fetches every non-zero chunk.
#     NB: 256 KiB, not the default 1 MiB: the sample's image is only
#     32 MiB, and any change to a tree costs at least two chunks (the
#     superblock's, whose UUID is derived from the tree, and the changed
#     one): 2 of 33 chunks, 6.2%, at 1 MiB.
#  2. Two images that share chunks at other offsets, served at once by
#     two nbdkit processes on one cache directory: once one has read its
#     image, the other fetches only its own chunks.
#  3. The same two read at random by both at once under a small
#     cache-size (evictions racing with dedup): every byte right.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires sqlite3; requires bowtie2-build
needs_s3
make_tmpdir
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
mk="$top/tools/accel-mkimage"

# new_chunks OLD NEW: non-zero chunks of manifest NEW whose hash OLD
# does not have, then how many non-zero chunks NEW has.
new_chunks () {
  sqlite3 "$2" "ATTACH '$1' AS old;
    SELECT count(*) FROM chunks c WHERE zero = 0 AND NOT EXISTS
      (SELECT 1 FROM old.chunks o WHERE o.sha256 = c.sha256);
    SELECT count(*) FROM chunks WHERE zero = 0;"
}

# served NAME ARGS...: start nbdkit NAME, copy the whole export to
# $tmp/NAME.out, stop it; sets bytes to the proxy's body bytes it caused.
served () {
  local name=$1 before; shift
  before=$(proxy_count bytes)
  start_nbdkit "$name" "$@" -D accel.stats=1 readahead=0 ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
  nbdcopy "$(nbd_uri "$name")" "$tmp/$name.out" || fail "nbdcopy $name"
  stop_nbdkit "$name"
  bytes=$(($(proxy_count bytes) - before))
}

# ---- 1. version 2 of the genome sample ----
"$top/images/genome/build" "$tmp/g1" 2>&1 || fail "images/genome/build"
cp -a "$tmp/g1" "$tmp/g2"
# Read 100's bases start on line 4*99+2: change the first one.
off=$(awk 'NR <= 397 { n += length($0) + 1 } END { print n }' "$tmp/g2/reads.fq")
base=$(dd if="$tmp/g2/reads.fq" bs=1 skip="$off" count=1 status=none)
[ "$base" = A ] && new=C || new=A
printf '%s' "$new" | dd of="$tmp/g2/reads.fq" bs=1 seek="$off" conv=notrunc \
  status=none
cmp -s "$tmp/g1/reads.fq" "$tmp/g2/reads.fq" && fail "reads.fq did not change"
for v in 1 2; do
  "$mk" "$tmp/g$v" "s3://$bucket/v$v/" --name genome --chunk-size 256K \
    --endpoint "$ACCEL_TEST_S3_ENDPOINT" --keep-image "$tmp/v$v.img" \
    > "$tmp/mkimage-v$v.log" 2>&1 || fail "accel-mkimage v$v"
  s3_curl -o "$tmp/v$v.manifest" \
    "$ACCEL_TEST_S3_ENDPOINT/$bucket/v$v/genome.img.manifest" ||
    fail "get manifest v$v"
done
read -r -d '' new total < <(new_chunks "$tmp/v1.manifest" "$tmp/v2.manifest")
size=$(stat -c %s "$tmp/v2.img")
echo "v2: $new of $total non-zero chunks of 256 KiB are not in v1"

args=(endpoint="$proxy_url" cache-dir="$tmp/cache")
served v1 url="s3://$bucket/v1/genome.img" "${args[@]}"
v1_bytes=$bytes
cmp "$tmp/v1.img" "$tmp/v1.out" || fail "v1 read back differs"
cp -a --sparse=always "$tmp/cache" "$tmp/cache-control"

served v2 url="s3://$bucket/v2/genome.img" "${args[@]}"
cmp "$tmp/v2.img" "$tmp/v2.out" || fail "v2 read back differs"
fetched=$(nbdkit_stat v2 "chunk fetches")
copied=$(nbdkit_stat v2 "dedup chunks")
awk -v b="$bytes" -v s="$size" -v v1="$v1_bytes" 'BEGIN {
  printf "v1 fetched %d bytes; v2 fetched %d bytes = %.2f%% of its %d-byte image\n",
    v1, b, 100 * b / s, s }'
echo "v2: $fetched chunks fetched, $copied copied from the cache"
[ $((bytes * 100)) -le $((size * 5)) ] ||
  fail "v2 fetched $bytes bytes, more than 5% of $size"
[ "$fetched" -le "$new" ] || fail "v2 fetched $fetched chunks, only $new are new"
[ $((fetched + copied)) = "$total" ] ||
  fail "fetched $fetched + copied $copied != $total non-zero chunks"

# Control: the same without dedup fetches every non-zero chunk.
served v2nodedup url="s3://$bucket/v2/genome.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache-control" dedup=false
cmp "$tmp/v2.img" "$tmp/v2nodedup.out" || fail "v2 (no dedup) differs"
echo "v2 with dedup=false fetched $bytes bytes"
[ "$(nbdkit_stat v2nodedup "chunk fetches")" = "$total" ] ||
  fail "dedup=false: not every chunk was fetched"
[ "$(nbdkit_stat v2nodedup "dedup chunks")" = 0 ] ||
  fail "dedup=false: chunks were copied"

# ---- 2. two images sharing chunks, two processes at once ----
# Y's chunks 4-15 are X's chunks 0-11; both have a manifest (1 MiB).
head -c $((16 << 20)) /dev/urandom > "$tmp/x.img"
{ head -c $((4 << 20)) /dev/urandom; head -c $((12 << 20)) "$tmp/x.img"; } \
  > "$tmp/y.img"
for i in x y; do
  "$top/indexer/accel-index" "$tmp/$i.img" -o "$tmp/$i.img.manifest" ||
    fail "accel-index $i"
  s3_put "$tmp/$i.img" "$bucket/shared/$i.img"
  s3_put "$tmp/$i.img.manifest" "$bucket/shared/$i.img.manifest"
done
for i in x y; do
  start_nbdkit "$i" url="s3://$bucket/shared/$i.img" endpoint="$proxy_url" \
    cache-dir="$tmp/cache2" readahead=0 -D accel.stats=1 ||
    fail "nbdkit $i: $(cat "$tmp/$i.log")"
done
nbdcopy "$(nbd_uri x)" "$tmp/x.out" || fail "nbdcopy x"
cmp "$tmp/x.img" "$tmp/x.out" || fail "x differs"
# y's index dates from its start: let a rebuild fall due (1 s).
sleep 1.2
nbdcopy "$(nbd_uri y)" "$tmp/y.out" || fail "nbdcopy y"
cmp "$tmp/y.img" "$tmp/y.out" || fail "y differs"
stop_nbdkit x
stop_nbdkit y
echo "y: $(nbdkit_stat y "chunk fetches") chunks fetched," \
  "$(nbdkit_stat y "dedup chunks") copied from x's"
[ "$(nbdkit_stat y "dedup chunks")" = 12 ] || fail "y did not copy x's 12 chunks"
[ "$(nbdkit_stat y "chunk fetches")" = 4 ] || fail "y fetched more than its own 4"

# ---- 3. concurrent, under a cap that forces evictions ----
# x is read whole first (so the cache holds some of the chunks y shares),
# then both are read at random at once: copies race with evictions by
# both processes.  Every byte must be right, and no copy may ever have
# read a donor's bytes that did not match (they are read under the lock).
for i in x y; do
  start_nbdkit "${i}cap" url="s3://$bucket/shared/$i.img" \
    endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache3" \
    cache-size=8M -D accel.stats=1 ||
    fail "nbdkit ${i}cap: $(cat "$tmp/${i}cap.log")"
done
nbdcopy "$(nbd_uri xcap)" "$tmp/xcap.out" || fail "nbdcopy xcap"
cmp "$tmp/x.img" "$tmp/xcap.out" || fail "x differs under the cap"
sleep 1.2
nbdcheck random "$(nbd_uri xcap)" "$tmp/x.img" 1000 1 > "$tmp/rx.log" 2>&1 &
rx=$!
nbdcheck random "$(nbd_uri ycap)" "$tmp/y.img" 1000 2 > "$tmp/ry.log" 2>&1 ||
  fail "random reads of y: $(cat "$tmp/ry.log")"
wait $rx || fail "random reads of x: $(cat "$tmp/rx.log")"
stop_nbdkit xcap
stop_nbdkit ycap
echo "under an 8 MiB cap: x copied $(nbdkit_stat xcap "dedup chunks")," \
  "y copied $(nbdkit_stat ycap "dedup chunks"); evicted" \
  "$(nbdkit_stat xcap evicted) + $(nbdkit_stat ycap evicted)"
for i in xcap ycap; do
  [ "$(nbdkit_stat $i "dedup mismatches")" = 0 ] || fail "$i: dedup mismatches"
  [ "$(nbdkit_stat $i "verify failures")" = 0 ] || fail "$i: verify failures"
done
echo OK
