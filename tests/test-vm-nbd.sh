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
# The guest's only network is qemu's user mode with restrict=on: its
# guestfwd addresses run tests/vm/relay.py, which connects to nbdkit on
# 127.0.0.1 and nowhere else; a probe from the guest must reach the NBD
# server there and must not reach the host through the user-net gateway.
. "$(dirname "$0")/lib/functions.sh"
# The VM's tools come with tools/install-deps: run it here too when this
# test runs alone on a machine without them.
for c in qemu-system-x86_64 cpio depmod; do
  command -v $c >/dev/null 2>&1 || { "$top/tools/install-deps" >&2 || :; break; }
done
requires qemu-system-x86_64; requires cpio; requires depmod
requires nbdkit; requires mke2fs; requires mksquashfs; requires mkfs.erofs
requires apt-get; requires dpkg-deb
needs_s3
make_tmpdir

# The guest side of the forwards to the two nbdkits (they go on the
# kernel command line).
fwd_addr=10.0.2.100 fwd_port_ext4=10809 fwd_port_sqfs=10810 fwd_port_erofs=10811

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

# 2. The VM's kernel and initramfs (downloads only into an empty cache).
t0=$(date +%s.%N)
"$top/tests/vm/prepare" "$tmp/vm" > "$tmp/prepare.log" 2>&1 ||
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
# The probes: the forward must answer, the host behind the gateway not.
append="console=ttyS0 quiet loglevel=3 panic=-1"
append+=" accel_exports=$fwd_addr:$fwd_port_ext4/ext4,$fwd_addr:$fwd_port_sqfs/squashfs,$fwd_addr:$fwd_port_erofs/erofs"
append+=" accel_probes=$fwd_addr:$fwd_port_ext4,10.0.2.2:$port_ext4"
: > "$tmp/console.log"
t2=$(date +%s.%N)
timeout -k 5 "${ACCEL_VM_TIMEOUT:-120}" qemu-system-x86_64 \
  -M pc "${accel[@]}" -smp 2 -m 512 -nodefaults -no-user-config \
  -display none -no-reboot \
  -kernel "$tmp/vm/vmlinuz" -initrd "$tmp/vm/initrd.gz" -append "$append" \
  -serial "file:$tmp/console.log" \
  -netdev "$netdev" -device virtio-net-pci,netdev=n0,romfile= \
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

awk -v p="$t0 $t1" -v b="$t2 $t3" 'BEGIN {
  split(p, a); split(b, c)
  printf "prepare %.1fs, VM from qemu start to poweroff %.1fs\n", a[2]-a[1], c[2]-c[1] }'
echo OK
