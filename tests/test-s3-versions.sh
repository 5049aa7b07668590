#!/usr/bin/env bash
# Republishing in place (issue 12 point 5), against radosgw.
#
# In a versioned bucket: publish v1 (image and manifest), start nbdkit,
# read a little; overwrite both keys with v2; the running plugin must
# still serve exactly v1 (every read is pinned with versionId=), and a
# new instance must serve v2, each saying which version it serves.
#
# The version served deleted under the node: its reads fail, saying so.
#
# In an unversioned bucket: the same overwrite must make the old
# instance fail its uncached reads with the clear "replaced" error, and
# it must never hand out a byte of v2.
#
# The publish window: a node starting after the new image is up but
# before its manifest must wait for that manifest (the image's
# x-amz-meta-accel-image-sha256 says which it needs), and fail clearly
# if it never comes; a manifest changed alone (re-indexed) is still
# the image's.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
needs_s3
make_tmpdir

make_image "$tmp/v1.img" 6
make_image "$tmp/v2.img" 6
make_image "$tmp/v3.img" 7
for v in v1 v2 v3; do
  "$top/indexer/accel-index" "$tmp/$v.img" -o "$tmp/$v.img.manifest" ||
    fail "accel-index $v"
done

# publish BUCKET VERSION: the image, then its manifest, as mkimage does.
publish () {
  s3_put "$tmp/$2.img" "$1/disk.img" || fail "put $2 image"
  s3_put "$tmp/$2.img.manifest" "$1/disk.img.manifest" || fail "put $2 manifest"
}

# 1. A versioned bucket.
vb=$(unique_bucket)
s3_mkbucket "$vb"
s3_curl -X PUT --data-binary \
  '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' \
  "$ACCEL_TEST_S3_ENDPOINT/$vb?versioning=" >/dev/null ||
  fail "enabling versioning"
publish "$vb" v1

args=(url="s3://$vb/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT"
      readahead=0 prefetch=none)
start_nbdkit a "${args[@]}" cache-dir="$tmp/cache-a" \
  metrics-file="$tmp/a.prom" metrics-interval=1 ||
  fail "nbdkit: $(cat "$tmp/a.log")"
grep -q "version [^n]" "$tmp/a.log" || fail "the pinned version is not logged"
# Read one chunk before the overwrite, the rest after.
nbdcopy "$(nbd_uri a)" - 2>/dev/null | head -c 1048576 >/dev/null || :

publish "$vb" v2

nbdcopy "$(nbd_uri a)" "$tmp/a.out" || fail "reading v1 after the overwrite: $(tail "$tmp/a.log")"
cmp "$tmp/a.out" "$tmp/v1.img" || fail "the running instance did not serve v1"
sleep 2
grep -q '^accel_image_info{.*version="[^"]' "$tmp/a.prom" ||
  fail "no version in the metrics: $(grep image_info "$tmp/a.prom")"

start_nbdkit b "${args[@]}" cache-dir="$tmp/cache-b" ||
  fail "nbdkit b: $(cat "$tmp/b.log")"
nbdcopy "$(nbd_uri b)" "$tmp/b.out" || fail "reading v2"
cmp "$tmp/b.out" "$tmp/v2.img" || fail "a new instance did not serve v2"
# And both at once, sharing one cache directory: never each other's bytes.
start_nbdkit c "${args[@]}" cache-dir="$tmp/cache-a" ||
  fail "nbdkit c: $(cat "$tmp/c.log")"
nbdcopy "$(nbd_uri c)" "$tmp/c.out" || fail "reading v2 beside v1"
cmp "$tmp/c.out" "$tmp/v2.img" || fail "v2 got v1's cached bytes"
# Each version's manifest has its own local copy: v2's is not renamed
# over the one the v1 node recorded.
n=$(find "$tmp/cache-a/manifests" -type f ! -name '*.*' | wc -l)
[ "$n" = 2 ] || fail "$n local manifest copies for two versions, expected 2"
stop_nbdkit a; stop_nbdkit b; stop_nbdkit c

# The version a node serves deleted under it (DELETE ?versionId=): its
# uncached reads fail, and say that version is gone, not that the key
# is missing (it is not: the key has another version).
start_nbdkit e "${args[@]}" cache-dir="$tmp/cache-e" ||
  fail "nbdkit e: $(cat "$tmp/e.log")"
ver=$(sed -n 's|.*s3: opened s3://[^ ]*/disk\.img: .*, version \([^ ,]*\).*|\1|p' "$tmp/e.log" | head -n 1)
[ -n "$ver" ] && [ "$ver" != none ] || fail "no pinned version in the log: $(grep 'opened' "$tmp/e.log")"
s3_curl -X DELETE "$ACCEL_TEST_S3_ENDPOINT/$vb/disk.img?versionId=$ver" > /dev/null ||
  fail "deleting version $ver"
if nbdcopy "$(nbd_uri e)" "$tmp/e.out" 2>/dev/null; then
  fail "read a deleted version"
fi
grep -q "version $ver of the object is gone (404 Not Found" "$tmp/e.log" ||
  fail "no clear error for a deleted version: $(grep ': error: ' "$tmp/e.log" | tail -n 3)"
stop_nbdkit e

# 2. An unversioned bucket: the old instance fails, clearly.
ub=$(unique_bucket)
s3_mkbucket "$ub"
publish "$ub" v1
start_nbdkit d url="s3://$ub/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" \
  readahead=0 prefetch=none cache-dir="$tmp/cache-d" ||
  fail "nbdkit d: $(cat "$tmp/d.log")"
grep -q "version none" "$tmp/d.log" || fail "an unversioned object claims a version"
publish "$ub" v2
if nbdcopy "$(nbd_uri d)" "$tmp/d.out" 2>/dev/null; then
  fail "the old instance read a replaced unversioned object"
fi
grep -q "replaced\|changed\|412" "$tmp/d.log" ||
  fail "no clear error: $(tail -5 "$tmp/d.log")"
# Whatever it did return must be v1's, never v2's.
if [ -s "$tmp/d.out" ]; then
  n=$(stat -c %s "$tmp/d.out")
  cmp -n "$n" "$tmp/d.out" "$tmp/v1.img" >/dev/null 2>&1 ||
    ! cmp -n 1048576 "$tmp/d.out" "$tmp/v2.img" >/dev/null 2>&1 ||
    fail "the old instance served v2 bytes"
fi
stop_nbdkit d

# 3. The publish window.
# put_image BUCKET VERSION [SHA]: the image alone, with its SHA-256 (or
# SHA) as accel-mkimage's metadata.
put_image () {
  local sha=${3:-$(sha256sum < "$tmp/$2.img" | cut -c1-64)}
  s3_curl -X PUT -H "x-amz-meta-accel-image-sha256: $sha" \
    --upload-file "$tmp/$2.img" "$ACCEL_TEST_S3_ENDPOINT/$1/disk.img" >/dev/null ||
    fail "put $2 image"
}
put_manifest () {
  s3_put "$3" "$1/disk.img.manifest" || fail "put $2 manifest"
}
# 3a. Versioned bucket, v3's image beside v2's manifest: the node waits,
# then serves v3 once its manifest is up.
put_image "$vb" v3
start_nbdkit w "${args[@]}" cache-dir="$tmp/cache-w" publish-wait=60 &
starter=$!
for _ in $(seq 100); do
  grep -q "Waiting up to 60 s" "$tmp/w.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "the manifest is for another version of the image" "$tmp/w.log" ||
  fail "the node did not see the old manifest was not the image's: $(cat "$tmp/w.log")"
[ ! -s "$tmp/w.pid" ] || fail "the node started with another version's manifest"
put_manifest "$vb" v3 "$tmp/v3.img.manifest"
wait "$starter" || fail "nbdkit w: $(cat "$tmp/w.log")"
_nbdkit_started w "$tmp/w.pid"
sock_w="$tmp/w.sock"
nbdcopy "$(nbd_uri w)" "$tmp/w.out" || fail "reading v3 after the wait"
cmp "$tmp/w.out" "$tmp/v3.img" || fail "the node that waited did not serve v3"
stop_nbdkit w

# 3b. Unversioned bucket, v1's image beside v2's manifest for good: a
# clear error after publish-wait=, nothing served.
put_image "$ub" v1
uargs=(url="s3://$ub/disk.img" endpoint="$ACCEL_TEST_S3_ENDPOINT" readahead=0
       prefetch=none)
if start_nbdkit x "${uargs[@]}" cache-dir="$tmp/cache-x" publish-wait=2; then
  fail "served an image beside another version's manifest"
fi
grep -q "but its manifest is still for one with SHA-256 [0-9a-f]\{64\} after 2 s: was the image uploaded without its manifest" "$tmp/x.log" ||
  fail "no clear error for a manifest that never came: $(grep error "$tmp/x.log")"
# 3c. A local manifest= of another version: refused at once.
if start_nbdkit y "${uargs[@]}" cache-dir="$tmp/cache-y" \
     manifest="$tmp/v2.img.manifest"; then
  fail "served an image with another version's local manifest"
fi
grep -q "is for one with SHA-256 [0-9a-f]\{64\}: they do not belong together" "$tmp/y.log" ||
  fail "no clear error for a local manifest of another version: $(grep error "$tmp/y.log")"
# 3d. v1's manifest, then v1 re-indexed in 512 KiB chunks and uploaded
# alone: the same image, so no wait.
"$top/indexer/accel-index" "$tmp/v1.img" --chunk-size 512K \
  -o "$tmp/v1-512k.manifest" || fail "accel-index 512K"
put_manifest "$ub" v1 "$tmp/v1.img.manifest"
put_manifest "$ub" v1-512k "$tmp/v1-512k.manifest"
start_nbdkit z "${uargs[@]}" cache-dir="$tmp/cache-z" publish-wait=0 ||
  fail "nbdkit z (a manifest re-indexed alone): $(cat "$tmp/z.log")"
grep -q "chunks of 524288" "$tmp/z.log" || fail "nbdkit z did not take the re-indexed manifest"
nbdcopy "$(nbd_uri z)" "$tmp/z.out" || fail "reading v1 re-indexed"
cmp "$tmp/z.out" "$tmp/v1.img" || fail "nbdkit z did not serve v1"
stop_nbdkit z
# 3e. Metadata that is not a SHA-256 is ignored, with a warning: the
# pair is taken on trust (its chunks are still verified).
put_image "$ub" v1 "not-a-sha256"
start_nbdkit q "${uargs[@]}" cache-dir="$tmp/cache-q" publish-wait=0 ||
  fail "nbdkit q: $(cat "$tmp/q.log")"
grep -q "ignoring its x-amz-meta-accel-image-sha256 header, which is not one SHA-256" "$tmp/q.log" ||
  fail "no warning for bad metadata"
nbdcopy "$(nbd_uri q)" "$tmp/q.out" || fail "reading with bad metadata"
cmp "$tmp/q.out" "$tmp/v1.img" || fail "nbdkit q did not serve v1"
stop_nbdkit q
# 3f. Both pinned by versionId= (http URLs: in an s3:// URL a '?' is
# part of the key): a pair that does not belong together can never
# change, so it is refused at once, not after publish-wait=.  Public
# copies: v3's image, then v2's manifest and v3's.
# put_public FILE KEY [SHA]: prints the version ID of the new object.
put_public () {
  local h=()
  [ -z "${3:-}" ] || h=(-H "x-amz-meta-accel-image-sha256: $3")
  s3_curl -X PUT -H "x-amz-acl: public-read" "${h[@]}" -D "$tmp/put.h" \
    --upload-file "$1" "$ACCEL_TEST_S3_ENDPOINT/$vb/pub/$2" >/dev/null ||
    fail "put pub/$2"
  tr -d '\r' < "$tmp/put.h" | sed -n 's/^[xX]-[aA]mz-[vV]ersion-[iI]d: //p'
}
v3_image=$(put_public "$tmp/v3.img" disk.img "$(sha256sum < "$tmp/v3.img" | cut -c1-64)")
v2_manifest=$(put_public "$tmp/v2.img.manifest" disk.img.manifest)
v3_manifest=$(put_public "$tmp/v3.img.manifest" disk.img.manifest)
[ -n "$v3_image" ] && [ -n "$v2_manifest" ] && [ -n "$v3_manifest" ] ||
  fail "no version IDs: '$v3_image' '$v2_manifest' '$v3_manifest'"
pub="$ACCEL_TEST_S3_ENDPOINT/$vb/pub"
t0=$SECONDS
if start_nbdkit p url="$pub/disk.img?versionId=$v3_image" readahead=0 \
     prefetch=none cache-dir="$tmp/cache-p" publish-wait=60 \
     manifest="$pub/disk.img.manifest?versionId=$v2_manifest"; then
  fail "served v3 with v2's manifest, both pinned"
fi
[ $((SECONDS - t0)) -lt 30 ] || fail "3f: waited for a pinned manifest to change"
grep -q "they do not belong together" "$tmp/p.log" ||
  fail "no clear error for two pinned versions: $(grep error "$tmp/p.log")"
start_nbdkit p2 url="$pub/disk.img?versionId=$v3_image" readahead=0 \
  prefetch=none cache-dir="$tmp/cache-p" publish-wait=0 \
  manifest="$pub/disk.img.manifest?versionId=$v3_manifest" ||
  fail "nbdkit p2 (v3 and its manifest, pinned): $(cat "$tmp/p2.log")"
nbdcopy "$(nbd_uri p2)" "$tmp/p2.out" || fail "reading pinned v3"
cmp "$tmp/p2.out" "$tmp/v3.img" || fail "nbdkit p2 did not serve v3"
stop_nbdkit p2

# 4. Offline start in a versioned bucket without a manifest (the cache
# identity then holds the version): hydrated once online, served
# offline once the origin is gone (here the proxy, stopped).
start_proxy "$tmp"
oargs=(url="s3://$vb/disk.img" endpoint="$proxy_url" manifest=none
       readahead=0 cache-dir="$tmp/cache-o")
start_nbdkit o "${oargs[@]}" prefetch=all prefetch-jitter=0 ||
  fail "nbdkit o: $(cat "$tmp/o.log")"
for _ in $(seq 200); do
  grep -q "prefetch: done" "$tmp/o.log" && break
  sleep 0.1
done
grep -q "prefetch: done.* 0 failed" "$tmp/o.log" || fail "prefetch=all: $(grep prefetch "$tmp/o.log")"
stop_nbdkit o
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null
start_nbdkit o2 "${oargs[@]}" prefetch=none retries=1 ||
  fail "offline start in a versioned bucket: $(grep error "$tmp/o2.log")"
grep -q "OFFLINE" "$tmp/o2.log" || fail "nbdkit o2 did not say it is offline"
nbdcopy "$(nbd_uri o2)" "$tmp/o2.out" || fail "reading offline"
cmp "$tmp/o2.out" "$tmp/v3.img" || fail "offline: not v3"
stop_nbdkit o2
echo PASS
