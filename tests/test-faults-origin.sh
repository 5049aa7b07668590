#!/usr/bin/env bash
# Origin faults, injected by the proxy between the plugin and a real S3
# server: whatever the origin does, a read returns the right bytes or a
# clear error (EIO to the client, the cause in the log), never wrong
# bytes; and nothing wrong or short is ever cached.
#
#  1. bursts of 500 and 503 SlowDown: the 500s retried (retries=), the
#     SlowDowns sent again as back-pressure without using up retries
#     (throttle-timeout=; the fleet behaviour is tests/test-fleet.sh),
#     then served
#  2. connections reset mid-body, bodies truncated: retried, and every
#     chunk stored whole (a restart with every GET failing serves the
#     whole image from the cache, with no GET and no damaged chunk),
#     with a manifest and without one
#  3. flipped bytes: with a manifest, refetched, never served; if every
#     fetch of a chunk is corrupt, the read fails naming the chunk.
#     Without a manifest (manifest=none) nothing can tell a wrong body
#     from a right one: the flipped byte IS served, and cached.  That is
#     the documented limitation (README, "Verified"): then only TLS
#     (https endpoints) and the ETag pin protect the user.  S3 returns
#     no checksum for a range, so publish a manifest.
#  4. a stalled origin (delay longer than timeout=): cut, retried, served
#  5. the object replaced while served (HTTP 412): a clear error, and
#     from then on every read fails, cached chunks included (the cache
#     holds the old version, the origin the new one: serving either
#     half would mix versions); no further request goes to the origin;
#     a restart serves the new version
#  6. 403 and 404 while serving: clear errors naming bucket and key, not
#     retried; cached chunks still served; reads work again once the
#     fault is gone (a failure is not cached)
#  7. bodies that are wrong in other ways: a cut body whose sent part
#     was wrong (a retry rewrites the whole unchecked chunk, even
#     without a manifest); a Content-Encoding (refused, never served);
#     bytes past the Content-Length on a kept-alive connection (the
#     next request on it retried on a new one)
#  8. SIGTERM while the origin stalls every GET: nbdkit exits at once,
#     not after the retries of the fetches under way
#  9. a wrong body, then a stalled origin: the chunk's fetches again
#     share the first GET's budget (README, "Timeouts"), so the read
#     fails within it, not after three of them
# Counters checked: the proxy's (requests by status, faults injected)
# and the plugin's own (-D accel.stats=1, printed at exit).
# accel-test: alone (times retries against a stalled origin)
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
needs_s3
make_tmpdir
start_proxy "$tmp"

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
MiB=1048576
# 16 chunks of 1 MiB, chunks 2 and 3 all zeros: 14 chunks to fetch.
make_image "$tmp/disk.img" 16
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/disk.img.manifest"
url="s3://$bucket/disk.img"
data_chunks=14

# serve NAME [KEY=VALUE...]: nbdkit on the image through the proxy,
# counters on, no readahead (so that every GET is a demand read).
serve () {
  local name=$1; shift
  start_nbdkit "$name" -D accel.stats=1 url="$url" endpoint="$proxy_url" \
    cache-dir="$tmp/cache" readahead=0 "$@" ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
}
# faults JSON: set the proxy's rules.  A rule's uses are remembered by
# its text, so each case's rules carry their own "id".
faults () { echo "$1" > "$proxy_faults"; }
# copy_check NAME: the whole image read with nbdcopy equals the original.
copy_check () {
  rm -f "$tmp/copy.img"
  nbdcopy "$(nbd_uri "$1")" "$tmp/copy.img" || fail "nbdcopy from $1"
  cmp "$tmp/disk.img" "$tmp/copy.img" || fail "$1 served wrong bytes"
}
# range_check NAME OFFSET LEN [FILE]: one read, compared with FILE.
range_check () {
  nbdcheck same "$(nbd_uri "$1")" "${4:-$tmp/disk.img}" "$2" "$3" 1 ||
    fail "$1: read of $3 bytes at $2"
}
# read_fails NAME OFFSET LEN: the read must fail with EIO.
read_fails () {
  if nbdcheck read "$(nbd_uri "$1")" "$2" "$3" > "$tmp/read.out" 2>&1; then
    fail "$1: read of $3 bytes at $2 succeeded"
  fi
  grep -q "EIO" "$tmp/read.out" || fail "$1: not EIO: $(cat "$tmp/read.out")"
}
# count_in NAME REGEX: matching lines of nbdkit NAME's log.
count_in () { grep -cE "$2" "$tmp/$1.log"; }
# no_errors NAME: a retried hiccup leaves debug lines only.
no_errors () {
  ! grep -E "^nbdkit: (error|.*: error):" "$tmp/$1.log" ||
    fail "$1 logged errors"
}
# from_cache_only NAME CHUNKS [KEY=VALUE...]: restart with every GET
# failing and no retries: the whole image must come from the cache, each
# of its CHUNKS cached chunks verified (against the manifest, or the hash
# recorded at store time), none damaged, and no GET may reach the proxy.
from_cache_only () {
  local name=$1 chunks=$2 before
  shift 2
  faults '[{"id": "'"$name"'", "method": "GET", "action": "status", "status": 500}]'
  before=$(proxy_count status.500)
  serve "$name" retries=0 "$@"
  copy_check "$name"
  stop_nbdkit "$name"
  [ "$(proxy_count status.500)" = "$before" ] ||
    fail "$name: a chunk was not in the cache"
  # NB: concurrent first reads of a chunk may each verify it.
  [ "$(nbdkit_stat "$name" verified)" -ge "$chunks" ] ||
    fail "$name: expected every chunk verified"
  [ "$(nbdkit_stat "$name" "chunk fetches")" = 0 ] ||
    fail "$name: chunks were fetched"
  [ "$(nbdkit_stat "$name" damaged)" = 0 ] || fail "$name: damaged chunks"
  faults '[]'
}
ranged='"method": "GET", "range": "bytes="'

echo "== 1. bursts of 500 and 503 SlowDown"
# 3 failures and 3 throttle answers: even if one request met all six,
# retries=3 covers it, since SlowDown is not a failure.
rm -rf "$tmp/cache"
serve burst retries=3
get0=$(proxy_count GET)
faults '[{"id": 1, '"$ranged"', "action": "status", "status": 500, "count": 3},
         {"id": 1, '"$ranged"', "action": "status", "status": 503,
          "code": "SlowDown", "count": 3}]'
copy_check burst
stop_nbdkit burst
gets=$(( $(proxy_count GET) - get0 ))
plugin_gets=$(nbdkit_stat burst GETs)
retries=$(count_in burst ': retry [0-9]+ of 3 in')
throttled=$(count_in burst ': 503 Service Unavailable \(SlowDown.*: throttled \([0-9]+\), sending again')
echo "500: $(proxy_count status.500), 503: $(proxy_count status.503)," \
  "proxy GETs $gets, plugin GETs $plugin_gets, retries logged $retries," \
  "throttled $throttled"
[ "$(proxy_count status.500)" = 3 ] || fail "expected three 500s"
[ "$(proxy_count status.503)" = 3 ] || fail "expected three 503s"
[ "$retries" = 3 ] || fail "expected 3 retries (the 500s) in the log, got $retries"
[ "$throttled" = 3 ] || fail "expected 3 SlowDowns sent again, got $throttled"
[ "$(nbdkit_stat burst slowdowns)" = 3 ] || fail "expected 3 slowdowns counted"
[ "$(nbdkit_stat burst retries)" = 3 ] ||
  fail "SlowDowns counted as retries: $(nbdkit_stat burst retries)"
[ "$gets" = $((plugin_gets + 6)) ] ||
  fail "proxy saw $gets GETs: expected the plugin's $plugin_gets + 6 retries"
[ "$(nbdkit_stat burst "chunk fetches")" = $data_chunks ] ||
  fail "chunks fetched more than once"
no_errors burst

echo "== 2. resets mid-body, truncated bodies"
rm -rf "$tmp/cache"
serve cut
faults '[{"id": 2, '"$ranged"', "action": "reset", "after_bytes": 300000, "count": 3},
         {"id": 2, '"$ranged"', "action": "truncate", "after_bytes": 700000, "count": 3}]'
copy_check cut
stop_nbdkit cut
echo "resets: $(proxy_count faults.reset), truncations: $(proxy_count faults.truncate)," \
  "retries logged: $(count_in cut ': retry [0-9]+ of 6 in')"
[ "$(proxy_count faults.reset)" = 3 ] || fail "expected 3 resets"
[ "$(proxy_count faults.truncate)" = 3 ] || fail "expected 3 truncations"
[ "$(count_in cut ': retry [0-9]+ of 6 in')" = 6 ] || fail "expected 6 retries"
[ "$(count_in cut 'short body|Transferred a partial file|Failure when receiving')" -ge 1 ] ||
  fail "the cut bodies are not in the log"
[ "$(nbdkit_stat cut stored)" = $data_chunks ] || fail "expected $data_chunks stored"
no_errors cut
from_cache_only cut2 $data_chunks
# Without a manifest nothing but the length checks of the S3 client
# stand between a cut body and the cache: the same, on all 16 chunks.
rm -rf "$tmp/cache"
serve cutnm manifest=none
faults '[{"id": "2nm", '"$ranged"', "action": "reset", "after_bytes": 500000, "count": 2},
         {"id": "2nm", '"$ranged"', "action": "truncate", "after_bytes": 0, "count": 2}]'
copy_check cutnm
stop_nbdkit cutnm
[ "$(count_in cutnm ': retry [0-9]+ of 6 in')" = 4 ] || fail "expected 4 retries"
[ "$(nbdkit_stat cutnm stored)" = 16 ] || fail "expected 16 chunks stored"
from_cache_only cutnm2 16 manifest=none

echo "== 3a. corrupted bodies, with a manifest: refetched, never served"
rm -rf "$tmp/cache"
serve flip
get0=$(proxy_count GET)
# One read of chunks 8-11 is one GET; a byte of chunk 10 is flipped in
# it: chunk 10 alone is fetched again.
faults '[{"id": "3a", "method": "GET", "range": "bytes=8388608-",
          "action": "corrupt", "offset": '$((2 * MiB + 4321))', "count": 1}]'
range_check flip $((8 * MiB)) $((4 * MiB))
[ $(( $(proxy_count GET) - get0 )) = 2 ] || fail "expected 1 GET + 1 refetch"
grep -q "chunk 10 of $url does not match its manifest hash (try 1)" \
  "$tmp/flip.log" || fail "chunk 10's refetch not logged"
# Then whole chunks, two corrupted bodies among them.
faults '[{"id": 3, '"$ranged"', "action": "corrupt", "offset": 12345, "count": 2}]'
copy_check flip
stop_nbdkit flip
gets=$(( $(proxy_count GET) - get0 ))
vf=$(nbdkit_stat flip "verify failures")
echo "corrupted: $(proxy_count faults.corrupt), verify failures $vf, proxy GETs $gets"
[ "$(proxy_count faults.corrupt)" = 3 ] || fail "expected 3 corrupted bodies"
[ "$vf" = 3 ] || fail "expected 3 verify failures, got $vf"
[ "$(count_in flip 'does not match its manifest hash \(try')" = 3 ] ||
  fail "refetches not logged"
# 1 GET for chunks 8-11, 10 for the others, 3 refetches.
[ "$gets" = 14 ] || fail "expected 14 GETs, got $gets"
no_errors flip
from_cache_only flip2 $data_chunks

echo "== 3b. a chunk corrupted on every fetch: a clear error, never its bytes"
rm -rf "$tmp/cache"
serve rotten
c0=$(proxy_count faults.corrupt)
# Every GET that starts at chunk 6 (demand reads of chunk 6 alone, and
# its refetches) gets byte 100 flipped.
faults '[{"id": "3b", "method": "GET", "range": "bytes=6291456-",
          "action": "corrupt", "offset": 100, "count": 1000}]'
read_fails rotten $((6 * MiB)) 4096
cat "$tmp/read.out"
grep "chunk 6 (bytes 6291456-7340031) of $url does not match the manifest's hash after 3 fetches" \
  "$tmp/rotten.log" || fail "no clear error naming chunk 6"
[ $(( $(proxy_count faults.corrupt) - c0 )) = 3 ] || fail "expected 3 fetches of chunk 6"
# Its neighbours are fine, and so is chunk 6 once the origin is.
range_check rotten $((7 * MiB)) $MiB
faults '[]'
range_check rotten $((6 * MiB)) $MiB
copy_check rotten
stop_nbdkit rotten
[ "$(nbdkit_stat rotten "verify failures")" = 3 ] || fail "expected 3 verify failures"

echo "== 3c. a corrupted body without a manifest IS served (the limitation)"
rm -rf "$tmp/cache"
serve blind manifest=none
grep -q "no manifest" "$tmp/blind.log" || fail "blind: a manifest is in use"
faults '[{"id": "3c", "method": "GET", "range": "bytes=6291456-",
          "action": "corrupt", "offset": 100, "count": 1}]'
nbdcheck read "$(nbd_uri blind)" $((6 * MiB)) 4096 || fail "blind: read failed"
faults '[]'
nbdcopy "$(nbd_uri blind)" "$tmp/copy.img" || fail "blind: nbdcopy"
stop_nbdkit blind
# cmp -l: 1-based offsets.  Exactly the flipped byte differs...
diffs=$(cmp -l "$tmp/disk.img" "$tmp/copy.img" | awk '{print $1 - 1}')
echo "bytes served wrong without a manifest: ${diffs:-none}"
[ "$diffs" = $((6 * MiB + 100)) ] ||
  fail "expected exactly byte $((6 * MiB + 100)) wrong, got: ${diffs:-none}"
# ...and it is cached with the hash of what was received, so a restart
# serves it again: nothing in the cache can tell.
serve blind2 manifest=none
nbdcopy "$(nbd_uri blind2)" "$tmp/copy.img" || fail "blind2: nbdcopy"
stop_nbdkit blind2
[ "$(cmp -l "$tmp/disk.img" "$tmp/copy.img" | wc -l)" = 1 ] ||
  fail "blind2: expected the cached wrong byte again"
[ "$(nbdkit_stat blind2 damaged)" = 0 ] || fail "blind2: damage detected?"

echo "== 4. a stalled origin: cut at timeout=, retried, served"
rm -rf "$tmp/cache"
serve slow timeout=2
faults '[{"id": 4, '"$ranged"', "action": "delay", "seconds": 5, "count": 2}]'
t0=$(date +%s%N)
# One connection, in order: the first GET stalls twice (2 s each).
timeout 60 /usr/bin/python3 "$top/tests/lib/nbdcheck.py" seq "$(nbd_uri slow)" \
  "$tmp/disk.img" $MiB || fail "sequential read with a stalled origin (or hang)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
stop_nbdkit slow
timeouts=$(count_in slow 'Timeout was reached.*: retry [0-9]+ of')
echo "delays: $(proxy_count faults.delay), timeouts logged: $timeouts, read took $ms ms"
[ "$(proxy_count faults.delay)" = 2 ] || fail "expected 2 delays"
[ "$timeouts" = 2 ] || fail "expected 2 timeouts in the log, got $timeouts"
[ "$ms" -ge 4000 ] || fail "the stalls were not waited for ($ms ms)"
[ "$ms" -lt 20000 ] || fail "the stalls were not cut at timeout=2 ($ms ms)"
no_errors slow

echo "== 5. the object replaced while served: 412, then no more reads"
s3_put "$tmp/disk.img" "$bucket/moving.img"
s3_put "$tmp/disk.img.manifest" "$bucket/moving.img.manifest"
rm -rf "$tmp/cache"
serve moved url="s3://$bucket/moving.img"
range_check moved 0 $((2 * MiB))           # chunks 0 and 1 now cached
head -c $((16 * MiB)) /dev/urandom > "$tmp/new.img"
not_a_filesystem "$tmp/new.img"
"$top/indexer/accel-index" "$tmp/new.img" -o "$tmp/new.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/new.img" "$bucket/moving.img"
s412=$(proxy_count status.412)
read_fails moved $((6 * MiB)) 4096
grep "s3://$bucket/moving.img: the object changed since it was opened (ETag was \".*\"): refusing to mix versions" \
  "$tmp/moved.log" || fail "no clear error for a replaced object"
[ $(( $(proxy_count status.412) - s412 )) = 1 ] || fail "412 was retried"
# From now on nothing is served, not even cached chunks, and nothing
# more is asked of the origin.
req0=$(proxy_count requests)
read_fails moved 0 4096                    # cached
read_fails moved $((2 * MiB - 4096)) 8192  # cached + all-zero
read_fails moved $((10 * MiB)) 4096        # uncached
if nbdcheck cache "$(nbd_uri moved)" $((12 * MiB)) $MiB 2>/dev/null; then
  fail "NBD_CMD_CACHE of a replaced object succeeded"
fi
[ "$(proxy_count requests)" = "$req0" ] || fail "requests after the 412"
grep -q "moving.img changed since it was opened: not serving it any more" \
  "$tmp/moved.log" || fail "no clear error for reads after the 412"
stop_nbdkit moved
# Once the publisher has uploaded the new manifest too, a restart serves
# the new version.
s3_put "$tmp/new.img.manifest" "$bucket/moving.img.manifest"
serve moved2 url="s3://$bucket/moving.img"
nbdcopy "$(nbd_uri moved2)" "$tmp/copy.img" || fail "moved2: nbdcopy"
cmp "$tmp/new.img" "$tmp/copy.img" || fail "moved2: not the new version"
stop_nbdkit moved2

echo "== 6. 403 and 404 while serving: clear errors, nothing poisoned"
rm -rf "$tmp/cache"
serve denied
range_check denied 0 $MiB                  # chunk 0 cached
chunk=4
for st in 403 404; do
  n0=$(proxy_count "status.$st")
  faults '[{"id": 6, '"$ranged"', "action": "status", "status": '$st'}]'
  read_fails denied $((chunk * MiB)) 4096
  range_check denied 4096 65536            # the cache still serves
  [ $(( $(proxy_count "status.$st") - n0 )) = 1 ] || fail "$st was retried"
  faults '[]'
  range_check denied $((chunk * MiB)) $MiB # and the origin again
  chunk=$((chunk + 1))
done
grep "error: $url: 403 Forbidden (AccessDenied: injected by s3proxy): check the credentials" \
  "$tmp/denied.log" || fail "no clear error for 403"
grep "error: $url: no such object (404 Not Found, NoSuchKey): check the bucket and key" \
  "$tmp/denied.log" || fail "no clear error for 404"
copy_check denied
stop_nbdkit denied

echo "== 7. bodies wrong in other ways"
rm -rf "$tmp/cache"
serve splice manifest=none
# Chunk 5's GET: 600000 bytes, byte 1000 of them wrong, then cut.
faults '[{"id": "7a", "method": "GET", "range": "bytes=5242880-",
          "action": "truncate", "after_bytes": 600000, "offset": 1000, "count": 1}]'
range_check splice $((5 * MiB)) $MiB
[ "$(proxy_count faults.truncate)" -ge 4 ] || fail "7a: the body was not cut"
faults '[]'
copy_check splice
stop_nbdkit splice
rm -rf "$tmp/cache"
serve encoded
faults '[{"id": "7b", "method": "GET", "range": "bytes=7340032-",
          "action": "header", "headers": {"Content-Encoding": "gzip"}}]'
read_fails encoded $((7 * MiB)) 4096
grep -q 'the response has Content-Encoding "gzip"' "$tmp/encoded.log" ||
  fail "7b: no clear error for an encoded body: $(grep error "$tmp/encoded.log")"
faults '[]'
copy_check encoded
stop_nbdkit encoded
rm -rf "$tmp/cache"
serve long connections=1
faults '[{"id": "7c", "method": "GET", "range": "bytes=8388608-",
          "action": "long", "extra": 100, "count": 1}]'
range_check long $((8 * MiB)) $MiB
range_check long $((9 * MiB)) $MiB
faults '[]'
copy_check long
stop_nbdkit long
no_errors long

echo "== 8. SIGTERM while every GET stalls: out at once"
rm -rf "$tmp/cache"
faults '[{"id": 8, '"$ranged"', "action": "delay", "seconds": 60}]'
serve stalled prefetch=all prefetch-jitter=0 timeout=20 retries=1
for _ in $(seq 100); do
  [ "$(proxy_count faults.delay)" -ge 1 ] && break
  sleep 0.1
done
[ "$(proxy_count faults.delay)" -ge 1 ] || fail "8: prefetch sent no GET"
t0=$(date +%s%N)
kill "$pid_stalled"
for _ in $(seq 300); do
  kill -0 "$pid_stalled" 2>/dev/null || break
  sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "nbdkit exited $ms ms after SIGTERM, with GETs stalled (timeout=20 retries=1)"
! kill -0 "$pid_stalled" 2>/dev/null || fail "8: nbdkit still runs 30 s after SIGTERM"
# Not a speed target: without the abort it waits out 2 x 20 s.
[ "$ms" -lt 10000 ] || fail "8: nbdkit took $ms ms to exit"
faults '[]'

echo "== 9. a wrong body, then a stalled origin: one budget for the read"
# timeout=2 retries=5 throttle-timeout=1: 12 s for a read.  Chunk 10's
# GETs: wrong, 5 stalled, wrong, 5 stalled, wrong.  Each fetch again
# had a budget of its own before: 2 x (10 s + backoffs), about 23 s.
rm -rf "$tmp/cache"
r10='"method": "GET", "range": "bytes=10485760-"'
faults '[{"id": "9a", '"$r10"', "action": "corrupt", "offset": 0, "count": 1},
         {"id": "9b", '"$r10"', "action": "delay", "seconds": 60, "count": 5},
         {"id": "9c", '"$r10"', "action": "corrupt", "offset": 0, "count": 1},
         {"id": "9d", '"$r10"', "action": "delay", "seconds": 60, "count": 5},
         {"id": "9e", '"$r10"', "action": "corrupt", "offset": 0, "count": 1}]'
serve budget timeout=2 retries=5 throttle-timeout=1
t0=$(date +%s%N)
read_fails budget $((10 * MiB)) 4096
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "a wrong body then a stalled origin: the read failed after $ms ms (budget 12 s)"
grep "error:" "$tmp/budget.log"
# Not a speed target: the bound accel-mount's nbd timeout is built on.
[ "$ms" -lt 16000 ] || fail "9: the read took $ms ms, past its 12 s budget"
grep -q "used up its time\|timed out\|Timeout" "$tmp/budget.log" ||
  fail "9: no clear error: $(grep error "$tmp/budget.log")"
faults '[]'
range_check budget $((10 * MiB)) $MiB
stop_nbdkit budget

echo "faults injected: $(proxy_faults_summary)"
echo "error statuses: 500=$(proxy_count status.500) 503=$(proxy_count status.503)" \
  "403=$(proxy_count status.403) 404=$(proxy_count status.404) 412=$(proxy_count status.412) (real)"
echo OK
