#!/usr/bin/env bash
# Hot-list prefetch end to end, through the counting proxy in front of
# radosgw: trace=FILE records first reads in order (and every chunk
# once under parallel readers); accel-index --hot stores the trace as
# the hot list (also by --update, byte-identical) and accel-inspect
# shows it; prefetch=hot fetches exactly the hot chunks in the
# background, a demand read is served promptly while prefetch GETs are
# stuck, and prefetch yields while a demand read waits on the origin;
# prefetch-rate caps throughput; prefetch=all hydrates in large GETs
# (prefetch-request-size=), one per run of missing chunks, each chunk
# verified alone, after a random prefetch-jitter=; it hydrates the whole image,
# after which nbdkit starts and serves every byte with the origin
# unreachable (a chunk then missing fails with EIO and a reason), while
# an image not fully cached, or replaced since, is refused clearly.  Bad
# traces and bad keys fail clearly.
# accel-test: alone (times a demand read beside stuck prefetch GETs)
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires nbdinfo; requires qemu-io
needs_s3
make_tmpdir
start_proxy "$tmp"
MiB=1048576

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
# 20 chunks of 1 MiB; chunks 2 and 3 are zeros.
make_image "$tmp/disk.img" 20
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/plain.manifest" 2>/dev/null ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/plain.manifest" "$bucket/disk.img.manifest"
url="s3://$bucket/disk.img"
# (prefetch-jitter=0: the timings below start at once; 6b tests it.)
args=(url="$url" endpoint="$proxy_url" readahead=0 prefetch-jitter=0 -D accel.stats=1)
sha=$(sha256sum "$tmp/disk.img" | cut -c1-64)

# wait_log NAME TEXT SECS: wait until nbdkit NAME's log has TEXT.
wait_log () {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$tmp/$1.log" && return 0
    sleep 0.1
  done
  fail "nbdkit $1: no '$2' in its log after $3 s"
}
# data_bytes BEFORE: body bytes through the proxy since BEFORE, without
# the manifest's download (every start downloads it into a new cache).
data_bytes () {
  echo $(($(proxy_count bytes) - $1))
}

# 1. trace=FILE: first reads, in order, once each; zero chunks too; not
# NBD_CMD_CACHE (chunk 18).
start_nbdkit a "${args[@]}" cache-dir="$tmp/c1" trace="$tmp/run1.trace" \
  prefetch=none || fail "nbdkit: $(cat "$tmp/a.log")"
for c in 7 5 5 12 7 3; do
  nbdcheck read "$(nbd_uri a)" $((c * MiB + 100)) 1000 || fail "read chunk $c"
done
nbdcheck read "$(nbd_uri a)" $((16 * MiB - 10)) 100 || fail "read 15-16"
nbdcheck cache "$(nbd_uri a)" $((18 * MiB)) $MiB || fail "cache chunk 18"
stop_nbdkit a
printf 'accel-trace v1 image-sha256=%s image-size=%d chunk-size=%d\n7\n5\n12\n3\n15\n16\n' \
  "$sha" $((20 * MiB)) $MiB > "$tmp/want.trace"
diff -u "$tmp/want.trace" "$tmp/run1.trace" || fail "trace is not the first reads in order"

# Parallel readers (nbdcopy, several connections): every chunk once.
start_nbdkit b "${args[@]}" cache-dir="$tmp/c1" trace="$tmp/run2.trace" \
  prefetch=none || fail "nbdkit: $(cat "$tmp/b.log")"
nbdcopy --connections=4 --requests=16 --request-size=65536 "$(nbd_uri b)" \
  "$tmp/copy.img" || fail "nbdcopy"
stop_nbdkit b
# (nbdcopy skips the zero chunks 2 and 3: they are holes.)
[ "$(tail -n +2 "$tmp/run2.trace" | sort -n | tr '\n' ' ')" = "0 1 $(seq 4 19 | tr '\n' ' ')" ] ||
  fail "parallel trace is not every data chunk once: $(tail -n +2 "$tmp/run2.trace" | tr '\n' ' ')"
echo "trace: first reads in order; parallel readers: 18 data chunks, each once"

# 2. accel-index --hot: the trace becomes the hot list (zero chunk 3 left
# out); --update gives the same file; accel-inspect shows the length.
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/hot.manifest" \
  --hot "$tmp/run1.trace" 2>"$tmp/index.log" || fail "accel-index --hot: $(cat "$tmp/index.log")"
cp "$tmp/plain.manifest" "$tmp/updated.manifest"
"$top/indexer/accel-index" --update "$tmp/updated.manifest" \
  --hot "$tmp/run1.trace" 2>>"$tmp/index.log" || fail "accel-index --update"
cmp "$tmp/hot.manifest" "$tmp/updated.manifest" ||
  fail "--update differs from indexing with --hot"
"$top/tools/accel-inspect" "$tmp/hot.manifest" > "$tmp/inspect.txt" || fail "accel-inspect"
grep -Eq '^hot chunks: +5$' "$tmp/inspect.txt" || fail "accel-inspect: $(grep hot "$tmp/inspect.txt")"
python3 -c 'import sqlite3,sys
print(" ".join(str(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("SELECT chunk_idx FROM hot ORDER BY rank")))' \
  "$tmp/hot.manifest" > "$tmp/hot.txt"
[ "$(cat "$tmp/hot.txt")" = "7 5 12 15 16" ] || fail "hot list is $(cat "$tmp/hot.txt")"
# Merged by first appearance: run2 adds the chunks run1 did not read.
"$top/indexer/accel-index" --update "$tmp/updated.manifest" \
  --hot "$tmp/run1.trace" --hot "$tmp/run2.trace" 2>>"$tmp/index.log" ||
  fail "accel-index --update with two traces"
"$top/tools/accel-inspect" "$tmp/updated.manifest" | grep -Eq '^hot chunks: +18$' ||
  fail "two traces: not 18 hot chunks"
s3_put "$tmp/hot.manifest" "$bucket/disk.img.manifest"
echo "accel-index --hot: hot list 7 5 12 15 16; --update identical"

# 3. prefetch=hot (the default with a hot list): exactly the hot chunks,
# in the background; reading them then takes no GET.
b0=$(proxy_count bytes)
start_nbdkit c "${args[@]}" cache-dir="$tmp/c2" || fail "nbdkit: $(cat "$tmp/c.log")"
wait_log c "prefetch: done" 10
manifest_bytes=$(stat -c %s "$tmp/hot.manifest")
got=$(($(data_bytes "$b0") - manifest_bytes))
[ "$got" = $((5 * MiB)) ] || fail "prefetch=hot fetched $got bytes, not 5 MiB"
# (recorded in the map by the next flush, every 100 ms)
for _ in $(seq 50); do
  [ "$(cached_chunks "$tmp/c2" | tr '\n' ' ')" = "5 7 12 15 16 " ] && break
  sleep 0.1
done
[ "$(cached_chunks "$tmp/c2" | tr '\n' ' ')" = "5 7 12 15 16 " ] ||
  fail "cached after prefetch: $(cached_chunks "$tmp/c2" | tr '\n' ' ')"
g0=$(proxy_count GET)
for c in 5 7 12 15 16; do
  nbdcheck read "$(nbd_uri c)" $((c * MiB)) $MiB || fail "read chunk $c"
done
[ "$(proxy_count GET)" = "$g0" ] || fail "reading hot chunks went to the origin"
stop_nbdkit c
[ "$(nbdkit_stat c "prefetched chunks")" = 5 ] || fail "stats: prefetched chunks"
[ "$(nbdkit_stat c "prefetched bytes")" = $((5 * MiB)) ] || fail "stats: prefetched bytes"
echo "prefetch=hot: 5 chunks, 5 MiB, the hot ones; reads after it: 0 GETs"

# 4a. A demand read while both prefetch GETs are stuck (3 s each) is
# served at once: prefetch holds two connections, not the pool.
cat > "$proxy_faults" <<EOF
[{"method": "GET", "match": "disk.img", "range": "bytes=$((7 * MiB))-", "action": "delay", "seconds": 3},
 {"method": "GET", "match": "disk.img", "range": "bytes=$((5 * MiB))-", "action": "delay", "seconds": 3}]
EOF
start_nbdkit d "${args[@]}" cache-dir="$tmp/c3" prefetch-rate=0 ||
  fail "nbdkit: $(cat "$tmp/d.log")"
sleep 0.5
t0=$(date +%s%N)
nbdcheck read "$(nbd_uri d)" $((10 * MiB)) 4096 || fail "demand read during prefetch"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "demand read while prefetch GETs are stuck: $ms ms"
[ "$ms" -lt 2000 ] || fail "demand read waited behind prefetch: $ms ms"
grep -q "prefetch: done" "$tmp/d.log" && fail "prefetch was not stuck (test broken)"
wait_log d "prefetch: done" 20
stop_nbdkit d
echo '[]' > "$proxy_faults"

# 4b. Prefetch yields: while a demand read waits 3 s on the origin,
# prefetch (all, 1 MiB requests of 0.3 s each, two workers) sends at most
# what was already under way, plus what it sent while the client
# started (qemu-io, a C program: a python3 client took up to ~1 s on a
# loaded machine, 2 workers x 3 requests, and once 9 GETs in all).
# Without the yield it sends about 20.
cat > "$proxy_faults" <<EOF
[{"method": "GET", "match": "disk.img", "range": "bytes=$((19 * MiB))-", "action": "delay", "seconds": 3},
 {"method": "GET", "match": "disk.img", "action": "delay", "seconds": 0.3}]
EOF
start_nbdkit e "${args[@]}" cache-dir="$tmp/c4" prefetch=all prefetch-rate=0 \
  request-size=1M prefetch-request-size=1M || fail "nbdkit: $(cat "$tmp/e.log")"
sleep 0.5
g0=$(proxy_count GET)
qemu-io -f raw -r -c "read $((19 * MiB)) 4096" "$(nbd_uri e)" > "$tmp/qio.out" ||
  fail "demand read: $(cat "$tmp/qio.out")"
during=$(($(proxy_count GET) - g0 - 1))
echo "prefetch GETs while a demand read waited 3 s on the origin: $during"
[ "$during" -le 8 ] || fail "prefetch did not yield: $during GETs"
wait_log e "prefetch: done" 30
stop_nbdkit e
echo '[]' > "$proxy_faults"

# 5. prefetch-rate caps throughput: 18 MiB at 4 MiB/s takes about 3.5 s
# (the first request goes at once; 4 MiB requests: 2 + 4 x 4 MiB);
# without a cap well under that.
for rate in 4M 0; do
  rm -rf "$tmp/c5"
  start_nbdkit f "${args[@]}" cache-dir="$tmp/c5" prefetch=all \
    prefetch-rate=$rate prefetch-request-size=4M manifest="$tmp/plain.manifest" ||
    fail "nbdkit: $(cat "$tmp/f.log")"
  wait_log f "prefetch: done" 30
  secs=$(grep -o 'prefetch: done in [0-9.]*' "$tmp/f.log" | grep -o '[0-9.]*$')
  stop_nbdkit f
  [ "$(nbdkit_stat f "prefetched bytes")" = $((18 * MiB)) ] || fail "prefetch=all: not 18 MiB"
  echo "prefetch=all of 18 MiB with prefetch-rate=$rate: $secs s"
  if [ $rate = 4M ]; then
    awk -v s="$secs" 'BEGIN { exit !(s >= 2.5 && s <= 20) }' ||
      fail "prefetch-rate=4M: 18 MiB in $secs s"
  else
    awk -v s="$secs" 'BEGIN { exit !(s < 2.5) }' ||
      fail "prefetch-rate=0: 18 MiB took $secs s"
  fi
done

# 6. Bad input.
expect_fail () {
  local what=$1 msg=$2; shift 2
  if "$@" > "$tmp/bad.log" 2>&1; then
    fail "$what: accepted"
  fi
  grep -q -- "$msg" "$tmp/bad.log" || fail "$what: no '$msg' in: $(cat "$tmp/bad.log")"
}
head -c $((3 * MiB)) /dev/urandom > "$tmp/other.img"
not_a_filesystem "$tmp/other.img"
"$top/indexer/accel-index" "$tmp/other.img" -o "$tmp/other.manifest" 2>/dev/null
expect_fail "trace of another image" "a trace belongs to the image" \
  "$top/indexer/accel-index" --update "$tmp/other.manifest" --hot "$tmp/run1.trace"
expect_fail "trace of another image (indexing)" "a trace belongs to the image" \
  "$top/indexer/accel-index" "$tmp/other.img" -o "$tmp/x.manifest" --hot "$tmp/run1.trace"
(head -n 1 "$tmp/run1.trace"; echo 5; echo five) > "$tmp/bad1.trace"
expect_fail "malformed trace" 'line 3: "five" is not a chunk index' \
  "$top/indexer/accel-index" --update "$tmp/updated.manifest" --hot "$tmp/bad1.trace"
(head -n 1 "$tmp/run1.trace"; echo 20) > "$tmp/bad2.trace"
expect_fail "chunk out of range" "chunk 20 is out of range" \
  "$top/indexer/accel-index" --update "$tmp/updated.manifest" --hot "$tmp/bad2.trace"
echo "not a trace" > "$tmp/bad3.trace"
expect_fail "not a trace" "not an accel trace" \
  "$top/indexer/accel-index" --update "$tmp/updated.manifest" --hot "$tmp/bad3.trace"
[ -e "$tmp/x.manifest" ] && fail "a failed run wrote a manifest"
# nbdkit_try ARGS...: start nbdkit, run nothing, exit: a config that is
# wrongly accepted cannot leave a daemon behind.  NB: a socket in $tmp,
# not -U -: nbdkit 1.32 leaves the /tmp/nbdkitXXXXXX it makes for that
# behind when the plugin refuses its config.
nbdkit_try () { nbdkit -U "$tmp/try.sock" --log=stderr "$plugin" "$@" --run true; }
expect_fail "prefetch=bogus" "prefetch=bogus: must be hot, all or none" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" prefetch=bogus
expect_fail "prefetch-rate=garbage" "prefetch-rate=garbage: must be bytes per second" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" prefetch-rate=garbage
expect_fail "trace= relative" "must be an absolute path" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" trace=rel.trace
expect_fail "trace= without a manifest" "needs the image's manifest" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" \
  manifest=none trace="$tmp/x.trace"
expect_fail "prefetch-request-size=3M" "prefetch-request-size: must be a power of two" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" prefetch-request-size=3M
expect_fail "prefetch-request-size=32M" "prefetch-request-size: must be a power of two" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" prefetch-request-size=32M
expect_fail "prefetch-jitter=601" "prefetch-jitter: must be between 0 and 600" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c6" prefetch-jitter=601
echo "bad traces and keys: refused with clear errors"

# 6b. Hydration in large GETs: prefetch=all sends one GET per run of
# missing chunks, up to prefetch-request-size= (8M by default), skipping
# cached chunks (8, 9, read first) and zero chunks (2, 3).  The GETs
# and their Range sizes come from the proxy's log.  Every byte is right
# and reading the image afterwards takes no GET.
# prefetch_gets LINE: the Ranges of the image's GETs logged after LINE
# of the proxy's log, as chunks "first-last", sorted (two workers).
prefetch_gets () {
  tail -n +$(($1 + 1)) "$tmp/proxy.log" | grep -F "\"GET /$bucket/disk.img" |
    grep -oE 'bytes=[0-9]+-[0-9]+$' | tr -- '-=' '  ' |
    awk -v m=$MiB '{ printf "%d-%d\n", $2 / m, ($3 + 1) / m - 1 }' | sort -n | tr '\n' ' '
}
# hydrate NAME SIZE WANT [KEY=VALUE...]: prefetch=all with
# prefetch-request-size=SIZE (empty: the default) on a cache holding
# chunks 8 and 9; its GETs must be WANT; every byte right after it.
hydrate () {
  local name=$1 size=$2 want=$3 l0 g0 got; shift 3
  rm -rf "$tmp/c9"
  start_nbdkit "${name}pre" "${args[@]}" cache-dir="$tmp/c9" prefetch=none \
    manifest="$tmp/plain.manifest" || fail "nbdkit: $(cat "$tmp/${name}pre.log")"
  nbdcheck read "$(nbd_uri "${name}pre")" $((8 * MiB)) $((2 * MiB)) || fail "read 8-9"
  stop_nbdkit "${name}pre"
  l0=$(wc -l < "$tmp/proxy.log")
  start_nbdkit "$name" "${args[@]}" cache-dir="$tmp/c9" prefetch=all prefetch-rate=0 \
    manifest="$tmp/plain.manifest" ${size:+prefetch-request-size=$size} "$@" ||
    fail "nbdkit: $(cat "$tmp/$name.log")"
  wait_log "$name" "prefetch: done" 30
  grep -q "prefetch: done.* 0 failed" "$tmp/$name.log" || fail "$name: chunks failed"
  got=$(prefetch_gets "$l0")
  [ "$got" = "$want" ] ||
    fail "prefetch-request-size=${size:-default}: GETs of chunks $got, not $want"
  g0=$(proxy_count GET)
  nbdcopy "$(nbd_uri "$name")" "$tmp/hydrated.img" || fail "nbdcopy"
  cmp "$tmp/disk.img" "$tmp/hydrated.img" || fail "$name: wrong bytes served"
  [ "$(proxy_count GET)" = "$g0" ] || fail "$name: reading after prefetch=all took GETs"
  stop_nbdkit "$name"
  [ "$(cached_chunks "$tmp/c9" | wc -l)" = 18 ] || fail "$name: not 18 chunks cached"
  echo "prefetch-request-size=${size:-8M (default)}: GETs of chunks $got"
}
hydrate h1 1M "0-0 1-1 4-4 5-5 6-6 7-7 10-10 11-11 12-12 13-13 14-14 15-15 16-16 17-17 18-18 19-19 "
hydrate h4 4M "0-1 4-7 10-13 14-17 18-19 "
hydrate h8 "" "0-1 4-7 10-17 18-19 "
hydrate h16 16M "0-1 4-7 10-19 "

# A flipped byte in chunk 13, inside the 8 MiB GET of chunks 10-17:
# chunk 13 alone is fetched again (one more GET, of 1 MiB), the other
# seven are kept, and nothing wrong is served or cached.
cat > "$proxy_faults" <<EOF
[{"method": "GET", "match": "disk.img", "range": "bytes=$((10 * MiB))-",
  "action": "corrupt", "offset": $((3 * MiB + 5)), "count": 1}]
EOF
hydrate hc "" "0-1 4-7 10-17 13-13 18-19 "
echo '[]' > "$proxy_faults"
[ "$(proxy_count faults.corrupt)" = 1 ] || fail "the corrupt rule did not fire"
[ "$(nbdkit_stat hc "verify failures")" = 1 ] || fail "stats: not 1 verify failure"
grep -q "chunk 13 of .* does not match its manifest hash (try 1)" "$tmp/hc.log" ||
  fail "no verify failure logged for chunk 13"
echo "a flipped byte in a large GET: its chunk alone refetched, nothing wrong served"

# prefetch-jitter=3: prefetch starts after a random 0-3 s, says so in
# the log, and waits it (its "done in" counts from the plan).
hydrate hj "" "0-1 4-7 10-17 18-19 " prefetch-jitter=3
delay=$(grep -oE 'prefetch: starting in [0-9.]+ s \(jitter: 0 to 3 s\)' "$tmp/hj.log" |
  grep -oE '[0-9]+\.[0-9]+' | head -n 1) ||
  fail "no jitter in the log: $(grep prefetch "$tmp/hj.log")"
secs=$(grep -o 'prefetch: done in [0-9.]*' "$tmp/hj.log" | grep -o '[0-9.]*$')
awk -v d="$delay" -v s="$secs" 'BEGIN { exit !(d != "" && d >= 0 && d <= 3 && s + 0.1 >= d) }' ||
  fail "jitter: started after $delay s, done in $secs s"
echo "prefetch-jitter=3: started after $delay s, done in $secs s"

# 7. prefetch=all hydrates everything; then, with the origin unreachable
# (the proxy stopped: same endpoint, connection refused), nbdkit starts
# offline and serves every byte.
s3_put "$tmp/disk.img" "$bucket/other.img"
start_nbdkit g "${args[@]}" cache-dir="$tmp/c7" prefetch=all ||
  fail "nbdkit: $(cat "$tmp/g.log")"
wait_log g "prefetch: done" 20
grep -q "prefetch: done.* 0 failed" "$tmp/g.log" || fail "prefetch=all failed some chunks"
stop_nbdkit g
[ "$(cached_chunks "$tmp/c7" | wc -l)" = 18 ] || fail "not all 18 data chunks cached"
# A second image, opened once and only partly read.
start_nbdkit h url="s3://$bucket/other.img" endpoint="$proxy_url" \
  cache-dir="$tmp/c7" manifest=none prefetch=none || fail "nbdkit: $(cat "$tmp/h.log")"
nbdcheck read "$(nbd_uri h)" 0 4096 || fail "read other.img"
stop_nbdkit h

# An origin that answers, if only 503 SlowDown, is not unreachable:
# no offline start, though the cache is complete (the object may have
# been replaced; only the origin can say).
echo '[{"id": "slow7", "action": "status", "status": 503, "code": "SlowDown"}]' > "$proxy_faults"
expect_fail "throttled at start" "throttle-timeout=3" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c7" retries=1 throttle-timeout=3
grep -q "OFFLINE" "$tmp/bad.log" && fail "served offline while the origin answered 503"
echo '[]' > "$proxy_faults"
echo "an origin that throttles at start: an error, not an offline start"

kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null
# With the metrics file too: offline there is no S3 object to name it by.
start_nbdkit i "${args[@]}" cache-dir="$tmp/c7" retries=1 \
  metrics-file="$tmp/offline.prom" metrics-interval=1 ||
  fail "offline start: $(cat "$tmp/i.log")"
grep -q "origin is unreachable: serving .* OFFLINE" "$tmp/i.log" ||
  fail "no clear offline message"
nbdcopy "$(nbd_uri i)" "$tmp/offline.img" || fail "nbdcopy offline"
cmp "$tmp/disk.img" "$tmp/offline.img" || fail "offline copy differs"
nbdcheck random "$(nbd_uri i)" "$tmp/disk.img" 100 || fail "offline random reads"
grep -q '^accel_image_info{image=".*disk.img",metrics_file="offline.prom",version=""} 1$' "$tmp/offline.prom" ||
  fail "offline metrics file: $(cat "$tmp/offline.prom" 2>&1)"
stop_nbdkit i
echo "offline start after prefetch=all: every byte served, origin down"

expect_fail "offline, not hydrated" "holds 1 of the 20 data chunks" \
  nbdkit_try url="s3://$bucket/other.img" \
  endpoint="$proxy_url" cache-dir="$tmp/c7" manifest=none retries=1
grep -q "cannot serve it offline" "$tmp/bad.log" || fail "no 'cannot serve it offline'"
expect_fail "offline, never served" "has never served it" \
  nbdkit_try "${args[@]}" cache-dir="$tmp/c8" retries=1
echo "offline start refused for a partial cache and an unknown image"

# Offline, a chunk the cache cannot serve (damaged at rest: dropped on
# its first read) fails with EIO and says why.
data=$(dirname "$(grep -l "^description: $url\$" "$tmp"/c7/images/*/info)")/data
printf '\xff' | dd of="$data" bs=1 seek=$((10 * MiB + 5)) conv=notrunc status=none
start_nbdkit k "${args[@]}" cache-dir="$tmp/c7" retries=1 ||
  fail "offline start: $(cat "$tmp/k.log")"
nbdcheck read "$(nbd_uri k)" $((10 * MiB)) 4096 > "$tmp/miss.out" 2>&1 &&
  fail "a damaged chunk was served offline"
grep -q "not in the cache, and the origin was unreachable when nbdkit started" "$tmp/k.log" ||
  fail "no clear message for an offline miss"
nbdcheck read "$(nbd_uri k)" $((11 * MiB)) 4096 || fail "offline read of chunk 11"
stop_nbdkit k
echo "offline miss: EIO, with the reason in the log"

# 8. Never another version: with the origin back (the proxy again, on
# the same port: the record is keyed by url= and endpoint=), the object
# is replaced and seen once online, not hydrated.  With the origin down
# again, the old complete cache must not be served.
port=${proxy_url##*:}
python3 "$top/tests/lib/s3proxy.py" --upstream "$ACCEL_TEST_S3_ENDPOINT" \
  --listen "127.0.0.1:$port" --port-file "$tmp/proxy2-port" \
  > "$tmp/proxy2.log" 2>&1 &
proxy2=$!
on_exit "kill $proxy2"
for _ in $(seq 100); do [ -s "$tmp/proxy2-port" ] && break; sleep 0.1; done
[ -s "$tmp/proxy2-port" ] || fail "proxy did not restart on port $port"
head -c $((20 * MiB)) /dev/urandom > "$tmp/disk2.img"
not_a_filesystem "$tmp/disk2.img"
"$top/indexer/accel-index" "$tmp/disk2.img" -o "$tmp/disk2.manifest" 2>/dev/null
s3_put "$tmp/disk2.img" "$bucket/disk.img"
s3_put "$tmp/disk2.manifest" "$bucket/disk.img.manifest"
start_nbdkit j "${args[@]}" cache-dir="$tmp/c7" prefetch=none ||
  fail "nbdkit: $(cat "$tmp/j.log")"
stop_nbdkit j
kill "$proxy2"; wait "$proxy2" 2>/dev/null
expect_fail "offline, replaced version" "cannot serve it offline" \
  nbdkit_try "${args[@]}" \
  cache-dir="$tmp/c7" retries=1
grep -q "holds 0 of the 20 data chunks" "$tmp/bad.log" ||
  fail "refused for another reason: $(cat "$tmp/bad.log")"
echo "offline start refused once the object was replaced"
echo OK
