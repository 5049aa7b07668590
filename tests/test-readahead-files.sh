#!/usr/bin/env bash
# Readahead along the manifest's file map, through a real mount (nbdfuse
# + loop + ext4) of an image on radosgw behind the counting proxy.
#
# The image (64 KiB chunks) holds /A and /B written alternately in
# 256 KiB appends, so that their extents interleave, then /C, one
# contiguous file, and /d/, 40 files of 40 KB back to back.  What the
# plugin fetched is what its cache holds afterwards (every fetched
# chunk is stored), compared with the chunks of each file.
#
#  1. A sequential read of the fragmented /A fetches A's chunks, the
#     metadata the mount and the read need (chunks that hold no file
#     data, and those a mount with a `stat` fetches without readahead,
#     measured first), and
#     nothing of /B, /C or /d: readahead followed A's extents and
#     stopped at its end.  Reading /C alone fetches nothing after it.
#  2. After a restart on that cache, reading /A again fetches nothing.
#  3. A walk over /d in order (`cat d/*`) is read ahead along the next
#     files: after reading the first 8, the cache holds files beyond
#     them, and with readahead the whole walk stalls on fewer misses
#     than without (readahead=0).
#  4. Without a manifest (manifest=none) readahead follows image offsets
#     as before: reading /A also fetches chunks of /B.
# accel-test: alone (readahead's GETs must go quiet between steps)
. "$(dirname "$0")/lib/functions.sh"
requires nbdfuse; requires mkfs.ext4; requires sqlite3
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mounts)"
needs_s3
make_tmpdir
start_proxy "$tmp"
KiB=1024

# ---- the image ----------------------------------------------------------
img="$tmp/disk.img"
truncate -s 64M "$img"
mkfs.ext4 -q -b 4096 -O ^has_journal -E lazy_itable_init=0 "$img" || fail "mkfs.ext4"
mkdir -p "$tmp/w"
wloop=$(losetup -f --show "$img") || fail "losetup"
on_exit "loop_detach_file '$img'"
# nodelalloc and a sync after each append: blocks are allocated as the
# appends come, so A's and B's alternate.
mount -o nodelalloc "$wloop" "$tmp/w" || fail "mount $wloop"
on_exit "umount '$tmp/w' 2>/dev/null"
for _ in $(seq 12); do
  for f in A B; do
    head -c $((256 * KiB)) /dev/urandom >> "$tmp/w/$f"
    sync "$tmp/w/$f"
  done
done
head -c $((3 * 1024 * KiB)) /dev/urandom > "$tmp/w/C"
sync "$tmp/w/C"
mkdir "$tmp/w/d"
# One CPU for the writer: ext4 gives small files blocks from a per-CPU
# locality group, so a writer moved between CPUs puts /d's files out of
# name order in the image (and the walk below read them out of order).
for i in $(seq -w 40); do
  taskset -c 0 head -c 40000 /dev/urandom > "$tmp/w/d/f$i"
  sync "$tmp/w/d/f$i"
done
cp "$tmp/w/A" "$tmp/A.want"
umount "$tmp/w" || fail "unmount the image being built"
losetup -d "$wloop" 2> /dev/null   # (may be gone with the mount)
"$top/indexer/accel-index" --chunk-size 64K "$img" -o "$tmp/disk.manifest" \
  2> "$tmp/index.log" || fail "accel-index: $(cat "$tmp/index.log")"

# chunks WHAT: chunk indices (64 KiB) from the manifest, one a line:
# "file PATH" the chunks holding PATH's bytes, "files-but PATH..." those
# holding bytes of some file but none of the PATHs.
chunks () {
  /usr/bin/python3 - "$tmp/disk.manifest" "$@" << 'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
what, paths = sys.argv[2], sys.argv[3:]
def of(cond, args):
    out = set()
    for off, n in db.execute("SELECT e.image_offset, e.length FROM extents e "
                             "JOIN files f ON f.id = e.file_id WHERE " + cond, args):
        out.update(range(off // 65536, (off + n - 1) // 65536 + 1))
    return out
marks = ",".join("?" * len(paths))
if what == "file":
    got = of("f.path IN (%s)" % marks, paths)
else:
    got = of("1", []) - of("f.path IN (%s)" % marks, paths)
print("\n".join(str(c) for c in got))
EOF
}
# NB: every list of chunks is sorted as text, for comm.
cached () { cached_chunks "$tmp/$1" | sort; }
chunks file /A | sort > "$tmp/A.chunks"
chunks file /B | sort > "$tmp/B.chunks"
# Test the test: the extents of A and B interleave (chunks of B alone
# lie between A's first and last).
a_first=$(sort -n "$tmp/A.chunks" | head -n1) a_last=$(sort -n "$tmp/A.chunks" | tail -n1)
comm -13 "$tmp/A.chunks" "$tmp/B.chunks" |
  awk -v a="$a_first" -v b="$a_last" '$1 > a && $1 < b { n++ } END { exit !(n >= 8) }' ||
  fail "A's extents are not interleaved with B's"
echo "image: A $(wc -l < "$tmp/A.chunks") chunks from $a_first to $a_last, interleaved with B's"
# ... and /d's files lie in the image in name order, as a walk reads them.
sqlite3 "$tmp/disk.manifest" "SELECT min(e.image_offset) FROM files f JOIN extents e
  ON e.file_id = f.id WHERE f.path LIKE '/d/%' GROUP BY f.path ORDER BY f.path" |
  sort -n -C || fail "/d's files are not in name order in the image"

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
s3_put "$img" "$bucket/disk.img"
s3_put "$tmp/disk.manifest" "$bucket/disk.img.manifest"
args=(url="s3://$bucket/disk.img" endpoint="$proxy_url" -D accel.stats=1)
mnt="$tmp/mnt"

# run NAME CACHE CMD [ARGS...]: start nbdkit NAME on cache CACHE (with
# $extra plugin arguments), mount, run CMD with the mount as its first
# argument, unmount, stop.
run () {
  local name=$1 cache=$2; shift 2
  start_nbdkit "$name" "${args[@]}" cache-dir="$tmp/$cache" ${extra:+"${extra[@]}"} ||
    fail "nbdkit: $(cat "$tmp/$name.log")"
  mount_export "$(nbd_uri "$name")" "$mnt" direct
  "$@" "$mnt" || fail "$name: $* failed"
  unmount_export "$mnt" || fail "unmount"
  stop_nbdkit "$name"
}
read_a () { cmp "$1/A" "$tmp/A.want"; }
stat_a () { stat "$1/A" > /dev/null; }
extra=()

# ---- 1. a fragmented file --------------------------------------------
# The baseline: what a mount and a stat of /A fetch, without readahead.
extra=(readahead=0)
run base c-base stat_a
extra=()
cached c-base > "$tmp/base.chunks"
run a c1 read_a
cached c1 > "$tmp/got.chunks"
# Allowed: A's chunks, the baseline, and chunks with no file's bytes
# (the extent tree and other metadata the read needs).
chunks files-but /A | sort > "$tmp/others.chunks"
sort -u "$tmp/A.chunks" "$tmp/base.chunks" > "$tmp/allowed.chunks"
comm -23 "$tmp/got.chunks" "$tmp/allowed.chunks" |
  comm -12 - "$tmp/others.chunks" > "$tmp/wrong.chunks"
[ -s "$tmp/wrong.chunks" ] &&
  fail "reading /A fetched $(wc -l < "$tmp/wrong.chunks") chunks of other files: $(tr '\n' ' ' < "$tmp/wrong.chunks")"
comm -23 "$tmp/A.chunks" "$tmp/got.chunks" | grep -q . &&
  fail "reading /A did not cache all of A's chunks"
[ "$(nbdkit_stat a "read misses")" -lt "$(wc -l < "$tmp/A.chunks")" ] ||
  fail "readahead did not run: $(nbdkit_stat a "read misses") misses"
echo "/A: $(wc -l < "$tmp/got.chunks") chunks fetched, all A's or metadata (baseline $(wc -l < "$tmp/base.chunks")), $(nbdkit_stat a "read misses") read misses"

# 2. A restart on that cache: reading /A again fetches nothing.
g0=$(proxy_count GET)
run a2 c1 read_a
[ "$(proxy_count GET)" = "$g0" ] ||
  fail "after a restart, reading /A again took $(($(proxy_count GET) - g0)) GETs"
echo "restart: /A read again with 0 GETs"

# /C, contiguous: nothing after its end (/d's files follow it).
read_c () { cat "$1/C" > /dev/null; }
run c c3 read_c
cached c3 > "$tmp/got.chunks"
chunks files-but /C | sort > "$tmp/others.chunks"
comm -23 "$tmp/got.chunks" "$tmp/base.chunks" |
  comm -12 - "$tmp/others.chunks" > "$tmp/wrong.chunks"
[ -s "$tmp/wrong.chunks" ] &&
  fail "reading /C fetched chunks of other files: $(tr '\n' ' ' < "$tmp/wrong.chunks")"
echo "/C: nothing fetched past its end"

# ---- 3. a walk of small files ------------------------------------------
# quiet: wait until the proxy has seen no GET for half a second
# (readahead's GETs still under way when nbdkit stops are dropped).
quiet () {
  local g=-1
  while [ "$g" != "$(proxy_count GET)" ]; do
    g=$(proxy_count GET)
    sleep 0.5
  done
}
walk8 () { cat "$1"/d/f0[1-8] > /dev/null && quiet; }
run w c4 walk8
cached c4 > "$tmp/got.chunks"
later=$(for i in $(seq 12 40); do chunks file "/d/f$i"; done | sort -u |
  comm -12 - "$tmp/got.chunks" | wc -l)
[ "$later" -gt 0 ] || fail "reading /d/f01..f08 fetched nothing of the files after them"
echo "walk: reading f01..f08 fetched $later chunks of f12..f40 ahead"
walk_all () { cat "$1"/d/* > /dev/null; }
run wa c5 walk_all
extra=(readahead=0)
run w0 c6 walk_all
extra=()
m_ra=$(nbdkit_stat wa "read misses") m_none=$(nbdkit_stat w0 "read misses")
echo "walk of /d: $m_ra read misses with readahead, $m_none without"
[ "$m_ra" -lt "$m_none" ] || fail "the walk stalled as often with readahead ($m_ra, $m_none)"

# ---- 4. no manifest: image offsets, as before ----------------------------
extra=(manifest=none chunk-size=64K)
run n c7 read_a
extra=()
n_b=$(cached c7 | comm -12 - <(comm -13 "$tmp/A.chunks" "$tmp/B.chunks") | wc -l)
echo "manifest=none: reading /A fetched $n_b chunks of /B (readahead by image offsets)"
[ "$n_b" -gt 0 ] || fail "manifest=none: readahead no longer follows image offsets"
