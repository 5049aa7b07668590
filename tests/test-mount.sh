#!/usr/bin/env bash
# A real kernel mount of the export: an ext4 image of a tree of awkward
# files is published to S3, served by the plugin, exposed with nbdfuse,
# attached read-only to a loop device and mounted read-only (this kernel
# has no nbd driver; the real /dev/nbd path is tested in a VM).  Every
# file must equal its source.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdfuse; requires mke2fs; requires losetup
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
needs_s3
make_tmpdir
make_tree "$tmp/src"
mke2fs -q -t ext4 -b 4096 -d "$tmp/src" -L accel-test "$tmp/fs.img" 32M ||
  fail "mke2fs"
"$top/indexer/accel-index" "$tmp/fs.img" -o "$tmp/fs.img.manifest" ||
  fail "accel-index"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
s3_put "$tmp/fs.img" "$bucket/fs.img"
s3_put "$tmp/fs.img.manifest" "$bucket/fs.img.manifest"

start_nbdkit a url="s3://$bucket/fs.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
  cache-dir="$tmp/cache" || fail "nbdkit: $(cat "$tmp/a.log")"
mount_export "$(nbd_uri a)" "$tmp/mnt"
findmnt "$tmp/mnt"
diff -r "$tmp/src" "$tmp/mnt" -x lost+found || fail "mounted tree differs"
# The hard link is still one inode.
[ "$(stat -c %i "$tmp/mnt/a/big.bin")" = "$(stat -c %i "$tmp/mnt/a/hardlink.bin")" ] ||
  fail "hard link lost"
touch "$tmp/mnt/new" 2>/dev/null && fail "the mount is writable"
echo OK
