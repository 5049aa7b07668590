#!/usr/bin/env bash
# A fleet on one image (issue 13): N nodes (nbdkits with a cache
# directory each) read the same image at once through a proxy that
# admits R GET/s over all of them and answers 503 SlowDown above that,
# as S3 does above its per-prefix rate.  SlowDown is back-pressure: no
# read may fail, and the fleet must use the rate it is given.
#
#  1. steady limit R: every node reads the whole image (nbdcopy, 1 MiB
#     requests = 1 chunk = 1 GET, no readahead).  Asserted: every byte
#     right; no read error and no error in any log; SlowDowns at most
#     half of the GETs sent (counted at the proxy); the fan-out ends
#     within 2x the time R allows for the GETs it needs (one per data
#     chunk and node: a ratio, not a speed, so that a loaded machine
#     changes little); no node's completion time is more than 3x the
#     median (fair shares).
#  2. the limit drops to R/5 mid-run and comes back: the same, with the
#     time allowed computed over that schedule; readahead is on, so its
#     GETs compete with demand reads for the throttled rate (readahead
#     yields; its GETs are larger, so the bound is looser, not tighter).
#     How often readahead yielded is printed.
#  3. two nbdkits on one cache directory (one node, two images): while
#     the first is throttled, the second's reads wait for the node's
#     rate (its accel_origin_throttle_rate is above 0) though it never
#     sees a SlowDown itself; a third, on another cache directory, is
#     not limited.
#
# The proxy's counters: tests/lib/s3proxy.py (its "limit" rule).  Each
# node's: -D accel.stats=1 (slowdowns, time throttled).
# accel-test: alone (times GETs against a request-rate limit)
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
needs_s3
make_tmpdir
start_proxy "$tmp"

NODES=${ACCEL_FLEET_NODES:-6}
RATE=${ACCEL_FLEET_RATE:-20}   # GET/s the proxy admits, all nodes together
LOW=$((RATE / 5))              # phase 2's limit while it is down
DOWN_AT=3 DOWN_FOR=6           # ... from 3 s into the phase, for 6 s
MiB=1048576

# The image: 32 MiB of random files, built and indexed by accel-mkimage
# as a publisher would, with 1 MiB chunks.
mkdir -p "$tmp/src/a" "$tmp/src/b"
for i in 1 2 3 4; do head -c $((7 * MiB)) /dev/urandom > "$tmp/src/a/f$i"; done
head -c $((3 * MiB)) /dev/urandom > "$tmp/src/b/g"
mkdir "$tmp/pub"
"$top/tools/accel-mkimage" "$tmp/src" "$tmp/pub" --name fleet \
  > "$tmp/mkimage.log" 2>&1 || fail "accel-mkimage: $(cat "$tmp/mkimage.log")"
img="$tmp/pub/fleet.img"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
s3_put "$img" "$bucket/fleet.img"
s3_put "$img.manifest" "$bucket/fleet.img.manifest"
url="s3://$bucket/fleet.img"
# The chunks a node fetches: those not all zeros (all-zero ones are
# holes in the manifest, never fetched).
data_chunks=$(python3 -c 'import sys
n = 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        n += b.count(0) != len(b)
print(n)' "$img")
need=$((NODES * data_chunks))
echo "image: $(($(stat -c %s "$img") / MiB)) MiB, $data_chunks data chunks;" \
  "$NODES nodes need $need GETs"

# limit R: the proxy admits R GET/s from now on (all clients together).
limit () {
  echo '[{"method": "GET", "action": "limit", "rate": '"$1"'}]' > "$proxy_faults"
}

# fan_out PHASE [KEY=VALUE...]: start NODES nbdkits on empty caches
# (no readahead unless given), then read the whole image from all of
# them at once; each reader writes its end time (ms since the start) to
# $tmp/PHASE.N.end.  Sets t0 (ms).
fan_out () {
  local phase=$1 i
  shift
  for i in $(seq "$NODES"); do
    start_nbdkit "$phase$i" -D accel.stats=1 url="$url" endpoint="$proxy_url" \
      cache-dir="$tmp/cache-$phase$i" readahead=0 prefetch=none "$@" ||
      fail "nbdkit $phase$i: $(cat "$tmp/$phase$i.log")"
  done
  t0=$(($(date +%s%N) / 1000000))
  for i in $(seq "$NODES"); do
    (
      nbdcopy --request-size=$MiB --requests=4 --connections=1 \
        "$(nbd_uri "$phase$i")" "$tmp/$phase$i.img" 2> "$tmp/$phase$i.copy.log" &&
        echo $(($(date +%s%N) / 1000000 - t0)) > "$tmp/$phase.$i.end"
    ) &
    eval "reader_$i=$!"
  done
}

# wait_readers PHASE: wait for every reader (2 minutes at most each),
# then check every node's bytes and logs.  Prints the completion times.
wait_readers () {
  local phase=$1 i pid
  for i in $(seq "$NODES"); do
    eval "pid=\$reader_$i"
    wait "$pid" || fail "$phase$i: nbdcopy failed: $(cat "$tmp/$phase$i.copy.log")"
    [ -s "$tmp/$phase.$i.end" ] || fail "$phase$i: no end time"
    cmp "$img" "$tmp/$phase$i.img" || fail "$phase$i served wrong bytes"
    rm -f "$tmp/$phase$i.img"
  done
  # NB: all told at once: each takes a moment to stop.
  for i in $(seq "$NODES"); do eval "kill \$pid_$phase$i"; done
  for i in $(seq "$NODES"); do
    stop_nbdkit "$phase$i"
    ! grep -E "^nbdkit: (error|.*: error):" "$tmp/$phase$i.log" ||
      fail "$phase$i logged errors"
  done
}

# check PHASE ALLOWED_MS GET0 SLOW0: the fleet's assertions, with the
# proxy's counters from before the phase.
check () {
  local phase=$1 allowed=$2 get0=$3 slow0=$4 i ends=() median max gets slow
  for i in $(seq "$NODES"); do ends+=("$(cat "$tmp/$phase.$i.end")"); done
  read -r median max < <(printf '%s\n' "${ends[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }')
  gets=$(($(proxy_count GET) - get0))
  slow=$(($(proxy_count limit.slowdown) - slow0))
  local node_slow=0 node_thr=0
  for i in $(seq "$NODES"); do
    node_slow=$((node_slow + $(nbdkit_stat "$phase$i" slowdowns)))
    node_thr=$((node_thr + $(nbdkit_stat "$phase$i" "throttled us") / 1000))
  done
  echo "$phase: completion times (ms) ${ends[*]}; median $median, last $max," \
    "allowed $allowed (2x what the limit allows)"
  echo "$phase: GETs sent $gets, SlowDowns $slow (the nodes counted $node_slow," \
    "waited $node_thr ms for slots in all)"
  [ "$slow" -le $((gets / 2)) ] ||
    fail "$phase: $slow SlowDowns of $gets GETs: more than half"
  [ "$node_slow" = "$slow" ] ||
    fail "$phase: the nodes counted $node_slow SlowDowns, the proxy sent $slow"
  [ "$max" -le "$allowed" ] ||
    fail "$phase: the fan-out took $max ms, more than 2x the $((allowed / 2)) ms the limit allows"
  [ "$max" -le $((3 * median)) ] ||
    fail "$phase: a node took $max ms, more than 3x the median $median ms"
}

echo "== 1. $NODES nodes, $RATE GET/s"
limit "$RATE"
get0=$(proxy_count GET) slow0=$(proxy_count limit.slowdown)
fan_out steady
wait_readers steady
# NB: the nodes start before t0; their manifest GETs are in the count
# but not in the time.
check steady $((2 * need * 1000 / RATE)) "$get0" "$slow0"

echo "== 2. the limit drops to $LOW GET/s after $DOWN_AT s for $DOWN_FOR s"
limit "$RATE"
get0=$(proxy_count GET) slow0=$(proxy_count limit.slowdown)
fan_out drop readahead=8M
sleep "$DOWN_AT"
limit "$LOW"
sleep "$DOWN_FOR"
limit "$RATE"
wait_readers drop
# What the schedule allows for `need` GETs: RATE/s, LOW/s, then RATE/s.
before=$((RATE * DOWN_AT + LOW * DOWN_FOR))
if [ "$need" -le $((RATE * DOWN_AT)) ]; then
  ideal=$((need * 1000 / RATE))
elif [ "$need" -le "$before" ]; then
  ideal=$((DOWN_AT * 1000 + (need - RATE * DOWN_AT) * 1000 / LOW))
else
  ideal=$(((DOWN_AT + DOWN_FOR) * 1000 + (need - before) * 1000 / RATE))
fi
check drop $((2 * ideal)) "$get0" "$slow0"
echo "drop: readahead GETs that yielded to demand reads:" \
  "$(cat "$tmp"/drop[0-9]*.log | grep -c 'yielding to reads of a higher priority')"

echo "== 3. two datasets on one node back off together"
# One cache directory (one node), two nbdkits: "ta" serves the fleet's
# image, which the proxy now limits to LOW GET/s; "tb" serves another
# image that the proxy never throttles.  While ta is throttled, tb's
# reads wait for slots of the node's rate (CACHE_DIR/throttle) without
# tb ever seeing a SlowDown; "tc", the same image on a cache directory of
# its own (another node), is not limited at all.
publish_image "$tmp/other.img" 12 "$bucket/other.img"
echo '[{"method": "GET", "match": "fleet.img", "action": "limit", "rate": '"$LOW"'}]' \
  > "$proxy_faults"
metric () {   # metric NAME METRIC: its value in nbdkit NAME's metrics file
  grep "^$2{" "$tmp/$1.prom" 2>/dev/null | awk '{ print $2 }'
}
for n in ta:fleet.img:shared tb:other.img:shared tc:other.img:own; do
  IFS=: read -r name key dir <<< "$n"
  start_nbdkit "$name" -D accel.stats=1 url="s3://$bucket/$key" endpoint="$proxy_url" \
    cache-dir="$tmp/cache-$dir" readahead=0 prefetch=none \
    metrics-file="$tmp/$name.prom" metrics-interval=1 ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
done
nbdcopy --request-size=$MiB --requests=4 "$(nbd_uri ta)" "$tmp/ta.img" &
copy_ta=$!
for _ in $(seq 100); do
  [ "$(metric ta accel_origin_slowdowns_total)" -gt 0 ] 2>/dev/null && break
  sleep 0.1
done
[ "$(metric ta accel_origin_slowdowns_total)" -gt 0 ] ||
  fail "ta saw no SlowDown at $LOW GET/s"
for name in tb tc; do
  nbdcopy --request-size=$MiB --requests=4 "$(nbd_uri $name)" "$tmp/$name.img" ||
    fail "$name: nbdcopy failed"
  cmp "$tmp/other.img" "$tmp/$name.img" || fail "$name served wrong bytes"
done
sleep 1.5   # a metrics write after the reads
rate_b=$(metric tb accel_origin_throttle_rate) rate_c=$(metric tc accel_origin_throttle_rate)
wait "$copy_ta" || fail "ta: nbdcopy failed"
cmp "$img" "$tmp/ta.img" || fail "ta served wrong bytes"
for name in ta tb tc; do stop_nbdkit "$name"; done
echo "ta: $(nbdkit_stat ta slowdowns) SlowDowns; tb (same node): $(nbdkit_stat tb slowdowns)" \
  "SlowDowns, rate $rate_b GET/s, waited $(($(nbdkit_stat tb "throttled us") / 1000)) ms" \
  "for slots; tc (own node): rate $rate_c, waited $(($(nbdkit_stat tc "throttled us") / 1000)) ms"
[ "$(nbdkit_stat tb slowdowns)" = 0 ] && [ "$(nbdkit_stat tc slowdowns)" = 0 ] ||
  fail "the unthrottled image saw SlowDowns (the test is broken)"
awk -v r="$rate_b" 'BEGIN { exit !(r > 0) }' ||
  fail "tb's rate is '$rate_b': the node's throttle state is not shared"
[ "$(nbdkit_stat tb "throttled us")" -gt 0 ] ||
  fail "tb's reads never waited for the node's rate"
[ "$rate_c" = 0 ] && [ "$(nbdkit_stat tc "throttled us")" = 0 ] ||
  fail "tc (another cache directory) was limited: rate $rate_c"

echo "faults injected: $(proxy_faults_summary)"
echo OK
