#!/usr/bin/env bash
# accel: the S3 client (common/s3/s3.c) against a real S3 server, and
# against a scripted fake one for the failures a real one will not make.
#
# needs_s3: tests/run starts radosgw (tests/lib/rgw.sh) and exports
# ACCEL_TEST_S3_ENDPOINT, ACCEL_TEST_S3_ACCESS_KEY, ACCEL_TEST_S3_SECRET_KEY.
#
# Part 1: a fake HTTP server (Python, on a loopback port) answers with
# 503 ServiceUnavailable (retried), 503 SlowDown and 429 (back-pressure:
# sent again without using up retries, until --throttle-timeout), cut-off bodies, reset connections, too many bytes, the
# wrong Content-Range, a changed size or ETag, no Range support, no or
# weak ETags, redirects, 403s and stalls; each must be retried or
# refused with the right message.  s3:// requests to it must be signed
# (with x-amz-security-token when there is a session token), and over
# TLS the certificate must be checked unless told otherwise.
#
# Part 2: in a bucket of its own on the real server, this uploads
# objects with curl (an independent S3 client) and reads them back with
# tests/helpers/s3-get, asserting on the bytes: exact ranges at the
# edges and in the middle, whole objects, a key that needs encoding
# (spaces, UTF-8, '+', '%', '='), a presigned URL, and many concurrent
# random ranges through a small pool.  Then the failures: a wrong secret
# (403, naming the object and the key ID), a missing key and bucket
# (404), an object replaced between open and read (412), a read past
# the end, a server that is down (retried, then one message).  Without
# ACCEL_TEST_S3_ENDPOINT part 2 is skipped (exit 77).
#
# Every command runs with debug output on, and none of it may contain
# a secret key or a signature.
# accel-test: alone (times throttle-timeout)
set -euo pipefail

top=${ACCEL_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
get=$top/tests/helpers/s3-get
[ -x "$get" ] || { echo "FAIL: $get is not built"; exit 1; }

endpoint=${ACCEL_TEST_S3_ENDPOINT:-}
key_id=${ACCEL_TEST_S3_ACCESS_KEY:-}
secret=${ACCEL_TEST_S3_SECRET_KEY:-}
bucket=accel-s3-client-$$-$RANDOM
odd_key="dir/my file+1%=é€.img"
tmp=$(mktemp -d /tmp/accel-s3-client.XXXXXX)
pids=()
s3_used=false

# Credentials from the environment only: no host config, no IMDS.
export AWS_EC2_METADATA_DISABLED=true
export HOME=$tmp AWS_CONFIG_FILE=$tmp/none AWS_SHARED_CREDENTIALS_FILE=$tmp/none
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
  AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL

# curl as the reference S3 client.
s3curl ()
{
  curl -sS -f --max-time 60 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$key_id:$secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# Percent-encode a key for curl's URL, independently of our encoder.
urlencode ()
{
  local LC_ALL=C s=$1 i c h out=
  for (( i = 0; i < ${#s}; i++ )); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~/-]) out+=$c ;;
      *) printf -v h '%%%02X' "'$c"; out+=$h ;;
    esac
  done
  printf '%s' "$out"
}

cleanup ()
{
  local k p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || :; done
  if $s3_used; then
    for k in disk.img "$odd_key" changing.img; do
      s3curl -X DELETE "$endpoint/$bucket/$(urlencode "$k")" \
        >/dev/null 2>&1 || :
    done
    s3curl -X DELETE "$endpoint/$bucket" >/dev/null 2>&1 || :
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail ()
{
  echo "FAIL: $*"
  exit 1
}

# Every stderr of s3-get is kept here, to be searched for secrets.
all_stderr=$tmp/all-stderr

# Run s3-get with debug output; stdout to $tmp/out, stderr to $tmp/err.
# Returns s3-get's exit status.
# Every other read streams (--progress: s3_object_get_range_progress,
# whose promise s3-get checks), so both read paths meet every case.
nr_gets=0
run_get ()
{
  local rc=0 progress=()
  nr_gets=$((nr_gets + 1))
  [ $((nr_gets % 2)) = 0 ] || progress=(--progress)
  "$get" --verbose "${progress[@]}" ${endpoint:+--endpoint "$endpoint"} "$@" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  cat "$tmp/err" >>"$all_stderr"
  return $rc
}

# expect_error STATUS PATTERN...: the last run failed with STATUS and its
# stderr contains each fixed string.
expect_error ()
{
  local want=$1 got=$2 p
  shift 2
  [ "$got" = "$want" ] || {
    cat "$tmp/err"
    fail "exit status $got, expected $want"
  }
  for p in "$@"; do
    grep -qF -- "$p" "$tmp/err" || {
      cat "$tmp/err"
      fail "stderr lacks: $p"
    }
  done
}

# compare_range URL OFFSET LENGTH FILE [S3-GET OPTIONS...]
compare_range ()
{
  local url=$1 off=$2 len=$3 file=$4
  shift 4
  run_get "$@" "$url" "$off" "$len" || {
    cat "$tmp/err"
    fail "read $url $off $len"
  }
  dd if="$file" of="$tmp/want" iflag=skip_bytes,count_bytes skip="$off" \
    count="$len" status=none
  cmp "$tmp/out" "$tmp/want" || fail "bytes differ: $url at $off length $len"
  [ "$(stat -c %s "$tmp/out")" = "$len" ] || fail "length: $url $off $len"
}

# ---------------------------------------------------------------------
# Part 1: a fake server.  Each object's behaviour is chosen by the last
# part of its path; a "-TAG" suffix gives it a fresh request counter.
cat >"$tmp/fake.py" <<'PYTHON'
import http.server, socketserver, sys, time

BODY = bytes ((i * 7 + 3) % 256 for i in range (100000))
ETAG = '"fake-etag-1"'
EMPTY_SHA256 = \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
counts = {}

class Handler (http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message (self, *args):
        pass

    def reply (self, status, headers, body=b"", length=None, close=False):
        self.send_response (status)
        for k, v in headers:
            self.send_header (k, v)
        self.send_header ("Content-Length",
                          str (len (body) if length is None else length))
        self.end_headers ()
        if self.command != "HEAD":
            self.wfile.write (body)
        if close:
            self.close_connection = True

    def do_HEAD (self):
        self.serve ()

    def do_GET (self):
        self.serve ()

    def signed (self, token=None):
        h = self.headers
        auth = h.get ("Authorization", "")
        return (auth.startswith ("AWS4-HMAC-SHA256 Credential=AKIAFAKE")
                and h.get ("Host") == sys.argv[2]
                and h.get ("x-amz-date")
                and h.get ("x-amz-content-sha256") == EMPTY_SHA256
                and (token is None
                     or (h.get ("x-amz-security-token") == token
                         and "x-amz-security-token" in auth)))

    def serve (self):
        path = self.path.split ("?")[0]
        n = counts[path] = counts.get (path, 0) + 1
        kind = path.rsplit ("/", 1)[-1].split ("-")[0]
        etag = {"noetag": None, "weaketag": 'W/"x"'}.get (kind, ETAG)
        hdrs = [("ETag", etag)] if etag else []
        rng = self.headers.get ("Range")
        if kind == "needauth" and not self.signed ():
            return self.reply (403, [], b"<Error><Code>NotSigned</Code></Error>")
        if kind == "needtoken" and not self.signed ("fake/session+token="):
            return self.reply (403, [], b"<Error><Code>NoToken</Code></Error>")
        if kind == "flaky503" and self.command == "GET" and n <= 4:
            return self.reply (503, [], b"<Error><Code>ServiceUnavailable"
                               b"</Code><Message>Please try again."
                               b"</Message></Error>")
        # NB: n counts the HEAD of the open too.
        if (kind == "slowdown" and self.command == "GET" and n <= 5) or \
           (kind == "alwaysslow" and self.command == "GET"):
            return self.reply (503, [], b"<Error><Code>SlowDown</Code>"
                               b"<Message>Please reduce your request rate."
                               b"</Message></Error>")
        if kind == "busy429" and self.command == "GET" and n <= 3:
            return self.reply (429, [])
        if kind == "redirect":
            return self.reply (301, [("x-amz-bucket-region", "eu-west-1")])
        if kind == "forbidden":
            return self.reply (403, [], b"<Error><Code>AccessDenied</Code>"
                               b"<Message>Access &amp; Denied</Message>"
                               b"</Error>")
        if self.command == "HEAD":
            return self.reply (200, hdrs, BODY)
        if self.headers.get ("If-Match") != ETAG:
            return self.reply (412, [], b"<Error><Code>PreconditionFailed"
                               b"</Code></Error>")
        if rng is None or kind == "ignorerange":
            if kind == "shortwhole" and n <= 2:
                return self.reply (200, hdrs, BODY[:5000], len (BODY), True)
            return self.reply (200, hdrs, BODY)
        a, b = (int (x) for x in rng[len ("bytes="):].split ("-"))
        part = BODY[a:b + 1]
        cr = "bytes %d-%d/%d" % (a, b, len (BODY))
        if kind == "short" and n <= 2:
            return self.reply (206, hdrs + [("Content-Range", cr)],
                               part[:len (part) // 2], len (part), True)
        if kind == "reset" and n <= 4:
            self.close_connection = True
            return
        if kind == "slow":
            time.sleep (3)
        if kind == "overflow":
            part += b"xx"
        if kind == "badrange":
            cr = "bytes %d-%d/%d" % (a + 1, b + 1, len (BODY))
        if kind == "wrongsize":
            cr = "bytes %d-%d/%d" % (a, b, len (BODY) + 1)
        if kind == "starsize":
            cr = "bytes %d-%d/*" % (a, b)
        if kind == "etagchange":
            hdrs = [("ETag", '"other"')]
        return self.reply (206, hdrs + [("Content-Range", cr)], part)

class Server (socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error (self, request, client_address):
        pass # the client hung up on purpose (an oversized body)

server = Server (("127.0.0.1", 0), Handler)
sys.argv[2] = "127.0.0.1:%d" % server.server_address[1]
if len (sys.argv) > 3:
    import ssl
    ctx = ssl.SSLContext (ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain (sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket (server.socket, server_side=True)
with open (sys.argv[1] + ".tmp", "w") as f:
    f.write (sys.argv[2])
import os
os.rename (sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever ()
PYTHON
python3 -c 'import sys; sys.stdout.buffer.write (bytes ((i * 7 + 3) % 256 for i in range (100000)))' \
  >"$tmp/fake-body"
python3 "$tmp/fake.py" "$tmp/fake-addr" "" 2>"$tmp/fake.log" &
pids+=($!)
for (( i = 0; i < 100; i++ )); do
  [ -e "$tmp/fake-addr" ] && break
  sleep 0.1
done
[ -e "$tmp/fake-addr" ] || fail "the fake server did not start"
fake=http://$(cat "$tmp/fake-addr")
fbody=$tmp/fake-body

# The fake part has its own credentials (and a secret to look for).
fake_secret=fakeSecretKey/that/must/never/be/printed
saved_endpoint=$endpoint
endpoint=
export AWS_ACCESS_KEY_ID=AKIAFAKEFAKEFAKE AWS_SECRET_ACCESS_KEY=$fake_secret

echo "== fake: plain reads; If-Match must echo the ETag exactly"
compare_range "$fake/dir/ok" 1000 5000 "$fbody"
compare_range "$fake/dir/starsize" 99990 10 "$fbody"
compare_range "$fake/dir/ignorerange" 0 100000 "$fbody"
run_get --whole 100000 "$fake/dir/ok" || { cat "$tmp/err"; fail "--whole"; }
cmp "$tmp/out" "$fbody" || fail "--whole: bytes differ"

echo "== fake: transient failures are retried"
compare_range "$fake/dir/flaky503-a" 0 10 "$fbody" --stats
grep -q "retries 3 errors 0" "$tmp/err" || fail "503 not retried 3 times"
grep -qF "503 Service Unavailable (ServiceUnavailable: Please try again.): retry 1 of 6" \
  "$tmp/err" || fail "no debug line for the retry"
compare_range "$fake/dir/short-a" 50000 40000 "$fbody" --stats
grep -q "retries 1 errors 0" "$tmp/err" || fail "short body not retried"
compare_range "$fake/dir/reset-a" 0 100 "$fbody" --stats
grep -q "retries [1-9] errors 0" "$tmp/err" || fail "reset not retried"
run_get --whole 100000 "$fake/dir/shortwhole-a" \
  || { cat "$tmp/err"; fail "--whole with a short body"; }
cmp "$tmp/out" "$fbody" || fail "--whole after a retry: bytes differ"
rc=0; run_get --retries 2 "$fake/dir/flaky503-b" 0 10 || rc=$?
expect_error 1 $rc \
  "$fake/dir/flaky503-b: 503 Service Unavailable (ServiceUnavailable: Please try again.) (gave up after 3 attempts)"
rc=0; run_get --retries 1 --timeout 1 "$fake/dir/slow" 0 10 || rc=$?
expect_error 1 $rc "$fake/dir/slow: Timeout was reached" \
  "(gave up after 2 attempts)"

echo "== fake: SlowDown and 429 are back-pressure, not failures"
# Four SlowDowns, two 429s without a body: served with no retry left.
compare_range "$fake/dir/slowdown-a" 0 10 "$fbody" --retries 0 --stats
grep -q "retries 0 errors 0 slowdowns 4" "$tmp/err" ||
  fail "SlowDown not sent again as back-pressure"
grep -qF "503 Service Unavailable (SlowDown: Please reduce your request rate.): throttled (1), sending again at a lower rate" \
  "$tmp/err" || fail "no debug line for the throttled request"
compare_range "$fake/dir/busy429-a" 0 10 "$fbody" --retries 0 --stats
grep -q "retries 0 errors 0 slowdowns 2" "$tmp/err" ||
  fail "429 not sent again as back-pressure"
# A server that never stops throttling: one error at throttle-timeout.
t0=$(date +%s%N)
rc=0; run_get --retries 6 --throttle-timeout 2 --stats "$fake/dir/alwaysslow" 0 10 || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_error 1 $rc \
  "$fake/dir/alwaysslow: 503 Service Unavailable (SlowDown: Please reduce your request rate.) (throttled " \
  "gave up after throttle-timeout=2 s)"
grep -q "retries 0 errors 1 slowdowns" "$tmp/err" || fail "throttled requests counted as retries"
[ "$ms" -ge 1900 ] && [ "$ms" -lt 10000 ] || fail "gave up after $ms ms, not about 2 s"

echo "== fake: protocol violations are refused, not retried"
rc=0; run_get --stats "$fake/dir/overflow" 0 10 || rc=$?
expect_error 1 $rc \
  "$fake/dir/overflow: 206 response: the server sent more than the 10 bytes asked for" \
  "retries 0 errors 1"
rc=0; run_get "$fake/dir/badrange" 1000 5000 || rc=$?
expect_error 1 $rc "asked for bytes 1000-5999 but the server sent 1001-6000"
rc=0; run_get "$fake/dir/wrongsize" 0 10 || rc=$?
expect_error 1 $rc \
  "the object is now 100001 bytes, not 100000 as when it was opened"
rc=0; run_get "$fake/dir/etagchange" 0 10 || rc=$?
expect_error 1 $rc \
  'the object changed since it was opened (ETag was "fake-etag-1", now "other"): refusing to mix versions'
rc=0; run_get "$fake/dir/ignorerange" 10 10 || rc=$?
expect_error 1 $rc "the server ignores Range"
rc=0; run_get "$fake/dir/noetag" 0 10 || rc=$?
expect_error 1 $rc "$fake/dir/noetag: the server sent no usable ETag"
rc=0; run_get "$fake/dir/weaketag" 0 10 || rc=$?
expect_error 1 $rc "$fake/dir/weaketag: the server sent no usable ETag"
rc=0; run_get "$fake/dir/forbidden" 0 10 || rc=$?
expect_error 1 $rc \
  "$fake/dir/forbidden: 403 Forbidden (AccessDenied: Access & Denied)"
rc=0; run_get "$fake/dir/redirect" 0 10 || rc=$?
expect_error 1 $rc "301 Moved Permanently: the server redirects elsewhere"

echo "== fake: s3:// requests are signed; a wrong region is explained"
compare_range "s3://bucket/needauth" 0 10 "$fbody" --endpoint "$fake"
rc=0; run_get --endpoint "$fake" "s3://bucket/redirect" 0 10 || rc=$?
expect_error 1 $rc \
  "s3://bucket/redirect: 301 Moved Permanently: the bucket is in region eu-west-1: set region=eu-west-1"
AWS_SESSION_TOKEN=fake/session+token= \
  compare_range "s3://bucket/needtoken" 0 10 "$fbody" --endpoint "$fake"

echo "== fake: TLS is verified unless told otherwise"
if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
     -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" \
     -out "$tmp/cert.pem" >/dev/null 2>&1; then
  python3 "$tmp/fake.py" "$tmp/tls-addr" "" "$tmp/cert.pem" "$tmp/key.pem" \
    2>"$tmp/fake-tls.log" &
  pids+=($!)
  for (( i = 0; i < 100; i++ )); do
    [ -e "$tmp/tls-addr" ] && break
    sleep 0.1
  done
  [ -e "$tmp/tls-addr" ] || fail "the TLS fake server did not start"
  tls=https://$(cat "$tmp/tls-addr")
  rc=0; run_get "$tls/dir/ok" 0 10 || rc=$?
  expect_error 1 $rc "$tls/dir/ok: " "check the server's certificate and the CA bundle (cainfo="
  compare_range "$tls/dir/ok" 10 20 "$fbody" --cainfo "$tmp/cert.pem"
  compare_range "$tls/dir/ok" 30 40 "$fbody" --no-tls-verify
else
  echo "(no openssl: TLS part skipped)"
fi

if grep -qF "$fake_secret" "$all_stderr"; then
  fail "the fake secret was printed"
fi
if grep -qF "fake/session+token=" "$all_stderr"; then
  fail "the session token was printed"
fi

# ---------------------------------------------------------------------
# Part 2: a real S3 server.
if [ -z "$saved_endpoint" ]; then
  echo "SKIP: ACCEL_TEST_S3_ENDPOINT is not set (needs_s3: run via tests/run)"
  exit 77
fi
endpoint=$saved_endpoint
export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret
s3_used=true

size=$((5 * 1024 * 1024))
head -c $size /dev/urandom >"$tmp/disk.img"
head -c 300000 /dev/urandom >"$tmp/odd.img"

s3curl -X PUT "$endpoint/$bucket" >/dev/null
s3curl -X PUT --upload-file "$tmp/disk.img" "$endpoint/$bucket/disk.img" \
  >/dev/null
s3curl -X PUT --upload-file "$tmp/odd.img" \
  "$endpoint/$bucket/$(urlencode "$odd_key")" >/dev/null
# The server must hold the raw key, else the test proves nothing.
s3curl "$endpoint/$bucket?list-type=2" >"$tmp/list"
grep -qF "<Key>$odd_key</Key>" "$tmp/list" || fail "odd key not stored raw"

url=s3://$bucket/disk.img

echo "== info"
run_get --info "$url" || { cat "$tmp/err"; fail "open $url"; }
grep -qx "size $size" "$tmp/out" || fail "size: $(cat "$tmp/out")"
grep -qx "name $url" "$tmp/out" || fail "name: $(cat "$tmp/out")"
grep -qx "identity $endpoint/$bucket/disk.img" "$tmp/out" \
  || fail "identity: $(cat "$tmp/out")"
etag=$(sed -n 's/^etag //p' "$tmp/out")
case $etag in \"*\") ;; *) fail "ETag without quotes: $etag" ;; esac

echo "== exact ranges"
compare_range "$url" 0 1 "$tmp/disk.img"
compare_range "$url" $((size - 1)) 1 "$tmp/disk.img"
compare_range "$url" 1234567 1000000 "$tmp/disk.img"
compare_range "$url" 0 $size "$tmp/disk.img"
grep -qF "s3: GET $url bytes=0-$((size - 1)): 206" "$tmp/err" \
  || fail "no debug trace of the GET"
run_get --whole $size "$url" || { cat "$tmp/err"; fail "--whole"; }
cmp "$tmp/out" "$tmp/disk.img" || fail "--whole: bytes differ"
rc=0; run_get --whole $((size - 1)) "$url" || rc=$?
expect_error 1 $rc "$url: the object is $size bytes, more than the"

echo "== a key with spaces, UTF-8, +, % and ="
compare_range "s3://$bucket/$odd_key" 0 300000 "$tmp/odd.img"
compare_range "s3://$bucket/$odd_key" 299990 10 "$tmp/odd.img"

echo "== presigned URL"
run_get --presign 600 "$url" || { cat "$tmp/err"; fail "--presign"; }
presigned=$(cat "$tmp/out")
signature=${presigned##*X-Amz-Signature=}
[ ${#signature} = 64 ] || fail "no signature in $presigned"
run_get --info "$presigned" || { cat "$tmp/err"; fail "open presigned"; }
grep -qx "name $endpoint/$bucket/disk.img" "$tmp/out" || fail "presigned name"
grep -qx "etag $etag" "$tmp/out" || fail "presigned ETag"
compare_range "$presigned" 4000000 1000 "$tmp/disk.img"
if grep -q "X-Amz-Signature\|$signature" "$tmp/err"; then fail "signature in debug"; fi
rc=0; run_get "${presigned%=*}=$(printf '0%.0s' {1..64})" 0 1 || rc=$?
expect_error 1 $rc "$endpoint/$bucket/disk.img: 403 Forbidden" \
  "presigned URL may have expired"
if grep -q "X-Amz-Signature" "$tmp/err"; then fail "query string in message"; fi

echo "== concurrent random ranges through 4 connections"
run_get --stats --connections 4 --threads 16 --random 400 \
  --max-length 262144 --compare "$tmp/disk.img" "$url" \
  || { cat "$tmp/err"; fail "random reads"; }
grep -q "0 mismatches, 0 failed" "$tmp/err" || fail "random reads mismatch"
grep -q "stats: requests 401 gets 400 heads 1 .* retries 0 errors 0" \
  "$tmp/err" || { grep stats: "$tmp/err"; fail "stats"; }

echo "== wrong secret"
rc=0
AWS_SECRET_ACCESS_KEY=wrong${secret}wrong run_get "$url" 0 1 || rc=$?
expect_error 1 $rc "$url: 403 Forbidden (SignatureDoesNotMatch" \
  "check the credentials (access key ${key_id:0:4}...${key_id: -4} from env)"
[ "$(grep -c "^s3-get: $url: 403" "$tmp/err")" = 1 ] || fail "403 reported twice"

echo "== missing key, missing bucket"
rc=0; run_get "s3://$bucket/nothing-here" 0 1 || rc=$?
expect_error 1 $rc \
  "s3://$bucket/nothing-here: no such object (404 Not Found, NoSuchKey): check the bucket and key"
rc=0; run_get "s3://$bucket-nope/disk.img" 0 1 || rc=$?
expect_error 1 $rc "s3://$bucket-nope/disk.img: no such bucket"
rc=0; run_get --missing-ok "s3://$bucket/nothing-here" 0 1 || rc=$?
[ $rc = 3 ] || fail "--missing-ok: exit $rc"
if grep -q "no such" "$tmp/err"; then fail "--missing-ok printed an error"; fi

echo "== read past the end"
rc=0; run_get "$url" $((size - 10)) 11 || rc=$?
expect_error 1 $rc "$url: read of 11 bytes at offset $((size - 10)) is beyond"

echo "== object replaced between open and read"
s3curl -X PUT --upload-file "$tmp/disk.img" "$endpoint/$bucket/changing.img" \
  >/dev/null
rc=0
"$get" --verbose --endpoint "$endpoint" --ready "$tmp/ready" \
  --wait-for "$tmp/go" "s3://$bucket/changing.img" 0 100 \
  >"$tmp/out" 2>"$tmp/err" &
pids+=($!)
for (( i = 0; i < 300; i++ )); do
  [ -e "$tmp/ready" ] && break
  sleep 0.1
done
[ -e "$tmp/ready" ] || fail "s3-get did not open the object"
head -c 1000 /dev/urandom >"$tmp/new.img"
s3curl -X PUT --upload-file "$tmp/new.img" "$endpoint/$bucket/changing.img" \
  >/dev/null
touch "$tmp/go"
wait "${pids[-1]}" || rc=$?
cat "$tmp/err" >>"$all_stderr"
expect_error 1 $rc \
  "s3://$bucket/changing.img: the object changed since it was opened (ETag was $etag): refusing to mix versions"

echo "== server down: retried, then one message"
rc=0
"$get" --verbose --stats --retries 2 --endpoint http://127.0.0.1:1 \
  "$url" 0 1 >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/err" >>"$all_stderr"
expect_error 1 $rc "$url: Couldn't connect to server" "gave up after 3 attempts" \
  "stats: requests 3 gets 0 heads 3 bytes 0 retries 2 errors 1"

echo "== no secrets in any output"
[ -s "$all_stderr" ] || fail "no output collected"
if grep -qF "$secret" "$all_stderr"; then fail "the secret key was printed"; fi
if grep -qi "authorization\|signature=\|x-amz-security-token" "$all_stderr"
then
  fail "a signature or token was printed"
fi

echo "PASS"
