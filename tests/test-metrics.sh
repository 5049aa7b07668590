#!/usr/bin/env bash
# metrics-file=: Prometheus text format for node_exporter's textfile
# collector.
#
#  1. The file is there as soon as nbdkit has started, and promtool
#     (Debian's prometheus package) finds it clean: parses strictly and
#     passes its lint (HELP, TYPE, counter names, histogram layout).
#  2. A known read pattern on a 20 MiB image (1 MiB chunks, chunks 2
#     and 3 all zeros): 5 chunk reads that miss, the same 5 again (hits)
#     and one read of a zero chunk.  The periodic file shows it within a
#     few seconds; after a stop, the final file has exactly: 6 hits, 5
#     misses, their bytes, the hit ratio 6/11, 5 chunk fetches and 5
#     latencies in the histogram, GETs and bytes equal to what the
#     counting proxy saw, 5 MiB cached and hydration (5+2)/20, and the
#     same numbers as the -D accel.stats=1 line.  The cache-size= cap is
#     there as accel_cache_dir_cap_bytes, and absent without a cap.
#  3. Atomic: while nbdkit rewrites it every second, a reader that keeps
#     reading it never sees a partial file, and it is a new file each
#     time; no temporary file is left behind.
#     Every series has the labels image= and metrics_file= (the file's
#     name), so that two nbdkits serving one image share no series.
#  4. Bad input: a relative path, a directory that does not exist and
#     metrics-interval=0 fail at start-up with a clear message.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires promtool
needs_s3
make_tmpdir
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
make_image "$tmp/disk.img" 20
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/m/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/m/disk.img.manifest"
mkdir "$tmp/textfile"
prom="$tmp/textfile/accel.prom"
MiB=1048576

# metric NAME [LABEL=VALUE]: the value of the series
# NAME{image=...,metrics_file=...} (with that extra label, if given) in
# $prom, or "missing".
metric () {
  awk -v name="$1" -v extra="${2:-}" '
    index($0, name "{") == 1 && (extra == "" || index($0, extra) > 0) &&
    (extra != "" || gsub(/="/, "&") == 2) { print $2; found = 1 }
    END { if (!found) print "missing" }' "$prom"
}
expect () {
  local got
  got=$(metric "$1" "${3:-}")
  [ "$got" = "$2" ] || fail "$1${3:+ $3}: got $got, expected $2"
}
promtool_clean () {
  promtool check metrics < "$prom" > "$tmp/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$tmp/promtool.out")"
  [ ! -s "$tmp/promtool.out" ] || fail "promtool: $(cat "$tmp/promtool.out")"
}

start_nbdkit a url="s3://$bucket/m/disk.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" cache-size=64M readahead=0 metrics-file="$prom" \
  metrics-interval=1 -D accel.stats=1 || fail "nbdkit: $(cat "$tmp/a.log")"

# ---- 1. there at once, and clean ----
[ -f "$prom" ] || fail "no metrics file after start"
promtool_clean
expect accel_cache_hits_total 0
expect accel_hydration_ratio 0.1
expect accel_image_bytes $((20 * MiB))
expect accel_cache_dir_cap_bytes $((64 * MiB))
grep -q "{image=\"s3://$bucket/m/disk.img\",metrics_file=\"accel.prom\"}" "$prom" ||
  fail "labels: $(grep -m1 accel_cache_hits_total "$prom")"
echo "at start: $(wc -l < "$prom") lines, promtool clean"

# ---- 3. (first half) a reader that never sees a partial file ----
/usr/bin/python3 - "$prom" > "$tmp/watch.out" 2>&1 <<'EOF' &
import os, sys, time
path = sys.argv[1]
first = open(path).read()
lines, inodes, reads = first.count("\n"), set(), 0
end = time.time() + 5
while time.time() < end:
    with open(path) as f:
        inodes.add(os.fstat(f.fileno()).st_ino)
        text = f.read()
    reads += 1
    if (not text.startswith("# HELP ") or not text.endswith("\n")
            or text.count("\n") != lines):
        sys.exit("partial file after %d reads: %r" % (reads, text[-80:]))
print("%d reads, %d different files, none partial" % (reads, len(inodes)))
# NB: 2 files at least, so that a replacement happened while it read
# (on a loaded machine, e.g. under ASan, one a second is not assured).
sys.exit(0 if len(inodes) >= 2 else "only %d files in 5 s" % len(inodes))
EOF
watcher=$!

# ---- 2. a known read pattern ----
for round in miss hit; do
  for c in 4 5 6 7 8; do
    nbdcheck read "$(nbd_uri a)" $((c * MiB)) $MiB || fail "read chunk $c"
  done
done
nbdcheck read "$(nbd_uri a)" $((2 * MiB)) $MiB || fail "read zero chunk"

wait $watcher || fail "watcher: $(cat "$tmp/watch.out")"
cat "$tmp/watch.out"

# The periodic file catches up within a few seconds.
for _ in $(seq 50); do
  [ "$(metric accel_cache_hits_total)" = 6 ] &&
    [ "$(metric accel_cache_bytes)" = $((5 * MiB)) ] && break
  sleep 0.1
done
expect accel_cache_hits_total 6
expect accel_cache_bytes $((5 * MiB))
promtool_clean
stop_nbdkit a

# ---- 2. the final file ----
promtool_clean
cp "$prom" "$tmp/final.prom"
expect accel_cache_hits_total 6
expect accel_cache_misses_total 5
expect accel_cache_hit_bytes_total $((6 * MiB))
expect accel_cache_miss_bytes_total $((5 * MiB))
expect accel_cache_hit_ratio 0.545455
expect accel_chunk_fetches_total 5
expect accel_fetch_latency_seconds_count 5
expect accel_fetch_latency_seconds_bucket 5 'le="+Inf"'
expect accel_origin_gets_total "$(proxy_count GET)"
expect accel_origin_bytes_total "$(proxy_count bytes)"
expect accel_origin_requests_total $(($(proxy_count GET) + $(proxy_count HEAD)))
expect accel_origin_retries_total 0
expect accel_origin_errors_total 0
expect accel_verify_failures_total 0 'where="origin"'
expect accel_verify_failures_total 0 'where="cache"'
expect accel_verify_failures_total 0 'where="dedup"'
expect accel_cache_stored_chunks_total 5
expect accel_evictions_total 0
expect accel_dedup_chunks_total 0
expect accel_cache_bytes $((5 * MiB))
expect accel_hydration_ratio 0.35
# Buckets are cumulative, and the sum is a positive number of seconds.
awk '/^accel_fetch_latency_seconds_bucket/ {
       if ($2 < last) { print "not cumulative: " $0; exit 1 } last = $2 }' \
  "$prom" || fail "histogram buckets"
awk '/^accel_fetch_latency_seconds_sum/ { exit !($2 > 0 && $2 < 60) }' \
  "$prom" || fail "histogram sum: $(grep latency_seconds_sum "$prom")"
# The stats line reads the same counters.
[ "$(nbdkit_stat a "origin bytes")" = "$(metric accel_origin_bytes_total)" ] ||
  fail "stats line and metrics disagree on origin bytes"
[ "$(nbdkit_stat a "read misses")" = 5 ] || fail "stats line: read misses"
[ "$(nbdkit_stat a "chunk fetches")" = 5 ] || fail "stats line: chunk fetches"
# Nothing left beside it.
[ "$(ls "$tmp/textfile")" = accel.prom ] ||
  fail "left in the directory: $(ls "$tmp/textfile")"
echo "final file:"
cat "$prom"

# No cap, no cap gauge (the directory now records none).
prom_a=$prom prom="$tmp/textfile/nocap.prom"
start_nbdkit nocap url="s3://$bucket/m/disk.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" metrics-file="$prom" ||
  fail "nbdkit: $(cat "$tmp/nocap.log")"
expect accel_cache_dir_cap_bytes missing
expect accel_cache_bytes $((5 * MiB))
promtool_clean
# Two nbdkits serving one image (a mount and its update on a versioned
# key): their series differ by metrics_file, where node_exporter would
# drop equal ones as duplicates.
start_nbdkit twin url="s3://$bucket/m/disk.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" metrics-file="$tmp/textfile/twin.prom" ||
  fail "nbdkit: $(cat "$tmp/twin.log")"
grep -q 'metrics_file="twin.prom"' "$tmp/textfile/twin.prom" ||
  fail "twin: no metrics_file label"
dups=$(cat "$prom" "$tmp/textfile/twin.prom" | grep -v '^#' | cut -d' ' -f1 |
  sort | uniq -d)
[ -z "$dups" ] || fail "the same series in two files: $dups"
stop_nbdkit twin
stop_nbdkit nocap
rm -f "$tmp/textfile/twin.prom"
echo "two nbdkits on one image: no series in common"
prom=$prom_a

# ---- 4. bad input ----
bad () {
  local want=$1; shift
  if start_nbdkit bad url="s3://$bucket/m/disk.img" \
      endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache" "$@"; then
    fail "nbdkit started with $*"
  fi
  grep -q -- "$want" "$tmp/bad.log" || fail "$*: no \"$want\" in: $(cat "$tmp/bad.log")"
}
bad "metrics-file=rel.prom: must be an absolute path" metrics-file=rel.prom
bad "metrics-file: $tmp/nonexistent/a.prom: creating a temporary file beside it: No such file or directory" \
  metrics-file="$tmp/nonexistent/a.prom"
bad "metrics-interval: must be between 1 and 3600 seconds" \
  metrics-file="$prom" metrics-interval=0
echo OK
