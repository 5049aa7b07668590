#!/usr/bin/env bash
# The S3 endpoint found as the AWS SDKs find it, by the tools and the
# plugin alike (common/s3/endpoint.h), against the test S3 server.
#
# 1. accel-mkimage publishes to s3:// with only AWS_ENDPOINT_URL_S3 set
#    (no --endpoint); with -v it says which endpoint and why.
# 2. accel-inspect reads the manifest and the plugin (url=s3://..., no
#    endpoint=) serves the image byte for byte, each with:
#    a. AWS_ENDPOINT_URL only;
#    b. only a profile's services section ([services NAME], s3 = with an
#       indented endpoint_url; a wrong sts entry beside it);
#    c. a wrong AWS_ENDPOINT_URL overridden by a right AWS_ENDPOINT_URL_S3;
#    d. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true with wrong configured
#       endpoints everywhere and an explicit --endpoint / endpoint=.
#    The debug output names the source each time.
# 3. A profile naming a services section that does not exist fails
#    with a message saying so (as in the AWS CLI).
# 4. An endpoint under a path (a gateway serving the store under
#    /site-cache, stood in by tests/lib/s3proxy.py --strip-prefix):
#    anonymous reads of a public image through it are byte for byte
#    right; signed ones are refused by the store, because the gateway
#    changed the path that was signed, and the error says so.  Bad
#    paths (empty, . or .. segments, %-escapes) are refused up front.
. "$(dirname "$0")/lib/functions.sh"
PATH=$PATH:/usr/sbin:/sbin
requires nbdkit; requires nbdcopy; requires mke2fs
mk="$top/tools/accel-mkimage"
inspect="$top/tools/accel-inspect"
[ -x "$mk" ] && [ -x "$inspect" ] || fail "the tools are not built"
needs_s3
make_tmpdir
ep=$ACCEL_TEST_S3_ENDPOINT
bad=http://127.0.0.1:1
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "could not create bucket $bucket"
on_exit "s3_curl -X DELETE '$ep/$bucket' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/ds/tree.img' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/ds/tree.img.manifest' >/dev/null 2>&1"

# Nothing from the environment or the user's files but what each case
# sets.
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
unset AWS_CA_BUNDLE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# says FILE SOURCE: the debug output names the endpoint and its source.
says () {
  grep -qF "endpoint: $ep (from $2)" "$1" ||
    fail "$1 does not say 'endpoint: $ep (from $2)': $(grep endpoint "$1")"
}

# 1. Publish with AWS_ENDPOINT_URL_S3 only.
mkdir -p "$tmp/src/d" "$tmp/work"
head -c 2500000 /dev/urandom > "$tmp/src/d/data.bin"
echo "hello endpoints" > "$tmp/src/hello.txt"
AWS_ENDPOINT_URL_S3=$ep TMPDIR="$tmp/work" \
  "$mk" -v "$tmp/src" "s3://$bucket/ds/" --name tree --keep-image "$tmp/tree.img" \
  > "$tmp/mk.out" 2> "$tmp/mk.err" || fail "accel-mkimage: $(tail "$tmp/mk.err")"
says "$tmp/mk.err" AWS_ENDPOINT_URL_S3
# The line printed for nodes names the endpoint found: a node does not
# have the publisher's environment.
grep -qxF "nbdkit accel url=s3://$bucket/ds/tree.img cache-dir=/var/cache/accel endpoint=$ep" \
  "$tmp/mk.out" || fail "the printed line lacks endpoint=$ep: $(cat "$tmp/mk.out")"
s3_curl -o "$tmp/got.img" "$ep/$bucket/ds/tree.img" || fail "the image is not there"
cmp "$tmp/got.img" "$tmp/tree.img" || fail "the published image differs"
s3_curl -o /dev/null "$ep/$bucket/ds/tree.img.manifest" ||
  fail "the manifest is not there"
echo "ok: published with AWS_ENDPOINT_URL_S3 only: $(grep -m1 -o 'endpoint: .*' "$tmp/mk.err")"

# serves NAME SOURCE [KEY=VALUE...]: accel-inspect and the plugin work
# in the current environment, and say the endpoint came from SOURCE.
serves () {
  local name=$1 source=$2
  shift 2
  local opt=()
  [ $# -gt 0 ] && opt=(--endpoint "${1#endpoint=}")
  "$inspect" -v "${opt[@]}" "s3://$bucket/ds/tree.img.manifest" \
    > "$tmp/$name.inspect" 2> "$tmp/$name.inspect.err" ||
    fail "$name: accel-inspect: $(cat "$tmp/$name.inspect.err")"
  grep -q "chunks" "$tmp/$name.inspect" ||
    fail "$name: accel-inspect printed no summary"
  says "$tmp/$name.inspect.err" "$source"
  start_nbdkit "$name" url="s3://$bucket/ds/tree.img" \
    cache-dir="$tmp/cache-$name" "$@" || fail "$name: $(cat "$tmp/$name.log")"
  nbdcopy "$(nbd_uri "$name")" "$tmp/$name.img" || fail "$name: nbdcopy"
  cmp "$tmp/$name.img" "$tmp/tree.img" || fail "$name: the plugin serves other bytes"
  stop_nbdkit "$name"
  says "$tmp/$name.log" "$source"
  echo "ok: $name: accel-inspect and the plugin, endpoint from $source"
}

# 2a. AWS_ENDPOINT_URL only.
AWS_ENDPOINT_URL=$ep serves env_global AWS_ENDPOINT_URL

# 2b. A services section only.
cat > "$tmp/config" <<EOF
[default]
region = us-east-1
services = local-store

[services other]
s3 =
  endpoint_url = $bad

[services local-store]
sts =
  endpoint_url = $bad
s3 =
	endpoint_url = $ep
	addressing_style = path
EOF
AWS_CONFIG_FILE=$tmp/config serves services \
  "[services local-store] s3 endpoint_url in $tmp/config"

# 2c. AWS_ENDPOINT_URL_S3 over a wrong AWS_ENDPOINT_URL (and a wrong
# profile endpoint_url).
printf '[default]\nendpoint_url = %s\n' "$bad" > "$tmp/config-bad"
AWS_ENDPOINT_URL=$bad AWS_ENDPOINT_URL_S3=$ep AWS_CONFIG_FILE=$tmp/config-bad \
  serves service_over_global AWS_ENDPOINT_URL_S3

# 2d. Ignore every configured endpoint; the explicit one still counts.
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true AWS_ENDPOINT_URL=$bad \
  AWS_ENDPOINT_URL_S3=$bad AWS_CONFIG_FILE=$tmp/config-bad \
  serves ignore "the command line" endpoint="$ep"

# 3. services = a section that is not there.
printf '[default]\nservices = nowhere\n' > "$tmp/config-missing"
AWS_CONFIG_FILE=$tmp/config-missing \
  "$inspect" "s3://$bucket/ds/tree.img.manifest" > /dev/null 2> "$tmp/missing.err" &&
  fail "a missing services section was ignored"
grep -q "services = nowhere, but there is no \[services nowhere\] section" \
  "$tmp/missing.err" || fail "missing services section: $(cat "$tmp/missing.err")"
echo "ok: missing services section: $(head -n 1 "$tmp/missing.err")"

# 4. An endpoint under a path.
# A public copy of the image and its manifest.
s3_curl -o "$tmp/tree.img.manifest" "$ep/$bucket/ds/tree.img.manifest" ||
  fail "could not read the manifest"
for k in tree.img tree.img.manifest; do
  on_exit "s3_curl -X DELETE '$ep/$bucket/pub/$k' >/dev/null 2>&1"
  s3_curl -X PUT -H "x-amz-acl: public-read" --upload-file "$tmp/$k" \
    "$ep/$bucket/pub/$k" > /dev/null || fail "could not publish pub/$k"
done
mkdir -p "$tmp/gw"
start_proxy "$tmp/gw" --strip-prefix /site-cache
keys=("$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY")
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
start_nbdkit gw url="s3://$bucket/pub/tree.img" cache-dir="$tmp/cache-gw" \
  endpoint="$proxy_url/site-cache/" ||
  fail "anonymous through a path: $(cat "$tmp/gw.log")"
nbdcopy "$(nbd_uri gw)" "$tmp/gw.img" || fail "gw: nbdcopy"
cmp "$tmp/gw.img" "$tmp/tree.img" || fail "gw: the plugin serves other bytes"
stop_nbdkit gw
export AWS_ACCESS_KEY_ID=${keys[0]} AWS_SECRET_ACCESS_KEY=${keys[1]}
grep -q "GET /site-cache/$bucket/pub/tree.img " "$tmp/gw/proxy.log" ||
  fail "the requests did not go under the endpoint's path"
echo "ok: anonymous reads through an endpoint under a path"
start_nbdkit gw-signed url="s3://$bucket/pub/tree.img" \
  cache-dir="$tmp/cache-gw-signed" endpoint="$proxy_url/site-cache" &&
  fail "signed requests through a path-rewriting gateway were accepted"
grep -q "SignatureDoesNotMatch" "$tmp/gw-signed.log" ||
  fail "a signature broken by the gateway: $(tail -n 3 "$tmp/gw-signed.log")"
echo "ok: signed through a path-rewriting gateway: $(grep -m1 -o 'SignatureDoesNotMatch.*' "$tmp/gw-signed.log")"
for e in "$proxy_url//x" "$proxy_url/a/../b" "$proxy_url/./b" \
         "$proxy_url/a%2fb" "$proxy_url/a?x=1"; do
  AWS_ENDPOINT_URL_S3=$e "$inspect" "s3://$bucket/ds/tree.img.manifest" \
    > /dev/null 2> "$tmp/badpath.err" && fail "endpoint $e was accepted"
  grep -q "expected http\[s\]://HOST\[:PORT\]\[/PATH\]" "$tmp/badpath.err" ||
    fail "endpoint $e: $(cat "$tmp/badpath.err")"
done
echo "ok: bad endpoint paths refused: $(head -n 1 "$tmp/badpath.err")"
echo OK
