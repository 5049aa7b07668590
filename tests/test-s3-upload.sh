#!/usr/bin/env bash
# accel: uploads (common/s3/upload/s3-upload.c) to a real S3 server, through the
# counting, fault-injecting proxy (tests/lib/s3proxy.py), driven by
# tests/helpers/s3-put.  needs_s3: radosgw (tests/lib/rgw.sh).
#
# Every upload is checked by downloading it with curl (an independent
# S3 client) and comparing bytes; the proxy's counters show which
# requests were made:
#  1. a small file goes up in one PUT;
#  2. 40 MiB with 5 MiB parts: a parallel multipart upload (8 PUTs,
#     Create and Complete), whose ETag is the multipart one;
#  3. running it again skips it: one HEAD, no PUT or POST;
#  4. after the file changes, it is uploaded again;
#  5. interrupted: part 5 is refused (403), so the run fails saying so
#     and keeps the upload; the next run resumes it, sending only the
#     missing parts (one of them refused once with 503 and retried, the
#     completion refused once with 500 and retried), then aborts the
#     stale upload it did not use but not another key's;
#  6. a part refused as corrupt (BadDigest) fails the upload, which is
#     aborted since resuming cannot help;
#  7. a completion whose reply is lost (connection reset) is retried,
#     finds the upload gone, and checks that the object is ours;
#  8. a wrong secret, a missing file, an http:// destination and a too
#     small part size fail with one clear message, and no secret is
#     ever printed.
. "$(dirname "$0")/lib/functions.sh"
requires curl
requires python3
put=$top/tests/helpers/s3-put
[ -x "$put" ] || fail "$put is not built"
needs_s3
make_tmpdir
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "could not create bucket $bucket"
ep=$ACCEL_TEST_S3_ENDPOINT
MiB=1048576

# Remove what we stored: the shared server keeps objects in memory.
cleanup_bucket () {
  local k id
  for k in small.bin big.bin resume.bin resume.bin.other fatal.bin meta.bin; do
    s3_curl -X DELETE "$ep/$bucket/$k" >/dev/null 2>&1
  done
  s3_curl "$ep/$bucket?uploads=" 2>/dev/null |
    python3 -c 'import re,sys
for k, i in re.findall(r"<Key>(.*?)</Key>.*?<UploadId>(.*?)</UploadId>",
                       sys.stdin.read(), re.S): print(k, i)' |
    while read -r k id; do
      s3_curl -X DELETE "$ep/$bucket/$k?uploadId=$id" >/dev/null 2>&1
    done
  s3_curl -X DELETE "$ep/$bucket" >/dev/null 2>&1
}
on_exit cleanup_bucket

# run NAME ARGS...: s3-put through the proxy, verbose, output in
# $tmp/NAME.out and $tmp/NAME.log; sets rc and the counts of PUT, POST
# and HEAD requests it made.
run () {
  local name=$1; shift
  local put0 post0 head0
  put0=$(proxy_count PUT) post0=$(proxy_count POST) head0=$(proxy_count HEAD)
  "$put" --endpoint "$proxy_url" --verbose --stats "$@" \
    > "$tmp/$name.out" 2> "$tmp/$name.log"
  rc=$?
  puts=$(( $(proxy_count PUT) - put0 ))
  posts=$(( $(proxy_count POST) - post0 ))
  heads=$(( $(proxy_count HEAD) - head0 ))
  echo "$name: exit $rc, $(cat "$tmp/$name.out") PUT $puts POST $posts HEAD $heads"
}

# same KEY FILE: the object's bytes are the file's.
same () {
  s3_curl "$ep/$bucket/$1" -o "$tmp/download" || fail "GET $1"
  cmp "$tmp/download" "$2" || fail "$1 differs from $2"
}

# uploads_of KEY: the IDs of the uploads in progress for exactly KEY.
# NB: curl signs the query as written, so it must be in sorted order.
uploads_of () {
  s3_curl "$ep/$bucket?prefix=$1&uploads=" |
    python3 -c 'import re,sys
for k, i in re.findall(r"<Key>(.*?)</Key>.*?<UploadId>(.*?)</UploadId>",
                       sys.stdin.read(), re.S):
  if k == sys.argv[1]: print(i)' "$1"
}

# 1. Small file: one PUT.
head -c 100000 /dev/urandom > "$tmp/small.bin"
run small --content-type application/x-accel-test "$tmp/small.bin" \
  "s3://$bucket/small.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/small.out")" = uploaded ] || fail "small upload"
[ $puts = 1 ] && [ $posts = 0 ] || fail "small file: expected 1 PUT, 0 POST"
same small.bin "$tmp/small.bin"
s3_curl -I "$ep/$bucket/small.bin" | grep -qi "^content-type: application/x-accel-test" ||
  fail "the Content-Type was not set"

# 2. 40 MiB in 5 MiB parts, 4 at a time: multipart.
head -c $((40 * MiB)) /dev/urandom > "$tmp/big.bin"
run big --part-size 5M --parallel 4 --progress "$tmp/big.bin" \
  "s3://$bucket/big.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/big.out")" = uploaded ] || fail "big upload"
[ $puts = 8 ] && [ $posts = 2 ] ||
  fail "40 MiB in 5 MiB parts: expected 8 PUT and 2 POST"
same big.bin "$tmp/big.bin"
grep -q "ETag \"[0-9a-f]\{32\}-8\"" "$tmp/big.log" ||
  fail "the object does not have a multipart ETag"
s3_curl -I "$ep/$bucket/big.bin" |
  grep -qi "^content-type: application/octet-stream" ||
  fail "the default Content-Type was not set"
grep -q "^progress $((40 * MiB)) $((40 * MiB))$" "$tmp/big.log" ||
  fail "no final progress call"
[ "$(grep -c '^progress ' "$tmp/big.log")" = 8 ] ||
  fail "expected a progress call per part"

# 3. Again: skipped, with a HEAD and nothing else sent.
run again --part-size 5M "$tmp/big.bin" "s3://$bucket/big.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/again.out")" = skipped ] || fail "not skipped"
[ $puts = 0 ] && [ $posts = 0 ] && [ $heads = 1 ] ||
  fail "skipping must send one HEAD and no PUT or POST"
run again-small "$tmp/small.bin" "s3://$bucket/small.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/again-small.out")" = skipped ] &&
  [ $puts = 0 ] || fail "small file not skipped"

# 3b. The image metadata (x-amz-meta-accel-image-sha256), which
# accel-mkimage sets: the same bytes without it, or with another value,
# are uploaded again (metadata cannot change in place); with it, skipped.
# Signed (radosgw checks), in one PUT and in a multipart upload.
sha_a=$(printf a | sha256sum | cut -c1-64)
sha_b=$(printf b | sha256sum | cut -c1-64)
for f in small big; do
  run "meta-$f" --part-size 5M --image-sha256 "$sha_a" "$tmp/$f.bin" "s3://$bucket/$f.bin"
  [ $rc = 0 ] && [ "$(cat "$tmp/meta-$f.out")" = uploaded ] ||
    fail "$f: the same bytes without the metadata were skipped"
  s3_curl -I "$ep/$bucket/$f.bin" | grep -qi "^x-amz-meta-accel-image-sha256: $sha_a" ||
    fail "$f: the metadata was not set"
  run "meta-again-$f" --part-size 5M --image-sha256 "$sha_a" "$tmp/$f.bin" "s3://$bucket/$f.bin"
  [ $rc = 0 ] && [ "$(cat "$tmp/meta-again-$f.out")" = skipped ] ||
    fail "$f: the same bytes and metadata were not skipped"
  run "meta-other-$f" --part-size 5M --image-sha256 "$sha_b" "$tmp/$f.bin" "s3://$bucket/$f.bin"
  [ $rc = 0 ] && [ "$(cat "$tmp/meta-other-$f.out")" = uploaded ] ||
    fail "$f: other metadata was skipped"
  s3_curl -I "$ep/$bucket/$f.bin" | grep -qi "^x-amz-meta-accel-image-sha256: $sha_b" ||
    fail "$f: the metadata was not replaced"
  same "$f.bin" "$tmp/$f.bin"
done

# 4. The same size, different bytes: uploaded again.
printf 'changed' | dd of="$tmp/big.bin" bs=1 seek=$((17 * MiB)) \
  conv=notrunc status=none
run changed --part-size 5M "$tmp/big.bin" "s3://$bucket/big.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/changed.out")" = uploaded ] &&
  [ $puts = 8 ] || fail "a changed file was not uploaded again"
same big.bin "$tmp/big.bin"

# 5. Interrupted, then resumed.  Two uploads for the key are already in
# progress (the older must end up aborted), and one for another key
# that starts with ours (which must be left alone).
head -c $((40 * MiB)) /dev/urandom > "$tmp/resume.bin"
s3_curl -X POST "$ep/$bucket/resume.bin?uploads=" > /dev/null ||
  fail "CreateMultipartUpload with curl"
stale=$(uploads_of resume.bin)
sleep 1.1
s3_curl -X POST "$ep/$bucket/resume.bin.other?uploads=" > /dev/null
other=$(uploads_of resume.bin.other)
s3_curl -X POST "$ep/$bucket/resume.bin?uploads=" > /dev/null
[ -n "$stale" ] && [ -n "$other" ] && [ "$(uploads_of resume.bin | wc -l)" = 2 ] ||
  fail "could not set up uploads in progress"

echo '[{"method": "PUT", "match": "partNumber=5&", "action": "status",
        "status": 403, "count": 100}]' > "$proxy_faults"
run broken --part-size 5M --parallel 1 "$tmp/resume.bin" \
  "s3://$bucket/resume.bin"
cat "$tmp/broken.log"
[ $rc = 1 ] && [ ! -s "$tmp/broken.out" ] || fail "an interrupted upload succeeded"
[ $puts = 5 ] || fail "expected parts 1-5 to be tried, one at a time"
grep -q "^s3-put: s3://$bucket/resume.bin: part 5 of 8: 403 Forbidden.*run again to resume" \
  "$tmp/broken.log" || fail "no clear message for the refused part"
[ "$(grep -c '^s3-put: s3:/' "$tmp/broken.log")" = 1 ] ||
  fail "expected one error message"
s3_curl -I "$ep/$bucket/resume.bin" >/dev/null 2>&1 &&
  fail "an interrupted upload left an object"
[ "$(uploads_of resume.bin | wc -l)" = 2 ] ||
  fail "the interrupted upload was not kept"

# Part 6 is refused once with 503 (ServiceUnavailable: a failure, not
# SlowDown's back-pressure) and the completion once with 500: both are
# retried (the part re-read from the file).
echo '[{"method": "PUT", "match": "partNumber=6&", "action": "status",
        "status": 503, "code": "ServiceUnavailable", "count": 1},
       {"method": "POST", "match": "uploadId=", "action": "status",
        "status": 500, "count": 1}]' > "$proxy_faults"
run resumed --part-size 5M --parallel 2 --progress "$tmp/resume.bin" \
  "s3://$bucket/resume.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/resumed.out")" = uploaded ] ||
  fail "the re-run did not complete the upload"
grep -q "resuming upload .*: 4 of 8 parts are there" "$tmp/resumed.log" ||
  fail "the re-run did not reuse the parts sent"
[ $puts = 5 ] ||
  fail "expected parts 5-8 and one retry to be sent, not $puts PUTs"
[ "$(grep '^progress ' "$tmp/resumed.log" | head -n 1)" = \
  "progress $((20 * MiB)) $((40 * MiB))" ] ||
  fail "progress does not start with the parts found"
[ $posts = 2 ] || fail "expected Complete and one retry, not $posts POSTs"
grep -q "retries 2 " "$tmp/resumed.log" || fail "expected 2 retries"
same resume.bin "$tmp/resume.bin"
[ -z "$(uploads_of resume.bin)" ] || fail "uploads for the key are left"
[ "$(uploads_of resume.bin.other)" = "$other" ] ||
  fail "the upload of another key was touched"
grep -q "aborted upload $stale" "$tmp/resumed.log" ||
  fail "the stale upload was not aborted"

# 5b. An upload in progress keeps the metadata it was created with:
# resumed by a run with another image SHA-256 (a tree fixed after an
# interrupted publish), the object must end up with the new run's, so
# it is sent again afresh; resumed with the same one, it is not.
for case in other same; do
  echo '[{"method": "PUT", "match": "partNumber=5&", "action": "status",
          "status": 403, "count": 100}]' > "$proxy_faults"
  run "meta-broken-$case" --part-size 5M --parallel 1 --image-sha256 "$sha_a" \
    "$tmp/resume.bin" "s3://$bucket/meta.bin"
  [ $rc = 1 ] || fail "meta-broken-$case: an interrupted upload succeeded"
  echo '[]' > "$proxy_faults"
  want=$sha_a
  [ $case = same ] || want=$sha_b
  run "meta-resumed-$case" --part-size 5M --parallel 1 --image-sha256 "$want" \
    "$tmp/resume.bin" "s3://$bucket/meta.bin"
  [ $rc = 0 ] && [ "$(cat "$tmp/meta-resumed-$case.out")" = uploaded ] ||
    fail "meta-resumed-$case: $(cat "$tmp/meta-resumed-$case.log")"
  grep -q "resuming upload .*: 4 of 8 parts are there" "$tmp/meta-resumed-$case.log" ||
    fail "meta-resumed-$case: the parts sent were not reused"
  s3_curl -I "$ep/$bucket/meta.bin" | grep -qi "^x-amz-meta-accel-image-sha256: $want" ||
    fail "meta-resumed-$case: the object does not carry $want: $(s3_curl -I "$ep/$bucket/meta.bin" | grep -i meta)"
  same meta.bin "$tmp/resume.bin"
  if [ $case = same ]; then
    [ $puts = 4 ] || fail "resumed with the same metadata: $puts PUTs, expected 4"
  else
    grep -q "the resumed upload did not carry this x-amz-meta-accel-image-sha256: uploading again" \
      "$tmp/meta-resumed-$case.log" || fail "no word of the upload sent again"
    [ $puts = 12 ] || fail "resumed with other metadata: $puts PUTs, expected 4 + 8"
  fi
  [ -z "$(uploads_of meta.bin)" ] || fail "meta-resumed-$case: uploads for the key are left"
  s3_curl -X DELETE "$ep/$bucket/meta.bin" >/dev/null || fail "DELETE meta.bin"
done

# 6. S3 refuses a part as corrupt (BadDigest): resuming cannot help, so
# the upload is aborted.
echo '[{"method": "PUT", "match": "partNumber=3&", "action": "status",
        "status": 400, "code": "BadDigest"}]' > "$proxy_faults"
run baddigest --part-size 5M --parallel 1 "$tmp/big.bin" \
  "s3://$bucket/fatal.bin"
[ $rc = 1 ] && [ $puts = 3 ] || fail "BadDigest: expected a failure at part 3"
grep -q "^s3-put: s3://$bucket/fatal.bin: part 3 of 8: 400 Bad Request (BadDigest.*the upload is aborted" \
  "$tmp/baddigest.log" || fail "no clear message for BadDigest"
[ -z "$(uploads_of fatal.bin)" ] || fail "the failed upload was not aborted"

# 7. The reply to CompleteMultipartUpload is lost after the server
# completed the upload (a reset), and the retry finds no such upload
# (as on AWS; radosgw would complete it again): the object is checked
# and is ours.
echo '[{"method": "POST", "match": "uploadId=", "action": "reset",
        "after_bytes": 10, "count": 1},
       {"method": "POST", "match": "uploadId=", "action": "status",
        "status": 404, "code": "NoSuchUpload", "count": 1}]' > "$proxy_faults"
run lost --part-size 5M "$tmp/big.bin" "s3://$bucket/fatal.bin"
[ $rc = 0 ] && [ "$(cat "$tmp/lost.out")" = uploaded ] ||
  fail "a completed upload whose reply was lost failed"
[ $posts = 3 ] || fail "expected Create, Complete and its retry"
grep -q "opened s3://$bucket/fatal.bin: size $((40 * MiB)), ETag \"[0-9a-f]\{32\}-8\"" \
  "$tmp/lost.log" || fail "the object was not checked"
same fatal.bin "$tmp/big.bin"
echo '[]' > "$proxy_faults"

# 8. Clear failures.
if AWS_SECRET_ACCESS_KEY=wrong-secret-1234567890 run badsecret \
     "$tmp/small.bin" "s3://$bucket/small.bin"; [ $rc = 0 ]; then
  fail "uploaded with a wrong secret"
fi
cat "$tmp/badsecret.log"
grep -q "^s3-put: s3://$bucket/small.bin: 403 Forbidden.*check the credentials" \
  "$tmp/badsecret.log" || fail "no clear 403 message"

run missing "$tmp/nope.bin" "s3://$bucket/nope.bin"
[ $rc = 1 ] || fail "a missing file was uploaded"
grep -q "^s3-put: open: $tmp/nope.bin: No such file or directory" \
  "$tmp/missing.log" || fail "no clear message for a missing file"
[ $puts = 0 ] && [ $heads = 0 ] || fail "requests made for a missing file"

run http "$tmp/small.bin" "http://127.0.0.1:1/x/y"
[ $rc = 1 ] && grep -q "uploads need an s3://BUCKET/KEY URL" "$tmp/http.log" ||
  fail "an http:// destination was not refused"

run tiny --part-size 1M "$tmp/big.bin" "s3://$bucket/big.bin"
[ $rc = 1 ] && grep -q "part size 1048576: S3 needs" "$tmp/tiny.log" ||
  fail "a part size under 5 MiB was not refused"

grep -l -e "$ACCEL_TEST_S3_SECRET_KEY" -e "wrong-secret" -e "Signature=" \
  "$tmp"/*.log && fail "a secret or signature was printed"
echo OK
