#!/usr/bin/env bash
# accel-cache on a live cache: two nbdkits serving two images from one
# cache directory under one cap, read at once, return the right bytes
# and the cache (sampled by accel-cache stat while they read) never
# holds more than the cap; stat's numbers agree with what was read;
# verify finds a chunk damaged while nbdkit is stopped and while it
# serves (dropped, fetched again, right); evict and gc while nbdkit
# serves and readers go on; evict --older-than; bad directories; an
# image whose map is damaged (verify says so, gc removes it).
#
#  A: 24 MiB with a manifest (chunks 2 and 3 all zeros)
#  B: 16 MiB without a manifest (manifest=none)
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires flock; requires setpriv
needs_s3
make_tmpdir
start_proxy "$tmp"
tool="$top/tools/accel-cache"
[ -x "$tool" ] || fail "$tool is not built"

MiB=1048576
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
make_image "$tmp/a.img" 24
"$top/indexer/accel-index" "$tmp/a.img" -o "$tmp/a.img.manifest" > /dev/null ||
  fail "accel-index"
head -c $((16 * MiB)) /dev/urandom > "$tmp/b.img"
not_a_filesystem "$tmp/b.img"
s3_put "$tmp/a.img" "$bucket/a.img"
s3_put "$tmp/a.img.manifest" "$bucket/a.img.manifest"
s3_put "$tmp/b.img" "$bucket/b.img"
url_a="s3://$bucket/a.img"
url_b="s3://$bucket/b.img"

# serve NAME IMAGE(a|b) CACHE-DIR [KEY=VALUE...]: nbdkit through the
# counting proxy.
serve () {
  local name=$1 img=$2 dir=$3 extra=()
  shift 3
  [ "$img" = b ] && extra=(manifest=none)
  start_nbdkit "$name" url="s3://$bucket/$img.img" endpoint="$proxy_url" \
    cache-dir="$dir" "${extra[@]}" "$@" ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
}
# stat_json DIR FILE: accel-cache stat --json into FILE.
stat_json () {
  "$tool" -d "$1" stat --json > "$2" || fail "accel-cache stat --json"
}
# jget FILE EXPR: a value from a JSON file (d is the document, img(URL)
# the image with that URL).
jget () {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
def img(url):
    m = [i for i in d["images"] if i["url"] == url]
    assert len(m) == 1, "%d images with url %s" % (len(m), url)
    return m[0]
print(eval(sys.argv[2]))' "$1" "$2" || fail "no $2 in $(cat "$1")"
}
# expect WHAT GOT WANT
expect () { [ "$2" = "$3" ] || fail "$1: got $2, wanted $3"; }
# read_range NAME FILE OFFSET LEN: one read, compared with FILE.
read_range () { nbdcheck same "$(nbd_uri "$1")" "$2" "$3" "$4" 1; }

echo "== 1. two nbdkits, two images, one cap, read at once"
cap=$((8 * MiB))
serve a a "$tmp/cache" cache-size=$cap
serve b b "$tmp/cache" cache-size=$cap
# The sampler is accel-cache stat itself (it measures under the
# directory's lock, like the plugin), next to du under the same lock.
( max=0 maxdu=0 n=0
  while [ ! -e "$tmp/stop-sampler" ]; do
    if "$tool" -d "$tmp/cache" stat --json > "$tmp/sample.json" 2>> "$tmp/sampler.err"; then
      u=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage_bytes"])' \
            "$tmp/sample.json")
      n=$((n + 1))
      [ "$u" -gt "$max" ] && max=$u
    fi
    d=$(flock -s "$tmp/cache/lock" du -B1 -c "$tmp"/cache/images/*/data \
          2>/dev/null | tail -n 1 | cut -f1)
    [ "${d:-0}" -gt "$maxdu" ] && maxdu=$d
    echo "$max $maxdu $n" > "$tmp/max"
    sleep 0.05
  done ) &
sampler=$!
on_exit "kill $sampler"
pids=()
for x in a b; do
  ( nbdcopy "$(nbd_uri $x)" "$tmp/copy-$x.img" &&
    cmp "$tmp/$x.img" "$tmp/copy-$x.img" &&
    nbdcheck random "$(nbd_uri $x)" "$tmp/$x.img" 300 ) > "$tmp/read-$x.out" 2>&1 &
  pids+=($!)
done
on_exit "kill ${pids[*]}"
for p in "${pids[@]}"; do
  wait "$p" || fail "a reader under the cap failed: $(cat "$tmp"/read-*.out)"
done
sleep 0.2
touch "$tmp/stop-sampler"
wait $sampler
read -r max maxdu samples < "$tmp/max"
echo "cap $cap: largest usage seen by accel-cache stat $max, by du $maxdu," \
  "in $samples samples"
[ -s "$tmp/sampler.err" ] && fail "accel-cache stat failed on a live cache: $(cat "$tmp/sampler.err")"
[ "$samples" -ge 5 ] || fail "only $samples samples"
# Allow for ext4's extent blocks (4 KiB each) that no store made room for.
[ "$max" -le $((cap + 65536)) ] || fail "stat saw the cache past its cap: $max"
[ "$maxdu" -le $((cap + 65536)) ] || fail "du saw the cache past its cap: $maxdu"
[ "$max" -ge $((cap - 2 * MiB)) ] || fail "the cache never filled up: $max"
grep -q "cache: evicted" "$tmp/a.log" "$tmp/b.log" || fail "nothing was evicted"

stat_json "$tmp/cache" "$tmp/s1.json"
expect "images" "$(jget "$tmp/s1.json" 'len(d["images"])')" 2
expect "cap" "$(jget "$tmp/s1.json" 'd["cap_bytes"]')" $cap
expect "cap source" "$(jget "$tmp/s1.json" 'd["cap_source"]')" recorded
expect "A served" "$(jget "$tmp/s1.json" "img('$url_a')['serving']")" True
expect "B served" "$(jget "$tmp/s1.json" "img('$url_b')['serving']")" True
expect "A zero bytes" "$(jget "$tmp/s1.json" "img('$url_a')['zero_bytes']")" $((2 * MiB))
expect "B zero bytes" "$(jget "$tmp/s1.json" "img('$url_b')['zero_bytes']")" None
[ "$(jget "$tmp/s1.json" 'd["usage_bytes"]')" -le $((cap + 65536)) ] || fail "usage"
"$tool" -d "$tmp/cache" stat > "$tmp/stat1.txt" || fail "accel-cache stat"
cat "$tmp/stat1.txt"
grep -q "of 8.0 MiB" "$tmp/stat1.txt" || fail "stat does not show the cap"
"$tool" -d "$tmp/cache" ls > "$tmp/ls1.txt" || fail "accel-cache ls"
cat "$tmp/ls1.txt"
expect "ls lines" "$(grep -c serving "$tmp/ls1.txt")" 2
"$tool" -d "$tmp/cache" verify > "$tmp/verify1.txt" ||
  fail "verify of a good cache: $(cat "$tmp/verify1.txt")"
grep -q "a.img .*against the manifest: .* 0 bad" "$tmp/verify1.txt" ||
  fail "A not verified against its manifest: $(cat "$tmp/verify1.txt")"
grep -q "b.img .*against the hashes recorded" "$tmp/verify1.txt" ||
  fail "B not verified against its recorded hashes: $(cat "$tmp/verify1.txt")"
stop_nbdkit a
stop_nbdkit b

echo "== 2. stat's numbers against what was read"
c2="$tmp/cache2"
serve c b "$c2" readahead=0
serve ca a "$c2" readahead=8M
t_before_reads=$(date +%s)
nbdcopy "$(nbd_uri c)" "$tmp/copy-c.img" && cmp "$tmp/b.img" "$tmp/copy-c.img" ||
  fail "nbdcopy of B"
nbdcopy "$(nbd_uri ca)" "$tmp/copy-ca.img" && cmp "$tmp/a.img" "$tmp/copy-ca.img" ||
  fail "nbdcopy of A"
sleep 0.3 # the flusher records the last chunks
stat_json "$c2" "$tmp/s2.json"
cat "$tmp/s2.json"
B="img('$url_b')" A="img('$url_a')"
expect "B read" "$(jget "$tmp/s2.json" "$B['hit_bytes'] + $B['miss_bytes']")" $((16 * MiB))
expect "B cached" "$(jget "$tmp/s2.json" "$B['cached_bytes']")" $((16 * MiB))
expect "B cached %" "$(jget "$tmp/s2.json" "$B['cached_percent']")" 100.0
# Zero chunks are neither read from the cache nor fetched.
expect "A read" "$(jget "$tmp/s2.json" "$A['hit_bytes'] + $A['miss_bytes']")" $((22 * MiB))
expect "A cached" "$(jget "$tmp/s2.json" "$A['cached_bytes']")" $((22 * MiB))
expect "A cached %" "$(jget "$tmp/s2.json" "$A['cached_percent']")" 100.0
miss_b=$(jget "$tmp/s2.json" "$B['miss_bytes']")
hits_b=$(jget "$tmp/s2.json" "$B['hit_bytes']")
last_b=$(jget "$tmp/s2.json" "$B['last_use']")
# NB: between the reads and now, not "within 5 s of now": a loaded CI
# machine can take longer than that over the rest of this section.
[ "$last_b" -ge "$t_before_reads" ] && [ "$last_b" -le "$(date +%s)" ] ||
  fail "last use $last_b is not the time of the reads (after $t_before_reads)"
# A second pass is all hits.
nbdcopy "$(nbd_uri c)" "$tmp/copy-c.img" && cmp "$tmp/b.img" "$tmp/copy-c.img" ||
  fail "nbdcopy of B"
stat_json "$c2" "$tmp/s3.json"
expect "B misses after a warm pass" "$(jget "$tmp/s3.json" "$B['miss_bytes']")" $miss_b
expect "B hits after a warm pass" "$(jget "$tmp/s3.json" "$B['hit_bytes']")" \
  $((hits_b + 16 * MiB))
echo "B: hit ratio $(jget "$tmp/s3.json" "$B['hit_ratio']") after two passes"
# The counters persist across a restart.
stop_nbdkit c
stat_json "$c2" "$tmp/s4.json"
expect "B hits after a restart" "$(jget "$tmp/s4.json" "$B['hit_bytes']")" \
  $((hits_b + 16 * MiB))
expect "B not served" "$(jget "$tmp/s4.json" "$B['serving']")" False

echo "== 3. verify: a chunk damaged while nbdkit is stopped"
id_b=$(jget "$tmp/s4.json" "$B['id']")
data_b="$c2/images/$id_b/data"
head -c 100 /dev/urandom |
  dd of="$data_b" bs=1 seek=$((5 * MiB + 1000)) conv=notrunc status=none
"$tool" -d "$c2" verify "$url_b" > "$tmp/verify3.txt"
rc=$?
cat "$tmp/verify3.txt"
expect "verify exit status" $rc 1
grep -q "16 chunks checked .*: 15 good, 1 bad (dropped)" "$tmp/verify3.txt" ||
  fail "verify did not find exactly the damaged chunk"
stat_json "$c2" "$tmp/s5.json"
expect "B chunks after verify" "$(jget "$tmp/s5.json" "$B['cached_chunks']")" 15
"$tool" -d "$c2" verify "${id_b:0:8}" > /dev/null || fail "verify again found damage"
serve c2 b "$c2" readahead=0
before=$(proxy_count GET)
read_range c2 "$tmp/b.img" $((5 * MiB)) $MiB || fail "chunk 5 after verify"
expect "GETs for the dropped chunk" $(( $(proxy_count GET) - before )) 1

echo "== 4. verify: a chunk damaged while nbdkit serves it"
nbdcopy "$(nbd_uri c2)" "$tmp/copy-c.img" && cmp "$tmp/b.img" "$tmp/copy-c.img" ||
  fail "nbdcopy of B"
head -c 100 /dev/urandom |
  dd of="$data_b" bs=1 seek=$((9 * MiB + 1000)) conv=notrunc status=none
# A server checks a chunk once, at its first read: this one it trusts.
read_range c2 "$tmp/b.img" $((9 * MiB)) $MiB > /dev/null 2>&1 &&
  fail "the damage did not reach the server (is the test still testing?)"
"$tool" -d "$c2" verify > "$tmp/verify4.txt"
expect "verify exit status" $? 1
cat "$tmp/verify4.txt"
grep -q "1 bad (dropped)" "$tmp/verify4.txt" || fail "verify missed the damage"
before=$(proxy_count GET)
read_range c2 "$tmp/b.img" $((9 * MiB)) $MiB ||
  fail "chunk 9 still wrong after verify dropped it"
expect "GETs for the dropped chunk" $(( $(proxy_count GET) - before )) 1
stop_nbdkit c2
stop_nbdkit ca

echo "== 5. evict and gc while nbdkit serves and readers go on"
c3="$tmp/cache3"
serve e a "$c3"
serve f b "$c3"
nbdcopy "$(nbd_uri e)" "$tmp/copy-e.img" || fail "nbdcopy A"
nbdcopy "$(nbd_uri f)" "$tmp/copy-f.img" || fail "nbdcopy B"
sleep 0.3
pids=()
for x in e:a f:b; do
  ( round=0
    while [ ! -e "$tmp/stop-readers" ]; do
      round=$((round + 1))
      nbdcheck random "$(nbd_uri ${x%:*})" "$tmp/${x#*:}.img" 50 $round || exit 1
    done
    echo "$round rounds" ) > "$tmp/read5-${x%:*}.out" 2>&1 &
  pids+=($!)
done
on_exit "kill ${pids[*]}"
sleep 0.5
"$tool" -d "$c3" evict "$url_a" > "$tmp/evict5.txt" || fail "evict A: $(cat "$tmp/evict5.txt")"
cat "$tmp/evict5.txt"
grep -Eq "a.img \(.*\): evicted 2[0-2] chunks .*; kept: a running nbdkit serves it" \
  "$tmp/evict5.txt" || fail "evict of a served image"
"$tool" -d "$c3" gc --to 2M > "$tmp/gc5.txt" || fail "gc: $(cat "$tmp/gc5.txt")"
cat "$tmp/gc5.txt"
# NB: chunks being stored by the servers (recorded within 100 ms) are
# not evictable yet: while they read, gc only gets near its size.
grep -Eq "^evicted [1-9][0-9]* chunks" "$tmp/gc5.txt" || fail "gc evicted nothing"
"$tool" -d "$c3" gc --to 0 > "$tmp/gc5b.txt" || fail "gc to 0: $(cat "$tmp/gc5b.txt")"
sleep 0.5
touch "$tmp/stop-readers"
for p in "${pids[@]}"; do
  wait "$p" || fail "a reader failed during evict/gc: $(cat "$tmp"/read5-*.out)"
done
echo "readers: $(cat "$tmp/read5-e.out") of A, $(cat "$tmp/read5-f.out") of B"
for x in e:a f:b; do
  nbdcopy "$(nbd_uri ${x%:*})" "$tmp/copy-5.img" && cmp "$tmp/${x#*:}.img" "$tmp/copy-5.img" ||
    fail "${x#*:} wrong after evict and gc"
done
sleep 0.3
"$tool" -d "$c3" gc --to 3M > "$tmp/gc5c.txt" || fail "gc: $(cat "$tmp/gc5c.txt")"
cat "$tmp/gc5c.txt"
# 38 chunks, and maybe an extent block or two: 35 or 36 chunks go.
grep -Eq "^evicted 3[56] chunks" "$tmp/gc5c.txt" || fail "gc --to 3M of 38 MiB"
stat_json "$c3" "$tmp/s5.json"
usage=$(jget "$tmp/s5.json" 'd["usage_bytes"]')
[ "$usage" -le $((3 * MiB)) ] && [ "$usage" -ge $((2 * MiB)) ] ||
  fail "gc --to 3M left $usage bytes"

echo "== 6. evict an image nobody serves: its directory goes"
stop_nbdkit f
stat_json "$c3" "$tmp/s6.json"
id_b3=$(jget "$tmp/s6.json" "$B['id']")
"$tool" -d "$c3" evict "${id_b3:0:6}" > "$tmp/evict6.txt" || fail "evict B"
cat "$tmp/evict6.txt"
grep -q "removed from the cache" "$tmp/evict6.txt" || fail "B was not removed"
[ -e "$c3/images/$id_b3" ] && fail "B's directory is still there"
"$tool" -d "$c3" ls > "$tmp/ls6.txt"
expect "images left" "$(grep -c 'a.img' "$tmp/ls6.txt") $(grep -c 'b.img' "$tmp/ls6.txt")" "1 0"
"$tool" -d "$c3" evict "s3://$bucket/nothing.img" 2> "$tmp/err6.txt" &&
  fail "evict of an unknown image succeeded"
grep -q "no image 's3://.*nothing.img' in the cache" "$tmp/err6.txt" || fail "$(cat "$tmp/err6.txt")"
serve f2 b "$c3"
nbdcheck random "$(nbd_uri f2)" "$tmp/b.img" 100 || fail "B after its removal"
stop_nbdkit f2
# A served image whose serve.lock was removed by hand still counts as
# served (its server holds data too): listed as served, and evict
# empties it but keeps its files.
id_a3=$(jget "$tmp/s6.json" "$A['id']")
rm -f "$c3/images/$id_a3/serve.lock"
stat_json "$c3" "$tmp/s6b.json"
expect "A served without its serve.lock" "$(jget "$tmp/s6b.json" "$A['serving']")" True
"$tool" -d "$c3" evict "${id_a3:0:6}" > "$tmp/evict6b.txt" ||
  fail "evict A without its serve.lock: $(cat "$tmp/evict6b.txt")"
cat "$tmp/evict6b.txt"
grep -q "kept: a running nbdkit serves it" "$tmp/evict6b.txt" ||
  fail "A was removed while served"
[ -e "$c3/images/$id_a3/data" ] || fail "A's data was removed while served"
nbdcheck random "$(nbd_uri e)" "$tmp/a.img" 100 || fail "A after evict without serve.lock"
stop_nbdkit e

echo "== 7. evict --older-than"
c4="$tmp/cache4"
serve g a "$c4" readahead=0
serve h b "$c4" readahead=0
read_range g "$tmp/a.img" 0 $((2 * MiB)) || fail "read A 0-1"
read_range h "$tmp/b.img" 0 $((2 * MiB)) || fail "read B 0-1"
stop_nbdkit h
sleep 3.2
read_range g "$tmp/a.img" $((10 * MiB)) $((3 * MiB)) || fail "read A 10-12"
sleep 0.3
"$tool" -d "$c4" evict --older-than 2s > "$tmp/evict7.txt" || fail "evict --older-than"
cat "$tmp/evict7.txt"
grep -q "evicted 4 chunks (4.0 MiB) not used for 2 s; removed 1 image" "$tmp/evict7.txt" ||
  fail "evict --older-than did not evict A's and B's old chunks and B"
stat_json "$c4" "$tmp/s7.json"
expect "images left" "$(jget "$tmp/s7.json" 'len(d["images"])')" 1
expect "A's chunks left" "$(jget "$tmp/s7.json" "$A['cached_chunks']")" 3
nbdcheck random "$(nbd_uri g)" "$tmp/a.img" 100 || fail "A after --older-than"
stop_nbdkit g

echo "== 8. what accel-cache refuses"
"$tool" -d "$tmp" stat 2> "$tmp/err.txt" && fail "stat of a directory that is not a cache"
grep -q "is not an accel cache" "$tmp/err.txt" || fail "$(cat "$tmp/err.txt")"
mkdir "$tmp/v2" && touch "$tmp/v2/accel-cache-v2"
"$tool" -d "$tmp/v2" ls 2> "$tmp/err.txt" && fail "ls of a format 2 cache"
grep -q "is an accel cache of format 2; this program knows format 1 only" "$tmp/err.txt" ||
  fail "$(cat "$tmp/err.txt")"
"$tool" -d "$tmp/none" ls 2> "$tmp/err.txt" && fail "ls of a missing directory"
grep -q "No such file or directory" "$tmp/err.txt" || fail "$(cat "$tmp/err.txt")"
[ -e "$tmp/none" ] && fail "accel-cache created a directory"
setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" -d "$c4" stat 2> "$tmp/err.txt" &&
  fail "stat as nobody"
grep -q "Permission denied" "$tmp/err.txt" || fail "$(cat "$tmp/err.txt")"
"$tool" -d "$c4" gc 2> "$tmp/err.txt"
expect "gc without --to" $? 2
"$tool" -d "$c4" evict --older-than 3x 2> /dev/null
expect "a bad duration" $? 2

echo "== 9. an image whose map is damaged (a crash while it was made)"
# No server can use its data and no eviction sees its chunks, yet it
# counts against the cap: verify says so, gc removes it.
id_a4=$(jget "$tmp/s7.json" "$A['id']")
bad_id=$(printf 'b%.0s' $(seq 64))
cp -a "$c4/images/$id_a4" "$c4/images/$bad_id"
printf 'XXXX' | dd of="$c4/images/$bad_id/map" conv=notrunc status=none
"$tool" -d "$c4" verify > "$tmp/verify9.txt" 2> "$tmp/err9.txt"
expect "verify with a damaged map" $? 1
grep -q "image $bad_id: its map is missing or damaged.*accel-cache evict" \
  "$tmp/err9.txt" || fail "verify: $(cat "$tmp/err9.txt")"
"$tool" -d "$c4" gc --to 0 > "$tmp/gc9.txt" || fail "gc: $(cat "$tmp/gc9.txt")"
cat "$tmp/gc9.txt"
grep -q "removed 1 image whose map was missing or damaged" "$tmp/gc9.txt" ||
  fail "gc did not say it removed the damaged image"
[ -e "$c4/images/$bad_id" ] && fail "gc left the image with a damaged map"
stat_json "$c4" "$tmp/s9.json"
expect "usage after gc --to 0" "$(jget "$tmp/s9.json" 'd["usage_bytes"]')" 0
"$tool" -d "$c4" stat --cap 0 > "$tmp/stat9.txt" || fail "stat --cap 0"
grep -q "no cap (--cap 0)" "$tmp/stat9.txt" || fail "stat --cap 0: $(cat "$tmp/stat9.txt")"
echo OK
