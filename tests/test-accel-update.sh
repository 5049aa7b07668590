#!/usr/bin/env bash
# accel-update: a node moves a dataset from v1 to v2 while a task still
# reads v1.  Two versions of a small tree (one file rewritten in place)
# are published with accel-mkimage; accel-update mounts v1 (nbdfuse +
# loop, --fuse) behind a symlink, and a task holds a file of v1 open
# and another has its working directory there, both reached through
# the symlink.  Then:
#  - options end at --; --threads reaches accel-mount;
#  - an update to a missing object fails with exit 1 and changes
#    nothing: same link, v1 mounted, nothing new left behind;
#  - the update to v2 switches the link (new lookups read v2's bytes),
#    keeps v1 mounted while it is held (exit 3, naming the holders and
#    the command to finish), the held file still reads v1's bytes (read
#    with O_DIRECT, so through v1's nbdkit), v1's cached chunks are all
#    still there, and v2 fetches from S3 (counted by the proxy) no more
#    than its chunks that v1 lacks plus its manifest;
#  - the same URL again is a no-op; --finish while held changes nothing;
#  - once the task lets go, --finish unmounts v1 and leaves nothing of
#    it but its cached chunks, which accel-cache gc then takes before
#    any of v2's (nobody serves v1 now), and v2 still reads right;
#  - after a "reboot" (mounts and state gone, link left) an update
#    mounts again and removes the empty old mountpoint;
#  - with the current version's nbdkit killed, the same URL mounts again
#    and the old version, not in use, is unmounted at once.
# Every mount, loop device, FUSE mount, process and directory is undone
# at exit, also on failure.
. "$(dirname "$0")/lib/functions.sh"
for c in nbdkit nbdinfo nbdfuse fusermount3 losetup findmnt flock python3 sqlite3 mke2fs; do
  requires "$c"
done
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
needs_s3
make_tmpdir
start_proxy "$tmp"
update="$top/tools/sh/accel-update"
umount_tool="$top/tools/sh/accel-umount"
mount_tool="$top/tools/sh/accel-mount"
cache_tool="$top/tools/accel-cache"
# A private state directory: never the real /run/accel.
export ACCEL_RUN_DIR="$tmp/run" ACCEL_CACHE_KEY="$tmp/node.key"

on_exit force_cleanup
on_exit "for d in '$ACCEL_RUN_DIR'/*/; do '$umount_tool' --name \"\$(basename \"\$d\")\"; done"

# image_field URL FIELD: a field of accel-cache stat --json for the
# image of URL.
image_field () {
  "$cache_tool" -d "$tmp/cache" stat --json |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
v = [i[sys.argv[2]] for i in d["images"] if i["url"] == sys.argv[1]]
print(v[0] if v else "none")' "$1" "$2"
}
cache_usage () {
  "$cache_tool" -d "$tmp/cache" stat --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["usage_bytes"])'
}
# direct_cmp FILE REF: FILE read with O_DIRECT (past the page cache,
# through the version's nbdkit) equals REF.
direct_cmp () {
  dd if="$1" iflag=direct bs=1M status=none | cmp - "$2"
}
# run_update RC ARGS...: accel-update ARGS into $tmp/update.out; its
# exit status must be RC.
run_update () {
  local want=$1 rc=0
  shift
  "$update" "$@" > "$tmp/update.out" 2>&1 || rc=$?
  sed 's/^/  | /' "$tmp/update.out"
  [ $rc = "$want" ] || fail "accel-update $*: exit $rc, not $want"
}
processes () { leftovers | grep -c '^process'; }

# 1. Two versions: v2 rewrites one 1 MiB file and a small one in place.
mkdir -p "$tmp/src1/data" "$tmp/ds"
head -c $((8 << 20)) /dev/urandom > "$tmp/src1/data/stable.bin"
head -c $((1 << 20)) /dev/urandom > "$tmp/src1/data/changing.bin"
echo "version 1" > "$tmp/src1/VERSION"
cp -a "$tmp/src1" "$tmp/src2"
head -c $((1 << 20)) /dev/urandom > "$tmp/src2/data/changing.bin"
echo "version 2" > "$tmp/src2/VERSION"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
for v in 1 2; do
  "$top/tools/accel-mkimage" "$tmp/src$v" "s3://$bucket/v$v/" --name data \
    --endpoint "$ACCEL_TEST_S3_ENDPOINT" > "$tmp/mkimage-v$v.log" 2>&1 ||
    fail "accel-mkimage v$v"
  s3_curl -o "$tmp/v$v.manifest" "$ACCEL_TEST_S3_ENDPOINT/$bucket/v$v/data.img.manifest" ||
    fail "get manifest v$v"
done
url1="s3://$bucket/v1/data.img" url2="s3://$bucket/v2/data.img"
# v2's non-zero chunks whose hash v1 lacks, and its chunk size.
new=$(sqlite3 "$tmp/v2.manifest" "ATTACH '$tmp/v1.manifest' AS old;
  SELECT count(*) FROM chunks c WHERE zero = 0 AND NOT EXISTS
    (SELECT 1 FROM old.chunks o WHERE o.sha256 = c.sha256);")
total=$(sqlite3 "$tmp/v2.manifest" "SELECT count(*) FROM chunks WHERE zero = 0")
echo "v2: $new of its $total non-zero chunks are not in v1"
link="$tmp/ds/data"
opts=(--cache-dir "$tmp/cache" --fuse "endpoint=$proxy_url")

# 2. The first run mounts v1 on data@1 and makes the link, relative.
# (Options, then -- and the operands.)
run_update 0 --cache-dir "$tmp/cache" --fuse -- "$link" "$url1" \
  "endpoint=$proxy_url"
[ "$(readlink "$link")" = "data@1" ] || fail "link: $(readlink "$link")"
findmnt -n -M "$link@1" > /dev/null || fail "v1 is not mounted on $link@1"
diff -r -x lost+found "$tmp/src1" "$link/" || fail "v1 differs from its tree"
v1_chunks=$(image_field "$url1" cached_chunks)
echo "v1: $v1_chunks chunks cached"
[ "$v1_chunks" -gt 0 ] || fail "v1 cached nothing"

# A task holds a file of v1 open, another has its working directory
# there, both through the link.
sleep 600 3< "$link/data/changing.bin" &
holder=$!
on_exit "kill $holder"
(cd "$link/data" && exec sleep 600) &
cwd_holder=$!
on_exit "kill $cwd_holder"
for _ in $(seq 50); do
  [ "$(readlink "/proc/$cwd_holder/cwd")" = "$link@1/data" ] && break
  sleep 0.1
done
[ -e "/proc/$holder/fd/3" ] || fail "the holder has no file open"

# 3. A new version that cannot be mounted changes nothing.
before=$(leftovers)
run_update 1 "$link" "s3://$bucket/missing.img" "${opts[@]}"
grep -q "still points to $link@1, unchanged" "$tmp/update.out" || fail "unclear failure"
[ "$(readlink "$link")" = "data@1" ] || fail "a failed update changed the link"
[ "$(leftovers)" = "$before" ] || fail "a failed update left: $(leftovers)"
[ ! -e "$link@2" ] || fail "a failed update left $link@2"
[ "$(cat "$link/VERSION")" = "version 1" ] || fail "v1 unreadable after a failed update"

# 4. The update to v2, with v1 held: switched, v1 left mounted.
bytes0=$(proxy_count bytes)
t0=$(date +%s)
run_update 3 "$link" "$url2" "${opts[@]}" --idle-timeout 2 --threads 3
t1=$(date +%s)
grep -q "nbdkit threads 3$" "$tmp/update.out" ||
  fail "--threads 3 did not reach accel-mount"
[ $((t1 - t0)) -lt 30 ] || fail "the update took $((t1 - t0)) s"
grep -q "accel-update --finish" "$tmp/update.out" || fail "does not say how to finish"
grep -q "^    $holder (sleep): 1 open file" "$tmp/update.out" || fail "holder not named"
grep -q "^    $cwd_holder (sleep): cwd" "$tmp/update.out" || fail "cwd holder not named"
[ "$(readlink "$link")" = "data@2" ] || fail "link: $(readlink "$link")"
[ "$(cat "$link/VERSION")" = "version 2" ] || fail "the link does not show v2"
diff -r -x lost+found "$tmp/src2" "$link/" || fail "v2 differs from its tree"
bytes=$(($(proxy_count bytes) - bytes0))
msize=$(stat -c %s "$tmp/v2.manifest")
isize=$(image_field "$url2" image_size)
echo "v2 fetched $bytes bytes from S3 (its manifest: $msize bytes; $new new chunks of 1 MiB; image $isize bytes)"
[ "$bytes" -le $((new * 1048576 + msize + 65536)) ] ||
  fail "v2 fetched $bytes bytes: more than its $new new chunks and manifest"
findmnt -n -M "$link@1" > /dev/null || fail "v1 was unmounted while in use"
direct_cmp "/proc/$holder/fd/3" "$tmp/src1/data/changing.bin" ||
  fail "the held file no longer reads v1's bytes"
direct_cmp "$link/data/changing.bin" "$tmp/src2/data/changing.bin" ||
  fail "v2's file reads wrong"
[ "$(image_field "$url1" cached_chunks)" -ge "$v1_chunks" ] ||
  fail "v1's chunks were dropped while it is mounted: $(image_field "$url1" cached_chunks) of $v1_chunks"
[ "$(image_field "$url1" serving)" = True ] || fail "v1 is not served any more"
[ "$(processes)" = 4 ] || fail "expected 2 nbdkit + 2 nbdfuse: $(leftovers)"

# 5. The same URL again: nothing to do.  Another cache directory than
# the current version's: refused.  --finish while held: nothing changes.
before=$(leftovers)
run_update 0 "$link" "$url2" "${opts[@]}"
grep -q "already the current version" "$tmp/update.out" || fail "same URL not reported"
run_update 1 "$link" "$url1" --cache-dir "$tmp/cache2" --fuse "endpoint=$proxy_url"
grep -q "give --cache-dir $tmp/cache\b" "$tmp/update.out" || fail "unclear refusal of another cache"
[ ! -e "$tmp/cache2" ] || fail "another cache directory was used"
run_update 3 --finish "$link" --idle-timeout 0
[ "$(leftovers)" = "$before" ] || fail "a no-op changed something"
findmnt -n -M "$link@1" > /dev/null || fail "--finish unmounted v1 while in use"

# 6. The tasks let go: --finish unmounts v1, whose chunks stay cached
# until evicted.  But first a task in a mount namespace of its own (a
# container's private copy of the mount, where umount here would not
# fail): v1 is still in use.
kill "$holder" "$cwd_holder"
wait "$holder" "$cwd_holder" 2>/dev/null || :
unshare -m --propagation private sh -c 'exec 3< "$1"; exec sleep 60' sh \
  "$link@1/data/changing.bin" & ns_holder=$!
for _ in $(seq 50); do
  [ -e "/proc/$ns_holder/fd/3" ] && break
  sleep 0.1
done
run_update 3 --finish "$link" --idle-timeout 1
grep -q "^    $ns_holder (sleep): 1 open file" "$tmp/update.out" ||
  fail "the holder in another mount namespace is not named"
findmnt -n -M "$link@1" > /dev/null || fail "v1 was unmounted while a task in another namespace uses it"
direct_cmp "/proc/$ns_holder/fd/3" "$tmp/src1/data/changing.bin" ||
  fail "the file held in another namespace no longer reads v1's bytes"
kill "$ns_holder"
wait "$ns_holder" 2>/dev/null || :
run_update 0 --finish "$link"
findmnt -n -M "$link@1" > /dev/null && fail "v1 is still mounted"
[ ! -e "$link@1" ] || fail "v1's mountpoint is left"
[ "$(processes)" = 2 ] || fail "v1's processes are left: $(leftovers)"
[ "$(find "$ACCEL_RUN_DIR" -mindepth 1 -maxdepth 1 -type d ! -name .locks | wc -l)" = 1 ] ||
  fail "v1's state is left: $(ls -a "$ACCEL_RUN_DIR")"
[ "$(image_field "$url1" cached_chunks)" -ge "$v1_chunks" ] ||
  fail "v1's chunks went with the unmount"
[ "$(image_field "$url1" serving)" = False ] || fail "v1 is still served"
run_update 0 --finish "$link"
grep -q "no old version" "$tmp/update.out" || fail "--finish again: not a no-op"

# 7. Eviction: gc by v1's bytes takes all of v1's chunks and none of v2's.
# NB: 16 KiB of slack (less than any chunk of v1): ext4 may count an
# extent block more than the chunks hold.
v2_chunks=$(image_field "$url2" cached_chunks)
usage=$(cache_usage)
v1_disk=$(image_field "$url1" disk_bytes)
"$cache_tool" -d "$tmp/cache" gc --to $((usage - v1_disk + 16384)) || fail "accel-cache gc"
echo "after gc: v1 $(image_field "$url1" cached_chunks) chunks, v2 $(image_field "$url2" cached_chunks) (was $v2_chunks)"
[ "$(image_field "$url1" cached_chunks)" = 0 ] || fail "gc left v1's chunks"
[ "$(image_field "$url2" cached_chunks)" = "$v2_chunks" ] || fail "gc took v2's chunks"
direct_cmp "$link/data/stable.bin" "$tmp/src2/data/stable.bin" || fail "v2 reads wrong after gc"
direct_cmp "$link/data/changing.bin" "$tmp/src2/data/changing.bin" || fail "v2 reads wrong after gc"

# 8. As after a reboot: the mounts and their state are gone, the link
# and an empty mountpoint are left.  The next update (back to v1's URL)
# mounts data@3 and removes the empty data@2.
"$umount_tool" "$link@2" > /dev/null || fail "accel-umount v2"
mkdir "$link@2"
run_update 0 "$link" "$url1" "${opts[@]}"
[ "$(readlink "$link")" = "data@3" ] || fail "link: $(readlink "$link")"
[ "$(cat "$link/VERSION")" = "version 1" ] || fail "the link does not show v1 again"
[ ! -e "$link@2" ] || fail "the empty $link@2 is left"

# 9. Its nbdkit dies: the same URL again is no longer a no-op, it mounts
# data@4, and data@3, dead and not in use, is unmounted at once.
kill -9 "$(cat "$ACCEL_RUN_DIR"/*/nbdkit.pid)"
run_update 0 "$link" "$url1" "${opts[@]}"
grep -q "its nbdkit or nbdfuse has exited" "$tmp/update.out" || fail "dead nbdkit not reported"
[ "$(readlink "$link")" = "data@4" ] || fail "link: $(readlink "$link")"
direct_cmp "$link/data/changing.bin" "$tmp/src1/data/changing.bin" || fail "data@4 reads wrong"
findmnt -n -M "$link@3" > /dev/null && fail "the dead $link@3 is still mounted"
[ ! -e "$link@3" ] || fail "the dead $link@3 is left"
[ "$(processes)" = 2 ] || fail "expected 1 nbdkit + 1 nbdfuse: $(leftovers)"
# So when its nbdfuse dies (where there is one): data@5.
fuse_pid=$(cat "$ACCEL_RUN_DIR"/*/nbdfuse.pid 2> /dev/null || :)
if [ -n "$fuse_pid" ]; then
  kill -9 "$fuse_pid"
  run_update 0 "$link" "$url1" "${opts[@]}"
  grep -q "nothing to do" "$tmp/update.out" && fail "a dead nbdfuse taken for a working version"
  [ "$(readlink "$link")" = "data@5" ] || fail "link: $(readlink "$link")"
  direct_cmp "$link/data/changing.bin" "$tmp/src1/data/changing.bin" || fail "data@5 reads wrong"
  findmnt -n -M "$link@4" > /dev/null && fail "the dead $link@4 is still mounted"
fi
# LINK named through a symbolic link to its directory is the same LINK:
# the same URL is nothing to do.
ln -s "$(dirname "$link")" "$tmp/via"
run_update 0 "$tmp/via/$(basename "$link")" "$url1" "${opts[@]}"
grep -q "nothing to do" "$tmp/update.out" ||
  fail "LINK through a symbolic link to its directory: not the same LINK"

# 9b. A mount made by hand that LINK pointed to, adopted by the first
# update while in use: the command given to finish is accel-umount's
# (--finish finds LINK@N only), and it does.
"$mount_tool" "$url1" "$tmp/ds/hand" "${opts[@]}" > /dev/null 2>&1 || fail "accel-mount hand"
ln -s hand "$tmp/ds/h"
sleep 60 < "$tmp/ds/h/VERSION" & hand_holder=$!
run_update 3 "$tmp/ds/h" "$url2" "${opts[@]}" --idle-timeout 1
grep -q "^    accel-umount --when-idle $tmp/ds/hand$" "$tmp/update.out" ||
  fail "no way to finish the adopted mount given"
grep -q "accel-update --finish" "$tmp/update.out" && fail "--finish given for an adopted mount"
kill "$hand_holder"
wait "$hand_holder" 2>/dev/null || :
"$umount_tool" --when-idle "$tmp/ds/hand" > /dev/null || fail "accel-umount --when-idle hand"
findmnt -n -M "$tmp/ds/hand" > /dev/null && fail "the adopted mount is still mounted"
"$umount_tool" "$(readlink -f "$tmp/ds/h")" > /dev/null || fail "accel-umount h@1"
rm "$tmp/ds/h"

# 10. Usage errors exit 2; --help describes the tool.
rc=0; "$update" "$link" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-update with no URL: exit $rc, not 2"
rc=0; "$update" --finish "$link" "$url1" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-update --finish with a URL: exit $rc, not 2"
rc=0; "$update" "$link" "$url1" --idle-timeout x > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-update --idle-timeout x: exit $rc, not 2"
"$update" --help | grep -q '^SYNOPSIS' || fail "accel-update --help"

"$umount_tool" "$(readlink -f "$link")" > /dev/null || fail "accel-umount $(readlink "$link")"
rm "$link" "$tmp/via"
[ -z "$(leftovers)" ] || fail "left behind: $(leftovers)"
echo OK
