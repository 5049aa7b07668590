#!/usr/bin/env bash
# One copy in RAM (issue 14, point 1): the cache's data files stay out of
# the page cache, whatever path reads or writes them, since the page
# cache above the NBD device already holds the hot bytes.
#
# An ext4 image holding a 256 MiB file (and a last chunk shorter than
# the others) is published to S3 (radosgw), served by the plugin and
# mounted (nbdfuse + read-only loop + mount -o ro).  After each of these
# reads, every byte is checked and the cache's files (every image's map
# and data) must hold at most 64 MiB of page cache (fincore):
#
#   cold     an empty cache: fetch, verify, store;
#   warm     the same nbdkit, remounted: two readers at once, one of them
#            backwards, so the data file is read out of order;
#   restart  a new nbdkit: every chunk read whole and hashed once;
#   dedup    the same image but for its last 4 KiB, under another name:
#            its other chunks copied from the first image's cache
#            (copy_file_range);
#   verify   accel-cache verify hashing every chunk of both images.
#
# Today's main left the whole 256 MiB in the page cache after the cold
# read.
# accel-test: alone (measures the page cache)
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdfuse; requires mke2fs; requires losetup
requires fincore
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
needs_s3
make_tmpdir

limit_mib=64
mkdir -p "$tmp/src"
head -c $((256 << 20)) /dev/urandom > "$tmp/src/big.bin"
head -c 12345 /dev/urandom > "$tmp/src/odd.bin"
want=$(cksum < "$tmp/src/big.bin")
# 75001 blocks of 4 KiB: the image's last 1 MiB chunk is short.
mke2fs -q -t ext4 -b 4096 -d "$tmp/src" "$tmp/fs.img" 75001 || fail "mke2fs"
rm -rf "$tmp/src"
[ $(( $(stat -c %s "$tmp/fs.img") % (1 << 20) )) != 0 ] || fail "no short last chunk"
"$top/indexer/accel-index" "$tmp/fs.img" -o "$tmp/fs.img.manifest" ||
  fail "accel-index"
# copy.img: the same but for its last 4 KiB (free space), so another
# image of the cache, all of whose other chunks dedup copies.
cp "$tmp/fs.img" "$tmp/copy.img"
head -c 4096 /dev/urandom |
  dd of="$tmp/copy.img" bs=4096 seek=75000 conv=notrunc status=none
"$top/indexer/accel-index" "$tmp/copy.img" -o "$tmp/copy.img.manifest" ||
  fail "accel-index"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
for name in fs copy; do
  s3_put "$tmp/$name.img" "$bucket/$name.img"
  s3_put "$tmp/$name.img.manifest" "$bucket/$name.img.manifest"
  rm -f "$tmp/$name.img"
done

# cache_pages: MiB of the page cache that the cache's files hold.
cache_pages () {
  fincore -b -n -o RES "$tmp"/cache/images/*/data "$tmp"/cache/images/*/map |
    awk '{ s += $1 } END { printf "%.1f\n", s / 1048576 }'
}

# check PHASE: the page cache the cache's files hold after PHASE.
check () {
  local mib
  mib=$(cache_pages)
  echo "$1: the cache's files hold $mib MiB of page cache"
  awk -v m="$mib" -v l="$limit_mib" 'BEGIN { exit !(m <= l) }' ||
    fail "$1: the cache's files hold $mib MiB of page cache (at most $limit_mib)"
}

# read_back: the big file read backwards, 1 MiB at a time, checksummed
# as if read forwards.
read_back () {
  local i n=256
  for (( i = n - 1; i >= 0; i-- )); do
    dd if="$tmp/mnt/big.bin" bs=1M skip="$i" count=1 status=none > "$tmp/part.$i" ||
      return 1
  done
  for (( i = 0; i < n; i++ )); do cat "$tmp/part.$i"; done | cksum
  rm -f "$tmp"/part.*
}

serve () {
  start_nbdkit "$1" url="s3://$bucket/$2.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
    cache-dir="$tmp/cache" -D accel.stats=1 || fail "nbdkit $1: $(cat "$tmp/$1.log")"
  mount_export "$(nbd_uri "$1")" "$tmp/mnt"
}

serve a fs
[ "$(cksum < "$tmp/mnt/big.bin")" = "$want" ] || fail "cold: wrong data"
check cold

unmount_export "$tmp/mnt" || fail "umount"
mount_export "$(nbd_uri a)" "$tmp/mnt"
cksum < "$tmp/mnt/big.bin" > "$tmp/fwd" &
fwd=$!
back=$(read_back) || fail "warm: backwards read failed"
wait $fwd || fail "warm: forwards read failed"
[ "$(cat "$tmp/fwd")" = "$want" ] || fail "warm: wrong data (forwards)"
[ "$back" = "$want" ] || fail "warm: wrong data (backwards)"
check warm
unmount_export "$tmp/mnt" || fail "umount"
stop_nbdkit a

serve b fs
[ "$(cksum < "$tmp/mnt/big.bin")" = "$want" ] || fail "restart: wrong data"
check restart
unmount_export "$tmp/mnt" || fail "umount"
stop_nbdkit b
[ "$(nbdkit_stat b "verify failures")" = 0 ] || fail "restart: damaged chunks"

serve c copy
[ "$(cksum < "$tmp/mnt/big.bin")" = "$want" ] || fail "dedup: wrong data"
check dedup
unmount_export "$tmp/mnt" || fail "umount"
stop_nbdkit c
dedup=$(nbdkit_stat c "dedup chunks")
[ "${dedup:-0}" -ge 200 ] || fail "dedup: only ${dedup:-no} chunks copied"

"$top/tools/accel-cache" -d "$tmp/cache" verify > "$tmp/verify.log" 2>&1 ||
  fail "accel-cache verify: $(cat "$tmp/verify.log")"
check verify
echo OK
