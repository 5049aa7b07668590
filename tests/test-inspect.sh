#!/usr/bin/env bash
# accel-inspect end to end: an ext4 image made with mke2fs -d from a tree
# of awkward files (nested, empty, sparse, hard-linked, long, non-ASCII,
# executable, and names holding a newline and a terminal escape), indexed
# by accel-index with 256 KiB chunks, then inspected: every number is
# checked against what stat, sha256sum, find and the sqlite3 CLI say;
# the file list against the tree; --file of a multi-chunk file against
# its extents in the manifest; --json with python's json module; the
# errors (exit 1 and a message on stderr, nothing on stdout; exit 2 for
# bad usage); and the same manifest fetched from the test S3 server as
# s3://BUCKET/KEY and as a presigned http:// URL, leaving no temp files.
. "$(dirname "$0")/lib/functions.sh"
requires mke2fs; requires sqlite3; requires sha256sum
inspect="$top/tools/accel-inspect"
idx="$top/indexer/accel-index"
[ -x "$inspect" ] || fail "$inspect is not built"
[ -x "$idx" ] || fail "$idx is not built"
py=/usr/bin/python3
make_tmpdir
# Any temporary file accel-inspect leaves would show up here.
export TMPDIR="$tmp/tmpdir"
mkdir "$TMPDIR"

# The tree and the image.
src="$tmp/src"
make_tree "$src"
printf '#!/bin/sh\n' > "$src/a/run.sh"
chmod 0755 "$src/a/run.sh"
chmod 0644 "$src/a/big.bin"
echo evil > "$src/a/$(printf 'new\nline')"
echo evil > "$src/a/$(printf 'esc\033[31mred')"
img="$tmp/img"
mke2fs -q -t ext4 -d "$src" "$img" 16M || fail "mke2fs"
"$idx" "$img" -o "$img.manifest" --chunk-size 256K 2> "$tmp/index.log" ||
  fail "accel-index: $(cat "$tmp/index.log")"
m="$img.manifest"
q () { sqlite3 "$m" "$1"; }

# 1. The summary.
"$inspect" "$m" > "$tmp/out" 2> "$tmp/err" || fail "accel-inspect: $(cat "$tmp/err")"
[ ! -s "$tmp/err" ] || fail "accel-inspect printed on stderr: $(cat "$tmp/err")"
head -n 11 "$tmp/out"
field () { sed -n "s/^$1: *//p" "$tmp/out"; }
size=$(stat -c %s "$img")
cs=262144
nr=$(( (size + cs - 1) / cs ))
nzero=$(q 'SELECT count (*) FROM chunks WHERE zero = 1')
[ "$(field 'image size')" = "$size bytes (16.0 MiB)" ] || fail "image size: $(field 'image size')"
[ "$(field 'file system')" = ext4 ] || fail "file system: $(field 'file system')"
[ "$(field 'chunk size')" = "$cs bytes (256.0 KiB)" ] || fail "chunk size: $(field 'chunk size')"
[ "$(field chunks)" = "$nr" ] || fail "chunks: $(field chunks), wanted $nr"
pct=$(awk -v z="$nzero" -v n="$nr" 'BEGIN { p = int (z * 1000 / n); printf "%d.%d", p / 10, p % 10 }')
[ "$(field 'zero chunks')" = "$nzero ($pct%)" ] ||
  fail "zero chunks: $(field 'zero chunks'), sqlite3 says $nzero ($pct%)"
[ "$nzero" -gt 0 ] && [ "$nzero" -lt "$nr" ] || fail "want some zero chunks, not all"
[ "$(field 'image sha256')" = "$(sha256sum < "$img" | cut -d' ' -f1)" ] ||
  fail "image sha256 differs from sha256sum"
nfiles=$(find "$src" -type f -printf x | wc -c)
fbytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
field files | grep -q "^$nfiles, $fbytes bytes (" ||
  fail "files: $(field files), wanted $nfiles, $fbytes bytes"
echo "ok: summary: $nr chunks, $nzero zero, $nfiles files, $fbytes bytes"

# The file list: every file of the tree, with its size and mode, paths
# escaped as accel-inspect promises (\n, \xNN), and nothing else.
"$py" - "$src" "$tmp/out" <<'EOF' || fail "file list differs from the tree"
import os, stat, sys
src, out = sys.argv[1], sys.argv[2]
def esc(b):
    s = ""
    for ch in b.decode():
        if ch == "\\": s += "\\\\"
        elif ch == "\n": s += "\\n"
        elif ch == "\t": s += "\\t"
        elif ord(ch) < 0x20 or ord(ch) == 0x7f: s += "\\x%02x" % ord(ch)
        else: s += ch
    return s
want = set()
for d, _, files in os.walk(src.encode()):
    for f in files:
        p = os.path.join(d, f)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            want.add("%s %12d  %s" % (stat.filemode(st.st_mode), st.st_size,
                                      esc(p[len(src):])))
lines = open(out).read().split("\n")
start = lines.index("mode               size  path") + 1
got = set(l for l in lines[start:] if l)
if got != want:
    print("missing:", sorted(want - got)[:5], "unexpected:", sorted(got - want)[:5])
    sys.exit(1)
assert any("-rwxr-xr-x" in l and l.endswith("/a/run.sh") for l in got)
assert any(l.endswith("/a/new\\nline") for l in got)
assert any(l.endswith("/a/esc\\x1b[31mred") for l in got)
print("ok: file list: %d files, sizes, modes and escaped names match" % len(got))
EOF
grep -q $'\033' "$tmp/out" && fail "an escape character reached the output"

# 2. --file for a file spanning several chunks: the chunk list must be
# what its extents in the manifest say (chunk = image_offset / chunk size,
# bytes = the extent's bytes within that chunk).
"$inspect" --file a/big.bin "$m" > "$tmp/file.out" 2> "$tmp/err" ||
  fail "--file a/big.bin: $(cat "$tmp/err")"
cat "$tmp/file.out"
sqlite3 -separator ' ' "$m" "SELECT e.file_offset, e.image_offset, e.length
  FROM extents AS e JOIN files AS f ON f.id = e.file_id
  WHERE f.path = '/a/big.bin' ORDER BY e.file_offset" > "$tmp/extents"
[ -s "$tmp/extents" ] || fail "no extents for /a/big.bin in the manifest"
"$py" - "$tmp/extents" "$tmp/file.out" $cs <<'EOF' || fail "--file chunks"
import sys
ext = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
out = open(sys.argv[2]).read().split("\n")
cs = int(sys.argv[3])
want = {}
for fo, io, ln in ext:
    off, end = io, io + ln
    while off < end:
        c = off // cs
        n = min(end, (c + 1) * cs) - off
        want[c] = want.get(c, 0) + n
        off += n
assert len(want) > 1, "big.bin should span several chunks"
assert "size:          3000000 bytes (2.9 MiB)" in out, "size line"
assert "mode:          -rw-r--r-- (100644)" in out, "mode line"
assert "chunks:        %d" % len(want) in out, "chunk count"
i = out.index("  %10s  %12s" % ("chunk", "file bytes"))
got = {}
for l in out[i + 1:]:
    if l:
        c, n = l.split()[:2]
        got[int(c)] = int(n)
assert got == want, (got, want)
i = out.index("  %12s  %12s  %12s" % ("file offset", "image offset", "length"))
got_ext = [tuple(map(int, l.split())) for l in out[i + 1 : i + 1 + len(ext)]]
assert got_ext == ext, (got_ext, ext)
assert sum(want.values()) == 3000000
print("ok: --file: extents %s, chunks %s" % (ext, sorted(want)))
EOF
# The same through --json, and with the leading '/'.
"$inspect" --json --file /a/big.bin "$m" > "$tmp/file.json" ||
  fail "--json --file"
"$py" - "$tmp/file.json" "$tmp/extents" $cs <<'EOF' || fail "--json --file"
import json, sys
j = json.load(open(sys.argv[1]))
ext = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
cs = int(sys.argv[3])
assert j["path"] == "/a/big.bin" and j["size"] == 3000000 and j["chunk_size"] == cs
assert [(e["file_offset"], e["image_offset"], e["length"]) for e in j["extents"]] == ext
assert j["nr_chunks"] == len(j["chunks"]) > 1
assert sum(c["bytes"] for c in j["chunks"]) == j["mapped_bytes"] == 3000000
assert all(c["index"] == (c["index"] * cs) // cs for c in j["chunks"])
print("ok: --json --file agrees")
EOF

# 3. --json for the summary: valid JSON (json.tool), the same numbers.
"$inspect" --json "$m" > "$tmp/out.json" || fail "--json"
"$py" -m json.tool "$tmp/out.json" > /dev/null || fail "--json: not valid JSON"
"$py" - "$tmp/out.json" "$src" $size $nr $nzero $nfiles $fbytes <<'EOF' || fail "--json values"
import json, os, sys
j = json.load(open(sys.argv[1]))
src = sys.argv[2]
size, nr, nzero, nfiles, fbytes = map(int, sys.argv[3:])
assert (j["image_size"], j["nr_chunks"], j["nr_zero_chunks"]) == (size, nr, nzero), j
assert (j["nr_files"], j["file_bytes"], len(j["files"])) == (nfiles, fbytes, nfiles), j
assert j["fs_type"] == "ext4" and j["chunk_size"] == 262144
paths = {f["path"] for f in j["files"]}
assert "/a/new\nline" in paths and "/a/esc\x1b[31mred" in paths
assert "/\u00fcn\u00efc\u00f8d\u00e9 dir/\u30d5\u30a1\u30a4\u30eb.txt" in paths
for f in j["files"]:
    st = os.stat(src + f["path"])
    assert f["size"] == st.st_size and f["mode"] == st.st_mode, f
print("ok: --json: %d files, every size and mode matches" % len(paths))
EOF

# 4. A raw image has no file map, and says so.
make_image "$tmp/raw.img" 3
"$idx" "$tmp/raw.img" -o "$tmp/raw.manifest" 2>/dev/null || fail "index raw"
"$inspect" "$tmp/raw.manifest" > "$tmp/out" || fail "inspect raw"
grep -q '^file system:   raw$' "$tmp/out" || fail "raw: file system"
# make_image zeroes chunks 2 and 3 of 1 MiB (growing the image to 4 MiB).
grep -q '^zero chunks:   2 (50.0%)$' "$tmp/out" || fail "raw: zero chunks"
grep -q '^(no file map: a raw image has none)$' "$tmp/out" || fail "raw: no file map"
echo "ok: raw image: no file map"

# 4b. The same tree as an erofs image (accel-mkimage --fs erofs): the
# file system is named, the file list is the ext4 image's (same paths,
# sizes and modes), and a file's extents hold its bytes.
if command -v mkfs.erofs > /dev/null 2>&1; then
  mkdir "$tmp/ero"
  "$top/tools/accel-mkimage" "$src" "$tmp/ero" --fs erofs --name e \
    --chunk-size 256K > /dev/null 2> "$tmp/err" ||
    fail "accel-mkimage --fs erofs: $(cat "$tmp/err")"
  em="$tmp/ero/e.img.manifest"
  "$inspect" "$em" > "$tmp/ero.out" 2> "$tmp/err" ||
    fail "accel-inspect erofs: $(cat "$tmp/err")"
  grep -q '^file system:   erofs$' "$tmp/ero.out" ||
    fail "erofs: $(grep '^file system' "$tmp/ero.out")"
  "$inspect" "$m" > "$tmp/ext4.out"
  sed -n '/^mode  /,$p' "$tmp/ext4.out" > "$tmp/ext4.files"
  sed -n '/^mode  /,$p' "$tmp/ero.out" > "$tmp/ero.files"
  [ "$(wc -l < "$tmp/ero.files")" -gt 10 ] &&
    cmp -s "$tmp/ext4.files" "$tmp/ero.files" ||
    fail "erofs: the file list differs from ext4's: $(diff "$tmp/ext4.files" "$tmp/ero.files" | head)"
  "$inspect" --json --file a/big.bin "$em" > "$tmp/ero.json" ||
    fail "erofs: --file a/big.bin"
  "$py" - "$tmp/ero.json" "$tmp/ero/e.img" "$src/a/big.bin" <<'EOF2' ||
import json, sys
j = json.load(open(sys.argv[1]))
img, want = open(sys.argv[2], "rb"), open(sys.argv[3], "rb").read()
assert len(j["extents"]) == 1, j["extents"]
e = j["extents"][0]
img.seek(e["image_offset"])
assert e["file_offset"] == 0 and img.read(e["length"]) == want
EOF2
    fail "erofs: a/big.bin's extent does not hold its bytes"
  echo "ok: erofs image: file system, file list and a file's extent"
else
  echo "mkfs.erofs is not installed: erofs not inspected"
fi

# 5. Errors.  expect_exit CODE MESSAGE-REGEX ARGS...: exit CODE, the
# message on stderr, nothing on stdout.
expect_exit () {
  local want=$1 msg=$2 rc
  shift 2
  "$inspect" "$@" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  [ $rc = "$want" ] || fail "accel-inspect $*: exit $rc, wanted $want"
  grep -Eq "$msg" "$tmp/err" ||
    fail "accel-inspect $*: stderr lacks '$msg': $(cat "$tmp/err")"
  [ ! -s "$tmp/out" ] || fail "accel-inspect $*: printed on stdout as it failed"
  echo "ok: accel-inspect $* -> $rc: $(head -n 1 "$tmp/err")"
}
expect_exit 1 "^accel-inspect: manifest: $tmp/nope: open: No such file or directory$" \
  "$tmp/nope"
head -c 100000 /dev/urandom > "$tmp/garbage"
expect_exit 1 "^accel-inspect: manifest: $tmp/garbage: not a sqlite3 database" \
  "$tmp/garbage"
head -c 20000 "$m" > "$tmp/truncated"
expect_exit 1 "^accel-inspect: manifest: $tmp/truncated: corrupt or truncated" \
  "$tmp/truncated"
cp "$m" "$tmp/bad-meta"
sqlite3 "$tmp/bad-meta" "UPDATE meta SET value = 12345 WHERE key = 'chunk_size'"
expect_exit 1 "^accel-inspect: manifest: $tmp/bad-meta: .*chunk_size" "$tmp/bad-meta"
expect_exit 1 "^accel-inspect: manifest: $tmp: not a regular file$" "$tmp"
expect_exit 1 "^accel-inspect: $m: /no/such: no such file in the image's file map$" \
  --file /no/such "$m"
expect_exit 2 "^accel-inspect: no MANIFEST given$" --json
expect_exit 2 "^accel-inspect: more than one MANIFEST$" "$m" "$m"
expect_exit 2 "unrecognized option" --frobnicate "$m"
expect_exit 2 "^accel-inspect: --endpoint: 'ftp://x' is not an http" \
  --endpoint ftp://x "$m"
expect_exit 2 "^accel-inspect: --file: empty path$" --file "" "$m"
expect_exit 2 "^accel-inspect: --diff needs two manifests, OLD and NEW$" \
  --diff "$m"
expect_exit 2 "^accel-inspect: --diff and --file cannot be used together$" \
  --diff --file /a "$m" "$m"
expect_exit 1 "^accel-inspect: manifest: $tmp/garbage: not a sqlite3 database" \
  --diff "$m" "$tmp/garbage"
"$inspect" --help > "$tmp/out" || fail "--help"
grep -q '^Usage: accel-inspect \[--endpoint URL\] \[--file PATH\] \[--json\]' \
  "$tmp/out" || fail "--help synopsis"
"$inspect" --version | grep -q '^accel-inspect .*manifest format 1' ||
  fail "--version"

# 6. Remote manifests: s3:// with --endpoint, and a presigned http:// URL.
needs_s3
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "create bucket $bucket"
s3_put "$m" "$bucket/images/img.manifest" || fail "upload the manifest"
s3_put "$tmp/garbage" "$bucket/images/garbage.manifest" || fail "upload garbage"
"$inspect" "$m" | tail -n +2 > "$tmp/local.out"
"$inspect" --endpoint "$ACCEL_TEST_S3_ENDPOINT" \
  "s3://$bucket/images/img.manifest" > "$tmp/remote.out" 2> "$tmp/err" ||
  fail "s3://: $(cat "$tmp/err")"
[ "$(head -n 1 "$tmp/remote.out")" = \
  "manifest:      s3://$bucket/images/img.manifest" ] || fail "s3://: manifest line"
tail -n +2 "$tmp/remote.out" | cmp -s - "$tmp/local.out" ||
  fail "s3://: output differs from the local manifest's"
echo "ok: s3://$bucket/images/img.manifest: same as the local manifest"
# --diff of a manifest with itself, one side remote: nothing to fetch,
# every file unchanged (tests/test-versions.sh tests --diff for real).
"$inspect" --endpoint "$ACCEL_TEST_S3_ENDPOINT" --diff "$m" \
  "s3://$bucket/images/img.manifest" > "$tmp/diff.out" 2> "$tmp/err" ||
  fail "--diff: $(cat "$tmp/err")"
grep -q '^to fetch:    0 chunks, 0 bytes' "$tmp/diff.out" ||
  fail "--diff of a manifest with itself: $(cat "$tmp/diff.out")"
grep -q "^files:       0 added, 0 removed, 0 renamed, 0 modified, 0 fetched, $(q 'SELECT count (*) FROM files') unchanged$" \
  "$tmp/diff.out" || fail "--diff: files: $(tail -n 1 "$tmp/diff.out")"
echo "ok: --diff of the manifest with its remote copy: nothing to fetch"

"$top/tests/helpers/s3-get" --endpoint "$ACCEL_TEST_S3_ENDPOINT" \
  --presign 300 "s3://$bucket/images/img.manifest" > "$tmp/url" ||
  fail "presign"
"$inspect" --json --file a/big.bin "$(cat "$tmp/url")" > "$tmp/remote.json" \
  2> "$tmp/err" || fail "presigned URL: $(cat "$tmp/err")"
"$inspect" --json --file a/big.bin "$m" | tail -n +3 > "$tmp/local.json"
tail -n +3 "$tmp/remote.json" | cmp -s - "$tmp/local.json" ||
  fail "presigned URL: output differs"
echo "ok: presigned http:// URL: same as the local manifest"

expect_exit 1 "^accel-inspect: s3://$bucket/images/none.manifest: .*(NoSuchKey|not found|No such)" \
  --endpoint "$ACCEL_TEST_S3_ENDPOINT" "s3://$bucket/images/none.manifest"
# NB: named by its URL, not by the downloaded copy (gone by then).
expect_exit 1 "^accel-inspect: manifest: s3://$bucket/images/garbage\.manifest: not a sqlite3 database" \
  --endpoint "$ACCEL_TEST_S3_ENDPOINT" "s3://$bucket/images/garbage.manifest"
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary files left: $(ls -A "$TMPDIR")"
echo "ok: no temporary files left behind"
echo "all accel-inspect checks passed"
