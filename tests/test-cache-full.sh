#!/usr/bin/env bash
# A full disk under the cache: reads stay correct (served from the
# origin without caching), nbdkit warns once, and nothing short or wrong
# is ever recorded.  The cache dir is a 4 MiB tmpfs; the image is 16 MiB.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
[ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
needs_s3
make_tmpdir
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
head -c $((16 * 1048576)) /dev/urandom > "$tmp/disk.img"
not_a_filesystem "$tmp/disk.img"
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/disk.img.manifest"

mkdir "$tmp/cache"
mount -t tmpfs -o size=4m tmpfs "$tmp/cache" || skip "cannot mount tmpfs"
on_exit "umount '$tmp/cache'"

start_nbdkit a url="s3://$bucket/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
  cache-dir="$tmp/cache" || fail "nbdkit: $(cat "$tmp/a.log")"
nbdcopy "$(nbd_uri a)" "$tmp/copy.img" || fail "nbdcopy on a full cache disk"
cmp "$tmp/disk.img" "$tmp/copy.img" || fail "wrong bytes with a full cache disk"
nbdcheck random "$(nbd_uri a)" "$tmp/disk.img" 200 || fail "random reads"
stop_nbdkit a
df -h "$tmp/cache"
n=$(grep -c "warning: cache" "$tmp/a.log")
echo "warnings: $n"
grep "warning: cache" "$tmp/a.log" | head -3
grep -i "cache|error" "$tmp/a.log" | grep -v "s3: GET\|config" | head -20 >&2
[ "$n" = 1 ] || fail "expected one warning about the full disk, got $n"

# What was cached is right: a restart serves it, and reads are correct.
start_nbdkit b url="s3://$bucket/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
  cache-dir="$tmp/cache" || fail "nbdkit: $(cat "$tmp/b.log")"
nbdcopy "$(nbd_uri b)" "$tmp/copy2.img" || fail "nbdcopy after restart"
cmp "$tmp/disk.img" "$tmp/copy2.img" || fail "wrong bytes after restart"
stop_nbdkit b
grep -q "damaged\|short" "$tmp/b.log" && fail "a damaged chunk was recorded"

# A new cache directory on a disk that is full already: nbdkit does not
# start (the manifest's local copy cannot be written), and says why;
# it must not crash (a store into a hole of a shared mapping on a full
# tmpfs is SIGBUS: the throttle file is allocated, not sparse).
mkdir "$tmp/full"
mount -t tmpfs -o size=256k tmpfs "$tmp/full" || fail "cannot mount tmpfs"
on_exit "umount '$tmp/full'"
dd if=/dev/zero of="$tmp/full/fill" bs=4k 2>/dev/null
if start_nbdkit c url="s3://$bucket/disk.img" \
     endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/full/cache"; then
  stop_nbdkit c
  fail "nbdkit started with no room for its manifest"
fi
grep -q "Bus error\|signal" "$tmp/c.log" && fail "nbdkit crashed: $(cat "$tmp/c.log")"
grep -q "error: .*No space left on device" "$tmp/c.log" ||
  fail "no clear error on a full disk: $(grep -i error "$tmp/c.log")"
echo OK
