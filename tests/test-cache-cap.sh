#!/usr/bin/env bash
# cache-size is a hard cap: reading a 24 MiB image through a 6 MiB cache
# returns the right bytes, and the cache never holds more than the cap.
# The cap must also have been reached and worked: the cache filled up
# to it, every chunk was stored, and all but what fits were evicted (a
# plugin that caches nothing would otherwise pass).
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
needs_s3
make_tmpdir
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
head -c $((24 * 1048576)) /dev/urandom > "$tmp/disk.img"
not_a_filesystem "$tmp/disk.img"
s3_put "$tmp/disk.img" "$bucket/disk.img"

cap=$((6 * 1048576))
start_nbdkit a -D accel.stats=1 url="s3://$bucket/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
  cache-dir="$tmp/cache" cache-size=$cap manifest=none ||
  fail "nbdkit: $(cat "$tmp/a.log")"

# Watch the cache's size while reading.
( max=0
  while :; do
    u=$(du -B1 -s "$tmp/cache/images" 2>/dev/null | cut -f1)
    [ "${u:-0}" -gt "$max" ] && { max=$u; echo "$max" > "$tmp/max"; }
    sleep 0.05
  done ) &
watcher=$!
on_exit "kill $watcher"

nbdcopy "$(nbd_uri a)" "$tmp/copy.img" || fail "nbdcopy"
cmp "$tmp/disk.img" "$tmp/copy.img" || fail "copy differs"
nbdcheck random "$(nbd_uri a)" "$tmp/disk.img" 200 || fail "random reads"
kill $watcher
stop_nbdkit a
# du counts the map files too (a few KiB); allow for them.
max=$(cat "$tmp/max")
final=$(du -B1 -s "$tmp/cache/images" | cut -f1)
stored=$(nbdkit_stat a stored)
evicted=$(nbdkit_stat a evicted)
echo "cap $cap, largest seen $max, final $final, chunks stored $stored, evicted $evicted"
[ "$max" -le $((cap + 65536)) ] || fail "cache grew past its cap: $max"
# 1 MiB chunks (no manifest): nbdcopy alone reads all 24, and at most 6
# fit.  The sampler runs every 50 ms, so it may miss the last chunks.
[ "$max" -ge $((cap - 2 * 1048576)) ] || fail "the cache never filled: at most $max bytes"
[ "$stored" -ge 24 ] || fail "only $stored chunks were stored"
[ "$evicted" -ge $((stored - 6)) ] ||
  fail "$stored chunks stored but only $evicted evicted: the cap was not enforced by eviction"
echo OK
