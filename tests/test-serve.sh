#!/usr/bin/env bash
# The serving core end to end, against a real SigV4-checking S3 server
# (radosgw) through a counting proxy: the image read with nbdcopy equals
# the original; random reads equal it; zero chunks are holes in
# nbdinfo --map and are never fetched; the preferred block size is the
# chunk size; a restarted nbdkit serves the same reads with zero GETs;
# many readers of one missing chunk cause one GET.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires nbdinfo
needs_s3
make_tmpdir
start_proxy "$tmp"

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
make_image "$tmp/disk.img" 20
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/images/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/images/disk.img.manifest"

args=(url="s3://$bucket/images/disk.img" endpoint="$proxy_url"
      cache-dir="$tmp/cache" readahead=0)

# 1. Whole image with nbdcopy.
start_nbdkit a "${args[@]}" || fail "nbdkit: $(cat "$tmp/a.log")"
nbdcopy "$(nbd_uri a)" "$tmp/copy.img" || fail "nbdcopy"
cmp "$tmp/disk.img" "$tmp/copy.img" || fail "nbdcopy output differs"
gets=$(proxy_count GET)
echo "nbdcopy of 20 MiB took $gets GETs"
# 18 data chunks of 1 MiB, coalesced up to 8 MiB a GET, plus the manifest.
[ "$gets" -le 19 ] || fail "too many GETs for one pass: $gets"
bytes=$(proxy_count bytes)
manifest_bytes=$(stat -c %s "$tmp/disk.img.manifest")
[ "$bytes" -le $((18 * 1048576 + manifest_bytes)) ] ||
  fail "zero chunks were fetched: $bytes body bytes"

# 2. Zero chunks are holes.
nbdinfo --map "$(nbd_uri a)" > "$tmp/map.txt"
cat "$tmp/map.txt"
grep -Eq '^ *2097152 +2097152 +3 +hole,zero' "$tmp/map.txt" ||
  fail "chunks 2-3 are not reported as a hole"

# The block sizes it advertises: any byte range, whole chunks preferred
# (accel-mount sets the read-ahead from that), up to 32 MiB a request.
nbdinfo --json --no-content "$(nbd_uri a)" > "$tmp/info.json" || fail "nbdinfo --json"
bs=$(python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
print(*(e.get("block_size_" + k) for k in ("minimum", "preferred", "maximum")))' \
  "$tmp/info.json")
echo "block sizes (minimum preferred maximum): $bs"
[ "$bs" = "1 1048576 33554432" ] || fail "advertised block sizes: $bs"

# 3. Random reads (served from the cache now; then again cold below).
nbdcheck random "$(nbd_uri a)" "$tmp/disk.img" 300 || fail "random reads"
stop_nbdkit a

# 4. Restart: the same reads make zero GETs.
before=$(proxy_count GET)
start_nbdkit b "${args[@]}" || fail "nbdkit restart: $(cat "$tmp/b.log")"
nbdcopy "$(nbd_uri b)" "$tmp/copy2.img" || fail "nbdcopy after restart"
cmp "$tmp/disk.img" "$tmp/copy2.img" || fail "differs after restart"
nbdcheck random "$(nbd_uri b)" "$tmp/disk.img" 300 || fail "random reads 2"
after=$(proxy_count GET)
echo "GETs after restart: $((after - before))"
[ "$after" = "$before" ] || fail "restart made $((after - before)) GETs"
stop_nbdkit b

# 5. Cold random reads, and many readers of one missing chunk: one GET.
rm -rf "$tmp/cache"
start_nbdkit c "${args[@]}" || fail "nbdkit: $(cat "$tmp/c.log")"
echo '[{"method": "GET", "match": "disk.img", "action": "delay", "seconds": 1}]' \
  > "$proxy_faults"
before=$(proxy_count GET)
nbdcheck same "$(nbd_uri c)" "$tmp/disk.img" $((5 * 1048576 + 100)) 4096 8 ||
  fail "concurrent readers"
after=$(proxy_count GET)
echo "8 concurrent readers of one missing chunk: $((after - before)) GET"
[ $((after - before)) = 1 ] || fail "expected 1 GET, got $((after - before))"
echo '[]' > "$proxy_faults"
nbdcheck random "$(nbd_uri c)" "$tmp/disk.img" 300 7 || fail "cold random reads"
stop_nbdkit c

# 6. A sequential reader triggers readahead: fewer, larger GETs than one
# per chunk (18 data chunks; readahead asks 2 MiB a GET, so about 9),
# and the same bytes.
rm -rf "$tmp/cache"
start_nbdkit d url="s3://$bucket/images/disk.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" readahead=8M || fail "nbdkit: $(cat "$tmp/d.log")"
before=$(proxy_count GET)
nbdcheck seq "$(nbd_uri d)" "$tmp/disk.img" 131072 || fail "sequential read"
after=$(proxy_count GET)
echo "sequential read with readahead: $((after - before)) GETs"
[ $((after - before)) -le 12 ] || fail "readahead did not coalesce: $((after - before)) GETs"
stop_nbdkit d

# 7. NBD_CMD_CACHE fetches a range into the cache; reading it afterwards
# takes nothing from the origin.  The manifest comes from a local file.
rm -rf "$tmp/cache"
start_nbdkit e url="s3://$bucket/images/disk.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" readahead=0 manifest="$tmp/disk.img.manifest" ||
  fail "nbdkit: $(cat "$tmp/e.log")"
grep -q "verified by manifest" "$tmp/e.log" || fail "local manifest not used"
before=$(proxy_count GET)
nbdcheck cache "$(nbd_uri e)" $((8 * 1048576)) $((4 * 1048576)) || fail "NBD_CMD_CACHE"
mid=$(proxy_count GET)
[ $((mid - before)) -ge 1 ] || fail "NBD_CMD_CACHE fetched nothing"
for off in 8 9 10 11; do
  nbdcheck read "$(nbd_uri e)" $((off * 1048576 + 4096)) 65536 || fail "read"
done
after=$(proxy_count GET)
echo "NBD_CMD_CACHE of 4 MiB: $((mid - before)) GETs, reads after it: $((after - mid))"
[ "$after" = "$mid" ] || fail "reads after NBD_CMD_CACHE went to the origin"
stop_nbdkit e

# 8. A presigned https?:// URL is served unsigned; with a query string
# there is no default manifest, so chunks are checked against the hashes
# recorded at store time only.
# url=+FILE keeps the signature out of nbdkit's own debug output.
"$top/tests/helpers/s3-get" --endpoint "$ACCEL_TEST_S3_ENDPOINT" \
  --presign 3600 "s3://$bucket/images/disk.img" > "$tmp/url" || fail "presign"
rm -rf "$tmp/cache"
start_nbdkit f url=+"$tmp/url" cache-dir="$tmp/cache" ||
  fail "nbdkit on a presigned URL: $(cat "$tmp/f.log")"
nbdcopy "$(nbd_uri f)" "$tmp/copy3.img" || fail "nbdcopy (presigned)"
cmp "$tmp/disk.img" "$tmp/copy3.img" || fail "presigned copy differs"
grep -q "X-Amz-Signature=[0-9a-f]" "$tmp/f.log" && fail "a signature was logged"
stop_nbdkit f
echo OK
