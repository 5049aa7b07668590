#!/usr/bin/env bash
# accel-mkimage with a base layout: versions of one dataset cost a node
# only what changed (issue 12, ext4).
#
#  1. v1 (a 24 MiB file, six index files, 320 small files in four
#     directories, 1 MiB chunks) is built fresh; then a sequence of
#     change kinds is applied one after another, each version built
#     with the previous one's manifest as its base (by default: the
#     manifest already at DEST, or --base).  For each version, from
#     the two manifests (python3 + sqlite3):
#       - every file whose contents did not change has the same extents
#         and inode as before;
#       - the chunks of the new image that the old one lacks add up to
#         at most the changed bytes rounded up to chunks plus 4 chunks;
#       - UUID and hash seed are the base's;
#     and the image passes e2fsck -fn.  The image may grow by no more
#     than the data added plus 5%.  The table (with the share a fresh
#     layout, --no-base, would cost) is printed.
#  2. Deterministic: the same tree and base give the same bytes.
#  3. Mounted read-only from a loop device (as root), the last version
#     holds exactly its source tree (diff -r).
#  4. An S3 DEST: the version there is the default base; --base URL.
#  5. Bad bases: a missing --base file, a malformed manifest, a
#     squashfs manifest, a manifest without a layout, a missing URL:
#     clear errors.  No
#     manifest at DEST: a fresh layout, said so.  Too many deletions: a
#     fresh layout, said so.
. "$(dirname "$0")/lib/functions.sh"
PATH=$PATH:/usr/sbin:/sbin
requires mke2fs; requires e2fsck; requires python3; requires sqlite3
requires openssl; requires mksquashfs
mk="$top/tools/accel-mkimage"
[ -x "$mk" ] || fail "$mk is not built"
make_tmpdir
py=/usr/bin/python3
cs=$((1 << 20))

gen () { # gen FILE BYTES SEED: deterministic contents
  openssl enc -aes-128-ctr -nosalt -pass "pass:$3" -pbkdf2 -iter 1 \
    < /dev/zero 2>/dev/null | head -c "$2" > "$1"
}
src=$tmp/src
mkdir -p "$src/ref/index" "$src/samples"
gen "$src/ref/genome.fa" $((24 << 20)) genome
for i in 1 2 3 4 5 6; do
  gen "$src/ref/index/genome.$i.bt2" $(( (i * 700 + 300) << 10 )) "idx$i"
done
for d in a b c d; do
  mkdir -p "$src/samples/$d"
  for i in $(seq 1 80); do
    gen "$src/samples/$d/s$i.txt" $(( (i * 997 + ${#d} * 31) % 20000 + 100 )) \
      "$d$i"
  done
done
ln -s ../ref/genome.fa "$src/samples/genome-link"
# Sparse: counted in full by the sizing, stored as holes.
truncate -s 6M "$src/ref/sparse.bin"
printf 'middle' | dd of="$src/ref/sparse.bin" bs=1 seek=3000000 \
  conv=notrunc status=none

# build SRC DEST [ARGS...]: build quietly, keep stderr in $tmp/err.
build () {
  local s=$1 d=$2
  shift 2
  case $d in s3://*) ;; *) mkdir -p "$d" ;; esac
  "$mk" "$s" "$d" --name img "$@" > /dev/null 2> "$tmp/err" ||
    fail "accel-mkimage $s $d $*: $(cat "$tmp/err")"
}

# compare OLD_MANIFEST NEW_MANIFEST OLD_SRC NEW_SRC CHANGED_BYTES:
# prints "fetch_chunks fetch_bytes data_bytes target_chunks"; fails on
# a moved unchanged file or a lost identity.
compare () {
  "$py" - "$@" <<'EOF'
import hashlib, os, sqlite3, sys
old_m, new_m, old_src, new_src, changed = sys.argv[1:6]
def open_(p):
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    return db, dict(db.execute("select key, value from meta"))
old, om = open_(old_m)
new, nm = open_(new_m)
size, cs = int(nm["image_size"]), int(nm["chunk_size"])
for k in ("fs_uuid", "fs_hash_seed"):
    if om[k] != nm[k]:
        sys.exit(f"{k} changed: {om[k]} -> {nm[k]}")
have = {h for (h,) in old.execute("select sha256 from chunks where zero = 0")}
need, data = {}, 0
for idx, h in new.execute("select idx, sha256 from chunks where zero = 0"):
    n = min(cs, size - idx * cs)
    data += n
    if h not in have:
        need.setdefault(h, n)
def digests(top):
    out = {}
    for root, dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out["/" + os.path.relpath(p, top)] = \
                        hashlib.sha256(fh.read()).hexdigest()
    return out
def extents(db, path):
    return db.execute("select e.file_offset, e.image_offset, e.length "
                      "from files f join extents e on e.file_id = f.id "
                      "where f.path = ? order by e.file_offset",
                      (path,)).fetchall()
def ino(db, path):
    r = db.execute("select ino from nodes where path = ?", (path,)).fetchone()
    return r and r[0]
a, b = digests(old_src), digests(new_src)
same = [p for p in a if b.get(p) == a[p]]
for p in same:
    if extents(old, p) != extents(new, p):
        sys.exit(f"{p}: unchanged, but its extents moved")
    if ino(old, p) != ino(new, p):
        sys.exit(f"{p}: unchanged, but its inode changed")
target = (int(changed) + cs - 1) // cs + 4
print(len(need), sum(need.values()), data, target, len(same))
EOF
}

# share OLD NEW: the percentage of NEW's non-zero bytes a node holding
# OLD fetches.
share () {
  "$py" - "$1" "$2" <<'EOF'
import sqlite3, sys
o = sqlite3.connect(sys.argv[1]); n = sqlite3.connect(sys.argv[2])
meta = dict(n.execute("select key, value from meta"))
size, cs = int(meta["image_size"]), int(meta["chunk_size"])
have = {h for (h,) in o.execute("select sha256 from chunks where zero = 0")}
need, data = {}, 0
for idx, h in n.execute("select idx, sha256 from chunks where zero = 0"):
    data += min(cs, size - idx * cs)
    if h not in have:
        need.setdefault(h, min(cs, size - idx * cs))
print("%.1f" % (100 * sum(need.values()) / max(data, 1)))
EOF
}

fsck_clean () { # fsck_clean IMAGE
  e2fsck -fn "$1" > "$tmp/fsck.log" 2>&1 ||
    fail "e2fsck -fn $1: $(cat "$tmp/fsck.log")"
}

# The change kinds, applied in this order to the previous version; each
# echoes the bytes it adds or rewrites.
change_edit () { printf 'X' |
  dd of="$1/ref/genome.fa" bs=1 seek=$((12 << 20)) conv=notrunc status=none
  echo 1; }
change_grow () { printf 'fourteen bytes' >> "$1/samples/b/s7.txt"; echo 14; }
change_shrink () { truncate -s 50 "$1/samples/c/s9.txt"; echo 0; }
change_add_small () { gen "$1/samples/a/new.txt" 5000 new; echo 5000; }
change_delete_small () { rm "$1/samples/d/s40.txt"; echo 0; }
# NB: not gen /dev/stdout >> FILE: the shell reopens /dev/stdout, a
# link to FILE, truncating it.
change_append_large () { gen "$tmp/append" $((1 << 20)) app
  cat "$tmp/append" >> "$1/ref/genome.fa"; echo $((1 << 20)); }
change_add_large () { gen "$1/ref/extra.fa" $((8 << 20)) extra
  echo $((8 << 20)); }
change_add_small_s3 () { gen "$1/samples/b/s3.txt" 7000 s3; echo 7000; }
change_rename_dir () { mv "$1/samples/c" "$1/samples/c2"; echo 0; }
change_add_many () { local i; mkdir -p "$1/samples/e"
  for i in $(seq 1 200); do gen "$1/samples/e/m$i.txt" 3000 "m$i"; done
  echo $((200 * 3000)); }
change_edit_index () { gen "$1/ref/index/genome.3.bt2" $(( 2400 << 10 )) idx3b
  echo $(( 2400 << 10 )); }
kinds="edit grow shrink add_small delete_small append_large add_large
       rename_dir add_many edit_index"

# 1. The sequence.  DEST is one directory: each build's default base is
# the version already there.
pub=$tmp/pub
build "$src" "$pub"
grep -q "no earlier version at $pub/img.img.manifest: a fresh layout" \
  "$tmp/err" || fail "no base at DEST: not said: $(cat "$tmp/err")"
fsck_clean "$pub/img.img"
v1_size=$(stat -c %s "$pub/img.img")
added_total=0
prev=$tmp/prev
cp -a "$src" "$prev"
mkdir -p "$tmp/old"
printf '%-13s %10s %8s %8s %8s %10s\n' change "changed B" chunks target \
  "% v2" "fresh % v2" > "$tmp/table"
for k in $kinds; do
  cp "$pub/img.img.manifest" "$tmp/old/img.img.manifest"
  changed=$("change_$k" "$src")
  added_total=$((added_total + changed))
  build "$src" "$pub" -v
  grep -q "fresh layout" "$tmp/err" &&
    fail "$k: a fresh layout was made: $(grep -i fresh "$tmp/err")"
  fsck_clean "$pub/img.img"
  read -r nchunks nbytes data target nsame < <(
    compare "$tmp/old/img.img.manifest" "$pub/img.img.manifest" "$prev" \
      "$src" "$changed") || fail "$k: $nchunks"
  [ -n "$target" ] || fail "$k: comparing the manifests failed"
  # What a fresh layout would cost, for the table.
  build "$src" "$tmp/fresh-$k" --no-base
  fresh=$(share "$tmp/old/img.img.manifest" "$tmp/fresh-$k/img.img.manifest")
  rm -rf "$tmp/fresh-$k"
  printf '%-13s %10s %8s %8s %7s%% %9s%%\n' "$k" "$changed" "$nchunks" \
    "$target" "$(share "$tmp/old/img.img.manifest" "$pub/img.img.manifest")" \
    "$fresh" >> "$tmp/table"
  [ "$nchunks" -le "$target" ] ||
    fail "$k: v2 has $nchunks chunks v1 lacks, more than $target (changed bytes in chunks + 4); $(cat "$tmp/table")"
  rm -rf "$prev"
  cp -a "$src" "$prev"
  echo "ok: $k: $nchunks new chunks (target $target), $nsame files unchanged and in place"
done
cat "$tmp/table"
size=$(stat -c %s "$pub/img.img")
limit=$(( v1_size + added_total + (v1_size + added_total) / 20 ))
[ "$size" -le "$limit" ] ||
  fail "the image grew from $v1_size to $size bytes, more than the $added_total bytes added + 5%"
echo "ok: the image grew from $v1_size to $size bytes ($added_total bytes added)"

# 2. Deterministic: the same tree and base, again, elsewhere.
build "$src" "$tmp/again" --base "$tmp/old/img.img.manifest"
cmp "$tmp/again/img.img" "$pub/img.img" ||
  fail "the same tree and base gave another image"
cmp "$tmp/again/img.img.manifest" "$pub/img.img.manifest" ||
  fail "the same tree and base gave another manifest"
rm -rf "$tmp/again"
echo "ok: the same tree and base give the same bytes"
# Republishing an unchanged tree (with a sparse file) changes nothing.
cp "$pub/img.img" "$tmp/before.img"
build "$src" "$pub"
cmp "$tmp/before.img" "$pub/img.img" ||
  fail "republishing an unchanged tree changed the image"
rm -f "$tmp/before.img"
echo "ok: republishing an unchanged tree gives the same image"

# 3. The last version, mounted.
if [ "$(id -u)" = 0 ] && command -v losetup > /dev/null &&
  losetup -f > /dev/null 2>&1; then
  mnt=$tmp/mnt
  mkdir "$mnt"
  dev=$(losetup -f --show -r "$pub/img.img") || fail "losetup"
  on_exit "losetup -d $dev"
  mount -t ext4 -o ro "$dev" "$mnt" || fail "mount"
  on_exit "umount '$mnt'"
  diff -r --no-dereference -x lost+found "$src" "$mnt" > "$tmp/diff" ||
    fail "the mounted image differs from the tree: $(head "$tmp/diff")"
  umount "$mnt" && losetup -d "$dev" || fail "umount"
  echo "ok: the mounted image holds the tree"
else
  echo "skipped the mount: needs root and a free loop device"
fi

# 4. An S3 DEST: the version already there is the default base, and
# --base takes a URL.
requires curl
needs_s3
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "could not create bucket $bucket"
ep=$ACCEL_TEST_S3_ENDPOINT
on_exit "s3_curl -X DELETE '$ep/$bucket' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/v/img.img' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/v/img.img.manifest' >/dev/null 2>&1"
s3dest=s3://$bucket/v
build "$src" "$s3dest/" --endpoint "$ep"
grep -q "no earlier version at $s3dest/img.img.manifest: a fresh layout" \
  "$tmp/err" || fail "S3 DEST, first version: not said: $(cat "$tmp/err")"
s3_curl -o "$tmp/s3v1.manifest" "$ep/$bucket/v/img.img.manifest" ||
  fail "GET the first manifest"
rm -rf "$prev"
cp -a "$src" "$prev"
changed=$(change_add_small_s3 "$src")
build "$src" "$s3dest/" --endpoint "$ep" -v
grep -q "fresh layout" "$tmp/err" &&
  fail "S3 DEST: the version there was not the base: $(cat "$tmp/err")"
s3_curl -o "$tmp/s3v2.manifest" "$ep/$bucket/v/img.img.manifest" ||
  fail "GET the second manifest"
s3_curl -o "$tmp/s3v2.img" "$ep/$bucket/v/img.img" || fail "GET the image"
read -r nchunks nbytes data target nsame < <(
  compare "$tmp/s3v1.manifest" "$tmp/s3v2.manifest" "$prev" "$src" \
    "$changed") || fail "S3 DEST: $nchunks"
[ -n "$target" ] && [ "$nchunks" -le "$target" ] ||
  fail "S3 DEST: $nchunks new chunks, target $target"
echo "ok: S3 DEST: its version was the base ($nchunks new chunks, target $target)"
# The same base as a file and as a URL give the same bytes, which are
# those uploaded.
build "$src" "$tmp/byfile" --base "$tmp/s3v1.manifest"
cmp "$tmp/byfile/img.img" "$tmp/s3v2.img" ||
  fail "--base FILE and the S3 DEST's default base differ"
s3_curl -X PUT --data-binary "@$tmp/s3v1.manifest" \
  "$ep/$bucket/v/base.manifest" > /dev/null || fail "PUT base.manifest"
on_exit "s3_curl -X DELETE '$ep/$bucket/v/base.manifest' >/dev/null 2>&1"
build "$src" "$tmp/byurl" --base "$s3dest/base.manifest" --endpoint "$ep"
cmp "$tmp/byurl/img.img" "$tmp/s3v2.img" ||
  fail "--base URL and --base FILE differ"
echo "ok: --base FILE, --base URL and the S3 DEST's own base agree"
rm -rf "$tmp/byfile" "$tmp/byurl" "$tmp/s3v2.img"

# 5. Bad bases.
expect_fail () { # expect_fail MESSAGE ARGS...
  local msg=$1 rc
  shift
  mkdir -p "$tmp/bad"
  "$mk" "$src" "$tmp/bad" --name img "$@" > /dev/null 2> "$tmp/err"
  rc=$?
  [ $rc = 1 ] || fail "$*: exit $rc: $(cat "$tmp/err")"
  grep -q -- "$msg" "$tmp/err" || fail "$*: no '$msg' in: $(cat "$tmp/err")"
  [ -e "$tmp/bad/img.img" ] && fail "$*: published anyway"
  echo "ok: $*: $(head -n 1 "$tmp/err")"
}
expect_fail "No such file" --base "$tmp/nonexistent.manifest"
expect_fail "missing.manifest" --base "$s3dest/missing.manifest" \
  --endpoint "$ep"
head -c 4096 /dev/urandom > "$tmp/garbage.manifest"
expect_fail "garbage.manifest" --base "$tmp/garbage.manifest"
mkdir "$tmp/sq"
"$mk" "$src" "$tmp/sq" --name img --fs squashfs > /dev/null 2>&1 ||
  fail "squashfs build"
expect_fail "not ext4" --base "$tmp/sq/img.img.manifest"
cp "$tmp/old/img.img.manifest" "$tmp/nolayout.manifest"
sqlite3 "$tmp/nolayout.manifest" \
  "DELETE FROM meta WHERE key LIKE 'fs_%' AND key != 'fs_type'" ||
  fail "sqlite3"
expect_fail "no layout" --base "$tmp/nolayout.manifest"
sqlite3 "$tmp/nolayout.manifest" \
  "INSERT INTO meta VALUES ('fs_uuid', 'zz')" || fail "sqlite3"
expect_fail "incomplete or out of range" --base "$tmp/nolayout.manifest"
"$mk" "$src" "$tmp/bad" --base x --no-base > /dev/null 2>&1
[ $? = 2 ] || fail "--base with --no-base is not bad usage"

# Most of the tree deleted: a fresh layout, said so.
rm -rf "$src/ref/genome.fa" "$src/ref/extra.fa"
build "$src" "$pub"
grep -q "would be free.*fresh layout" "$tmp/err" ||
  fail "deletions: no fresh layout said: $(cat "$tmp/err")"
fsck_clean "$pub/img.img"
echo "ok: after deletions, a fresh layout, said so"

# 6. Several block groups (a 130 MiB file), inodes of the base in a
# group mke2fs leaves uninitialised, and a new file: libext2fs must not
# hand a kept inode (or block) to it.  The build checks the image with
# e2fsck and fails if two names share an inode.
grp=$tmp/groups
rm -rf "$src" "$pub" "$tmp/old"
mkdir -p "$grp/src/many" "$grp/pub"
gen "$grp/src/big" $((130 << 20)) groups
for i in $(seq 1 700); do echo "small file $i" > "$grp/src/many/f$i"; done
build "$grp/src" "$grp/pub"
cp "$grp/pub/img.img.manifest" "$grp/v1.manifest"
echo new > "$grp/src/many/new"
gen "$grp/src/big2" $((3 << 20)) groups2
build "$grp/src" "$grp/pub" -v
grep -q "fresh layout" "$tmp/err" &&
  fail "several groups: a fresh layout: $(grep -i fresh "$tmp/err")"
fsck_clean "$grp/pub/img.img"
"$py" - "$grp/v1.manifest" "$grp/pub/img.img.manifest" <<'EOF2' ||
import sqlite3, sys
o, n = (sqlite3.connect(p) for p in sys.argv[1:3])
groups = int(dict(n.execute("select key, value from meta"))["fs_blocks"]) // 32768
old = dict(o.execute("select path, ino from nodes"))
new = dict(n.execute("select path, ino from nodes"))
moved = [p for p in old if p in new and old[p] != new[p]]
dup = len(new) - len(set(new.values()))
if groups < 1 or moved or dup:
    sys.exit(f"groups {groups + 1}, moved inodes {moved[:5]}, shared {dup}")
EOF2
  fail "several groups: inodes"
rm -rf "$grp"
echo "ok: several block groups: kept inodes stay, new files get their own"
echo OK
