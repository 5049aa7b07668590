#!/usr/bin/env bash
# Secrets never reach a log, and TLS is verified unless told otherwise.
#
# 1. Everything the plugin and the tools print, at their most verbose
#    (nbdkit -v, -D accel.stats=1, accel-mkimage/accel-inspect -v), is
#    collected while they run against the test S3 server with static
#    keys, a session token, retried 503s, 403s and a presigned URL
#    given as url=+FILE.  None of it may contain the secret key, the
#    session token, a SigV4 signature (Authorization's Signature= or a
#    presigned X-Amz-Signature=) or the presigned URL's query.
# 2. An https:// origin with a self-signed certificate: the plugin
#    refuses it by default with a message naming cainfo=, accepts it
#    with cainfo=CERT, and only tls-verify=false turns checking off
#    (with a warning).
# 3. The CA bundle as the AWS CLI finds it: AWS_CA_BUNDLE, else the
#    profile's ca_bundle, work in place of cainfo=; cainfo= wins over a
#    wrong AWS_CA_BUNDLE, and AWS_CA_BUNDLE over a wrong ca_bundle; a
#    wrong or missing bundle fails naming the CA bundle settings.  The
#    STS request of the credential chain uses the same bundle.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires openssl
needs_s3
make_tmpdir
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
make_image "$tmp/disk.img" 6
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/disk.img.manifest"
url="s3://$bucket/disk.img"
logs=()

# run_logged NAME CMD...: run CMD with its output kept for the grep.
run_logged () {
  local name=$1; shift
  logs+=("$tmp/$name.out")
  "$@" > "$tmp/$name.out" 2>&1
}

# --- 1. Secrets -----------------------------------------------------
secret=$ACCEL_TEST_S3_SECRET_KEY
token="FwoGZXIvYXdzEXAMPLESESSIONTOKEN$RANDOM$RANDOM"

# Served with static keys, through 503 bursts (retries are logged) and
# a corrupted body (verify failures are logged).
echo '[{"action": "status", "status": 503, "code": "SlowDown", "method": "GET", "count": 3},
       {"action": "corrupt", "offset": 100, "method": "GET", "range": "bytes=0-", "count": 1}]' \
  > "$proxy_faults"
start_nbdkit good url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  -D accel.stats=1 || fail "nbdkit did not start: $(cat "$tmp/good.log")"
nbdcopy "$(nbd_uri good)" "$tmp/good.img" || fail "nbdcopy"
cmp "$tmp/disk.img" "$tmp/good.img" || fail "bytes differ"
stop_nbdkit good
logs+=("$tmp/good.log")
[ "$(proxy_count faults.status)" -ge 3 ] || fail "the 503s were not injected"

# A session token (radosgw ignores one it does not know): served, then
# refused with a 403 from the proxy, so that the error path runs too.
AWS_SESSION_TOKEN=$token start_nbdkit tok url="$url" endpoint="$proxy_url" \
  cache-dir="$tmp/cache" -D accel.stats=1 ||
  fail "nbdkit with a session token: $(cat "$tmp/tok.log")"
nbdcopy "$(nbd_uri tok)" "$tmp/tok.img" || fail "nbdcopy (token)"
stop_nbdkit tok
logs+=("$tmp/tok.log")
echo '[{"action": "status", "status": 403, "code": "InvalidToken"}]' > "$proxy_faults"
if AWS_SESSION_TOKEN=$token start_nbdkit tok403 url="$url" \
     endpoint="$proxy_url" cache-dir="$tmp/cache"; then
  fail "nbdkit started on a 403"
fi
echo '[]' > "$proxy_faults"
logs+=("$tmp/tok403.log")
grep -q 403 "$tmp/tok403.log" || fail "no 403 in the error"

# A wrong secret: 403 SignatureDoesNotMatch (the server's reply carries
# the string to sign; none of it may be echoed with the signature).
if AWS_SECRET_ACCESS_KEY="x$secret" start_nbdkit bad url="$url" \
     endpoint="$proxy_url" cache-dir="$tmp/cache"; then
  fail "nbdkit started with a wrong secret"
fi
logs+=("$tmp/bad.log")

# A presigned URL, read from a file so that nbdkit -v does not print it.
"$top/tests/helpers/s3-get" --endpoint "$ACCEL_TEST_S3_ENDPOINT" \
  --presign 600 "$url" > "$tmp/presigned" || fail "presign"
presigned=$(cat "$tmp/presigned")
query=${presigned#*\?}
[ "$query" != "$presigned" ] || fail "presigned URL has no query: $presigned"
start_nbdkit pre url=+"$tmp/presigned" manifest=none \
  cache-dir="$tmp/cache2" -D accel.stats=1 ||
  fail "nbdkit did not start with a presigned URL: $(cat "$tmp/pre.log")"
nbdcopy "$(nbd_uri pre)" "$tmp/pre.img" || fail "nbdcopy (presigned)"
cmp "$tmp/disk.img" "$tmp/pre.img" || fail "bytes differ (presigned)"
stop_nbdkit pre
logs+=("$tmp/pre.log")

# The tools, verbose, with a token on their failing requests too.
mkdir -p "$tmp/tree"
echo "hello" > "$tmp/tree/hello.txt"
run_logged mkimage "$top/tools/accel-mkimage" -v "$tmp/tree" \
  "s3://$bucket/pub/tree" --endpoint "$ACCEL_TEST_S3_ENDPOINT" ||
  fail "accel-mkimage: $(cat "$tmp/mkimage.out")"
run_logged inspect "$top/tools/accel-inspect" \
  "s3://$bucket/disk.img.manifest" --endpoint "$ACCEL_TEST_S3_ENDPOINT" ||
  fail "accel-inspect: $(cat "$tmp/inspect.out")"
echo '[{"action": "status", "status": 403, "code": "InvalidToken"}]' > "$proxy_faults"
AWS_SESSION_TOKEN=$token run_logged inspect-tok "$top/tools/accel-inspect" \
  "s3://$bucket/disk.img.manifest" --endpoint "$proxy_url" &&
  fail "accel-inspect succeeded on a 403"
echo '[]' > "$proxy_faults"

# The grep.  Signatures: 64 hex digits after Signature= in any form.
for f in "${logs[@]}"; do
  [ -s "$f" ] || fail "$f is empty: nothing was checked"
  for s in "$secret" "$token" "$query"; do
    if grep -qF -- "$s" "$f"; then
      fail "$(basename "$f"): a secret was printed (starting ${s:0:6})"
    fi
  done
  if grep -qiE 'signature=[0-9a-f]{64}' "$f"; then
    fail "$(basename "$f"): a signature was printed"
  fi
done
echo "ok: ${#logs[@]} logs, $(cat "${logs[@]}" | wc -l) lines: no secret key," \
  "session token, signature or presigned query"

# --- 2. TLS -----------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" \
  -out "$tmp/cert.pem" 2>/dev/null || fail "openssl req"
mkdir -p "$tmp/www"
cp "$tmp/disk.img" "$tmp/www/disk.img"
# A static HTTPS server with Range support on a free loopback port.
cat > "$tmp/https.py" <<'EOF'
import http.server, os, ssl, sys
root, portfile, cert, key = sys.argv[1:5]
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **kw): super().__init__(*a, directory=root, **kw)
    def log_message(self, *a): pass
    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404); return None
        size = os.path.getsize(path)
        f = open(path, "rb")
        r = self.headers.get("Range")
        if r:
            a, b = r.split("=")[1].split("-")
            a, b = int(a), min(int(b or size - 1), size - 1)
            f.seek(a)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, size))
            n = b - a + 1
        else:
            self.send_response(200); n = size
        self.send_header("Content-Length", str(n))
        self.send_header("ETag", '"fixed-etag"')
        self.end_headers()
        self.remaining = n
        return f
    def copyfile(self, src, dst):
        dst.write(src.read(self.remaining))
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
EOF
python3 "$tmp/https.py" "$tmp/www" "$tmp/https-port" "$tmp/cert.pem" \
  "$tmp/key.pem" > "$tmp/https.log" 2>&1 &
https_pid=$!
on_exit "kill $https_pid"
for _ in $(seq 100); do
  [ -s "$tmp/https-port" ] && break
  sleep 0.1
done
[ -s "$tmp/https-port" ] || fail "the HTTPS server did not start"
https=https://127.0.0.1:$(cat "$tmp/https-port")/disk.img

if start_nbdkit tls0 url="$https" manifest=none cache-dir="$tmp/c3"; then
  fail "nbdkit accepted a self-signed certificate by default"
fi
grep -q "cainfo=" "$tmp/tls0.log" ||
  fail "the TLS error does not say what to do: $(cat "$tmp/tls0.log")"
echo "ok: self-signed certificate refused by default:"
grep -m1 "cainfo=" "$tmp/tls0.log"

start_nbdkit tls1 url="$https" manifest=none cache-dir="$tmp/c3" \
  cainfo="$tmp/cert.pem" || fail "cainfo=: $(cat "$tmp/tls1.log")"
nbdcopy "$(nbd_uri tls1)" "$tmp/tls1.img" || fail "nbdcopy (cainfo)"
cmp "$tmp/disk.img" "$tmp/tls1.img" || fail "bytes differ (cainfo)"
stop_nbdkit tls1
echo "ok: cainfo= accepted the certificate, bytes equal"

for v in no 0 off false; do
  start_nbdkit tls2 url="$https" manifest=none cache-dir="$tmp/c4" \
    tls-verify=$v || fail "tls-verify=$v: $(cat "$tmp/tls2.log")"
  grep -qi "warn.*tls\|tls.*not verif\|verification.*off" "$tmp/tls2.log" ||
    fail "tls-verify=$v gave no warning"
  stop_nbdkit tls2
done
echo "ok: only tls-verify=false (no/0/off) turns verification off, with a warning"

# 3. AWS_CA_BUNDLE and the profile's ca_bundle.  other.pem is a valid
# CA certificate that did not sign the server's.  NB: the environment
# may name the system's bundle in AWS_CA_BUNDLE, which would hide the
# profile's.
unset AWS_CA_BUNDLE
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$tmp/other-key.pem" -out "$tmp/other.pem" 2>/dev/null ||
  fail "openssl req (other)"
printf '[default]\nca_bundle = %s\n' "$tmp/cert.pem" > "$tmp/config-ca"
printf '[default]\nca_bundle = %s\n' "$tmp/other.pem" > "$tmp/config-other"

# tls_serves NAME DESCRIPTION ENV... -- KEYS...: nbdkit started with
# that environment serves the HTTPS image byte for byte.
tls_serves () {
  local name=$1 what=$2 kv
  shift 2
  # NB: local -x: the variables are set for this call only.
  while [ "$1" != -- ]; do
    kv=$1
    local -x "${kv%%=*}=${kv#*=}"
    shift
  done
  shift
  rm -rf "$tmp/c5"
  start_nbdkit "$name" url="$https" manifest=none cache-dir="$tmp/c5" "$@" ||
    fail "$what: $(cat "$tmp/$name.log")"
  nbdcopy "$(nbd_uri "$name")" "$tmp/$name.img" || fail "nbdcopy ($what)"
  cmp "$tmp/disk.img" "$tmp/$name.img" || fail "bytes differ ($what)"
  stop_nbdkit "$name"
  echo "ok: $what: $(grep -m1 -o 'CA bundle: .*' "$tmp/$name.log")"
}
tls_serves ca1 "AWS_CA_BUNDLE" AWS_CA_BUNDLE="$tmp/cert.pem" --
grep -q "CA bundle: $tmp/cert.pem (from AWS_CA_BUNDLE)" "$tmp/ca1.log" ||
  fail "the debug output does not say where the CA bundle came from"
tls_serves ca2 "the profile's ca_bundle" AWS_CONFIG_FILE="$tmp/config-ca" --
grep -q "(from \[default\] ca_bundle in $tmp/config-ca)" "$tmp/ca2.log" ||
  fail "the debug output does not name the profile's ca_bundle"
tls_serves ca3 "cainfo= over a wrong AWS_CA_BUNDLE" \
  AWS_CA_BUNDLE="$tmp/other.pem" -- cainfo="$tmp/cert.pem"
tls_serves ca4 "AWS_CA_BUNDLE over a wrong ca_bundle" \
  AWS_CONFIG_FILE="$tmp/config-other" AWS_CA_BUNDLE="$tmp/cert.pem" --

for bundle in "$tmp/other.pem" "$tmp/no-such.pem"; do
  if AWS_CA_BUNDLE="$bundle" start_nbdkit ca5 url="$https" manifest=none \
       cache-dir="$tmp/c6"; then
    fail "AWS_CA_BUNDLE=$bundle: the certificate was accepted"
  fi
  grep -q "AWS_CA_BUNDLE or the profile's ca_bundle" "$tmp/ca5.log" ||
    fail "AWS_CA_BUNDLE=$bundle: the error does not name the CA bundle: $(cat "$tmp/ca5.log")"
  echo "ok: AWS_CA_BUNDLE=$(basename "$bundle") refused: $(grep -m1 -o 'error.*' "$tmp/ca5.log" | cut -c1-160)"
done
if AWS_CONFIG_FILE="$tmp/config-other" start_nbdkit ca6 url="$https" \
     manifest=none cache-dir="$tmp/c6"; then
  fail "a wrong profile ca_bundle: the certificate was accepted"
fi
grep -q "the profile's ca_bundle" "$tmp/ca6.log" ||
  fail "wrong ca_bundle: the error does not name the CA bundle"
echo "ok: a wrong profile ca_bundle is refused"

# STS over HTTPS: the server answers the POST with an HTTP error, which
# shows the TLS handshake passed; without the bundle it does not.
echo "fake.jwt" > "$tmp/jwt"
sts () {
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/jwt" \
    AWS_ROLE_ARN=arn:aws:iam::123456789012:role/r \
    AWS_ENDPOINT_URL_STS="https://127.0.0.1:$(cat "$tmp/https-port")" \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null "$@" \
    "$top/tests/helpers/creds-get" > "$tmp/sts.out" 2>&1 && fail "STS worked?"
}
sts AWS_CONFIG_FILE=/dev/null
grep -qi "certificate" "$tmp/sts.out" ||
  fail "STS without the bundle: not a certificate error: $(cat "$tmp/sts.out")"
sts AWS_CA_BUNDLE="$tmp/cert.pem" AWS_CONFIG_FILE=/dev/null
grep -qE "HTTP [0-9]{3}" "$tmp/sts.out" && ! grep -qi certificate "$tmp/sts.out" ||
  fail "STS with AWS_CA_BUNDLE: $(cat "$tmp/sts.out")"
sts AWS_CONFIG_FILE="$tmp/config-ca"
grep -qE "HTTP [0-9]{3}" "$tmp/sts.out" && ! grep -qi certificate "$tmp/sts.out" ||
  fail "STS with the profile's ca_bundle: $(cat "$tmp/sts.out")"
echo "ok: STS is reached through AWS_CA_BUNDLE and the profile's ca_bundle"
