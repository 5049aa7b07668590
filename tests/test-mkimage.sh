#!/usr/bin/env bash
# accel-mkimage end to end.
#
#  1. Reproducible: a tree of awkward files (sparse, hard links, long
#     and dangling symlinks, a FIFO, odd modes, non-ASCII and 200-byte
#     names, a 3000-entry directory) built twice gives byte-identical
#     ext4, squashfs and erofs images and manifests; so does a copy made in
#     reverse creation order on another file system (tmpfs when there
#     is one), written densely (no holes), with random timestamps,
#     owners and xattrs.  Changing one byte or one mode changes the
#     image; the UUIDs of ext4 and erofs images follow the tree's shape.
#     e2fsck finds the ext4 image clean, its big directory indexed;
#     fsck.erofs finds the erofs image clean.
#  2. Mounted read-only from a loop device (as root), all images hold
#     exactly the source tree: names, types, modes, sizes, contents,
#     link targets, hard links; owner 0 and one timestamp everywhere.
#  3. A local directory DEST gets NAME.img and NAME.img.manifest and no
#     temporary files; --keep-image keeps the image; the work directory
#     in TMPDIR is gone after success, failure and SIGINT.  With no
#     accel-index to run, the manifest (--chunk-size, --hot) is the one
#     accel-index writes: the indexer is linked in.
#  4. Bad SRC exits 1 with a clear message (also TMPDIR, a local DEST or
#     --keep-image inside it, and a file the publisher cannot read, in
#     every format); bad options
#     exit 2 with a pointer to --help.
#  5. S3 DEST (radosgw, through the counting proxy): both objects are
#     there, equal to the local files; a second run sends no PUT or POST;
#     the plugin serves the image byte for byte.
. "$(dirname "$0")/lib/functions.sh"
# mke2fs and e2fsck are in /usr/sbin, not in a user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin
requires mke2fs; requires mksquashfs; requires e2fsck; requires python3
requires mkfs.erofs; requires fsck.erofs
requires sqlite3; requires blkid; requires debugfs
mk="$top/tools/accel-mkimage"
[ -x "$mk" ] || fail "$mk is not built"
[ -x "$top/indexer/accel-index" ] || fail "accel-index is not built"
make_tmpdir
work="$tmp/work"
mkdir -p "$work"

# mkimage ARGS...: the tool, building in $work (checked empty after).
mkimage () { TMPDIR="$work" "$mk" "$@"; }
work_is_empty () {
  [ -z "$(ls -A "$work")" ] || fail "left in TMPDIR: $(ls -A "$work")"
}

# tree_list DIR: one line per entry, sorted: path, type, mode, size,
# SHA-256, link target, link count of non-directories.  With --image,
# also check owner 0 and a single timestamp, and skip lost+found.
tree_list () {
  /usr/bin/python3 - "$@" <<'EOF'
import hashlib, os, stat, sys
image = sys.argv[1] == "--image"
top = sys.argv[-1]
times = set()
out = []
for root, dirs, files in os.walk(top):
    if image and root == top and "lost+found" in dirs:
        dirs.remove("lost+found")
    for name in dirs + files:
        p = os.path.join(root, name)
        st = os.lstat(p)
        rel = os.path.relpath(p, top)
        f = [rel, oct(st.st_mode)]
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as fh:
                f += [str(st.st_size), hashlib.sha256(fh.read()).hexdigest()]
        if stat.S_ISLNK(st.st_mode):
            f.append(os.readlink(p))
        if not stat.S_ISDIR(st.st_mode):
            f.append("nlink=%d" % st.st_nlink)
        if image:
            if st.st_uid or st.st_gid:
                sys.exit("%s: owner %d:%d" % (rel, st.st_uid, st.st_gid))
            times.update((st.st_mtime_ns, st.st_atime_ns, st.st_ctime_ns))
        out.append("|".join(f))
if image and len(times) != 1:
    sys.exit("more than one timestamp: %s" % sorted(times))
print("\n".join(sorted(out)))
EOF
}

# The source tree.
src="$tmp/src"
make_tree "$src"
ln -s big.bin "$src/a/short-link"
ln -s "$(printf 'long-target-%.0s' $(seq 10))" "$src/a/dangling-long-link"
ln -P "$src/a/short-link" "$src/a/hardlink-to-symlink"
mkfifo "$src/a/fifo"
echo secret > "$src/a/setuid" && chmod 4750 "$src/a/setuid"
echo ro > "$src/a/readonly" && chmod 0400 "$src/a/readonly"
mkdir "$src/wide"
for i in $(seq 3000); do : > "$src/wide/entry-with-a-long-name-$i"; done
# Zeros in the middle of a file, written (not a hole).
{ head -c 100000 /dev/urandom; head -c 300000 /dev/zero; echo end; } \
  > "$src/zeros-inside"
chmod 0750 "$src"

# The same tree, created in reverse order elsewhere, densely, with
# random times and owners and extended attributes.
copydir="$tmp"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  copydir=$(mktemp -d /dev/shm/accel-test.XXXXXX) || fail "mktemp /dev/shm"
  on_exit "rm -rf '$copydir'"
fi
copy="$copydir/copy-with-another-name"
/usr/bin/python3 - "$src" "$copy" <<'EOF' || fail "reverse copy"
import os, random, stat, sys
src, dst = sys.argv[1], sys.argv[2]
entries = []
for root, dirs, files in os.walk(src):
    for n in dirs + files:
        entries.append(os.path.relpath(os.path.join(root, n), src))
entries.sort(reverse=True)
os.mkdir(dst)
for e in sorted(entries, key=lambda e: e.count("/")):
    if stat.S_ISDIR(os.lstat(os.path.join(src, e)).st_mode):
        os.mkdir(os.path.join(dst, e))
first = {}
for e in entries:
    s, d = os.path.join(src, e), os.path.join(dst, e)
    st = os.lstat(s)
    key = (st.st_dev, st.st_ino)
    if stat.S_ISDIR(st.st_mode):
        pass
    elif st.st_nlink > 1 and key in first:
        os.link(first[key], d, follow_symlinks=False)
        continue
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(s), d)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(d)
    else:
        with open(s, "rb") as f, open(d, "wb") as g:
            g.write(f.read())
    first[key] = d
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(d, stat.S_IMODE(st.st_mode))
for e in entries + ["."]:
    d = os.path.join(dst, e)
    if os.geteuid() == 0:
        os.lchown(d, random.randint(1, 60000), random.randint(1, 60000))
    if not os.path.islink(d):
        try:
            os.setxattr(d, "user.accel-test", os.urandom(8))
        except OSError:
            pass
        os.chmod(d, stat.S_IMODE(os.lstat(os.path.join(src, e)).st_mode))
    # NB: in the past: a future mtime makes relatime update atime at
    # every read, which mksquashfs takes for a change (squashfs.c).
    t = random.randint(10**8, 1500000000)
    os.utime(d, (t, t + 12345), follow_symlinks=False)
EOF
[ "$(tree_list "$src")" = "$(tree_list "$copy")" ] || fail "the copy differs"
[ "$(stat -c %b "$src/sparse.bin")" -lt "$(stat -c %b "$copy/sparse.bin")" ] ||
  fail "the copy of sparse.bin should be dense"

# 1. Reproducible builds, for every file system.
for fs in ext4 squashfs erofs; do
  for run in 1 2 copy; do
    dir="$tmp/$fs-$run"
    mkdir "$dir"
    from=$src
    [ $run = copy ] && from=$copy
    mkimage "$from" "$dir" --fs "$fs" --name tree > "$tmp/out" 2> "$tmp/err" ||
      fail "$fs build $run: $(cat "$tmp/err")"
    cat "$tmp/err"
    work_is_empty
    [ "$(cat "$tmp/out")" = "$dir/tree.img
$dir/tree.img.manifest" ] || fail "stdout: $(cat "$tmp/out")"
    ls -A "$dir" | grep -q tmp && fail "temporary file left in $dir"
  done
  for run in 2 copy; do
    cmp "$tmp/$fs-1/tree.img" "$tmp/$fs-$run/tree.img" ||
      fail "$fs: image of build $run differs"
    cmp "$tmp/$fs-1/tree.img.manifest" "$tmp/$fs-$run/tree.img.manifest" ||
      fail "$fs: manifest of build $run differs"
  done
  [ "$(sqlite3 "$tmp/$fs-1/tree.img.manifest" \
       "SELECT value FROM meta WHERE key = 'fs_type'")" = "$fs" ] ||
    fail "$fs: manifest fs_type"
  echo "ok: $fs: 3 builds, identical ($(stat -c %s "$tmp/$fs-1/tree.img") bytes)"
done
# Every time in the superblock is the fixed epoch, never the clock (a
# late step that opened the image read-write once wrote the clock into
# its write time: two builds of a tree then differed).
times=$(dumpe2fs -h "$tmp/ext4-1/tree.img" 2>/dev/null |
  grep -E '^(Filesystem created|Last write time|Last checked):')
[ "$(echo "$times" | grep -c 'Sat Jan  1 00:00:00 2000$')" = 3 ] ||
  fail "superblock times are not the fixed epoch: $times"
e2fsck -fn "$tmp/ext4-1/tree.img" > "$tmp/fsck.log" 2>&1 ||
  fail "e2fsck: $(cat "$tmp/fsck.log")"
# The big directory is indexed (htree: EXT4_INDEX_FL, 0x1000).
flags=$(debugfs -R "stat /wide" "$tmp/ext4-1/tree.img" 2>/dev/null |
        sed -n 's/.*Flags: \(0x[0-9a-f]*\).*/\1/p')
[ $((flags & 0x1000)) != 0 ] || fail "/wide is not indexed (flags $flags)"
blkid -o value -s UUID "$tmp/ext4-1/tree.img" | grep -q . ||
  fail "the ext4 image has no UUID"
fsck.erofs "$tmp/erofs-1/tree.img" > "$tmp/fsck.log" 2>&1 ||
  fail "fsck.erofs: $(cat "$tmp/fsck.log")"

# One byte, or one mode, changes the image.
changed="$tmp/changed"
cp -a "$src" "$changed"
printf 'X' | dd of="$changed/a/big.bin" bs=1 seek=1000 conv=notrunc status=none
modechanged="$tmp/modechanged"
cp -a "$src" "$modechanged"
chmod 0600 "$modechanged/a/b/one-byte"
for fs in ext4 squashfs erofs; do
  for t in changed modechanged; do
    mkdir "$tmp/$fs-$t"
    mkimage "$tmp/$t" "$tmp/$fs-$t" --fs $fs --name tree > /dev/null 2>&1 ||
      fail "$fs: build of $t tree"
    cmp -s "$tmp/$fs-1/tree.img" "$tmp/$fs-$t/tree.img" &&
      fail "$fs: $t tree gives the same image"
  done
done
# The UUID follows the tree's shape, not its contents (a new version of
# a dataset keeps it, so that its image differs only in the changed
# files' blocks: ext4-populate.c, set_identity).
uuid () { blkid -o value -s UUID "$tmp/$1/tree.img"; }
for fs in ext4 erofs; do
  [ -n "$(uuid $fs-1)" ] && [ "$(uuid $fs-1)" = "$(uuid $fs-changed)" ] ||
    fail "$fs: a tree with a file changed in place got another UUID"
  [ "$(uuid $fs-1)" != "$(uuid $fs-modechanged)" ] ||
    fail "$fs: a tree of another shape (a mode) got the same UUID"
done
cmp -l "$tmp/ext4-1/tree.img" "$tmp/ext4-changed/tree.img" | wc -l |
  grep -qx 1 || fail "a one-byte change changed more than one byte of the image"
# erofs files are whole blocks from a block boundary (-E noinline_data):
# the byte changes only in its data block.
cmp -l "$tmp/erofs-1/tree.img" "$tmp/erofs-changed/tree.img" | wc -l |
  grep -qx 1 || fail "a one-byte change changed more than one byte of the erofs image"
echo "ok: a changed byte or mode changes every image; a changed byte only" \
  "that byte of the ext4 and erofs images"

# 2. The images hold the tree (needs root and loop devices).
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null &&
   losetup -f >/dev/null 2>&1; then
  want=$(tree_list "$src")
  for fs in ext4 squashfs erofs; do
    mnt="$tmp/mnt-$fs"
    mkdir "$mnt"
    dev=$(losetup -f --show -r "$tmp/$fs-1/tree.img") || fail "losetup"
    on_exit "loop_detach_file '$tmp/$fs-1/tree.img'"
    mount -t "$fs" -o ro "$dev" "$mnt" || fail "mount $fs"
    on_exit "umount '$mnt'"
    got=$(tree_list --image "$mnt") || fail "$fs: $got"
    [ "$got" = "$want" ] ||
      fail "$fs: mounted tree differs: $(diff <(echo "$want") <(echo "$got"))"
    [ "$(stat -c %i "$mnt/a/big.bin")" = \
      "$(stat -c %i "$mnt/a/hardlink.bin")" ] || fail "$fs: hard link lost"
    [ "$(stat -c %a "$mnt")" = 750 ] || fail "$fs: root mode"
    umount "$mnt" && losetup -d "$dev" || fail "$fs: umount"
    echo "ok: $fs: the mounted image holds the tree"
  done
else
  echo "skipped the mounts: needs root and a free loop device"
fi

# 3. Local DEST again, with --keep-image and a chunk size.
pub="$tmp/pub"
mkdir "$pub"
mkimage "$src/" "$pub" --keep-image "$tmp/kept.img" --chunk-size 256K -v \
  > "$tmp/out" 2> "$tmp/err" || fail "publish: $(cat "$tmp/err")"
work_is_empty
[ "$(ls -A "$pub")" = "src.img
src.img.manifest" ] || fail "published: $(ls -A "$pub")"
cmp "$tmp/kept.img" "$pub/src.img" || fail "--keep-image differs"
# NB: the chunk size is part of the layout (large files start on chunk
# boundaries), so the same tree is built with it under another name.
mkdir "$tmp/named"
mkimage "$src/" "$tmp/named" --name tree --chunk-size 256K > /dev/null \
  2>&1 || fail "build named tree"
cmp "$tmp/kept.img" "$tmp/named/tree.img" ||
  fail "the name changed the image"
[ "$(sqlite3 "$pub/src.img.manifest" \
     "SELECT value FROM meta WHERE key = 'chunk_size'")" = 262144 ] ||
  fail "--chunk-size was not passed to the indexer"
grep -q 'running: mke2fs' "$tmp/err" || fail "-v does not say what it runs"
echo "ok: local DEST, --keep-image, --chunk-size"

# The manifest is written in accel-mkimage's own process: copied alone
# into an empty directory, with a PATH whose only accel-index is a
# decoy that records being run and fails, it still publishes, and its
# manifest (with --chunk-size and a --hot list) is the file accel-index
# writes for the same image.
alone="$tmp/alone" decoy="$tmp/decoy"
mkdir "$alone" "$decoy" "$tmp/pub-alone"
cp "$mk" "$alone/"
printf '#!/bin/sh\ntouch "%s"\nexit 1\n' "$tmp/decoy-ran" > "$decoy/accel-index"
chmod +x "$decoy/accel-index"
# Three chunks that are not all zero (zero ones are left out), last first.
hot=$(sqlite3 "$pub/src.img.manifest" \
        "SELECT idx FROM chunks WHERE zero = 0 ORDER BY idx DESC LIMIT 3")
[ "$(echo "$hot" | wc -l)" = 3 ] || fail "no 3 non-zero chunks: $hot"
{ printf 'accel-trace v1 image-sha256=%s image-size=%d chunk-size=%d\n' \
    "$(sha256sum < "$tmp/kept.img" | cut -d' ' -f1)" \
    "$(stat -c %s "$tmp/kept.img")" 262144
  echo "$hot"; } > "$tmp/kept.trace"
TMPDIR="$work" PATH="$decoy:$PATH" "$alone/accel-mkimage" "$src/" \
  "$tmp/pub-alone" --chunk-size 256K --hot "$tmp/kept.trace" \
  > "$tmp/out" 2> "$tmp/err" || fail "alone: $(cat "$tmp/err")"
work_is_empty
[ -e "$tmp/decoy-ran" ] && fail "accel-mkimage ran an accel-index"
cmp "$tmp/pub-alone/src.img" "$tmp/kept.img" || fail "alone: another image"
"$top/indexer/accel-index" "$tmp/kept.img" -o "$tmp/kept.manifest" \
  --chunk-size 256K --hot "$tmp/kept.trace" 2> "$tmp/err" ||
  fail "accel-index: $(cat "$tmp/err")"
cmp "$tmp/kept.manifest" "$tmp/pub-alone/src.img.manifest" ||
  fail "accel-mkimage's manifest differs from accel-index's"
[ "$(sqlite3 "$tmp/kept.manifest" \
     "SELECT chunk_idx FROM hot ORDER BY rank")" = "$hot" ] ||
  fail "the hot list is not the trace's"
echo "ok: accel-mkimage alone (no accel-index) writes accel-index's manifest"

# The work directory goes on SIGINT too.
head -c $((64 * 1048576)) /dev/urandom > "$tmp/bigsrc-file"
mkdir "$tmp/bigsrc" && mv "$tmp/bigsrc-file" "$tmp/bigsrc/f"
mkdir "$tmp/pub-int"
TMPDIR="$work" "$mk" "$tmp/bigsrc" "$tmp/pub-int" > /dev/null 2>&1 &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
echo "interrupted run: exit status $rc"
work_is_empty
ls -A "$tmp/pub-int" | grep -q tmp && fail "temporary file left in DEST"
echo "ok: nothing left after SIGINT"

# 4. Errors.
expect () {
  local want_rc=$1 want_msg=$2 rc
  shift 2
  mkimage "$@" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  [ $rc = "$want_rc" ] || fail "$*: exit $rc, not $want_rc: $(cat "$tmp/err")"
  grep -q -- "$want_msg" "$tmp/err" ||
    fail "$*: no '$want_msg' in: $(cat "$tmp/err")"
  [ -s "$tmp/out" ] && fail "$*: printed on stdout: $(cat "$tmp/out")"
  work_is_empty
  echo "ok: $* -> $rc: $(head -n 1 "$tmp/err")"
}
expect 1 "accel-mkimage: $tmp/nonexistent: No such file or directory" \
  "$tmp/nonexistent" "$pub"
expect 1 "accel-mkimage: $src/a/big.bin: not a directory" \
  "$src/a/big.bin" "$pub"
expect 1 "accel-mkimage: $tmp/nodest: No such file or directory" \
  "$src" "$tmp/nodest"
expect 2 "Try 'accel-mkimage --help'" "$src"
expect 2 "Try 'accel-mkimage --help'" "$src" "$pub" extra
expect 2 "--fs: 'xfs'" "$src" "$pub" --fs xfs
expect 2 "--chunk-size" "$src" "$pub" --chunk-size 3K
expect 2 "--label" "$src" "$pub" --label 12345678901234567
expect 2 "--compress" "$src" "$pub" --compress
expect 2 "--endpoint" "$src" "$pub" --endpoint http://127.0.0.1:1
expect 2 "--name" "$src" "$pub" --name a/b
expect 2 "Try 'accel-mkimage --help'" "$src" "$pub" --no-such-option
expect 2 "no bucket" "$src" s3://
mkdir -p "$tmp/longname"
: > "$tmp/longname/$(printf 'n%.0s' $(seq 255))"
expect 1 "cannot store a name longer than 254 bytes" "$tmp/longname" "$pub" \
  --fs erofs
# A path longer than the manifest (and mksquashfs, mkfs.erofs) can hold.
d="$tmp/deep"
for _ in $(seq 25); do d="$d/$(printf 'd%.0s' $(seq 200))"; done
mkdir -p "$d" && echo deep > "$d/f"
for fs in ext4 squashfs erofs; do
  expect 1 "a path in the tree is longer than" "$tmp/deep" "$pub" --fs "$fs"
done
rm -rf "$tmp/deep"
# TMPDIR inside SRC_DIR: the work directory would be part of the tree.
mkdir -p "$tmp/insrc/tmp" && echo a > "$tmp/insrc/a"
rc=0; TMPDIR="$tmp/insrc/tmp" "$mk" "$tmp/insrc" "$pub" --name insrc \
  > /dev/null 2> "$tmp/err" || rc=$?
[ $rc = 1 ] && grep -q "is inside SRC_DIR: set TMPDIR to a directory outside it" "$tmp/err" ||
  fail "TMPDIR inside SRC_DIR: exit $rc: $(cat "$tmp/err")"
[ ! -e "$pub/insrc.img" ] || fail "TMPDIR inside SRC_DIR: an image was published"
echo "ok: TMPDIR inside SRC_DIR -> $rc: $(head -n 1 "$tmp/err")"
# A local DEST or --keep-image inside SRC_DIR: the next version would
# hold this one's image and manifest.
mkdir -p "$tmp/insrc/pub"
for args in "$tmp/insrc/pub" "$tmp/insrc" "$pub --keep-image $tmp/insrc/k.img"; do
  # shellcheck disable=SC2086 # args is split on purpose
  rc=0; "$mk" "$tmp/insrc" $args --name insrc > /dev/null 2> "$tmp/err" ||
    rc=$?
  [ $rc = 1 ] && grep -q "is inside SRC_DIR: the next version would hold" "$tmp/err" ||
    fail "$args inside SRC_DIR: exit $rc: $(cat "$tmp/err")"
  [ -z "$(find "$tmp/insrc" -name '*.img*')" ] && [ ! -e "$pub/insrc.img" ] ||
    fail "$args inside SRC_DIR: an image was written"
  echo "ok: $args inside SRC_DIR -> $rc: $(head -n 1 "$tmp/err")"
done
# A file the publisher cannot read (as a user: root reads anything) is
# an error naming it, in every format; never an empty file.
nb="$tmp/nb"
mkdir -p "$nb/src" "$nb/out" "$nb/work"
echo pub > "$nb/src/pub"
echo secret > "$nb/src/priv" && chmod 600 "$nb/src/priv"
chown nobody "$nb/out" "$nb/work"
chmod 711 "$tmp"
on_exit "chmod 700 '$tmp'"
for fs in ext4 squashfs erofs; do
  rc=0
  runuser -u nobody -- env TMPDIR="$nb/work" PATH="$PATH" "$mk" "$nb/src" \
    "$nb/out" --fs "$fs" --name t > /dev/null 2> "$tmp/err" || rc=$?
  [ $rc = 1 ] && grep -q "$nb/src/priv: open: Permission denied" "$tmp/err" ||
    fail "$fs, an unreadable file: exit $rc: $(cat "$tmp/err")"
  [ ! -e "$nb/out/t.img" ] || fail "$fs, an unreadable file: published"
  echo "ok: $fs, an unreadable file -> $rc: $(grep -m1 priv "$tmp/err")"
done
chmod 700 "$tmp"
mkimage --help | grep -q '^SYNOPSIS' || fail "--help"
mkimage --version | grep -q '^accel-mkimage ' || fail "--version"

# 5. S3.
requires nbdkit; requires nbdcopy; requires curl
needs_s3
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "could not create bucket $bucket"
ep=$ACCEL_TEST_S3_ENDPOINT
# The server keeps objects in memory: remove ours.
on_exit "s3_curl -X DELETE '$ep/$bucket' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/sets/tree.img' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/sets/tree.img.manifest' >/dev/null 2>&1"

mkimage "$src" "s3://$bucket/sets/" --name tree --endpoint "$proxy_url" \
  > "$tmp/out" 2> "$tmp/err" || fail "S3 publish: $(cat "$tmp/err")"
cat "$tmp/err"
work_is_empty
[ "$(cat "$tmp/out")" = "nbdkit accel url=s3://$bucket/sets/tree.img cache-dir=/var/cache/accel endpoint=$proxy_url" ] ||
  fail "stdout: $(cat "$tmp/out")"
puts=$(proxy_count PUT)
[ "$puts" -ge 2 ] || fail "only $puts PUTs"
for k in tree.img tree.img.manifest; do
  s3_curl -I "$ep/$bucket/sets/$k" > /dev/null || fail "HEAD $k"
  s3_curl -o "$tmp/got" "$ep/$bucket/sets/$k" || fail "GET $k"
  cmp "$tmp/got" "$tmp/ext4-1/$k" || fail "$k in S3 differs"
done
# The image says which image its manifest must record (the plugin
# checks it; tests/test-s3-versions.sh).
want=$(sha256sum < "$tmp/ext4-1/tree.img" | cut -c1-64)
s3_curl -I "$ep/$bucket/sets/tree.img" |
  grep -qi "^x-amz-meta-accel-image-sha256: $want" ||
  fail "the image lacks its SHA-256 metadata: $(s3_curl -I "$ep/$bucket/sets/tree.img")"
echo "ok: S3: both objects are there ($puts PUTs)"

before_put=$(proxy_count PUT) before_post=$(proxy_count POST)
mkimage "$src" "s3://$bucket/sets/tree" --endpoint "$proxy_url" \
  > /dev/null 2> "$tmp/err" || fail "S3 publish again: $(cat "$tmp/err")"
[ "$(proxy_count PUT)" = "$before_put" ] ||
  fail "the second run made $(($(proxy_count PUT) - before_put)) PUTs"
[ "$(proxy_count POST)" = "$before_post" ] || fail "the second run POSTed"
grep -q "uploaded 0 B" "$tmp/err" || fail "summary: $(cat "$tmp/err")"
echo "ok: S3: nothing uploaded again"

# Wrong credentials fail before the build; a missing bucket fails the
# upload.  Both exit 1 saying so, with nothing left behind.
before_put=$(proxy_count PUT)
AWS_SECRET_ACCESS_KEY=wrong mkimage "$src" "s3://$bucket/sets/bad" \
  --endpoint "$proxy_url" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ $rc = 1 ] || fail "wrong secret: exit $rc: $(cat "$tmp/err")"
grep -q 'SignatureDoesNotMatch\|403' "$tmp/err" ||
  fail "wrong secret: $(cat "$tmp/err")"
grep -q wrong "$tmp/err" && fail "the secret was printed"
grep -q 'running: mke2fs' "$tmp/err" && fail "built before checking S3"
work_is_empty
echo "ok: wrong secret: $(head -n 1 "$tmp/err")"
mkimage "$src" "s3://$bucket-missing/sets/tree" \
  --endpoint "$proxy_url" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ $rc = 1 ] || fail "missing bucket: exit $rc: $(cat "$tmp/err")"
grep -q 'NoSuchBucket\|no such bucket' "$tmp/err" ||
  fail "missing bucket: $(cat "$tmp/err")"
work_is_empty
[ "$(proxy_count PUT)" -le $((before_put + 1)) ] ||
  fail "PUTs to a missing bucket went on"
echo "ok: missing bucket: $(head -n 1 "$tmp/err")"

start_nbdkit a url="s3://$bucket/sets/tree.img" endpoint="$ep" \
  cache-dir="$tmp/cache" || fail "nbdkit: $(cat "$tmp/a.log")"
nbdcopy "$(nbd_uri a)" "$tmp/served.img" || fail "nbdcopy"
cmp "$tmp/served.img" "$tmp/ext4-1/tree.img" ||
  fail "the plugin serves other bytes"
stop_nbdkit a
echo "ok: the plugin serves the published image"
echo OK
