#!/usr/bin/env bash
# The real /dev/nbd path, as on a production node: this host's kernel has
# no nbd driver, so a stock Debian cloud kernel boots in qemu (software
# emulation unless KVM is really there) from an initramfs built by
# tests/vm/prepare.  Its /init attaches two exports of the plugin with
# Debian's nbd-client (2 connections each, read-only) -- an ext4 and a
# squashfs and an erofs image of the same tree, published to S3 -- mounts them
# read-only, and prints sha256sum of every file.  Every checksum,
# directory and hard link must equal the source's; the devices must be
# read-only and refuse a write, and so must the mounts; both connections
# of each device must have carried reads.
#
# Then, in the same boot, accel-mount and accel-umount themselves
# (tests/vm/accel-mount-check): the guest runs nbdkit with this tree's
# plugin against S3 on the host, its cache on a virtio disk.  A missing
# object fails with a clear error and leaves nothing; two ext4 images
# (4 KiB blocks, a manifest of 1 MiB chunks; 1 KiB blocks, no manifest,
# chunk-size=256K) are mounted at once on the first free devices, with
# the block size, read-ahead, request cap, 4 connections, nbd timeout
# (the default, and --timeout) and nbdkit --threads accel-mount sets,
# read-only and refusing writes; every file matches the source;
# accel-umount leaves no nbd device connected, no nbdkit, no mount and
# no state.  The guest's cold and warm MB/s and nbdkit's peak RSS are
# reported: software emulation, smoke figures, not a benchmark.
#
# The guest's only network is qemu's user mode with restrict=on: its
# guestfwd addresses run tests/vm/relay.py, which connects to nbdkit (or
# S3) on 127.0.0.1 and nowhere else; a probe from the guest must reach
# the NBD server there and must not reach the host through the user-net
# gateway.
# accel-test: alone (a software-emulated VM: both CPUs)
. "$(dirname "$0")/lib/functions.sh"
# The VM's tools come with tools/install-deps: run it here too when this
# test runs alone on a machine without them.
for c in qemu-system-x86_64 cpio depmod zstd nbdinfo; do
  command -v $c >/dev/null 2>&1 || { "$top/tools/install-deps" >&2 || :; break; }
done
requires qemu-system-x86_64; requires cpio; requires depmod
requires nbdkit; requires mke2fs; requires mksquashfs; requires mkfs.erofs
requires apt-get; requires dpkg-deb; requires zstd; requires nbdinfo
needs_s3
make_tmpdir

# The guest side of the forwards to the two nbdkits (they go on the
# kernel command line).
fwd_addr=10.0.2.100 fwd_port_ext4=10809 fwd_port_sqfs=10810 fwd_port_erofs=10811
fwd_port_s3=10812

# 1. The images: ext4, squashfs and erofs of one tree, indexed and
# uploaded.
make_tree "$tmp/src"
mke2fs -q -t ext4 -b 4096 -d "$tmp/src" -L accel-vm "$tmp/fs.ext4" 32M ||
  fail "mke2fs"
mksquashfs "$tmp/src" "$tmp/fs.sqfs" -quiet -noappend -no-progress \
  > "$tmp/mksquashfs.log" 2>&1 || fail "mksquashfs"
mkfs.erofs --quiet "$tmp/fs.erofs" "$tmp/src" > "$tmp/mkfs.erofs.log" 2>&1 ||
  fail "mkfs.erofs: $(cat "$tmp/mkfs.erofs.log")"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
for img in fs.ext4 fs.sqfs fs.erofs; do
  "$top/indexer/accel-index" "$tmp/$img" -o "$tmp/$img.manifest" ||
    fail "accel-index $img"
  s3_put "$tmp/$img" "$bucket/$img"
  s3_put "$tmp/$img.manifest" "$bucket/$img.manifest"
done

# The images accel-mount mounts in the guest (tests/vm/accel-mount-check):
# a: the tree and a 16 MiB file, 4 KiB blocks, indexed; b: the tree,
# 1 KiB blocks, no manifest.
cp -a "$tmp/src" "$tmp/src-a"
head -c $((16 << 20)) /dev/urandom > "$tmp/src-a/big.bin"
mke2fs -q -t ext4 -b 4096 -d "$tmp/src-a" "$tmp/a.ext4" 40M || fail "mke2fs a"
mke2fs -q -t ext4 -b 1024 -d "$tmp/src" "$tmp/b.ext4" 24M || fail "mke2fs b"
"$top/indexer/accel-index" "$tmp/a.ext4" -o "$tmp/a.ext4.manifest" ||
  fail "accel-index a"
for f in a.ext4 a.ext4.manifest b.ext4; do
  s3_put "$tmp/$f" "$bucket/$f"
done
# What the guest needs to reach S3, in its initramfs.
s3_port=${ACCEL_TEST_S3_ENDPOINT##*:}
s3_port=${s3_port%%/*}
mkdir -p "$tmp/vm-extra/accel"
printf '%s\n' "ACCEL_VM_ENDPOINT=http://$fwd_addr:$fwd_port_s3" \
  "ACCEL_VM_BUCKET=$bucket" "AWS_ACCESS_KEY_ID=$ACCEL_TEST_S3_ACCESS_KEY" \
  "AWS_SECRET_ACCESS_KEY=$ACCEL_TEST_S3_SECRET_KEY" "AWS_REGION=us-east-1" \
  > "$tmp/vm-extra/accel/env"
# The guest's cache disk (sparse).
mke2fs -q -t ext4 "$tmp/cache-disk.img" 96M || fail "mke2fs cache disk"

# 2. The VM's kernel and initramfs (downloads only into an empty cache).
t0=$(date +%s.%N)
"$top/tests/vm/prepare" "$tmp/vm" "$tmp/vm-extra" > "$tmp/prepare.log" 2>&1 ||
  fail "tests/vm/prepare"
t1=$(date +%s.%N)
cat "$tmp/vm/versions"

# 3. One nbdkit per image, on loopback TCP.
start_nbdkit_tcp ext4 url="s3://$bucket/fs.ext4" \
  endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache-ext4" ||
  fail "nbdkit: $(cat "$tmp/ext4.log")"
start_nbdkit_tcp sqfs url="s3://$bucket/fs.sqfs" \
  endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache-sqfs" ||
  fail "nbdkit: $(cat "$tmp/sqfs.log")"
start_nbdkit_tcp erofs url="s3://$bucket/fs.erofs" \
  endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache-erofs" ||
  fail "nbdkit: $(cat "$tmp/erofs.log")"

# 4. Boot, with 2 CPUs for nbd's 2 queues.  KVM only where a real KVM
# module is loaded (a paravirtual /dev/kvm may not run stock kernels).
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
  accel=(-accel kvm -cpu host)
else
  accel=(-accel tcg)
fi
relay="/usr/bin/python3 '$top/tests/vm/relay.py'"
# NB: commas separate qemu options; none of these values may hold one.
netdev="user,id=n0,restrict=on"
netdev+=",guestfwd=tcp:$fwd_addr:$fwd_port_ext4-cmd:$relay $port_ext4 '$tmp/relay-ext4.log'"
netdev+=",guestfwd=tcp:$fwd_addr:$fwd_port_sqfs-cmd:$relay $port_sqfs '$tmp/relay-sqfs.log'"
netdev+=",guestfwd=tcp:$fwd_addr:$fwd_port_erofs-cmd:$relay $port_erofs '$tmp/relay-erofs.log'"
netdev+=",guestfwd=tcp:$fwd_addr:$fwd_port_s3-cmd:$relay $s3_port '$tmp/relay-s3.log'"
# The probes: the forward must answer, the host behind the gateway not.
append="console=ttyS0 quiet loglevel=3 panic=-1"
append+=" accel_exports=$fwd_addr:$fwd_port_ext4/ext4,$fwd_addr:$fwd_port_sqfs/squashfs,$fwd_addr:$fwd_port_erofs/erofs"
append+=" accel_probes=$fwd_addr:$fwd_port_ext4,10.0.2.2:$port_ext4"
: > "$tmp/console.log"
t2=$(date +%s.%N)
timeout -k 5 "${ACCEL_VM_TIMEOUT:-300}" qemu-system-x86_64 \
  -M pc "${accel[@]}" -smp 2 -m 768 -nodefaults -no-user-config \
  -display none -no-reboot \
  -kernel "$tmp/vm/vmlinuz" -initrd "$tmp/vm/initrd.zst" -append "$append" \
  -serial "file:$tmp/console.log" \
  -netdev "$netdev" -device virtio-net-pci,netdev=n0,romfile= \
  -drive "file=$tmp/cache-disk.img,if=virtio,format=raw" \
  < /dev/null > "$tmp/qemu.log" 2>&1 &
qpid=$!
on_exit "kill $qpid"
wait $qpid
qrc=$?
t3=$(date +%s.%N)
tr -d '\r' < "$tmp/console.log" > "$tmp/console.txt"
[ $qrc = 0 ] || fail "qemu exited with $qrc (124: timed out): $(tail -n 20 "$tmp/console.txt")"
sed -n '/==== ACCEL-VM-BEGIN/,/==== ACCEL-VM-END/p' "$tmp/console.txt" \
  > "$tmp/result.txt"
grep '^ACCEL-VM:' "$tmp/result.txt"
grep -q '^==== ACCEL-VM-END rc=0 ====$' "$tmp/result.txt" ||
  fail "the VM did not finish: $(tail -n 30 "$tmp/console.txt")"

# 5. What the guest saw.
guest_says () { grep -qxF "ACCEL-VM: $1" "$tmp/result.txt" || fail "guest: no '$1'"; }
guest_says "probe $fwd_addr:$fwd_port_ext4 got=NBDMAGIC"
guest_says "probe 10.0.2.2:$port_ext4 got=none"
(cd "$tmp/src" && find . -type f -exec sha256sum {} +) | LC_ALL=C sort \
  > "$tmp/want-sha256"
(cd "$tmp/src" && find . -type d) | LC_ALL=C sort > "$tmp/want-dirs"
(cd "$tmp/src" && find . -type f -links +1) | LC_ALL=C sort > "$tmp/want-links"
[ -s "$tmp/want-links" ] || fail "the test tree has no hard links"
# section N NAME: the lines between "---- NAME N" and the next "---- ",
# sorted.
section () {
  awk -v h="---- $2 $1" '$0 == h { on = 1; next } /^---- / { on = 0 } on' \
    "$tmp/result.txt" | LC_ALL=C sort
}
n=0
for img in fs.ext4 fs.sqfs fs.erofs; do
  size=$(stat -c %s "$tmp/$img")
  guest_says "/dev/nbd$n ro=1 size=$size"
  # The kernel refuses to open a read-only disk for writing (EPERM; older
  # kernels said EACCES), and a read-only mount refuses with EROFS.
  grep -qE "^ACCEL-VM: /dev/nbd$n write=refused: (Operation not permitted|Permission denied)\$" \
    "$tmp/result.txt" || fail "guest: /dev/nbd$n was not refused a write"
  guest_says "/mnt/$n write=refused: Read-only file system"
  for what in sha256 dirs links; do
    section $n $what > "$tmp/got-$what-$n"
    diff -u "$tmp/want-$what" "$tmp/got-$what-$n" ||
      fail "$img: $what in the VM differ from the source"
  done
  echo "$img: $(wc -l < "$tmp/got-sha256-$n") files and their checksums match"
  n=$((n + 1))
done

# 6. nbd-client's 2 connections per export both carried reads (the
# guest reads either half of each device from either CPU): every relayed
# connection logs what it carried, and the probe's carries 18 bytes.
for name in ext4 sqfs erofs; do
  grep '^relay pid' "$tmp/relay-$name.log" || fail "$name: nothing relayed"
  busy=$(awk '$8 > 512 * 1024 { n++ } END { print n + 0 }' "$tmp/relay-$name.log")
  [ "$busy" -ge 2 ] ||
    fail "$name: $busy connections carried reads, expected 2"
done

# 7. accel-mount in the guest (tests/vm/accel-mount-check).  Not in a
# sanitizer build: the guest has no sanitizer runtime to preload into
# nbdkit, so the plugin cannot load there (the plain build checks it).
if sanitizer_build; then
  echo "skipped: accel-mount in the guest (a sanitizer build cannot run there)"
  echo OK
  exit 0
fi
# guest_matches ERE: some guest line matches "ACCEL-VM: ERE" whole.
guest_matches () {
  grep -qE "^ACCEL-VM: $1\$" "$tmp/result.txt" || fail "guest: no line matching '$1'"
}
# A failure: exit 1, the reason said, nothing left behind.
guest_says "bad missing.img rc=1"
guest_matches "bad missing.img says: .*(404|[Nn]ot [Ff]ound|NoSuchKey).*"
guest_says "bad missing.img left: "
# The first free devices; ro; the logical block size of the filesystem
# (b is reattached with 1 KiB blocks); read-ahead of a chunk; requests of
# at most 1 MiB; 4 connections (blk-mq queues); nbdkit --threads 4.
# NB: blk-mq makes no more hardware queues than CPUs: the guest's 2.
guest_matches "a device /dev/nbd0 ro=1 lbs=4096 ra_kb=1024 max_kb=(1024|[1-9][0-9]{0,2}) queues=2 timeout=[0-9]+"
guest_matches "b device /dev/nbd1 ro=1 lbs=1024 ra_kb=256 max_kb=(1024|[1-9][0-9]{0,2}) queues=2 timeout=[0-9]+"
for n in a b; do
  guest_matches "$n mount ext4 +ro,nosuid,nodev,.*"
  guest_says "$n nbdkit --threads 4"
  guest_says "$n write=refused: Read-only file system"
done
# The nbd timeout, in jiffies in debugfs: a's is the default (the
# plugin's budget for a request + 60 s, accel-mount --help), b's is
# --timeout 90, so a/b = default/90 whatever the kernel's HZ.
ta=$(sed -n 's/^ACCEL-VM: a device .* timeout=\([0-9]*\)$/\1/p' "$tmp/result.txt")
tb=$(sed -n 's/^ACCEL-VM: b device .* timeout=\([0-9]*\)$/\1/p' "$tmp/result.txt")
dump=$(nbdkit --dump-plugin "$plugin")
t=$(sed -n 's/^accel_default_timeout=//p' <<< "$dump")
r=$(sed -n 's/^accel_default_retries=//p' <<< "$dump")
th=$(sed -n 's/^accel_default_throttle_timeout=//p' <<< "$dump")
want=$(( ((r + 1) * t > th + t ? (r + 1) * t : th + t) + 60 ))
{ [ "$tb" -gt 0 ] && [ $((ta * 90)) = $((tb * want)) ]; } ||
  fail "nbd timeouts: a $ta, b $tb jiffies; want a/b = $want/90"
echo "guest nbd timeouts: a ${want}s (default), b 90s (--timeout)"
(cd "$tmp/src-a" && find . -type f -exec sha256sum {} +) | LC_ALL=C sort \
  > "$tmp/want-sha256-a"
(cd "$tmp/src-a" && find . -type d) | LC_ALL=C sort > "$tmp/want-dirs-a"
cp "$tmp/want-links" "$tmp/want-links-a"
for n in a b; do
  for what in sha256 dirs links; do
    want_file="$tmp/want-$what"
    [ $n = b ] || want_file="$tmp/want-$what-a"
    section $n $what > "$tmp/got-$what-$n"
    diff -u "$want_file" "$tmp/got-$what-$n" ||
      fail "accel-mount $n: $what in the VM differ from the source"
  done
  echo "accel-mount $n: $(wc -l < "$tmp/got-sha256-$n") files and their checksums match"
done
for n in a b; do guest_says "accel-umount $n rc=0"; done
guest_says "left after accel-umount: "
# Smoke figures (software emulation, a shared machine): report only.
sed -n 's/^ACCEL-VM: \(a cold .*\|a warm .*\|accel-mount a took .*\)$/guest (TCG, smoke figure): \1/p' \
  "$tmp/result.txt"
sed -n 's/^ACCEL-VM: \([ab] nbdkit peak .*\)$/guest: \1 (VmHWM, before accel-umount)/p' \
  "$tmp/result.txt"

awk -v p="$t0 $t1" -v b="$t2 $t3" 'BEGIN {
  split(p, a); split(b, c)
  printf "prepare %.1fs, VM from qemu start to poweroff %.1fs\n", a[2]-a[1], c[2]-c[1] }'
echo OK
