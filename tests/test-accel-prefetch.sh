#!/usr/bin/env bash
# accel-prefetch on a dataset mounted with accel-mount (nbdfuse + loop
# here), through the counting proxy: it warms exactly the chunks of the
# files named (a file and a directory), with one GET byte per chunk byte
# not cached yet, and reading those files afterwards takes no GET while
# reading another file does.  --socket with and without --manifest (the
# plugin names it), --dry-run, the progress bar on a terminal, and bad
# paths; a stopped, stuck or killed nbdkit.  The plugin's trace of the session, given to accel-mkimage
# --hot, rebuilds the same image with that hot list, and accel-index
# --update of the old manifest gives the same manifest.
. "$(dirname "$0")/lib/functions.sh"
for c in nbdkit nbdinfo nbdfuse fusermount3 losetup findmnt flock; do
  requires "$c"
done
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
needs_s3
make_tmpdir
start_proxy "$tmp"
prefetch="$top/tools/accel-prefetch"
export ACCEL_RUN_DIR="$tmp/run" ACCEL_CACHE_KEY="$tmp/node.key"
fuse=()
if [ -d /sys/module/nbd ] ||
   { command -v modprobe > /dev/null && modprobe -n -q nbd 2>/dev/null; }; then
  fuse=(--fuse)
fi
on_exit "'$top/tools/sh/accel-umount' '$tmp/mnt' -q"

# A tree with files of several chunks (64 KiB chunks), published.
mkdir -p "$tmp/src/dir/sub" "$tmp/src/other"
head -c 3000000 /dev/urandom > "$tmp/src/big1.bin"
head -c 1500000 /dev/urandom > "$tmp/src/big2.bin"
for i in 1 2 3; do head -c 300000 /dev/urandom > "$tmp/src/dir/f$i"; done
head -c 200000 /dev/urandom > "$tmp/src/dir/sub/g"
head -c 2000000 /dev/urandom > "$tmp/src/other/x.bin"
mkdir "$tmp/pub"
"$top/tools/accel-mkimage" "$tmp/src" "$tmp/pub" --name data --chunk-size 64K \
  > "$tmp/mkimage.log" 2>&1 || fail "accel-mkimage: $(cat "$tmp/mkimage.log")"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
s3_put "$tmp/pub/data.img" "$bucket/data.img"
s3_put "$tmp/pub/data.img.manifest" "$bucket/data.img.manifest"

"$top/tools/sh/accel-mount" "${fuse[@]}" "s3://$bucket/data.img" "$tmp/mnt" \
  --cache-dir "$tmp/cache" endpoint="$proxy_url" readahead=0 prefetch=none \
  trace="$tmp/session.trace" > "$tmp/mount.log" 2>&1 ||
  fail "accel-mount: $(cat "$tmp/mount.log")"
state=$(echo "$ACCEL_RUN_DIR"/*/state)
grep -q "^manifest=$tmp/cache/manifests/" "$state" ||
  fail "accel-mount did not record the manifest: $(cat "$state")"
sock=$(sed -n 's/^socket=//p' "$state")

# Path lookups need directories and inodes: read them all first, so that
# what accel-prefetch fetches is data only.
find "$tmp/mnt" -type f -exec stat {} + > /dev/null || fail "find"

# chunks FILE...: the data chunks of files in the image (accel-inspect).
chunks () {
  local f
  for f in "$@"; do
    "$top/tools/accel-inspect" --json --file "$f" "$tmp/pub/data.img.manifest" |
      python3 -c 'import json,sys
for c in json.load(sys.stdin)["chunks"]:
    if not c["zero"]: print(c["index"])'
  done | sort -n -u
}
# (NB: sort -n order is not comm's: grep -vxF does the set difference.)
chunks /big1.bin /dir/f1 /dir/f2 /dir/f3 /dir/sub/g > "$tmp/want-all"
cached_chunks "$tmp/cache" > "$tmp/before"
new=$(grep -cvxF -f "$tmp/before" "$tmp/want-all")
[ "$new" -gt 40 ] || fail "test set-up: only $new chunks left to warm"

# 1. A file and a directory (relative and absolute paths).
b0=$(proxy_count bytes)
"$prefetch" "$tmp/mnt" big1.bin "$tmp/mnt/dir/" > "$tmp/p1.out" 2>&1 ||
  fail "accel-prefetch: $(cat "$tmp/p1.out")"
cat "$tmp/p1.out"
grep -q "warmed 5 files" "$tmp/p1.out" || fail "no summary line"
got=$(($(proxy_count bytes) - b0))
[ "$got" = $((new * 65536)) ] ||
  fail "accel-prefetch fetched $got bytes for $new chunks of 64 KiB"
# Chunks are recorded in the map by the plugin's next flush (100 ms).
sort -n -u "$tmp/before" "$tmp/want-all" > "$tmp/want-after"
for _ in $(seq 50); do
  cached_chunks "$tmp/cache" > "$tmp/after"
  cmp -s "$tmp/want-after" "$tmp/after" && break
  sleep 0.1
done
diff -q "$tmp/want-after" "$tmp/after" > /dev/null ||
  fail "cached chunks are not those of the files: $(diff "$tmp/want-after" "$tmp/after" | head)"
echo "accel-prefetch: $new chunks ($got bytes) fetched, exactly the files' chunks"

# Reading them now takes no GET: every byte of every warmed file, read
# over NBD at the extents the file map gives, equals its source.  NB:
# not through the mount: the loop device reads its nbdfuse backing file
# through the page cache, whose readahead (opened at losetup, 128 KiB)
# goes on past a file's end into other files' chunks.
read_file_extents () {
  "$top/tools/accel-inspect" --json --file "$1" "$tmp/pub/data.img.manifest" |
    /usr/bin/python3 -c 'import json,nbd,sys
h = nbd.NBD()
h.connect_unix(sys.argv[1])
src = open(sys.argv[2], "rb").read()
for e in json.load(sys.stdin)["extents"]:
    data = h.pread(e["length"], e["image_offset"])
    if data != src[e["file_offset"]:e["file_offset"] + e["length"]]:
        sys.exit("%s: extent at %d differs" % (sys.argv[2], e["file_offset"]))
h.shutdown()' "$sock" "$tmp/src$1"
}
g0=$(proxy_count GET)
for f in /big1.bin /dir/f1 /dir/f2 /dir/f3 /dir/sub/g; do
  read_file_extents "$f" || fail "reading $f over NBD"
done
[ "$(proxy_count GET)" = "$g0" ] ||
  fail "reading warmed files made $(($(proxy_count GET) - g0)) GETs"
read_file_extents /big2.bin || fail "reading /big2.bin over NBD"
[ "$(proxy_count GET)" -gt "$g0" ] || fail "a cold file made no GET (test broken)"
for f in big1.bin big2.bin dir/f1 dir/f2 dir/f3 dir/sub/g; do
  cmp "$tmp/src/$f" "$tmp/mnt/$f" || fail "$f differs on the mount"
done
echo "reading the warmed files: 0 GETs"

# 2. --socket: --dry-run with --manifest, then the manifest from the
# export's description; the progress bar on a terminal.
"$prefetch" --socket "$sock" --manifest "$tmp/pub/data.img.manifest" -n \
  /other > "$tmp/p2.out" 2>&1 || fail "--dry-run: $(cat "$tmp/p2.out")"
[ "$(cat "$tmp/p2.out")" = "1 files, $(chunks /other/x.bin | wc -l) chunks, $(($(chunks /other/x.bin | wc -l) * 65536)) bytes" ] ||
  fail "--dry-run: $(cat "$tmp/p2.out")"
g0=$(proxy_count GET)
script -qec "'$prefetch' --socket '$sock' other/x.bin" /dev/null > "$tmp/p3.out" 2>&1 ||
  fail "--socket: $(cat "$tmp/p3.out")"
grep -q '\[#\{30\}\] 100%' "$tmp/p3.out" || fail "no progress bar on a tty: $(cat -v "$tmp/p3.out")"
g1=$(proxy_count GET)
[ "$g1" -gt "$g0" ] || fail "--socket fetched nothing"
cat "$tmp/mnt/other/x.bin" > /dev/null
[ "$(proxy_count GET)" = "$g1" ] || fail "reading other/x.bin after --socket made GETs"
echo "--socket: dry run, manifest from the export, progress bar"

# Absolute paths through a symbolic link to the mount (accel-update's
# "current"), as MOUNT or as PATH, name the same files.
ln -s "$tmp/mnt" "$tmp/current"
want=$("$prefetch" -n "$tmp/mnt" dir 2>&1) || fail "--dry-run dir: $want"
for how in "$tmp/current $tmp/current/dir" "$tmp/mnt $tmp/current/dir" \
           "$tmp/current $tmp/mnt/dir" "$tmp/current $tmp/current/dir/"; do
  # shellcheck disable=SC2086 # (two words)
  got=$("$prefetch" -n $how 2>&1) || fail "$how: $got"
  [ "$got" = "$want" ] || fail "$how: '$got', not '$want'"
done
echo "paths through a link to the mount: as through the mount"

# 3. Bad paths and usage.
expect_fail () {
  local what=$1 rc=$2 msg=$3; shift 3
  "$@" > "$tmp/bad.log" 2>&1
  local got=$?
  [ $got = "$rc" ] || fail "$what: exit status $got, not $rc: $(cat "$tmp/bad.log")"
  grep -q -- "$msg" "$tmp/bad.log" || fail "$what: no '$msg' in: $(cat "$tmp/bad.log")"
}
expect_fail "missing file" 1 "no/such: no such file or directory in the image's file map" \
  "$prefetch" "$tmp/mnt" big1.bin no/such
expect_fail "outside the mount" 1 "not under the mount" \
  "$prefetch" "$tmp/mnt" /etc/passwd
ln -s /etc "$tmp/mnt-etc"
expect_fail "a link out of the mount" 1 "not under the mount" \
  "$prefetch" "$tmp/mnt" "$tmp/mnt-etc/passwd"
expect_fail "above the root" 1 "goes above the root" \
  "$prefetch" "$tmp/mnt" ../x
expect_fail "not a mount" 1 "not mounted by accel-mount" \
  "$prefetch" "$tmp/src" big1.bin
expect_fail "no path" 2 "no PATH given" "$prefetch" "$tmp/mnt"
expect_fail "bad --requests" 2 "not a number from 1 to 64" \
  "$prefetch" -r 0 "$tmp/mnt" big1.bin
echo "bad paths and usage: refused"

# 3b. An nbdkit that is stopped, stuck behind a stalled origin, or
# killed mid-run: a clear error, not a hang or "N requests failed".
start_nbdkit s url="s3://$bucket/data.img" endpoint="$proxy_url" \
  cache-dir="$tmp/cache-s" readahead=0 prefetch=none ||
  fail "nbdkit s: $(cat "$tmp/s.log")"
man=(--socket "$sock_s" --manifest "$tmp/pub/data.img.manifest" --jitter 0)
kill -STOP "$pid_s"
t0=$SECONDS
expect_fail "a stopped nbdkit" 1 "did not answer within 2 s (--timeout): is it stopped or stuck" \
  "$prefetch" "${man[@]}" --timeout 2 big1.bin
kill -CONT "$pid_s"
echo '[{"id": "stall", "method": "GET", "range": "bytes=", "action": "delay", "seconds": 30}]' > "$proxy_faults"
expect_fail "a stuck nbdkit" 1 "nbdkit answered none of the 4 requests in flight for 2 s (--timeout)" \
  "$prefetch" "${man[@]}" --timeout 2 -r 4 --batch 64K big1.bin
d0=$(proxy_count faults.delay)
"$prefetch" "${man[@]}" big2.bin > "$tmp/killed.log" 2>&1 &
killed=$!
# Killed once its request is under way (the origin stalls it).
for _ in $(seq 200); do
  [ "$(proxy_count faults.delay)" -gt "$d0" ] && break
  sleep 0.05
done
[ "$(proxy_count faults.delay)" -gt "$d0" ] || fail "accel-prefetch sent nothing"
kill -9 "$pid_s"
wait "$killed"
rc=$?
[ "$rc" = 1 ] || fail "nbdkit killed: exit status $rc: $(cat "$tmp/killed.log")"
grep -q "lost the connection to nbdkit after 0 B of .* were cached: did nbdkit exit" "$tmp/killed.log" ||
  fail "nbdkit killed: $(cat "$tmp/killed.log")"
[ $((SECONDS - t0)) -lt 25 ] || fail "a stopped, stuck or killed nbdkit took $((SECONDS - t0)) s"
echo '[]' > "$proxy_faults"
echo "a stopped, stuck or killed nbdkit: clear errors in $((SECONDS - t0)) s"

# 4. The session's trace rebuilds the same image with a hot list.
"$top/tools/sh/accel-umount" "$tmp/mnt" -q || fail "accel-umount"
[ -s "$tmp/session.trace" ] || fail "no trace written"
mkdir "$tmp/pub2"
"$top/tools/accel-mkimage" "$tmp/src" "$tmp/pub2" --name data --chunk-size 64K \
  --hot "$tmp/session.trace" > "$tmp/mkimage2.log" 2>&1 ||
  fail "accel-mkimage --hot: $(cat "$tmp/mkimage2.log")"
cmp "$tmp/pub/data.img" "$tmp/pub2/data.img" || fail "image differs"
hot=$("$top/tools/accel-inspect" "$tmp/pub2/data.img.manifest" | sed -n 's/^hot chunks: *//p')
[ "$hot" -gt 0 ] || fail "accel-mkimage --hot: no hot list"
# With a file map too, --update gives the file indexing gives.
cp "$tmp/pub/data.img.manifest" "$tmp/updated.manifest"
"$top/indexer/accel-index" --update "$tmp/updated.manifest" \
  --hot "$tmp/session.trace" 2> "$tmp/update.log" ||
  fail "accel-index --update: $(cat "$tmp/update.log")"
cmp "$tmp/updated.manifest" "$tmp/pub2/data.img.manifest" ||
  fail "accel-index --update differs from accel-mkimage --hot"
echo "accel-mkimage --hot: same image, $hot hot chunks; --update identical"
echo OK
