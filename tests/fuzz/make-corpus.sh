#!/usr/bin/env bash
# Rebuild the binary seeds of the fuzz corpus (tests/fuzz/corpus/):
# tiny ext4, ext2, squashfs and erofs images built from a small tree, the
# manifests accel-index writes for them, and the request headers of the
# fuzz-http seeds.  The text seeds (XML, JSON, INI, header blocks) are
# written by hand and kept as they are.  The images are not byte for
# byte reproducible (mke2fs and mksquashfs record times and UUIDs), so
# run this only to change the seeds, and commit what it writes.
#
# Usage: tests/fuzz/make-corpus.sh   (after `make`, from anywhere)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
corpus="$top/tests/fuzz/corpus"
index="$top/indexer/accel-index"
[ -x "$index" ] || { echo "make-corpus: run make first" >&2; exit 1; }

tmp=$(mktemp -d /tmp/accel-corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The tree: a small file, a file spanning several blocks and an
# indirect block (ext2), a sparse file, a hard link, a symlink, a
# subdirectory, a long name and an empty file.
src="$tmp/src"
mkdir -p "$src/dir/sub"
echo hello > "$src/a.txt"
head -c 14000 /dev/urandom > "$src/dir/data.bin"
truncate -s 20000 "$src/dir/sparse"
printf 'end' | dd of="$src/dir/sparse" bs=1 seek=19000 conv=notrunc status=none
ln "$src/a.txt" "$src/dir/sub/link"
ln -s ../a.txt "$src/dir/symlink"
: > "$src/dir/sub/empty"
touch "$src/dir/sub/$(printf 'n%.0s' $(seq 1 200))"

mkdir -p "$corpus/index-ext4" "$corpus/index-squashfs" "$corpus/index-erofs" \
  "$corpus/manifest"

# ext4 with extents and no journal; ext2 with the classic block map.
# 1 KiB blocks and 32 inodes keep them at 64 KiB.
mkfs () {
  local img="$corpus/index-ext4/$1.img"
  shift
  rm -f "$img"
  truncate -s 64K "$img"
  mke2fs -q -F -b 1024 -N 32 "$@" -d "$src" "$img"
}
mkfs ext4 -t ext4 -O ^has_journal,^resize_inode
mkfs ext2 -t ext2 -O ^resize_inode

# squashfs: uncompressed data without fragments (fully mapped), and
# the defaults (compressed blocks and fragments).
mksquashfs "$src" "$corpus/index-squashfs/nod.img" -noappend -noD \
  -no-fragments -all-root -quiet >/dev/null
mksquashfs "$src" "$corpus/index-squashfs/default.img" -noappend \
  -all-root -quiet >/dev/null

# erofs: tail-packed (mkfs.erofs's default), whole blocks (as
# accel-mkimage makes it), chunk-based with block addresses and with
# chunk indexes in extended inodes, compressed.  All but plain.img have
# the superblock checksum (feature_compat bit 0) turned off, so that
# the fuzzer's changes to the first block, where the root directory and
# the first inodes are, are not all refused by it.
mkerofs () {
  local img="$corpus/index-erofs/$1.img" csum=$2
  shift 2
  rm -f "$img"
  mkfs.erofs --quiet --all-root -T 0 "$@" "$img" "$src"
  if [ "$csum" = nocsum ]; then
    printf '\002' | dd of="$img" bs=1 seek=1032 conv=notrunc status=none
  fi
}
mkerofs inline nocsum
mkerofs plain csum -E noinline_data
mkerofs chunk nocsum --chunksize=4096
mkerofs index nocsum --chunksize=8192 -E force-chunk-indexes,force-inode-extended
mkerofs comp nocsum -zlz4hc

# Manifests of an ext4 image (with a file map) and of a raw one.
head -c 12288 /dev/zero > "$tmp/raw.img"
printf 'not a file system' >> "$tmp/raw.img"
for img in "$corpus/index-ext4/ext4.img" \
           "$tmp/raw.img"; do
  name=$(basename "$img" .img)
  "$index" "$img" -o "$corpus/manifest/$name.sqlite" --chunk-size 4K \
    2>/dev/null
done

# fuzz-http: a 12-byte request description (see fuzz-http.c) and a
# response head and body as S3 and radosgw send them.
mkdir -p "$corpus/http"
python3 - "$corpus/http" <<'PY'
import struct, sys

out = sys.argv[1]
purposes = {"open": 0, "read-range": 1, "read-all": 2, "send": 3, "xml": 4,
            "delete": 5}
HEAD, RANGE, IF_MATCH, SIGNED, ANON = 1, 2, 4, 8, 16
etag = '"0123456789abcdef0123456789abcdef"'
common = ("x-amz-id-2: ef8yU9AS1ed4OpIszj7UDNEHGran\r\n"
          "x-amz-request-id: 318BC8BC143432E5\r\n"
          "Date: Wed, 01 Mar 2006 12:00:00 GMT\r\n"
          "Server: AmazonS3\r\n")

def seed(name, purpose, flags, first, length, size, head, body=""):
    prefix = struct.pack("<BBBHHIB", purposes[purpose], flags, 0, first,
                         length - 1, size, 0)
    with open(f"{out}/{name}", "wb") as f:
        f.write(prefix + (head + "\r\n" + body).encode())

seed("range-206", "read-range", RANGE | IF_MATCH | SIGNED, 16, 16, 4096,
     "HTTP/1.1 206 Partial Content\r\n" + common +
     "Last-Modified: Wed, 12 Oct 2009 17:50:00 GMT\r\n"
     f"ETag: {etag}\r\nAccept-Ranges: bytes\r\n"
     "Content-Range: bytes 16-31/4096\r\n"
     "Content-Type: application/octet-stream\r\nContent-Length: 16\r\n",
     "0123456789abcdef")
seed("open-head", "open", HEAD | SIGNED, 0, 1, 0,
     "HTTP/1.1 200 OK\r\n" + common +
     f"ETag: {etag}\r\nContent-Length: 1073741824\r\n"
     "Content-Type: binary/octet-stream\r\n")
seed("open-get", "open", RANGE, 0, 1, 0,
     "HTTP/2 206\r\ncontent-range: bytes 0-0/12345\r\n"
     'etag: "d41d8cd98f00b204e9800998ecf8427e-3"\r\ncontent-length: 1\r\n',
     "x")
seed("open-empty-416", "open", RANGE, 0, 1, 0,
     "HTTP/1.1 416 Requested Range Not Satisfiable\r\n" + common +
     f"Content-Range: bytes */0\r\nETag: {etag}\r\n")
seed("continue-then-200", "send", SIGNED, 0, 1, 0,
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" + common +
     'ETag: "1b2cf535f27731c974343645a3985328"\r\nContent-Length: 0\r\n')
seed("denied-403", "read-range", RANGE | SIGNED, 0, 4096, 8192,
     "HTTP/1.1 403 Forbidden\r\n" + common +
     "Content-Type: application/xml\r\nTransfer-Encoding: chunked\r\n",
     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
     "SignatureDoesNotMatch</Code><Message>The request signature we "
     "calculated does not match the signature you provided.</Message>"
     "</Error>")
seed("redirect-301", "open", HEAD | SIGNED, 0, 1, 0,
     "HTTP/1.1 301 Moved Permanently\r\n" + common +
     "x-amz-bucket-region: eu-west-1\r\nContent-Type: application/xml\r\n",
     "<Error><Code>PermanentRedirect</Code><Message>Use the endpoint."
     "</Message><Region>eu-west-1</Region></Error>")
seed("slowdown-503", "read-all", SIGNED | ANON, 0, 1, 100,
     "HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\n",
     "<Error><Code>SlowDown</Code><Message>Please reduce your request "
     "rate.</Message></Error>")
seed("xml-200-error", "xml", SIGNED, 0, 1, 0,
     "HTTP/1.1 200 OK\r\n" + common + "Content-Type: application/xml\r\n",
     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>"
     "InternalError</Code><Message>We encountered an internal error."
     "</Message></Error>")
PY

# fuzz-s3-url: URL, NUL, endpoint, NUL, region.
mkdir -p "$corpus/s3-url"
printf 's3://bucket/images/base.img\0\0eu-west-1' > "$corpus/s3-url/s3-aws"
printf 's3://my.dotted.bucket/a%%20b/c?d\0\0us-east-1' \
  > "$corpus/s3-url/s3-dotted"
printf 's3://bucket/key\0http://127.0.0.1:7480/\0' \
  > "$corpus/s3-url/s3-endpoint"
printf 'https://example.com/path/img?X-Amz-Signature=abc&X-Amz-Expires=60#frag' \
  > "$corpus/s3-url/https-presigned"
