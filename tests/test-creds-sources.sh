#!/usr/bin/env bash
# The credential sources after the environment, against local fakes
# (tests/lib/fake-aws.py), driven by tests/helpers/creds-get:
#  - credential_process: good output (with and without SessionToken and
#    Expiration), its stderr passed on, and every way it can go wrong
#    (garbage, exit 1, hang past the timeout, wrong Version, a missing
#    field, credentials already expired, not found);
#  - the container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI on
#    127.0.0.1): tokens from the variable and from the file (the file
#    wins; read again after rotation; missing), hosts not allowed, HTTP
#    errors, bad JSON;
#  - refresh before expiry from 4 threads, for both, seen from the
#    fakes' counters, and (with tests/run's radosgw) real SigV4 requests
#    signed with container credentials across several refreshes, and
#    the plugin serving an object with them;
#  - the order between every pair that matters: environment, web
#    identity, credentials file keys, credential_process, config file
#    keys, container, instance metadata;
#  - accel-inspect --whoami (text and --json) naming each source;
#  - no secret in any output.
# needs_s3: tests/run's radosgw, for the real signatures (else skipped).
# The Kubernetes shapes (Pod Identity, IRSA) are in test-creds-k8s.sh.
# accel-test: alone (times credential-process timeouts and refreshes)
. "$(dirname "$0")/lib/functions.sh"
requires python3
requires curl
. "$top/tests/lib/fake-aws.sh"
[ -x "$helper" ] || skip "tests/helpers/creds-get is not built"
make_tmpdir
clean_aws_env

start_fake_aws aws --container-token "fakeAuthToken-one"
url=$fake_url_aws
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$url"
export AWS_ENDPOINT_URL_STS="$url"

# ---- credential_process ----
# $tmp/proc: prints what $tmp/proc.mode asks for; counts its runs.
cat > "$tmp/proc" <<'EOF'
#!/bin/sh
dir=$(dirname "$0")
n=$(( $(cat "$dir/proc.count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/proc.count"
exp=$(date -u -d "@$(( $(date +%s) + ${PROC_EXPIRES:-3600} ))" +%Y-%m-%dT%H:%M:%SZ)
key=AKIAFAKEPROC$n
case $(cat "$dir/proc.mode") in
ok) echo "$key fakeSecret-proc-$n fakeToken-proc-$n" >> "$dir/issued"
    echo "proc: issuing key number $n" >&2
    printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s",\n "SessionToken": "%s", "Expiration": "%s"}\n' \
      "$key" "fakeSecret-proc-$n" "fakeToken-proc-$n" "$exp" ;;
long) printf '{"Version":1,"AccessKeyId":"%s","SecretAccessKey":"fakeSecret-long"}' "$key" ;;
garbage) echo "fakeSecret-garbage is not JSON" ;;
fail) echo "proc: please log in first" >&2; exit 1 ;;
hang) sleep 60 ;;
version2) printf '{"Version":2,"AccessKeyId":"%s","SecretAccessKey":"fakeSecret-v2"}' "$key" ;;
nosecret) printf '{"Version":1,"AccessKeyId":"%s"}' "$key" ;;
emptytoken) printf '{"Version":1,"AccessKeyId":"%s","SecretAccessKey":"fakeSecret-e","SessionToken":""}' "$key" ;;
expired) printf '{"Version":1,"AccessKeyId":"%s","SecretAccessKey":"fakeSecret-old","Expiration":"2020-01-01T00:00:00Z"}' "$key" ;;
esac
EOF
chmod +x "$tmp/proc"
proc_mode () { echo "$1" > "$tmp/proc.mode"; }
proc_runs () { cat "$tmp/proc.count" 2>/dev/null || echo 0; }
cat > "$tmp/config" <<EOF
[profile proc]
credential_process = "$tmp/proc" --some-arg
region = eu-north-1
EOF
export AWS_CONFIG_FILE="$tmp/config"
with_proc () { AWS_PROFILE=proc "$@"; }

proc_mode ok
with_proc run proc-ok --check-issued "$tmp/issued" || fail "process: exit $?"
has proc-ok '^source=process access_key=AKIAFAKEPROC1 session_token=yes expires_in=3[56][0-9][0-9]$' ||
  fail "process: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/proc-ok.out" || fail "process: secrets"
has proc-ok "proc: issuing key number 1" || fail "process: stderr not passed on"
has proc-ok "credential_process of profile proc in $tmp/config" ||
  fail "process: origin not said"

# whoami names the source, its origin and the region's, never a secret.
inspect="$top/tools/accel-inspect"
with_proc "$inspect" --whoami > "$tmp/whoami-proc.out" 2> "$tmp/whoami-proc.err" ||
  fail "whoami: exit $?"
cat "$tmp/whoami-proc.out"
for line in "profile: proc (from AWS_PROFILE)" \
  "credentials: process: credential_process of profile proc in $tmp/config" \
  "access key: AKIA... (first 4 characters)" "session token: yes" \
  "region: eu-north-1 (from profile proc in $tmp/config)" \
  "endpoint: AWS (https://BUCKET.s3.REGION.amazonaws.com)"; do
  grep -qxF "$line" "$tmp/whoami-proc.out" || fail "whoami: no line '$line'"
done
grep -qE '^expires: 20[0-9-]+T[0-9:]+Z \(in 3[56][0-9][0-9] s\)$' "$tmp/whoami-proc.out" ||
  fail "whoami: expiry"
with_proc env AWS_ENDPOINT_URL=http://127.0.0.1:7480 AWS_DEFAULT_REGION=ap-south-1 \
  "$inspect" --whoami --json > "$tmp/whoami-json.out" 2> "$tmp/whoami-json.err" ||
  fail "whoami --json: exit $?"
python3 - "$tmp/whoami-json.out" "$tmp/config" <<'PY' || fail "whoami --json: wrong"
import json, sys
d = json.load(open(sys.argv[1]))
want = {"profile": "proc", "source": "process", "access_key_prefix": "AKIA",
        "session_token": True, "region": "ap-south-1",
        "region_source": "AWS_DEFAULT_REGION",
        "endpoint": "http://127.0.0.1:7480", "endpoint_source": "AWS_ENDPOINT_URL",
        "ca_bundle": None,
        "origin": "credential_process of profile proc in " + sys.argv[2]}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
assert not bad, bad
assert 3500 < d["expires_in"] <= 3600 and d["expiration"].endswith("Z"), d
PY
proc_mode fail
with_proc "$inspect" --whoami > "$tmp/whoami-fail.out" 2> "$tmp/whoami-fail.err" &&
  fail "whoami: a failing source is not an error"
grep -q "accel-inspect: credential_process (profile proc in $tmp/config): exited with status 1" \
  "$tmp/whoami-fail.err" || fail "whoami: failure message"

proc_mode long
with_proc run proc-long || fail "process without expiry: exit $?"
has proc-long '^source=process access_key=AKIAFAKEPROC[0-9]+ session_token=no$' ||
  fail "process without SessionToken/Expiration"

# An empty SessionToken is none (as botocore takes it), not an empty
# X-Amz-Security-Token header.
proc_mode emptytoken
with_proc run proc-emptytoken || fail "process with an empty SessionToken: exit $?"
has proc-emptytoken '^source=process access_key=AKIAFAKEPROC[0-9]+ session_token=no$' ||
  fail "an empty SessionToken was kept as a token"
# A value continued on an indented line, and "key: value" (configparser,
# as the AWS CLI reads the files): the command is "sh PROC".
cat > "$tmp/config-cont" <<EOF
[profile cont]
credential_process = sh
    "$tmp/proc"
[profile colon]
credential_process: "$tmp/proc" --x=1
EOF
proc_mode long
for p in cont colon; do
  AWS_CONFIG_FILE="$tmp/config-cont" AWS_PROFILE=$p run "proc-$p" ||
    fail "credential_process in profile $p: exit $?"
  has "proc-$p" '^source=process access_key=AKIAFAKEPROC[0-9]+ ' ||
    fail "credential_process in profile $p was not run as the AWS CLI runs it"
done

# Each failure is an error (not a fall-through to anonymous) that says
# what went wrong, and never prints the output.
expect_proc_error () {
  local mode=$1 pattern=$2
  proc_mode "$mode"
  with_proc run "proc-$mode" && fail "process $mode: accepted"
  has "proc-$mode" "credential_process \(profile proc in $tmp/config\).*$pattern" ||
    fail "process $mode: message"
}
expect_proc_error garbage ': output: not a valid JSON object'
expect_proc_error fail 'exited with status 1'
has proc-fail 'proc: please log in first' || fail "process: stderr lost on failure"
expect_proc_error version2 'Version is 2, but only version 1 is known'
expect_proc_error nosecret 'SecretAccessKey is missing'
expect_proc_error expired 'the credentials it printed expired [0-9]+ s ago'
start=$(date +%s)
ACCEL_CREDS_PROCESS_TIMEOUT=2 expect_proc_error hang 'timed out after 2 s'
[ $(( $(date +%s) - start )) -le 6 ] || fail "process timeout not honoured"
# The killed process group leaves nothing behind.
pgrep -f "$tmp/proc" && fail "the hung credential_process is still running"
sed -i "s|\"$tmp/proc\"|$tmp/no-such-command|" "$tmp/config"
expect_proc_error missing 'exited with status 127 \(command not found\?\)'
sed -i "s|$tmp/no-such-command|\"$tmp/proc\"|" "$tmp/config"

# Refresh: credentials live 20 s and are refreshed 16 s before expiry:
# about 3 runs in 9 s, no errors, readers never wait for the process.
proc_mode ok
before=$(proc_runs)
PROC_EXPIRES=20 ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  with_proc run proc-loop --loop 9 --threads 4 || fail "process loop: exit $?"
runs=$(( $(proc_runs) - before ))
echo "credential_process runs during the loop: $runs"
[ "$(field proc-loop errors)" = 0 ] || fail "process loop: errors"
[ "$runs" -ge 3 ] && [ "$runs" -le 5 ] || fail "process loop: $runs runs"
[ "$(field proc-loop distinct_keys)" -ge 3 ] || fail "process loop: keys did not change"

# ---- container endpoint ----
curl_token () {
  curl -s -o /dev/null -w '%{http_code}' ${1:+-H "Authorization: $1"} \
    "$url/v1/credentials"
}
[ "$(curl_token)" = 401 ] || fail "fake container endpoint: no token accepted"
[ "$(curl_token wrong)" = 401 ] || fail "fake container endpoint: wrong token accepted"
export AWS_CONTAINER_CREDENTIALS_FULL_URI="$url/v1/credentials"
printf 'fakeAuthToken-one\n' > "$tmp/auth-token"

AWS_CONTAINER_AUTHORIZATION_TOKEN=fakeAuthToken-one \
  run cont-env --check-issued "$tmp/issued" || fail "container: exit $?"
has cont-env '^source=container access_key=ASIAFAKECONTAINER[0-9]+ session_token=yes expires_in=3[56][0-9][0-9]$' ||
  fail "container: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/cont-env.out" || fail "container: secrets"
has cont-env "container endpoint $url/v1/credentials, with an authorization token" ||
  fail "container: debug"

# The file wins over the variable, and is read again each time.
AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$tmp/auth-token" \
  run cont-file || fail "container: token file did not win"
control "$url" '{"container_token": "fakeAuthToken-two"}'
printf 'fakeAuthToken-two' > "$tmp/auth-token"
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$tmp/auth-token" run cont-rotated ||
  fail "container: rotated token file"
AWS_CONTAINER_AUTHORIZATION_TOKEN=fakeAuthToken-one run cont-denied &&
  fail "container: old token accepted"
has cont-denied "container credentials: $url/v1/credentials: HTTP 401: AccessDenied: missing or wrong authorization token" ||
  fail "container: 401 message"
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$tmp/no-such-file" run cont-nofile &&
  fail "container: missing token file accepted"
has cont-nofile "container authorization token file: $tmp/no-such-file: No such file" ||
  fail "container: missing token file message"
export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$tmp/auth-token"

# Hosts: plain http only to loopback and the AWS link-local addresses.
for bad in http://10.0.0.1/creds http://169.254.169.254/creds \
  http://169.254.170.3/ "http://[fd00:ec2::24]/" http://example.com/creds \
  "http://127.0.0.1.example.com/" "http://[::ffff:10.0.0.1]/"; do
  AWS_CONTAINER_CREDENTIALS_FULL_URI="$bad" run cont-host &&
    fail "container: $bad accepted"
  has cont-host "AWS_CONTAINER_CREDENTIALS_FULL_URI: host .* is not allowed" ||
    fail "container: $bad: message"
done
for ok in "http://[::1]:1/" http://127.0.0.2:1/ http://localhost:1/ \
  https://example.invalid/; do
  AWS_CONTAINER_CREDENTIALS_FULL_URI="$ok" run cont-okhost &&
    fail "container: $ok: nothing listens there"
  has cont-okhost "is not allowed" && fail "container: $ok refused"
  has cont-okhost "container credentials: ${ok//[/\\[}" ||
    fail "container: $ok: no transport error"
done
AWS_CONTAINER_CREDENTIALS_FULL_URI="ftp://127.0.0.1/" run cont-ftp &&
  fail "container: ftp accepted"

"$inspect" --whoami > "$tmp/whoami-cont.out" 2> "$tmp/whoami-cont.err" ||
  fail "whoami container: exit $?"
grep -qxF "credentials: container: container endpoint $url/v1/credentials" \
  "$tmp/whoami-cont.out" || fail "whoami: container origin"
grep -qxF "access key: ASIA... (first 4 characters)" "$tmp/whoami-cont.out" ||
  fail "whoami: container key"

# HTTP errors and bad JSON.
control "$url" '{"container_error": [500, "InternalError", "the agent is down\n"]}'
run cont-500 && fail "container: 500 accepted"
has cont-500 "HTTP 500: InternalError: the agent is down\?" ||
  fail "container: 500 message"
control "$url" '{"container_error": null, "container_raw": "{\"AccessKeyId\": \"ASIAX\", fakeSecret"}'
run cont-json && fail "container: bad JSON accepted"
has cont-json "container credentials: AccessKeyId is malformed" ||
  fail "container: bad JSON message"
control "$url" '{"container_raw": "{\"AccessKeyId\": \"ASIAX\"}"}'
run cont-nosecret && fail "container: no secret accepted"
has cont-nosecret "container credentials: SecretAccessKey is missing" ||
  fail "container: missing field message"
control "$url" '{"container_raw": null}'

# Refresh, as for the process.
control "$url" '{"expires": 20}'
before=$(counter "$url" container_issued)
ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  run cont-loop --loop 9 --threads 4 || fail "container loop: exit $?"
issued=$(( $(counter "$url" container_issued) - before ))
echo "container fetches during the loop: $issued"
[ "$(field cont-loop errors)" = 0 ] || fail "container loop: errors"
[ "$issued" -ge 3 ] && [ "$issued" -le 5 ] || fail "container loop: $issued fetches"
[ "$(field cont-loop slow_calls)" -le "$issued" ] || fail "container loop: readers stalled"
control "$url" '{"expires": 3600}'

# ---- the order ----
printf 'fakeAuthToken-two' > "$tmp/auth-token"
cat > "$tmp/credentials" <<EOF
[both]
aws_access_key_id = AKIAFAKECREDFILE
aws_secret_access_key = fakeSecret-credfile
EOF
cat > "$tmp/config" <<EOF
[profile both]
credential_process = "$tmp/proc"
aws_access_key_id = AKIAFAKECONFIG
aws_secret_access_key = fakeSecret-config
[profile procfirst]
credential_process = "$tmp/proc"
aws_access_key_id = AKIAFAKECONFIG
aws_secret_access_key = fakeSecret-config
[profile configonly]
aws_access_key_id = AKIAFAKECONFIG
aws_secret_access_key = fakeSecret-config
[profile wi]
web_identity_token_file = $tmp/no-such-jwt
role_arn = arn:aws:iam::123456789012:role/accel-test
credential_process = "$tmp/proc"
EOF
export AWS_SHARED_CREDENTIALS_FILE="$tmp/credentials"
# source PROFILE EXPECTED [VAR=VALUE...]: which source wins.
source_is () {
  local profile=$1 want=$2; shift 2
  env "$@" AWS_PROFILE="$profile" "$helper" > "$tmp/order.out" 2> "$tmp/order.err"
  grep -q "^source=$want " "$tmp/order.out" ||
    fail "profile $profile ($*): wanted $want, got $(cat "$tmp/order.out" "$tmp/order.err")"
}
proc_mode ok
source_is both profile                      # credentials file > process
grep -q AKIAFAKECREDFILE "$tmp/order.out" || fail "credentials file did not win"
source_is procfirst process                 # process > config file keys
source_is configonly profile                # config file keys > container
grep -q AKIAFAKECONFIG "$tmp/order.out" || fail "config keys did not win"
source_is default container AWS_EC2_METADATA_DISABLED=false # container > IMDS
source_is default imds AWS_EC2_METADATA_DISABLED=false \
  AWS_CONTAINER_CREDENTIALS_FULL_URI=
source_is both env AWS_ACCESS_KEY_ID=AKIAFAKEENV AWS_SECRET_ACCESS_KEY=fakeSecret-env
# Web identity (from the profile, or from the environment) comes before
# the process and the files' keys: its failure is not hidden by them.
AWS_PROFILE=wi run order-wi && fail "web identity failure hidden by the process"
has order-wi "web identity token file: $tmp/no-such-jwt" || fail "order: web identity"
printf 'fakeWebIdentityJWT\n' > "$tmp/jwt"
source_is both web-identity AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/jwt" \
  AWS_ROLE_ARN=arn:aws:iam::123456789012:role/accel-test
# A broken process is an error, not a reason to use the container.
proc_mode fail
AWS_PROFILE=procfirst run order-procfail && fail "broken process fell through"

# ---- real signatures across refreshes (radosgw from tests/run) ----
if [ -n "${ACCEL_TEST_S3_ENDPOINT:-}" ] && [ -x "$top/tests/helpers/s3-get" ]; then
  bucket=$(unique_bucket)
  s3c () {
    curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$ACCEL_TEST_S3_ACCESS_KEY:$ACCEL_TEST_S3_SECRET_KEY" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
  }
  s3c -X PUT "$ACCEL_TEST_S3_ENDPOINT/$bucket" >/dev/null || fail "create bucket"
  on_exit "curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user $ACCEL_TEST_S3_ACCESS_KEY:$ACCEL_TEST_S3_SECRET_KEY -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X DELETE $ACCEL_TEST_S3_ENDPOINT/$bucket/obj; curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user $ACCEL_TEST_S3_ACCESS_KEY:$ACCEL_TEST_S3_SECRET_KEY -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X DELETE $ACCEL_TEST_S3_ENDPOINT/$bucket"
  head -c 1048576 /dev/urandom > "$tmp/obj"
  s3c -X PUT --upload-file "$tmp/obj" "$ACCEL_TEST_S3_ENDPOINT/$bucket/obj" >/dev/null ||
    fail "upload"
  control "$url" "{\"expires\": 20, \"container_keys\": [[\"$ACCEL_TEST_S3_ACCESS_KEY\", \"$ACCEL_TEST_S3_SECRET_KEY\"]]}"
  before=$(counter "$url" container_issued)
  start=$(date +%s)
  # Random ranges for about 9 s, signed with whatever the provider holds.
  ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
    AWS_ENDPOINT_URL_S3="$ACCEL_TEST_S3_ENDPOINT" AWS_REGION=us-east-1 \
    timeout 120 "$top/tests/helpers/s3-get" --random 4000 --threads 2 \
    --compare "$tmp/obj" "s3://$bucket/obj" > "$tmp/sig.out" 2>&1 ||
    fail "signed reads with container credentials: $(tail -5 "$tmp/sig.out")"
  issued=$(( $(counter "$url" container_issued) - before ))
  echo "signed reads for $(( $(date +%s) - start )) s, $issued container fetches"
  [ "$(( $(date +%s) - start ))" -lt 5 ] ||
    [ "$issued" -ge 2 ] || fail "no refresh during the signed reads"
  # The plugin, with the same credentials: every byte through signed GETs.
  before=$(counter "$url" container_issued)
  mkdir -p "$tmp/cache"
  AWS_REGION=us-east-1 start_nbdkit plug url="s3://$bucket/obj" \
    endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache" manifest=none ||
    fail "nbdkit with container credentials: $(tail -5 "$tmp/plug.log")"
  nbdcheck seq "$(nbd_uri plug)" "$tmp/obj" 65536 ||
    fail "the plugin's reads with container credentials"
  [ "$(counter "$url" container_issued)" -gt "$before" ] ||
    fail "the plugin did not use the container endpoint"
  grep -q "credentials: from container endpoint $url/v1/credentials" "$tmp/plug.log" ||
    fail "the plugin did not say where its credentials came from"
  control "$url" '{"expires": 3600, "container_keys": null}'
else
  echo "real signatures: skipped (no ACCEL_TEST_S3_ENDPOINT: run via tests/run)"
fi

# ---- no secret anywhere ----
no_secrets_printed "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log
if grep -E 'A[KS]IAFAKE[A-Z]+[0-9]' "$tmp"/*.err; then
  fail "a full access key id in a debug message"
fi
echo "$(wc -l < "$tmp/issued") issuances, no secret in any output"
