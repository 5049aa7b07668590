#!/usr/bin/env bash
# Cache faults: a crash, damage at rest and several processes sharing a
# cache directory never make a read return wrong bytes, and the cache
# never grows past its cap.  (A full disk is tests/test-cache-full.sh.)
#
#  7. kill -9 of nbdkit while it fetches hard (parallel cold readers, a
#     slowed origin), at a moment when chunks are written but not yet
#     recorded (the process is stopped first and the cache inspected):
#     the restarted nbdkit punches exactly those chunks, and serves
#     every byte right; with serve.lock removed instead (the server
#     stopped, not killed), a second nbdkit punches nothing of the
#     first's, and both serve every byte right
#  8. the data file scribbled on (random bytes over several chunks) or
#     truncated while nbdkit is stopped: each damaged chunk is detected
#     at its first read and fetched again, one GET each, with a manifest
#     and without one (then the hash recorded at store time catches it);
#     a map whose header is scribbled on is started anew; the cache's
#     copy of the manifest flipped by one bit (a data chunk marked all
#     zeros) or truncated is downloaded again, never used
#  9. two nbdkits on one cache dir serving one image, cold, read at
#     once: both right, both store chunks, all of them between them,
#     and a third serves all of it from the cache with
#     nothing damaged; three nbdkits serving two images under one cap
#     (two of them the same image): all right, and the cache (sampled
#     every 50 ms) never above it
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires flock
needs_s3
make_tmpdir
start_proxy "$tmp"

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
MiB=1048576
# 16 chunks of 1 MiB, chunks 2 and 3 all zeros.
make_image "$tmp/disk.img" 16
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/disk.img.manifest"
url="s3://$bucket/disk.img"

# serve NAME [KEY=VALUE...]: nbdkit on the image through the proxy,
# counters on, no readahead (every GET is a demand read).
serve () {
  local name=$1; shift
  start_nbdkit "$name" -D accel.stats=1 url="$url" endpoint="$proxy_url" \
    cache-dir="$tmp/cache" readahead=0 "$@" ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
}
faults () { echo "$1" > "$proxy_faults"; }
# copy_check NAME [FILE]: the whole export read with nbdcopy equals FILE.
copy_check () {
  rm -f "$tmp/copy-$1.img"
  nbdcopy "$(nbd_uri "$1")" "$tmp/copy-$1.img" || fail "nbdcopy from $1"
  cmp "${2:-$tmp/disk.img}" "$tmp/copy-$1.img" || fail "$1 served wrong bytes"
  rm -f "$tmp/copy-$1.img"
}
# seq_check NAME: read it all in order on one connection, 256 KiB at a
# time, comparing: each missing chunk is then exactly one GET.
seq_check () {
  nbdcheck seq "$(nbd_uri "$1")" "$tmp/disk.img" 262144 ||
    fail "$1 served wrong bytes"
}
# The cache directory of the image (there is one at a time here).
image_dir () {
  local d
  d=$(echo "$tmp"/cache/images/*/)
  [ -d "$d" ] || fail "no single image dir in the cache: $d"
  echo "${d%/}"
}
kc_n=0
# Cache faults injected here (the proxy counts its own), by kind.
declare -A injected=()
count_fault () { injected[$1]=$(( ${injected[$1]:-0} + ${2:-1} )); }
# scribble FILE OFFSET LEN: overwrite with random bytes.
scribble () {
  count_fault scribble
  head -c "$3" /dev/urandom |
    dd of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none
}

echo "== 7. kill -9 while fetching, with chunks written but unrecorded"
# unrecorded.py PID IMAGE_DIR [stop]: wait until some chunk has bytes in
# the data file but is not present in the map (written, not yet
# recorded: the flusher records every 100 ms), SIGSTOP the process and
# look again, SIGKILL it if the state still holds, else SIGCONT and keep
# watching.  Prints how many such chunks the dead process left.  With
# "stop", the process is left stopped instead, and only at a moment it
# does not hold the cache directory's lock (so that others can open).
cat > "$tmp/unrecorded.py" <<'EOF'
import fcntl, os, signal, struct, sys, time
pid, d = int(sys.argv[1]), sys.argv[2]
stop = len(sys.argv) > 3 and sys.argv[3] == "stop"

def dir_lock_free():
    fd = os.open(os.path.dirname(os.path.dirname(d)) + "/lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
chunk, n = 1 << 20, 16

def unrecorded():
    with open(d + "/map", "rb") as f:
        m = f.read(4096 + 40 * n)
    fd = os.open(d + "/data", os.O_RDONLY)
    count = 0
    try:
        for i in range(n):
            state = struct.unpack_from("<I", m, 4096 + 40 * i)[0]
            try:
                has_data = os.lseek(fd, i * chunk, os.SEEK_DATA) < (i + 1) * chunk
            except OSError:             # ENXIO: no data from here on
                has_data = False
            if has_data and not state & 1:
                count += 1
    finally:
        os.close(fd)
    return count

def all_stopped():
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True

deadline = time.time() + 30
while time.time() < deadline:
    if os.path.exists(d + "/map") and unrecorded() > 0:
        os.kill(pid, signal.SIGSTOP)
        while not all_stopped():
            time.sleep(0.001)
        n_left = unrecorded()
        if n_left > 0 and stop and dir_lock_free():
            print(n_left)
            sys.exit(0)
        if n_left > 0 and not stop:
            os.kill(pid, signal.SIGKILL)
            print(n_left)
            sys.exit(0)
        os.kill(pid, signal.SIGCONT)
    time.sleep(0.001)
sys.exit("no unrecorded chunk seen in 30 s")
EOF
# busy_cold NAME READS: a cold nbdkit NAME with slow GETs and four
# random readers of READS reads each (pids in readers, output in
# $tmp/NAME-reader-SEED.out), so that stores are often unrecorded: its
# flusher records them every second, not every 100 ms, so that even a
# loaded machine sees them.
busy_cold () {
  local seed
  rm -rf "$tmp/cache"
  serve "$1" -D accel.flush_ms=1000
  faults '[{"id": 7, "method": "GET", "action": "delay", "seconds": 0.2}]'
  readers=()
  for seed in 1 2 3 4; do
    nbdcheck random "$(nbd_uri "$1")" "$tmp/disk.img" "$2" "$seed" \
      > "$tmp/$1-reader-$seed.out" 2>&1 &
    readers+=($!)
  done
  on_exit "kill ${readers[*]}"
}
busy_cold crash 200
left=$(python3 "$tmp/unrecorded.py" "$pid_crash" "$(image_dir)") ||
  fail "could not catch nbdkit with unrecorded chunks"
count_fault kill-9; count_fault unrecorded-chunks "$left"
for _ in $(seq 100); do
  [ -d "/proc/$pid_crash" ] && [ "$(awk '{print $3}' "/proc/$pid_crash/stat")" != Z ] ||
    break
  sleep 0.1
done
for r in "${readers[@]}"; do wait "$r"; done   # they fail: their server died
faults '[]'
echo "killed nbdkit with $left chunks written but unrecorded"
serve crash2
grep "punched [0-9]* unrecorded chunks" "$tmp/crash2.log" ||
  fail "no recovery after the crash"
grep -q "punched $left unrecorded chunks" "$tmp/crash2.log" ||
  fail "expected $left chunks punched"
copy_check crash2
nbdcheck random "$(nbd_uri crash2)" "$tmp/disk.img" 200 9 || fail "random reads"
stop_nbdkit crash2
[ "$(nbdkit_stat crash2 damaged)" = 0 ] || fail "damaged chunks after the crash"

echo "== 7. serve.lock removed under a server with chunks written but unrecorded"
# A second nbdkit opening the image must not take the first for gone and
# punch its unrecorded chunks (which the first would then record and
# serve as zeros): the data file's lock still says it serves.
busy_cold lost 100
on_exit "kill -CONT $pid_lost"
left=$(python3 "$tmp/unrecorded.py" "$pid_lost" "$(image_dir)" stop) ||
  fail "could not catch nbdkit with unrecorded chunks"
rm "$(image_dir)/serve.lock"
count_fault serve-lock-removed
serve lost2
kill -CONT "$pid_lost"
grep -q "served by another process, whose serve.lock was removed" "$tmp/lost2.log" ||
  fail "the second nbdkit did not notice the first: $(grep 'cache' "$tmp/lost2.log" | tail -n 3)"
! grep "punched [0-9]* unrecorded" "$tmp/lost2.log" ||
  fail "the second nbdkit punched the first one's $left unrecorded chunks"
for r in "${readers[@]}"; do
  wait "$r" || fail "a reader of the first nbdkit got wrong bytes: $(tail -n 3 "$tmp"/lost-reader-*.out)"
done
faults '[]'
copy_check lost
copy_check lost2
stop_nbdkit lost2
stop_nbdkit lost
echo "serve.lock removed with $left unrecorded chunks: nothing punched, every byte right"

# damage_case TAG HOW EXPECT [KEY=VALUE...]: fill a cold cache, damage
# its data file with HOW (a function of the data file), then check that
# the restarted nbdkit finds EXPECT damaged chunks, fetches exactly
# those, one GET each, and serves every byte right.
damage_case () {
  local tag=$1 how=$2 expect=$3 gets; shift 3
  serve "${tag}a" "$@"
  seq_check "${tag}a"
  stop_nbdkit "${tag}a"
  "$how" "$(image_dir)/data"
  count_fault damaged-chunks "$expect"
  gets=$(proxy_count GET)
  serve "${tag}b" "$@"
  seq_check "${tag}b"
  copy_check "${tag}b"
  stop_nbdkit "${tag}b"
  gets=$(( $(proxy_count GET) - gets ))
  echo "$tag: damaged $(nbdkit_stat "${tag}b" damaged)," \
    "fetched $(nbdkit_stat "${tag}b" "chunk fetches"), proxy GETs $gets"
  [ "$(nbdkit_stat "${tag}b" damaged)" = "$expect" ] ||
    fail "$tag: expected $expect damaged chunks"
  [ "$(nbdkit_stat "${tag}b" "chunk fetches")" = "$expect" ] ||
    fail "$tag: expected $expect chunks fetched"
  [ "$gets" = "$expect" ] || fail "$tag: expected $expect GETs, got $gets"
  [ "$(grep -c "is damaged (hash mismatch): dropping it" "$tmp/${tag}b.log")" = "$expect" ] ||
    fail "$tag: damage not logged"
}
# Chunks 4-6 (2 MiB from 4.5 MiB) and a few bytes of chunk 11.
scribble_some () {
  scribble "$1" $((4 * MiB + MiB / 2)) $((2 * MiB))
  scribble "$1" $((11 * MiB + 777)) 100
}
# Cut in the middle of chunk 9: chunks 9-15 lose their bytes.
truncate_some () { count_fault truncate; truncate -s $((9 * MiB + MiB / 2)) "$1"; }

echo "== 8. damage at rest, with a manifest"
rm -rf "$tmp/cache"
damage_case scrib scribble_some 4
damage_case trunc truncate_some 7
echo "== 8. damage at rest, without a manifest"
# All 16 chunks are cached then (no manifest says 2 and 3 are zeros).
rm -rf "$tmp/cache"
damage_case nmscrib scribble_some 4 manifest=none
damage_case nmtrunc truncate_some 7 manifest=none
# Chunk 2 is all zeros: scribbled, it is caught by its recorded hash.
zeros_some () { scribble "$1" $((2 * MiB + 100)) 100; }
damage_case nmzero zeros_some 1 manifest=none

echo "== 8. damage at rest with a node key (cache-key=): tags never hide it"
rm -rf "$tmp/cache"
key="$tmp/node.key"
damage_case kscrib scribble_some 4 cache-key="$key"
damage_case ktrunc truncate_some 7 cache-key="$key"
# The tags file scribbled on as well as a chunk: that chunk is caught,
# the others are hashed (their tags no longer fit) and served right.
scribble_both () {
  scribble "$1" $((5 * MiB + 10)) 100
  scribble "$(dirname "$1")/tags" 0 256
}
damage_case kboth scribble_both 1 cache-key="$key"
# Undamaged, a restart with the key trusts all 14 non-zero chunks by
# their tags; one without the key (or with another) hashes them all.
for k in "$key" "" "$tmp/other.key"; do
  n=kc$((++kc_n))
  serve $n ${k:+cache-key="$k"}
  seq_check $n
  stop_nbdkit $n
  want=0
  [ "$k" = "$key" ] && want=14
  echo "restart with key '${k:-none}': verified $(nbdkit_stat $n verified), by tag $(nbdkit_stat $n "verified by tag")"
  [ "$(nbdkit_stat $n verified)" = 14 ] || fail "$n: not every chunk verified"
  [ "$(nbdkit_stat $n "verified by tag")" = "$want" ] ||
    fail "$n: expected $want chunks verified by their tags"
  [ "$(nbdkit_stat $n damaged)" = 0 ] || fail "$n found damaged chunks"
done
[ "$(stat -c %a "$key")" = 600 ] || fail "the node key was not made 0600"

echo "== 8. a scribbled map header: the image's cache is started anew"
rm -rf "$tmp/cache"
serve mapa
copy_check mapa
stop_nbdkit mapa
printf 'XXXXXXXX' | dd of="$(image_dir)/map" conv=notrunc status=none
count_fault map-header
serve mapb
copy_check mapb
stop_nbdkit mapb
grep -q "not a version 1 map of this image: starting it anew" "$tmp/mapb.log" ||
  fail "the scribbled map was not noticed"
[ "$(nbdkit_stat mapb "chunk fetches")" = 14 ] || fail "expected every chunk refetched"

echo "== 8. the cache's copy of the manifest damaged at rest"
# One bit of the copy's record for chunk 5 (its "zero" column, sqlite's
# serial type 8 for 0 to 9 for 1) would make it an all-zero chunk: a
# restart must notice the copy changed, download it again and serve
# chunk 5's bytes.  Then a truncated copy: downloaded again too.
rm -rf "$tmp/cache"
serve mfa
copy_check mfa
stop_nbdkit mfa
mcopy=$(echo "$tmp"/cache/manifests/????????????????????????????????????????????????????????????????)
[ -f "$mcopy" ] || fail "no single manifest copy in the cache: $mcopy"
python3 - "$mcopy" "$tmp/disk.img" <<'PY' || fail "could not flip chunk 5's zero bit"
import hashlib, sys
m = bytearray(open(sys.argv[1], "rb").read())
with open(sys.argv[2], "rb") as f:
    f.seek(5 << 20)
    h = hashlib.sha256(f.read(1 << 20)).digest()
# NB: the hash is in other tables too; the chunks table's record is
# (header size 4, rowid, a 32-byte blob, the integer 0) and the hash.
i = m.find(b"\x04\x00\x4c\x08" + h)
assert i >= 0 and m.find(b"\x04\x00\x4c\x08" + h, i + 1) == -1
m[i + 3] = 9
open(sys.argv[1], "wb").write(m)
PY
count_fault manifest-copy
serve mfb
copy_check mfb
stop_nbdkit mfb
grep -q "local copy .* is damaged (its SHA-256 changed): downloading it again" "$tmp/mfb.log" ||
  fail "the damaged manifest copy was not noticed: $(grep manifest "$tmp/mfb.log")"
truncate -s 4096 "$mcopy"
count_fault manifest-copy
serve mfc
copy_check mfc
stop_nbdkit mfc
grep -q "is damaged .* downloading it again" "$tmp/mfc.log" ||
  fail "the truncated manifest copy was not noticed"

echo "== 9. two nbdkits, one cache dir, one image, cold, at once"
rm -rf "$tmp/cache"
serve twin1
serve twin2
# Slow GETs so that the two fetch the same chunks at the same time.
faults '[{"id": 9, "method": "GET", "action": "delay", "seconds": 0.1}]'
pids=()
for n in twin1 twin2; do
  ( nbdcopy "$(nbd_uri $n)" "$tmp/copy-$n.img" &&
    cmp "$tmp/disk.img" "$tmp/copy-$n.img" ) > "$tmp/$n-copy.out" 2>&1 &
  pids+=($!)
  nbdcheck random "$(nbd_uri $n)" "$tmp/disk.img" 200 "${#pids[@]}" \
    > "$tmp/$n-random.out" 2>&1 &
  pids+=($!)
done
on_exit "kill ${pids[*]}"
for p in "${pids[@]}"; do
  wait "$p" || fail "a concurrent reader failed: $(cat "$tmp"/twin*.out)"
done
faults '[]'
stop_nbdkit twin1
stop_nbdkit twin2
# Both fetched at once; each stored each of the 14 data chunks at most
# once, and together every one of them at least once.  (Both may store
# one chunk: a store is in the shared map only once flushed, 100 ms
# later.  One may store none: what it fetched, the other had stored
# already, and its store found it there, as a slow run under TSan
# showed.)  No store was skipped, and each stored only what it fetched.
stored1=$(nbdkit_stat twin1 stored) stored2=$(nbdkit_stat twin2 stored)
echo "twin1 stored $stored1, twin2 stored $stored2"
for n in twin1 twin2; do
  stored=$(nbdkit_stat $n stored)
  [ "$(nbdkit_stat $n "chunk fetches")" -ge 1 ] ||
    fail "$n fetched nothing: the two did not run at once"
  [ "$stored" -le 14 ] || fail "$n stored $stored chunks, more than 14"
  [ "$(nbdkit_stat $n "chunk fetches")" -ge "$stored" ] ||
    fail "$n stored more chunks than it fetched"
  [ "$(nbdkit_stat $n "not stored")" = 0 ] || fail "$n skipped stores"
  [ "$(nbdkit_stat $n damaged)" = 0 ] || fail "$n found damaged chunks"
done
[ $((stored1 + stored2)) -ge 14 ] ||
  fail "the twins stored $((stored1 + stored2)) chunks: some of the 14 never"
# A third, with every GET failing: all of it from the cache, verified.
faults '[{"id": "9c", "method": "GET", "action": "status", "status": 500}]'
s500=$(proxy_count status.500)
serve twin3 retries=0
copy_check twin3
stop_nbdkit twin3
faults '[]'
[ "$(proxy_count status.500)" = "$s500" ] || fail "twin3 needed the origin"
[ "$(nbdkit_stat twin3 damaged)" = 0 ] || fail "twin3 found damaged chunks"
[ "$(nbdkit_stat twin3 verified)" -ge 14 ] || fail "twin3 verified too little"

echo "== 9. three nbdkits, two images, one cap"
head -c $((16 * MiB)) /dev/urandom > "$tmp/other.img"
not_a_filesystem "$tmp/other.img"
"$top/indexer/accel-index" "$tmp/other.img" -o "$tmp/other.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/other.img" "$bucket/other.img"
s3_put "$tmp/other.img.manifest" "$bucket/other.img.manifest"
rm -rf "$tmp/cache"
cap=$((10 * MiB))
serve capa cache-size=$cap
serve capa2 cache-size=$cap
serve capb cache-size=$cap url="s3://$bucket/other.img"
# The cap is on the sum of the data files' blocks.  NB: du under the
# directory's lock, for a snapshot: a plain du reads one file, then the
# other, and between the two a store may evict from the first and write
# to the second, so its sum can be a chunk above anything that ever was
# on disk (seen: cap + 1 MiB, while du under the lock never exceeded the
# cap by more than ext4's extent blocks).
( max=0
  while :; do
    u=$(flock -s "$tmp/cache/lock" du -B1 -c "$tmp"/cache/images/*/data \
          2>/dev/null | tail -n 1 | cut -f1)
    [ "${u:-0}" -gt "$max" ] && { max=$u; echo "$max" > "$tmp/max"; }
    sleep 0.05
  done ) &
watcher=$!
on_exit "kill $watcher"
pids=()
# A second nbdkit on the first image: the two evict each other's
# chunks of one image while reading them.
for pair in "capa disk" "capa2 disk" "capb other"; do
  set -- $pair
  ( nbdcopy "$(nbd_uri "$1")" "$tmp/copy-$1.img" &&
    cmp "$tmp/$2.img" "$tmp/copy-$1.img" &&
    nbdcheck random "$(nbd_uri "$1")" "$tmp/$2.img" 300 $((5 + ${#pids[@]})) ) \
    > "$tmp/$1-read.out" 2>&1 &
  pids+=($!)
done
on_exit "kill ${pids[*]}"
for p in "${pids[@]}"; do
  wait "$p" || fail "a reader under the cap failed: $(cat "$tmp"/cap*-read.out)"
done
kill $watcher
stop_nbdkit capa
stop_nbdkit capa2
stop_nbdkit capb
max=$(cat "$tmp/max")
evictions=$(cat "$tmp"/cap*.log | grep -c "cache: evicted")
echo "cap $cap, largest seen $max, evictions $evictions"
# Allow for filesystem metadata: writing a chunk into a sparse file may
# add an extent block (4 KiB) that the plugin did not make room for.
[ "$max" -le $((cap + 65536)) ] || fail "the cache grew past its cap: $max"
[ "$max" -ge $((cap - 2 * MiB)) ] || fail "the sampler never saw a full cache"
[ "$evictions" -ge 1 ] || fail "nothing was evicted: the cap was not tested"

echo "faults injected by the proxy: $(proxy_faults_summary)"
echo "cache faults injected: $(for k in "${!injected[@]}"; do
  echo "$k=${injected[$k]}"; done | sort | tr '\n' ' ')"
echo OK
