#!/usr/bin/env bash
# tools/fleet-sim/fleet-sim, the fleet model of docs/fleet.md, against
# what can be worked out by hand: below S3's limit a node goes at its
# own pace (GETs in flight over the time of one GET); above it the fleet
# takes at least GETs / limit, and the back-off keeps it within 1.5x of
# that with SlowDowns a minority; larger GETs and more keys shorten it in
# proportion; a site cache tier costs one copy per site.  A few seconds.
# accel-test: alone (times GETs against a request-rate limit)
. "$(dirname "$0")/lib/functions.sh"
requires python3
sim="$top/tools/fleet-sim/fleet-sim"
"$sim" --help | grep -q "^THE MODEL" || fail "fleet-sim --help does not document the model"

# fig ARGS... -- KEY: one figure of a run (--json).
fig () {
  local args=() key
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  key=$2
  "$sim" --json --step 0.02 "${args[@]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$key" ||
    fail "fleet-sim ${args[*]}"
}
# within X LO HI WHAT: LO <= X <= HI.
within () {
  awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }' ||
    fail "$4: $1, not within [$2, $3]"
  echo "$4: $1 (in [$2, $3])"
}

# Below the limit: 10 nodes, 2 GiB in 1 MiB GETs, 8 in flight, 30 ms
# to the first byte and 90 MB/s: 2048 GETs x (0.03 + 1 MiB / 90 MB/s) / 8.
pace=$(awk 'BEGIN { print 2048 * (0.03 + 1048576 / 90e6) / 8 }')
within "$(fig --nodes 10 --mode demand -- last)" \
  "$(awk -v p="$pace" 'BEGIN { print p * 0.9 }')" \
  "$(awk -v p="$pace" 'BEGIN { print p * 1.1 }')" "10 nodes, below the limit (s)"
[ "$(fig --nodes 10 --mode demand -- slow)" = 0.0 ] || fail "SlowDowns below the limit"

# Above it: 1000 nodes x 256 GETs of 8 MiB at 5500 GET/s.
bound=$(awk 'BEGIN { print 1000 * 256 / 5500 }')
within "$(fig --nodes 1000 --mode prefetch -- last)" "$bound" \
  "$(awk -v b="$bound" 'BEGIN { print b * 1.5 }')" "1000 nodes, 8 MiB GETs, over the limit (s)"
slow=$(fig --nodes 1000 --mode prefetch -- slow)
within "$slow" 0 $((1000 * 256 / 4)) "1000 nodes: SlowDowns"
# 16 MiB GETs: half the GETs, about half the time; 4 keys: a quarter.
within "$(fig --nodes 1000 --mode prefetch --request-size 16M -- gets)" \
  128000 128000 "1000 nodes, 16 MiB GETs: GETs"
t16=$(fig --nodes 1000 --mode prefetch --request-size 16M -- last)
within "$t16" "$(awk -v b="$bound" 'BEGIN { print b / 2 }')" \
  "$(awk -v b="$bound" 'BEGIN { print b * 0.75 }')" "1000 nodes, 16 MiB GETs (s)"
t4=$(fig --nodes 10000 --mode prefetch --keys 4 -- last)
t1=$(fig --nodes 10000 --mode prefetch -- last)
within "$(awk -v a="$t1" -v b="$t4" 'BEGIN { print a / b }')" 3 4.5 \
  "10000 nodes: 1 key over 4 keys (time ratio)"
# Site caches: each fetches the working set once, in 8 MiB slices.
within "$(fig --nodes 1000 --mode demand --sites 10 -- gets)" 2560 2560 \
  "1000 nodes in 10 sites: GETs"
echo OK
