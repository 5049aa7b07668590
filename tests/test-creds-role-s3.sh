#!/usr/bin/env bash
# Assume-role credentials used for real S3 reads, by the plugin and by
# accel-inspect, across refreshes.  tests/lib/fake-aws.py plays STS and
# stands in front of the test S3 server: it serves an S3 request only if
# it is signed (SigV4, verified) with credentials it issued, unexpired,
# then forwards it re-signed.  So:
#  1. accel-inspect with AWS_PROFILE naming a two-level role chain reads
#     the manifest, and the plugin with profile= serves the image byte
#     for byte;
#  2. the plugin, opened with role credentials that expire before it
#     reads any data, serves the image anyway and no S3 request is
#     refused: the provider resolved the chain again, both AssumeRoles;
#  3. a profile whose role STS refuses: accel-inspect fails naming the
#     profile and role, and the plugin serves nothing.
. "$(dirname "$0")/lib/functions.sh"
PATH=$PATH:/usr/sbin:/sbin
requires nbdkit; requires nbdcopy; requires python3; requires curl
mk="$top/tools/accel-mkimage"
inspect="$top/tools/accel-inspect"
[ -x "$mk" ] && [ -x "$inspect" ] || fail "the tools are not built"
needs_s3
make_tmpdir
. "$top/tests/lib/fake-aws.sh"
ep=$ACCEL_TEST_S3_ENDPOINT
bucket=$(unique_bucket)
s3_mkbucket "$bucket" || fail "could not create bucket $bucket"
on_exit "s3_curl -X DELETE '$ep/$bucket' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/ds/tree.img' >/dev/null 2>&1"
on_exit "s3_curl -X DELETE '$ep/$bucket/ds/tree.img.manifest' >/dev/null 2>&1"

# Publish with the S3 server's own keys.
mkdir -p "$tmp/src/d" "$tmp/work"
head -c 3000000 /dev/urandom > "$tmp/src/d/data.bin"
echo "hello roles" > "$tmp/src/hello.txt"
TMPDIR="$tmp/work" "$mk" "$tmp/src" "s3://$bucket/ds/" --endpoint "$ep" \
  --name tree --keep-image "$tmp/tree.img" > "$tmp/mk.out" 2> "$tmp/mk.err" ||
  fail "accel-mkimage: $(tail "$tmp/mk.err")"

# From here on, only what the profiles give: no keys in the environment.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_PROFILE AWS_CA_BUNDLE
export AWS_EC2_METADATA_DISABLED=true
start_fake_aws fake --s3-upstream "$ep" \
  --s3-upstream-key "$ACCEL_TEST_S3_ACCESS_KEY:$ACCEL_TEST_S3_SECRET_KEY"
url=$fake_url_fake
export AWS_ENDPOINT_URL_STS="$url" AWS_ENDPOINT_URL_S3="$url"
export AWS_CONFIG_FILE="$tmp/config" AWS_SHARED_CREDENTIALS_FILE="$tmp/credentials"
arn=arn:aws:iam::123456789012:role
src_key=AKIAFAKESRC0001 src_secret=fakeSecretSrc
control "$url" "{\"static_keys\": {\"$src_key\": \"$src_secret\"},
  \"roles\": {\"$arn/one\": \"$src_key\", \"$arn/two\": \"role:$arn/one\"}}"
printf '[src]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$src_key" "$src_secret" > "$tmp/credentials"
cat > "$tmp/config" <<EOF2
[profile one]
role_arn = $arn/one
source_profile = src

[profile two]
role_arn = $arn/two
source_profile = one

[profile denied]
role_arn = $arn/nobody
source_profile = src
EOF2

# The proxy really refuses: the S3 server's own keys, unsigned requests.
s3_curl -o /dev/null "$url/$bucket/ds/tree.img" 2>/dev/null &&
  fail "the fake forwarded a request not signed by it"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/$bucket/ds/tree.img")
[ "$code" = 400 ] || fail "the fake answered an unsigned request with $code"

# 1. accel-inspect and the plugin through the chain.
AWS_PROFILE=two "$inspect" -v "s3://$bucket/ds/tree.img.manifest" \
  > "$tmp/inspect.out" 2> "$tmp/inspect.err" ||
  fail "accel-inspect: $(cat "$tmp/inspect.err")"
grep -q "chunks" "$tmp/inspect.out" || fail "accel-inspect printed no summary"
grep -qF "credentials: from role $arn/two, profile chain two -> one -> src, source: [src] in $tmp/credentials" \
  "$tmp/inspect.err" || fail "accel-inspect: credentials not from the role chain"
[ "$(counter "$url" assume_issued)" = 2 ] || fail "accel-inspect: not 2 AssumeRoles"

# 2. The plugin: role credentials live 10 s and are refreshed 5 s
# before expiry.  Open, wait until the first ones have expired, read.
control "$url" '{"expires": 10}'
before=$(counter "$url" assume_issued)
refused=$(counter "$url" s3_refused)
ACCEL_CREDS_REFRESH_MARGIN=5 ACCEL_CREDS_RETRY_INTERVAL=1 \
  start_nbdkit role url="s3://$bucket/ds/tree.img" profile=two \
  cache-dir="$tmp/cache-role" || fail "nbdkit: $(cat "$tmp/role.log")"
sleep 12
nbdcopy "$(nbd_uri role)" "$tmp/role.img" || fail "nbdcopy: $(tail "$tmp/role.log")"
stop_nbdkit role
cmp "$tmp/role.img" "$tmp/tree.img" || fail "the plugin serves other bytes"
issued=$(( $(counter "$url" assume_issued) - before ))
echo "AssumeRoles by the plugin: $issued, S3 requests forwarded: $(counter "$url" s3_forwarded), refused: $(counter "$url" s3_refused)"
[ "$issued" -ge 4 ] && [ $((issued % 2)) = 0 ] ||
  fail "the plugin did not resolve the chain again ($issued AssumeRoles)"
[ "$(counter "$url" s3_refused)" = "$refused" ] ||
  fail "the plugin sent S3 requests the fake refused"

# 3. A refused role: clear errors, nothing served.
AWS_PROFILE=denied "$inspect" "s3://$bucket/ds/tree.img.manifest" \
  > "$tmp/denied.out" 2> "$tmp/denied.err" && fail "accel-inspect: denied role accepted"
grep -q "profile denied: could not assume role $arn/nobody" "$tmp/denied.err" ||
  fail "accel-inspect: $(cat "$tmp/denied.err")"
if start_nbdkit denied url="s3://$bucket/ds/tree.img" profile=denied \
  cache-dir="$tmp/cache-denied"; then
  nbdcopy "$(nbd_uri denied)" "$tmp/denied.img" 2>/dev/null &&
    fail "the plugin served an image with a refused role"
  stop_nbdkit denied
fi
grep -q "profile denied: could not assume role $arn/nobody" "$tmp/denied.log" ||
  fail "plugin: $(tail "$tmp/denied.log")"

extra_secrets=("$src_secret" "$ACCEL_TEST_S3_SECRET_KEY")
no_secrets_printed "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log
echo OK
