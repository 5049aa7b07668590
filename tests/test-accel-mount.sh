#!/usr/bin/env bash
# accel-mount and accel-umount, on this machine's path: no nbd driver, so
# nbdfuse + a read-only loop device (tests/test-vm-nbd.sh covers the
# kernel's nbd client).  Two ext4 images (4 KiB and 1 KiB blocks) are
# published and mounted at once, then a squashfs and an erofs image
# (made by accel-mkimage); every file must equal its source.
# Re-running either tool is harmless.  After accel-umount nothing may be
# left: no process, loop device, FUSE mount, mount or state directory.
# With nbdkit killed under a mounted filesystem, a read of an uncached
# file must fail within a bounded time (not hang), and accel-umount then
# accel-mount must recover.  A missing object, a wrong secret and an
# image without a filesystem fail with a clear error, leaving nothing.
# Under UMask=0077 other users still reach the dataset; a mount made
# over the dataset stops accel-umount before it stops anything.
# The device's read-ahead is the plugin's preferred block size, its
# chunk size, whatever the manifest's (1 MiB, 4 MiB, 256 KiB).
. "$(dirname "$0")/lib/functions.sh"
for c in nbdkit nbdinfo nbdfuse fusermount3 losetup blockdev findmnt flock mke2fs \
  mksquashfs mkfs.erofs python3; do
  requires "$c"
done
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
needs_s3
make_tmpdir
mount_tool="$top/tools/sh/accel-mount"
umount_tool="$top/tools/sh/accel-umount"
# A private state directory: never the real /run/accel.
export ACCEL_RUN_DIR="$tmp/run" ACCEL_CACHE_KEY="$tmp/node.key"
ep="endpoint=$ACCEL_TEST_S3_ENDPOINT"
# This test is about the fallback: where the nbd driver is there or can
# be loaded, ask for the fallback (--fuse).
fuse=()
if [ -d /sys/module/nbd ] ||
   { command -v modprobe > /dev/null && modprobe -n -q nbd 2>/dev/null; }; then
  fuse=(--fuse)
fi

# ra_of MNT: the read-ahead, in 512-byte sectors, of the device on MNT.
ra_of () { blockdev --getra "$(findmnt -n -M "$1" -o SOURCE | tail -n 1)"; }
assert_nothing_left () {
  local left
  left=$(leftovers)
  [ -z "$left" ] || fail "$1: left behind:
$left"
}
on_exit force_cleanup
on_exit "for d in '$ACCEL_RUN_DIR'/*/; do '$umount_tool' --name \"\$(basename \"\$d\")\"; done"

# 1. Two ext4 images of different trees, indexed and published.
make_tree "$tmp/src1"
make_tree "$tmp/src2"
head -c 2000000 /dev/urandom > "$tmp/src2/only-in-2.bin"
mke2fs -q -t ext4 -b 4096 -d "$tmp/src1" -L one "$tmp/one.img" 32M || fail "mke2fs one"
mke2fs -q -t ext4 -b 1024 -d "$tmp/src2" -L two "$tmp/two.img" 24M || fail "mke2fs two"
mksquashfs "$tmp/src1" "$tmp/three.sqfs" -quiet -noappend -no-progress > /dev/null ||
  fail "mksquashfs"
head -c $((4 << 20)) /dev/urandom > "$tmp/raw.img"
not_a_filesystem "$tmp/raw.img"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
mkdir "$tmp/pub"
"$top/tools/accel-mkimage" "$tmp/src1" "$tmp/pub" --fs erofs --name four \
  > /dev/null 2> "$tmp/mkimage.err" || fail "accel-mkimage: $(cat "$tmp/mkimage.err")"
s3_put "$tmp/pub/four.img" "$bucket/four.img"
s3_put "$tmp/pub/four.img.manifest" "$bucket/four.img.manifest"
for img in one.img two.img three.sqfs raw.img; do
  "$top/indexer/accel-index" "$tmp/$img" -o "$tmp/$img.manifest" > /dev/null ||
    fail "accel-index $img"
  s3_put "$tmp/$img" "$bucket/$img"
  s3_put "$tmp/$img.manifest" "$bucket/$img.manifest"
done
# The first image again, with other chunk sizes in its manifest.
for cs in 4M 256K; do
  "$top/indexer/accel-index" "$tmp/one.img" --chunk-size $cs \
    -o "$tmp/one-$cs.img.manifest" > /dev/null || fail "accel-index --chunk-size $cs"
  s3_put "$tmp/one.img" "$bucket/one-$cs.img"
  s3_put "$tmp/one-$cs.img.manifest" "$bucket/one-$cs.img.manifest"
done
url1="s3://$bucket/one.img" url2="s3://$bucket/two.img"
# Awkward names: the state directory is named as systemd-escape would,
# and the socket path inside it then needs escaping in NBD URIs.
mnt1="$tmp/mnt/data-set 1"
mnt2="$tmp/mnt/two"
name1='tmp-'$(basename "$tmp" | sed 's/-/\\x2d/g')'-mnt-data\x2dset\x201'

# 2. Both at once.
"$mount_tool" "${fuse[@]}" "$url1" "$mnt1" --cache-dir "$tmp/cache" "$ep" > "$tmp/mount1.out" 2>&1 &
p1=$!
"$mount_tool" "${fuse[@]}" "$url2" "$mnt2" --cache-dir "$tmp/cache" "$ep" cache-size=1G \
  > "$tmp/mount2.out" 2>&1 &
p2=$!
wait $p1 || fail "accel-mount 1: $(cat "$tmp/mount1.out")"
wait $p2 || fail "accel-mount 2: $(cat "$tmp/mount2.out")"
cat "$tmp/mount1.out" "$tmp/mount2.out"
if [ ${#fuse[@]} = 0 ]; then
  grep -q "no nbd driver in this kernel: using nbdfuse + loop device" "$tmp/mount1.out" ||
    fail "accel-mount did not say it falls back to nbdfuse"
fi
[ -d "$ACCEL_RUN_DIR/$name1" ] || fail "state directory is not $name1: $(ls "$ACCEL_RUN_DIR")"
if command -v systemd-escape > /dev/null; then
  [ "$(systemd-escape --path "$mnt1")" = "$name1" ] || fail "name differs from systemd-escape's"
fi
for m in "$mnt1" "$mnt2"; do
  findmnt -n -M "$m" -o OPTIONS | grep -q '^ro,' || fail "$m is not mounted read-only"
  touch "$m/new" 2>/dev/null && fail "$m is writable"
done
diff -r "$tmp/src1" "$mnt1" -x lost+found || fail "mount 1 differs from its source"
diff -r "$tmp/src2" "$mnt2" -x lost+found || fail "mount 2 differs from its source"
[ "$(stat -c %i "$mnt1/a/big.bin")" = "$(stat -c %i "$mnt1/a/hardlink.bin")" ] ||
  fail "hard link lost"
[ "$(findmnt -n -M "$mnt1" -o SOURCE)" != "$(findmnt -n -M "$mnt2" -o SOURCE)" ] ||
  fail "both mounts on one device"
[ "$(leftovers | grep -c '^process')" = 4 ] ||
  fail "expected 2 nbdkit + 2 nbdfuse: $(leftovers)"
# The node key (ACCEL_CACHE_KEY): made 0600 and given to both nbdkits.
[ "$(stat -c %a "$tmp/node.key")" = 600 ] || fail "the node key was not made 0600"
for s in "$ACCEL_RUN_DIR"/*/; do
  tr '\0' '\n' < "/proc/$(cat "$s/nbdkit.pid")/cmdline" | grep -qx "cache-key=$tmp/node.key" ||
    fail "the nbdkit of $s was not given cache-key="
done
# Read-ahead of one 1 MiB chunk (the manifests' default chunk size).
for m in "$mnt1" "$mnt2"; do
  [ "$(ra_of "$m")" = 2048 ] || fail "$m: read-ahead $(ra_of "$m") sectors, not 2048"
done
grep -q "read-ahead 1024 KiB" "$tmp/mount1.out" || fail "accel-mount did not report its read-ahead"

# 3. Re-running accel-mount is harmless; another URL or a foreign mount
# on the mountpoint is refused.
before=$(leftovers)
"$mount_tool" "${fuse[@]}" "$url1" "$mnt1" --cache-dir "$tmp/cache" "$ep" > "$tmp/again.out" 2>&1 ||
  fail "accel-mount again: $(cat "$tmp/again.out")"
cat "$tmp/again.out"
grep -q "already mounted" "$tmp/again.out" || fail "re-run did not say already mounted"
[ "$(leftovers)" = "$before" ] || fail "re-run changed something"
if "$mount_tool" "${fuse[@]}" "$url2" "$mnt1" "$ep" > "$tmp/other.out" 2>&1; then
  fail "accel-mount of another URL on a mounted mountpoint succeeded"
fi
cat "$tmp/other.out"
grep -q "already an accel mount of $url1" "$tmp/other.out" || fail "unclear refusal"
mkdir -p "$tmp/foreign"
mount -t tmpfs -o size=1M accel-test "$tmp/foreign" || fail "mount tmpfs"
on_exit "umount '$tmp/foreign'"
rc=0
"$mount_tool" "${fuse[@]}" "$url1" "$tmp/foreign" "$ep" > "$tmp/foreign.out" 2>&1 || rc=$?
cat "$tmp/foreign.out"
[ $rc = 1 ] || fail "accel-mount on a foreign mount: exit $rc, not 1"
grep -q "not by accel-mount: refusing" "$tmp/foreign.out" || fail "unclear refusal"
rc=0
"$umount_tool" "$tmp/foreign" > "$tmp/foreign-umount.out" 2>&1 || rc=$?
[ $rc = 1 ] || fail "accel-umount of a foreign mount: exit $rc, not 1"
findmnt -n -M "$tmp/foreign" > /dev/null || fail "accel-umount unmounted a foreign mount"
umount "$tmp/foreign"
[ "$(leftovers)" = "$before" ] || fail "a refused accel-mount changed something"

# 4. accel-umount both: nothing left; again: nothing to do.
"$umount_tool" "$mnt1" || fail "accel-umount 1"
"$umount_tool" --name "$(basename "$(dirname "$(grep -lx "mountpoint=$mnt2" \
  "$ACCEL_RUN_DIR"/*/state)")")" || fail "accel-umount --name 2"
assert_nothing_left "accel-umount"
if [ -e "$mnt1" ] || [ -e "$mnt2" ]; then
  fail "the mountpoints accel-mount made are still there"
fi
"$umount_tool" "$mnt1" > "$tmp/umount-again.out" 2>&1 ||
  fail "accel-umount again: $(cat "$tmp/umount-again.out")"
grep -q "nothing to do" "$tmp/umount-again.out" || fail "re-run did not say nothing to do"

# 5. A mount undone by hand behind accel-mount's back (as after a crash):
# the next accel-mount cleans up what is left and mounts again.
"$mount_tool" "${fuse[@]}" "$url1" "$mnt1" "$ep" --cache-dir "$tmp/cache" > /dev/null ||
  fail "accel-mount 1 again"
umount "$mnt1"
"$mount_tool" "${fuse[@]}" "$url1" "$mnt1" "$ep" --cache-dir "$tmp/cache" > "$tmp/stale.out" 2>&1 ||
  fail "accel-mount over stale state: $(cat "$tmp/stale.out")"
cat "$tmp/stale.out"
grep -q "undoing a previous mount" "$tmp/stale.out" || fail "stale state not reported"
[ "$(leftovers | grep -c '^process')" = 2 ] || fail "stale processes: $(leftovers)"
cmp "$tmp/src1/a/big.bin" "$mnt1/a/big.bin" || fail "remount reads wrong data"

# ... and with a file held open: accel-umount detaches lazily, says so,
# and everything is gone once the file is closed.
exec {held}< "$mnt1/a/big.bin"
"$umount_tool" "$mnt1" > "$tmp/busy.out" 2>&1 || fail "accel-umount busy: $(cat "$tmp/busy.out")"
cat "$tmp/busy.out"
grep -q "busy.*lazily" "$tmp/busy.out" || fail "lazy unmount not reported"
findmnt -n -M "$mnt1" > /dev/null && fail "still mounted after a lazy unmount"
exec {held}<&-
for _ in $(seq 100); do
  [ -z "$(leftovers)" ] && break
  sleep 0.1
done
assert_nothing_left "accel-umount of a busy mount, once closed"

# 6. nbdkit killed under a mounted filesystem: a fresh mount (nothing in
# the page cache), one small file read, then kill -9.  Reading an uncached
# file must fail, and quickly: timeout's 124 would mean it hung.
"$mount_tool" "${fuse[@]}" "$url2" "$mnt2" "$ep" --cache-dir "$tmp/cache" > /dev/null ||
  fail "accel-mount 2 again"
[ "$(cat "$mnt2/a/b/c/d/e/deep.txt")" = "hello accel" ] || fail "first read"
nbdkit_pid=$(cat "$ACCEL_RUN_DIR"/*/nbdkit.pid)
kill -9 "$nbdkit_pid"
t0=$(date +%s%N)
rc=0
timeout 60 cat "$mnt2/only-in-2.bin" > /dev/null 2> "$tmp/kill-read.err" || rc=$?
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
echo "read of an uncached file after kill -9 nbdkit: exit $rc after $ms ms: $(cat "$tmp/kill-read.err")"
[ $rc != 0 ] || fail "the read succeeded with nbdkit dead"
[ $rc != 124 ] || fail "the read hung (timed out after 60 s)"
[ $ms -lt 30000 ] || fail "the read took $ms ms to fail"
rc=0
"$mount_tool" "${fuse[@]}" "$url2" "$mnt2" "$ep" > "$tmp/dead.out" 2>&1 || rc=$?
cat "$tmp/dead.out"
[ $rc = 1 ] || fail "accel-mount on a mount with a dead nbdkit: exit $rc, not 1"
grep -q "has exited" "$tmp/dead.out" || fail "dead nbdkit not reported"
"$umount_tool" "$mnt2" > "$tmp/dead-umount.out" 2>&1 ||
  fail "accel-umount after kill: $(cat "$tmp/dead-umount.out")"
cat "$tmp/dead-umount.out"
grep -q "had already exited" "$tmp/dead-umount.out" || fail "dead nbdkit not reported"
assert_nothing_left "accel-umount after kill -9 nbdkit"
"$mount_tool" "${fuse[@]}" "$url2" "$mnt2" "$ep" --cache-dir "$tmp/cache" > /dev/null ||
  fail "accel-mount after kill"
diff -r "$tmp/src2" "$mnt2" -x lost+found || fail "mount after recovery differs"
"$umount_tool" "$mnt2" > /dev/null || fail "accel-umount 2"

# 7. A squashfs image (here --name names the state directory), then an
# erofs one.
"$mount_tool" "${fuse[@]}" "s3://$bucket/three.sqfs" "$tmp/mnt/three" --name three "$ep" \
  --cache-dir "$tmp/cache" cache-key=none > "$tmp/three.out" || fail "accel-mount squashfs"
tr '\0' '\n' < "/proc/$(cat "$ACCEL_RUN_DIR/three/nbdkit.pid")/cmdline" | grep -q "^cache-key" &&
  fail "cache-key=none still gave nbdkit a key"
grep -q '(squashfs, read-only)' "$tmp/three.out" || fail "not mounted as squashfs"
[ -f "$ACCEL_RUN_DIR/three/state" ] || fail "--name ignored"
diff -r "$tmp/src1" "$tmp/mnt/three" || fail "squashfs mount differs"
"$umount_tool" --name three > /dev/null || fail "accel-umount --name three"
assert_nothing_left "accel-umount squashfs"
# And an erofs image.
"$mount_tool" "${fuse[@]}" "s3://$bucket/four.img" "$tmp/mnt/four" "$ep" \
  --cache-dir "$tmp/cache" > "$tmp/four.out" || fail "accel-mount erofs"
grep -q '(erofs, read-only)' "$tmp/four.out" || fail "not mounted as erofs"
diff -r "$tmp/src1" "$tmp/mnt/four" || fail "erofs mount differs"
"$umount_tool" "$tmp/mnt/four" > /dev/null || fail "accel-umount erofs"
assert_nothing_left "accel-umount erofs"

# 8. Manifests with 4 MiB and 256 KiB chunks and no chunk-size= given:
# the read-ahead is still one chunk, from the export's preferred block
# size.
for cs in 4M:8192 256K:512; do
  want=${cs#*:} cs=${cs%:*}
  "$mount_tool" "${fuse[@]}" "s3://$bucket/one-$cs.img" "$tmp/mnt/cs" "$ep" \
    --cache-dir "$tmp/cache" > "$tmp/cs.out" 2>&1 ||
    fail "accel-mount of a $cs-chunk image: $(cat "$tmp/cs.out")"
  cat "$tmp/cs.out"
  ra=$(ra_of "$tmp/mnt/cs")
  echo "chunk size $cs: read-ahead $ra sectors"
  [ "$ra" = "$want" ] || fail "chunk size $cs: read-ahead $ra sectors, not $want"
  grep -q "read-ahead $((want / 2)) KiB" "$tmp/cs.out" || fail "$cs: wrong read-ahead reported"
  diff -r "$tmp/src1" "$tmp/mnt/cs" -x lost+found || fail "the $cs-chunk mount differs"
  "$umount_tool" "$tmp/mnt/cs" > /dev/null || fail "accel-umount of the $cs-chunk image"
  assert_nothing_left "accel-umount of the $cs-chunk image"
done

# 9. Failures at each stage leave nothing: a missing object and a wrong
# secret (nbdkit refuses to start), an image with no filesystem (fails
# after nbdkit, nbdfuse and the loop device are up).
try_fail () {
  local what=$1 want=$2 rc=0
  shift 2
  "$@" > "$tmp/fail.out" 2>&1 || rc=$?
  echo "-- $what: exit $rc"
  cat "$tmp/fail.out"
  [ $rc = 1 ] || fail "$what: exit $rc, not 1"
  grep -q "$want" "$tmp/fail.out" || fail "$what: no '$want' in the error"
  assert_nothing_left "$what"
  [ ! -e "$tmp/mnt/bad" ] || fail "$what: the mountpoint it made is left"
}
try_fail "missing object" "404" \
  "$mount_tool" "${fuse[@]}" "s3://$bucket/missing.img" "$tmp/mnt/bad" "$ep" --cache-dir "$tmp/cache"
try_fail "wrong secret" "403" env AWS_SECRET_ACCESS_KEY=wrong-secret-0123456789 \
  "$mount_tool" "${fuse[@]}" "$url1" "$tmp/mnt/bad" "$ep" --cache-dir "$tmp/cache"
grep -q "wrong-secret" "$tmp/fail.out" && fail "the secret appears in the error"
try_fail "no filesystem" "no filesystem found" \
  "$mount_tool" "${fuse[@]}" "s3://$bucket/raw.img" "$tmp/mnt/bad" "$ep" --cache-dir "$tmp/cache"

# 9b. nbdkit's errors after it started reach its log (and accel-umount
# shows them): the object replaced under a mounted image, in a bucket
# without versioning, fails the reads of chunks not cached yet; the log
# must say why (without -v, nbdkit sends its stderr to /dev/null as it
# forks, and the log stayed empty).  No wrong bytes are read.
s3_put "$tmp/one.img" "$bucket/swap.img"
s3_put "$tmp/one.img.manifest" "$bucket/swap.img.manifest"
"$mount_tool" "${fuse[@]}" "s3://$bucket/swap.img" "$tmp/mnt/swap" --name swap "$ep" \
  --cache-dir "$tmp/cache-swap" > "$tmp/swap.out" 2>&1 || fail "accel-mount swap: $(cat "$tmp/swap.out")"
s3_put "$tmp/two.img" "$bucket/swap.img"
echo 3 > /proc/sys/vm/drop_caches
bad=0
while IFS= read -r -d '' f; do
  if cmp -s "$f" "$tmp/src1/${f#"$tmp/mnt/swap/"}" 2> /dev/null; then :
  elif [ -r "$f" ] && cat "$f" > /dev/null 2>&1; then
    fail "swap: $f read other bytes than its source"
  else
    bad=$((bad + 1))
  fi
done < <(find "$tmp/mnt/swap" -type f -print0)
[ "$bad" -gt 0 ] || fail "swap: every file read fine from a replaced object"
grep ': error: ' "$ACCEL_RUN_DIR/swap/nbdkit.log" | tail -n 3
grep -q ': error: .*changed since it was opened' "$ACCEL_RUN_DIR/swap/nbdkit.log" ||
  fail "swap: nbdkit's log does not say why reads failed: $(tail -n 5 "$ACCEL_RUN_DIR/swap/nbdkit.log")"
# NB: besides nbdkit's line for each failed request ("sending error
# reply"), a few lines per connection.
awk '/: debug: / && !/sending error reply/ { n++ } END { exit n > 200 }' \
  "$ACCEL_RUN_DIR/swap/nbdkit.log" || fail "swap: nbdkit's log is flooded with debug lines"
"$umount_tool" --name swap > /dev/null || fail "accel-umount swap"
assert_nothing_left "accel-umount swap"
echo "ok: $bad files failed to read from a replaced object, and nbdkit's log says why"

# 9c. Two accel-mounts at once on one mountpoint, under other names:
# one mounts, the other then finds it mounted (nothing to do); never
# two mounts stacked.
rc1=0 rc2=0
"$mount_tool" "${fuse[@]}" "$url1" "$tmp/mnt/both" --name both1 "$ep" \
  --cache-dir "$tmp/cache" > "$tmp/both1.out" 2>&1 & p1=$!
"$mount_tool" "${fuse[@]}" "$url1" "$tmp/mnt/both" --name both2 "$ep" \
  --cache-dir "$tmp/cache" > "$tmp/both2.out" 2>&1 & p2=$!
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
echo "two accel-mounts on one mountpoint: exit $rc1 and $rc2"
n=$(findmnt -n -R "$tmp/mnt/both" | wc -l)
[ "$n" = 1 ] || fail "two accel-mounts on one mountpoint: $n mounts: $(findmnt -R "$tmp/mnt/both")"
[ "$rc1$rc2" = 00 ] && cat "$tmp/both1.out" "$tmp/both2.out" | grep -q "nothing to do" ||
  fail "two accel-mounts on one mountpoint: exit $rc1 and $rc2: $(cat "$tmp/both1.out" "$tmp/both2.out")"
"$umount_tool" "$tmp/mnt/both" > /dev/null || fail "accel-umount both"
assert_nothing_left "accel-umount both"

# 9d. Under the unit's UMask=0077 the directories made above the
# mountpoint still let every user reach the dataset; a mount made over
# the dataset (here a bind mount) stops accel-umount before it stops
# anything, so the dataset keeps being served.
chmod 711 "$tmp"
on_exit "chmod 700 '$tmp'"
(umask 0077 && "$mount_tool" "${fuse[@]}" "$url1" "$tmp/mnt/deep/a/b" "$ep" \
   --cache-dir "$tmp/cache" > "$tmp/deep.out" 2>&1) ||
  fail "accel-mount under umask 0077: $(cat "$tmp/deep.out")"
f=$(cd "$tmp/src1" && find . -type f | head -n 1)
runuser -u nobody -- cat "$tmp/mnt/deep/a/b/$f" > "$tmp/deep.read" ||
  fail "another user cannot read the dataset mounted under umask 0077: $(ls -ld "$tmp/mnt/deep" "$tmp/mnt/deep/a")"
cmp "$tmp/deep.read" "$tmp/src1/$f" || fail "umask 0077 mount: wrong bytes"
mount --bind "$tmp/src2" "$tmp/mnt/deep/a/b" || fail "bind mount"
rc=0; "$umount_tool" "$tmp/mnt/deep/a/b" > "$tmp/over.out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "is mounted over the dataset: unmount it first" "$tmp/over.out" ||
  fail "accel-umount under a mount over it: exit $rc: $(cat "$tmp/over.out")"
umount "$tmp/mnt/deep/a/b" || fail "umount the bind mount"
cat "$tmp/mnt/deep/a/b/$f" > "$tmp/deep.read2" ||
  fail "the dataset is no longer served after accel-umount refused"
cmp "$tmp/deep.read2" "$tmp/src1/$f" || fail "wrong bytes after accel-umount refused"
"$umount_tool" "$tmp/mnt/deep/a/b" > /dev/null || fail "accel-umount deep"
assert_nothing_left "accel-umount deep"
[ ! -e "$tmp/mnt/deep" ] || fail "accel-umount left the directories accel-mount made: $(find "$tmp/mnt/deep")"
chmod 700 "$tmp"
# A mountpoint whose name is too long for a socket's path (each '-' is
# 4 bytes escaped): a short socket path, gone after accel-umount.
long="$tmp/mnt/$(printf 'a-%.0s' $(seq 30))z"
"$mount_tool" "${fuse[@]}" "$url1" "$long" "$ep" --cache-dir "$tmp/cache" \
  > "$tmp/long.out" 2>&1 || fail "accel-mount on a long name: $(cat "$tmp/long.out")"
grep -q "socket $ACCEL_RUN_DIR/.sockets/[0-9a-f]*.sock" "$tmp/long.out" ||
  fail "no short socket path: $(cat "$tmp/long.out")"
diff -r "$tmp/src1" "$long" -x lost+found || fail "the long-named mount differs"
"$umount_tool" "$long" > /dev/null || fail "accel-umount of the long name"
assert_nothing_left "accel-umount long name"
[ -z "$(ls -A "$ACCEL_RUN_DIR/.sockets")" ] ||
  fail "left in .sockets: $(ls -A "$ACCEL_RUN_DIR/.sockets")"

# 10. Usage errors exit 2; --help describes the tools.
rc=0; "$mount_tool" "${fuse[@]}" "$url1" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-mount with no mountpoint: exit $rc, not 2"
rc=0; "$mount_tool" "${fuse[@]}" "$url1" "$mnt1" not-a-key > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-mount with a bad KEY=VALUE: exit $rc, not 2"
rc=0; "$umount_tool" > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "accel-umount with no argument: exit $rc, not 2"
"$mount_tool" --help | grep -q '^SYNOPSIS' || fail "accel-mount --help"
"$umount_tool" --help | grep -q '^SYNOPSIS' || fail "accel-umount --help"
assert_nothing_left "the end"
echo OK
