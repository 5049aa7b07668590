#!/usr/bin/env bash
# The bench's instrument (tests/bench), without running the bench: the
# S3-like origin really delays the first byte by ~20 ms and sends ~100 MB/s
# per connection, serves ranges and ETags the plugin accepts, and logs
# every request; count.py counts a phase's GETs and bytes from that log
# and the chunks an NBD client touched from nbdkit's log filter;
# readahead-replay puts those reads through the readahead detector; and
# results.py turns rows into a table and judges the targets both ways.
. "$(dirname "$0")/lib/functions.sh"
requires nginx; requires nbdkit; requires curl
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
  skip "libnginx-mod-http-lua is not installed"
make_tmpdir
run=$tmp bench_t0=$SECONDS
. "$top/tests/bench/lib.sh"
bench="$top/tests/bench"
on_exit nbd_stop

# An image with zero chunks 2 and 3 (make_image), and its manifest.
mkdir -p "$tmp/root/bench" "$tmp/logs"
make_image "$tmp/root/bench/disk.img" 20
"$top/indexer/accel-index" "$tmp/root/bench/disk.img" \
  -o "$tmp/root/bench/disk.img.manifest" 2> /dev/null || fail "accel-index"
chmod -R a+rX "$tmp/root"
origin_start "$tmp/root"
url="$origin_url/bench/disk.img"

# 1. The origin's timing: first byte after ~20 ms; 8 MiB at ~100 MB/s
# (70-160 ms after the first byte), not at loopback speed.
read -r first total < <(curl -s -o /dev/null -r 0-8388607 \
  -w '%{time_starttransfer} %{time_total}\n' "$url")
echo "8 MiB GET: first byte $first s, total $total s"
awk -v f="$first" 'BEGIN { exit !(f >= 0.018 && f < 0.5) }' ||
  fail "first byte after $first s, not ~20 ms"
awk -v f="$first" -v t="$total" 'BEGIN { exit !(t - f >= 0.06 && t - f < 1) }' ||
  fail "8 MiB took $first..$total s: not paced at ~100 MB/s"

# 2. Ranges and If-Match as S3 has them.
etag=$(curl -sI "$url" | tr -d '\r' | awk 'tolower($1) == "etag:" { print $2 }')
[ -n "$etag" ] || fail "no ETag"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-Match: \"nope\"" -r 0-9 "$url")" = 412 ] ||
  fail "If-Match with a wrong ETag did not give 412"
curl -s -H "If-Match: $etag" -r 100-199 "$url" | cmp - <(tail -c +101 "$tmp/root/bench/disk.img" | head -c 100) ||
  fail "range 100-199 differs"

# 3. Counting a phase: the plugin reads chunks 0, 1 and 5 (one read each
# of 4 KiB, 2 KiB and 1 byte), with readahead off.  The origin must log
# exactly the image bytes fetched and the manifest apart.
count_begin "$origin_log" nginx
nbd_start a -v -D accel.stats=1 "$plugin" url="$url" cache-dir="$tmp/cache" readahead=0
for r in "0 4096" "1048576 2048" "$((5 * 1048576 + 7)) 1"; do
  set -- $r
  nbdcheck read "$nbd_uri" "$1" "$2" || fail "read $r"
done
# nbdkit's CPU as the bench reads it: from a cgroup of its own where one
# can be made (every thread's, to the microsecond), which holds nbdkit
# and has counted at least what /proc/PID/stat has, less a tick; the
# cgroup goes with nbdkit.
cpu=$(nbd_cpu)
ticks=$(awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$nbd_pid/stat")
echo "nbdkit CPU: $cpu s ($(cpu_method)); /proc/PID/stat: $ticks s"
awk -v c="$cpu" 'BEGIN { exit !(c > 0) }' || fail "nbd_cpu says $cpu s"
if [ -n "$cpu_cg_kind" ]; then
  grep -qx "$nbd_pid" "$nbd_cg/cgroup.procs" || fail "nbdkit is not in $nbd_cg"
  awk -v c="$cpu" -v t="$ticks" -v k="$(getconf CLK_TCK)" 'BEGIN { exit !(c >= t - 1 / k) }' ||
    fail "the cgroup counted $cpu s, /proc/PID/stat $ticks s"
  cg=$nbd_cg
fi
nbd_stop
[ -z "${cg:-}" ] || [ ! -e "$cg" ] || fail "$cg is still there after nbd_stop"
words=$(count_end)
echo "origin: $words"
manifest_bytes=$(stat -c %s "$tmp/root/bench/disk.img.manifest")
for want in "image_bytes=$((3 * 1048576))" "manifest_bytes=$manifest_bytes"; do
  [[ " $words " == *" $want "* ]] || fail "expected $want in: $words"
done
gets=$(echo "$words" | grep -o 'gets=[0-9]*' | cut -d= -f2)
[ "$gets" -ge 3 ] && [ "$gets" -le 4 ] || fail "expected 3 or 4 GETs: $words"

# radosgw's log: its " beast: " line per request (as tests/lib/rgw.sh
# shows one), other lines ignored.
cat > "$tmp/rgw.log" << 'EOF'
2026-11-21T17:18:12.665+0000 7f52 1 beast: 0x7f53: 127.0.0.1 - u [21/Nov/2026:17:18:12.661 +0000] "GET /b/x.img HTTP/1.1" 206 1048576 - "accel" bytes=0-1048575 latency=0.004s
2026-11-21T17:18:12.666+0000 7f52 1 ====== req done req=0x7f53 op status=0 http_status=206 ======
2026-11-21T17:18:12.667+0000 7f52 1 beast: 0x7f54: 127.0.0.1 - u [21/Nov/2026:17:18:12.662 +0000] "GET /b/x.img.manifest HTTP/1.1" 200 4096 - "accel" - latency=0.001s
2026-11-21T17:18:12.668+0000 7f52 1 beast: 0x7f55: 127.0.0.1 - - [21/Nov/2026:17:18:12.663 +0000] "HEAD /b/x.img HTTP/1.1" 200 0 - "accel" - latency=0.001s
EOF
words=$("$python" "$bench/count.py" origin rgw "$tmp/rgw.log" 0 "$(stat -c %s "$tmp/rgw.log")")
[ "$words" = "requests=3 gets=2 origin_bytes=1052672 image_bytes=1048576 manifest_bytes=4096" ] ||
  fail "radosgw log: $words"

# 4. Touched chunks from the log filter: reads in chunks 0, 2 (all
# zero: not counted), 3-4 (one read across the boundary) and the last,
# short chunk of the 20 MiB image.
nbd_start t --filter=log file "$tmp/root/bench/disk.img" logfile="$tmp/t.trace"
for r in "10 10" "$((2 * 1048576)) 4096" "$((4 * 1048576 - 512)) 1024" "$((20 * 1048576 - 1)) 1"; do
  set -- $r
  nbdcheck read "$nbd_uri" "$1" "$2" || fail "read $r"
done
nbd_stop
words=$("$python" "$bench/count.py" touched "$tmp/t.trace" 0 "$(stat -c %s "$tmp/t.trace")" \
  "$tmp/root/bench/disk.img.manifest") || fail "count.py touched"
echo "touched: $words"
# Chunks 0, 4 and 19 (chunk 3 is zero too); 3 MiB.
[ "$words" = "nbd_reads=4 nbd_read_bytes=5131 touched_chunks=3 touched=3145728" ] ||
  fail "touched: $words"

# 4b. The same reads through the readahead detector (readahead-replay):
# far apart, so no stream, and each waits on its chunk but the one in
# a zero chunk.  Then three reads in a row (4, 5 and 6 MiB): the third
# asks the rest of the image (a raw image has no file map), chunks 7-19
# that no read touches.
replay="$top/tests/bench/readahead-replay"
words=$("$replay" "$tmp/root/bench/disk.img.manifest" "$tmp/t.trace") ||
  fail "readahead-replay"
[ "$words" = "ra_reads=4 ra_waits=3 ra_meta_waits=0 ra_unread_chunks=0" ] ||
  fail "readahead-replay: $words"
for mib in 4 5 6; do
  printf 'connection=1 Read id=%d offset=0x%x count=0x100000\n' "$mib" $((mib << 20))
done > "$tmp/seq.trace"
words=$("$replay" "$tmp/root/bench/disk.img.manifest" "$tmp/seq.trace") ||
  fail "readahead-replay"
[ "$words" = "ra_reads=3 ra_waits=3 ra_meta_waits=0 ra_unread_chunks=13" ] ||
  fail "readahead-replay, sequential: $words"
"$replay" "$tmp/root/bench/disk.img.manifest" "$tmp/seq.trace" 0 2> "$tmp/err" &&
  fail "readahead-replay took a window of 0"
grep -q "bad window" "$tmp/err" || fail "readahead-replay: $(cat "$tmp/err")"
echo "readahead-replay: far reads wait each, a stream asks ahead"

# 5. The report: a table row per result, and each target judged from its
# figures (one met, one not).
rows="$tmp/rows.jsonl"
add () { "$python" "$bench/results.py" add "$rows" "$@" || fail "results.py add $*"; }
add origin=local workload=seq system=limit phase=cold seconds=1 rate=1000 unit=MB/s check=ok timeout=0
add origin=s3like workload=seq system=accel phase=cold seconds=2 rate=500 unit=MB/s check=ok \
  timeout=0 rss_kib=30000 origin_bytes=1000 gets=2 image_bytes=1000 touched=1000 \
  cpu_s=0.000002 cpu_runs=1 cache_page_mib=12.5
# Its CPU per GiB: over its cold row's touched bytes, per run.
add origin=s3like workload=seq system=accel phase=warm seconds=1.01 rate=990 unit=MB/s check=ok \
  timeout=0 rss_kib=100000 origin_bytes=0 gets=0 cpu_s=0.000003 cpu_runs=3 cache_page_mib=80
add origin=s3like workload=seq system=accel phase=restart seconds=1.5 rate=660 unit=MB/s check=ok \
  timeout=0 rss_kib=30000 origin_bytes=0 gets=0 restarts=10 restarts_nonzero=1 \
  restarts_max_bytes=2097152 cpu_s=0.000005 cpu_runs=1 \
  restarts_cpu_s=0.000001,0.000002,0.000009,0.000004
add origin=s3like workload=seq system=curl phase=cold seconds=20 rate=50 unit=MB/s check=ok \
  timeout=0 rss_kib=5000 origin_bytes=1000 gets=20
echo '{"date": "today", "variant": "test", "origin": {"aggregate_mbs": 400}}' > "$tmp/meta.json"
cp "$top/README.md" "$tmp/README.md"
"$python" "$bench/results.py" report "$rows" "$tmp/meta.json" --out "$tmp/report.md" \
  --readme "$tmp/README.md" > "$tmp/report.txt" || fail "results.py report"
cat "$tmp/report.md"
grep -q '^| sequential checksum, big file | S3-like | accel cold | 2.00 | 500 MB/s | 2.15 | 12.5 MiB | 1.0 kB | 2 | 2000000 | 1.00 | 29.3 MiB | 0.50 | 10.0 |$' \
  "$tmp/report.md" || fail "accel cold row"
grep -q '^| sequential checksum, big file | S3-like | accel warm | 1.01 | 990 MB/s | 1.07 | 80.0 MiB |' \
  "$tmp/report.md" || fail "accel warm row"
grep -q '^- \*\*MET\*\*: cold rows: nbdkit CPU <= 3 s per GiB fetched: seq cold 2.15$' \
  "$tmp/report.md" || fail "cold CPU target"
grep -q '^- \*\*NOT MET\*\*: warm and restart rows: nbdkit CPU <= 1 s per GiB read: seq warm 1.07, seq restart 4.29$' \
  "$tmp/report.md" || fail "warm CPU target"
# The restart row's CPU: the median of its restarts (4 of 1 2 4 5 9).
grep -q '^| sequential checksum, big file | S3-like | accel restart | 1.50 | 660 MB/s | 4.29 |' \
  "$tmp/report.md" || fail "accel restart row"
grep -q '^- \*\*NOT MET\*\*: accel.s cache files hold <= 64 MiB of page cache .*: max 80.0 MiB' \
  "$tmp/report.md" || fail "page cache target"
grep -q '^- \*\*MET\*\*: origin bytes <= 1.05x .*: seq 1.00$' "$tmp/report.md" || fail "touched target"
# One restart of ten took bytes: the target counts every run.
grep -q '^- \*\*NOT MET\*\*: a restart takes 0 bytes .*: seq: 1 of 10 runs took bytes, up to 2.1 MB$' \
  "$tmp/report.md" || fail "restart target"
grep -q '^- \*\*MET\*\*: warm within 5 % of the limit .*: seq 0.99$' "$tmp/report.md" || fail "warm target"
# 500 MB/s against the origin's 400 MB/s aggregate (below the limit's 1000).
grep -q '^- \*\*MET\*\*: cold sequential >= 80 % .*1.25 x origin' "$tmp/report.md" || fail "cold target"
grep -q '^- \*\*MET\*\*: cold sequential >= 5x .*: 10.0x' "$tmp/report.md" || fail "5x target"
grep -q '^- \*\*NOT MET\*\*: plugin peak RSS <= 64 MiB .*: max 97.7 MiB' "$tmp/report.md" || fail "RSS target"
grep -q '^- \*\*NOT MEASURED\*\*: cold random' "$tmp/report.md" || fail "random target"
cmp -s "$tmp/report.md" "$tmp/report.txt" || fail "stdout differs from --out"
# The README gets the report between its markers, the rest unchanged.
sed -n '/<!-- bench:begin -->/,/<!-- bench:end -->/p' "$tmp/README.md" |
  grep -q '| accel cold | 2.00 |' || fail "README not updated"
diff <(sed '/<!-- bench:begin -->/,/<!-- bench:end -->/d' "$top/README.md") \
  <(sed '/<!-- bench:begin -->/,/<!-- bench:end -->/d' "$tmp/README.md") ||
  fail "README changed outside the markers"
echo "PASS"
