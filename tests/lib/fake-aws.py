#!/usr/bin/env python3
"""A fake AWS STS, EC2 instance metadata service (IMDSv2), container
credentials endpoint and SSO portal, and an S3 front that checks
signatures.

The test-creds*.sh tests point AWS_ENDPOINT_URL_STS,
AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_CONTAINER_CREDENTIALS_FULL_URI,
AWS_ENDPOINT_URL_SSO (and S3's) at it to exercise the steps of
common/s3/creds.c without any real AWS host.

Usage:
  fake-aws.py --port-file F --issued-file I [--role-arn ARN]
              [--web-identity-token T] [--imds-role NAME] [--expires N]
              [--delay S] [--container-path P] [--container-token T]
              [--listen ADDR] [--port N] [--s3-upstream URL
              --s3-upstream-key AK:SK]

It listens on --listen (default 127.0.0.1) and --port (default: any).

F receives the port once the server accepts connections.  Every issued
set of credentials is appended to I as "ACCESS_KEY SECRET TOKEN" so a
test can check what the client parsed without the client printing a
secret.  Each issuance gets distinct keys from a counter
(ASIAFAKESTS000001, ASIAFAKEIMDS000002, ...) and expires N seconds later
(default 3600); S delays each issuance (to show a slow refresh does not
stall readers).  Secrets and tokens start with "fakeSecret" and
"fakeToken", and IMDS session tokens with "fakeImdsToken", so a test can
grep its output for leaks; secrets contain XML-special characters, so
the client must decode entities.

STS (POST / with a form body) checks what a real STS would: Action,
Version, RoleArn (must equal --role-arn), WebIdentityToken (must equal
--web-identity-token), RoleSessionName, and that the request is not
signed.  Errors are STS's <ErrorResponse> XML.

IMDS: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds;
GETs need a valid X-aws-ec2-metadata-token (401 otherwise);
/latest/meta-data/iam/security-credentials/ lists --imds-role (404 if
empty) and .../ROLE returns the credentials JSON.

Container credentials (ECS task roles, EKS Pod Identity): GET
--container-path (default /v1/credentials) returns the credentials
JSON (AccessKeyId, SecretAccessKey, Token, AccountId, Expiration).  With
--container-token T (or "container_token" by control) the request's
Authorization header must be exactly T (401 otherwise); "container_keys"
(a list of [ACCESS_KEY, SECRET] by control) makes it hand those out in
turn, without Token, instead of made-up ones (real keys of a real S3
server, to check signatures after each refresh).

STS AssumeRole (POST / with Action=AssumeRole) must be SigV4-signed
(service sts) by a known key: a static one given in "static_keys" or
one this fake issued (then with its X-Amz-Security-Token, and not
expired); the signature is verified.  "roles" maps each role ARN that
may be assumed to who may assume it: an access key id, or "role:ARN"
for credentials issued for another role (a chain; the instance role's
are "role:IMDS_ROLE", the SSO portal's "role:sso:ROLE_NAME", the
container endpoint's "role:container").  Anything else is
AccessDenied.  The request's parameters and signer are kept in
/_stats' "assume_calls" (a list of {"RoleArn", "RoleSessionName",
"DurationSeconds", "ExternalId", "signer", "token"}).

SSO portal: GET /federation/credentials?account_id=A&role_name=R with
header x-amz-sso_bearer_token: 401 unless it equals "sso"'s "token",
403 unless A and R are "sso"'s; else roleCredentials, expiration in ms.

S3 (--s3-upstream URL --s3-upstream-key AK:SK): any other GET or HEAD
is an S3 request that must be signed (service s3) by credentials this
fake issued, unexpired and with their session token; it is then signed
again with the upstream's key and forwarded there (e.g. radosgw), so a
client is served only while it uses credentials the fake gave it.
Counted in "s3_forwarded" and "s3_refused".

Control (for the test script):
  GET /_stats     JSON counters
  POST /_control  a JSON object changing any of: "expires", "delay",
    "imds_role", "imds_code" (the JSON "Code", default "Success"),
    "sts_error" ([status, code, message] or null), "container_token",
    "container_error" ([status, code, message] or null),
    "container_keys" (see above), "container_raw" (a body to answer
    with instead, or null), "fail_after"
    (issue this many more credentials, then answer every request with
    an error; null for never), "static_keys" ({ACCESS_KEY: SECRET}),
    "roles" (see AssumeRole), "sso" ({"token", "account_id",
    "role_name"})
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
CREDS_PATH = "/latest/meta-data/iam/security-credentials/"


class State:
    """Everything the handlers share, behind one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.expires = args.expires
        self.delay = args.delay
        self.imds_role = args.imds_role
        self.imds_code = "Success"
        self.sts_error = None
        self.fail_after = None
        self.container_token = args.container_token
        self.container_error = None
        self.container_keys = None
        self.container_raw = None
        self.counter = 0
        self.imds_tokens = set()
        self.static_keys = {}
        self.roles = {}
        self.sso = {}
        # access key -> (secret, token, expiry epoch, role ARN or None)
        self.issued = {}
        self.assume_calls = []
        self.stats = {
            "sts_requests": 0, "sts_issued": 0, "sts_errors": 0,
            "imds_token_requests": 0, "imds_unauthorized": 0,
            "imds_requests": 0, "imds_issued": 0,
            "assume_requests": 0, "assume_issued": 0, "assume_errors": 0,
            "sso_requests": 0, "sso_issued": 0,
            "s3_forwarded": 0, "s3_refused": 0,
            "container_requests": 0, "container_issued": 0,
            "container_unauthorized": 0,
        }

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def issue(self, kind, role=None):
        """New credentials, or None if fail_after says to fail."""
        with self.lock:
            if self.fail_after is not None:
                if self.fail_after <= 0:
                    return None
                self.fail_after -= 1
            self.counter += 1
            n = self.counter
            expires = self.expires
        tag = kind.upper()
        access = "ASIAFAKE%s%06d" % (tag, n)
        secret = "fakeSecret/%s+%d&<%s>" % (kind, n, secrets.token_hex(4))
        token = "fakeToken-%s-%d-\"'%s" % (kind, n, secrets.token_hex(8))
        exp = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=expires)
        with self.lock:
            self.issued[access] = (secret, token, exp.timestamp(), role)
            with open(self.args.issued_file, "a") as f:
                f.write("%s %s %s\n" % (access, secret, token))
        return access, secret, token, exp.strftime("%Y-%m-%dT%H:%M:%SZ")


def sts_error_xml(code, message):
    return ("<ErrorResponse xmlns=\"%s\">\n"
            "  <Error>\n"
            "    <Type>Sender</Type>\n"
            "    <Code>%s</Code>\n"
            "    <Message>%s</Message>\n"
            "  </Error>\n"
            "  <RequestId>%s</RequestId>\n"
            "</ErrorResponse>\n" % (
                STS_XMLNS, escape(code),
                escape(message, {"\"": "&quot;", "'": "&apos;"}),
                secrets.token_hex(8)))


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/"
    r"aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})")


def sigv4_verify(handler, body, service):
    """Check the request's SigV4 signature against the keys the fake
    knows.  Returns (access key, None) or (None, (status, code, msg))."""
    st = handler.server.state
    m = AUTH_RE.fullmatch(handler.headers.get("Authorization", ""))
    if not m:
        return None, (400, "IncompleteSignature", "bad Authorization")
    ak, date, region, svc, signed, sig = m.groups()
    if svc != service:
        return None, (400, "SignatureDoesNotMatch", "wrong service " + svc)
    with st.lock:
        if ak in st.static_keys:
            secret, token, expiry = st.static_keys[ak], None, None
        elif ak in st.issued:
            secret, token, expiry, _ = st.issued[ak]
        else:
            return None, (403, "InvalidClientTokenId",
                          "The security token included in the request is "
                          "invalid")
    if token is not None and \
            handler.headers.get("X-Amz-Security-Token") != token:
        return None, (403, "InvalidClientTokenId", "wrong session token")
    if expiry is not None and time.time() >= expiry:
        return None, (403, "ExpiredToken", "The security token included in "
                      "the request is expired")
    amz_date = handler.headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        return None, (400, "SignatureDoesNotMatch", "bad X-Amz-Date")
    path, _, query = handler.path.partition("?")
    pairs = sorted(
        (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True))
    names = signed.split(";")
    if "host" not in names:
        return None, (400, "SignatureDoesNotMatch", "host not signed")
    headers = ""
    for name in names:
        value = handler.headers.get(name)
        if value is None:
            return None, (400, "SignatureDoesNotMatch", "missing " + name)
        headers += "%s:%s\n" % (name, " ".join(value.split()))
    payload = handler.headers.get("X-Amz-Content-Sha256") or \
        hashlib.sha256(body).hexdigest()
    creq = "\n".join([handler.command, path,
                      "&".join("%s=%s" % kv for kv in pairs),
                      headers, signed, payload])
    scope = "%s/%s/%s/aws4_request" % (date, region, svc)
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (
        amz_date, scope, hashlib.sha256(creq.encode()).hexdigest())
    key = ("AWS4" + secret).encode()
    for part in (date, region, svc, "aws4_request"):
        key = hmac256(key, part)
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        return None, (403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match")
    return ak, None


def sigv4_sign(method, host, path, access, secret, region="us-east-1"):
    """Headers signing a body-less S3 request (query-less path)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
               "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    creq = "\n".join([method, path, "",
                      "".join("%s:%s\n" % (k, headers[k])
                              for k in sorted(headers)),
                      signed, "UNSIGNED-PAYLOAD"])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (
        amz_date, scope, hashlib.sha256(creq.encode()).hexdigest())
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac256(key, part)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (access, scope, signed, sig))
    return headers


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-aws"

    def log_message(self, fmt, *args):
        # Paths and status codes only: never bodies or headers.
        sys.stderr.write("fake-aws: %s\n" % (fmt % args))

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n)

    # ---- STS ----
    def sts(self):
        st = self.server.state
        raw = self.read_body()
        body = raw.decode("utf-8", "replace")
        form = urllib.parse.parse_qs(body, keep_blank_values=True)

        def one(name):
            v = form.get(name)
            return v[0] if v and len(v) == 1 else None

        if one("Action") == "AssumeRole":
            self.assume_role(raw, one)
            return
        st.count("sts_requests")

        with st.lock:
            forced = st.sts_error
            fail = st.fail_after is not None and st.fail_after <= 0
            delay = st.delay
        if delay:
            time.sleep(delay)

        err = None
        ctype = self.headers.get("Content-Type", "")
        if "Authorization" in self.headers or "X-Amz-Signature" in body:
            err = (400, "InvalidRequest",
                   "AssumeRoleWithWebIdentity must not be signed")
        elif not ctype.startswith("application/x-www-form-urlencoded"):
            err = (400, "InvalidRequest", "bad Content-Type " + ctype)
        elif one("Action") != "AssumeRoleWithWebIdentity":
            err = (400, "InvalidAction", "bad or missing Action")
        elif one("Version") != "2011-06-15":
            err = (400, "InvalidParameterValue", "bad or missing Version")
        elif not re.fullmatch(r"[\w+=,.@-]{2,64}",
                              one("RoleSessionName") or ""):
            err = (400, "ValidationError", "bad RoleSessionName")
        elif one("RoleArn") != self.server.state.args.role_arn:
            err = (403, "AccessDenied",
                   "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        elif one("WebIdentityToken") != \
                self.server.state.args.web_identity_token:
            err = (400, "InvalidIdentityToken",
                   "The web identity token that was passed is invalid")
        elif forced:
            err = tuple(forced)
        elif fail:
            err = (503, "ServiceUnavailable", "fail_after reached")

        creds = None if err else st.issue("sts")
        if not err and creds is None:
            err = (503, "ServiceUnavailable", "fail_after reached")
        if err:
            st.count("sts_errors")
            self.reply(err[0], sts_error_xml(err[1], err[2]), "text/xml")
            return
        st.count("sts_issued")
        access, secret, token, exp = creds
        self.reply(200, (
            "<AssumeRoleWithWebIdentityResponse xmlns=\"%s\">\n"
            "  <AssumeRoleWithWebIdentityResult>\n"
            "    <Audience>sts.amazonaws.com</Audience>\n"
            "    <AssumedRoleUser>\n"
            "      <AssumedRoleId>AROAFAKE:%s</AssumedRoleId>\n"
            "      <Arn>%s</Arn>\n"
            "    </AssumedRoleUser>\n"
            "    <Credentials>\n"
            "      <SessionToken>%s</SessionToken>\n"
            "      <SecretAccessKey>%s</SecretAccessKey>\n"
            "      <Expiration>%s</Expiration>\n"
            "      <AccessKeyId>%s</AccessKeyId>\n"
            "    </Credentials>\n"
            "  </AssumeRoleWithWebIdentityResult>\n"
            "  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>\n"
            "</AssumeRoleWithWebIdentityResponse>\n" % (
                STS_XMLNS, escape(one("RoleSessionName")),
                escape(one("RoleArn")),
                escape(token, {"\"": "&quot;", "'": "&apos;"}),
                escape(secret), exp, access, secrets.token_hex(8))),
            "text/xml")

    def assume_role(self, raw, one):
        """STS AssumeRole: signed, by whoever "roles" allows."""
        st = self.server.state
        st.count("assume_requests")
        signer, err = sigv4_verify(self, raw, "sts")
        with st.lock:
            allowed = st.roles.get(one("RoleArn"))
            forced = st.sts_error
            delay = st.delay
            signer_role = st.issued.get(signer, (0, 0, 0, None))[3]
            st.assume_calls.append({
                "RoleArn": one("RoleArn"),
                "RoleSessionName": one("RoleSessionName"),
                "DurationSeconds": one("DurationSeconds"),
                "ExternalId": one("ExternalId"),
                "signer": signer,
                "token": "X-Amz-Security-Token" in self.headers,
            })
        if delay:
            time.sleep(delay)
        duration = one("DurationSeconds")
        if err:
            pass
        elif one("Version") != "2011-06-15":
            err = (400, "InvalidParameterValue", "bad or missing Version")
        elif not re.fullmatch(r"[\w+=,.@-]{2,64}",
                              one("RoleSessionName") or ""):
            err = (400, "ValidationError", "bad RoleSessionName")
        elif duration is not None and not (
                duration.isdigit() and 900 <= int(duration) <= 43200):
            err = (400, "ValidationError", "bad DurationSeconds")
        elif allowed is None or not (
                signer == allowed or
                (allowed.startswith("role:") and
                 signer_role == allowed[5:])):
            err = (403, "AccessDenied",
                   "User: arn:aws:iam::123456789012:user/fake is not "
                   "authorized to perform: sts:AssumeRole on resource: %s"
                   % one("RoleArn"))
        elif forced:
            err = tuple(forced)
        creds = None if err else st.issue("assume", one("RoleArn"))
        if not err and creds is None:
            err = (503, "ServiceUnavailable", "fail_after reached")
        if err:
            st.count("assume_errors")
            self.reply(err[0], sts_error_xml(err[1], err[2]), "text/xml")
            return
        st.count("assume_issued")
        access, secret, token, exp = creds
        self.reply(200, (
            "<AssumeRoleResponse xmlns=\"%s\">\n"
            "  <AssumeRoleResult>\n"
            "    <AssumedRoleUser>\n"
            "      <AssumedRoleId>AROAFAKE:%s</AssumedRoleId>\n"
            "      <Arn>%s</Arn>\n"
            "    </AssumedRoleUser>\n"
            "    <Credentials>\n"
            "      <AccessKeyId>%s</AccessKeyId>\n"
            "      <SecretAccessKey>%s</SecretAccessKey>\n"
            "      <SessionToken>%s</SessionToken>\n"
            "      <Expiration>%s</Expiration>\n"
            "    </Credentials>\n"
            "  </AssumeRoleResult>\n"
            "  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>\n"
            "</AssumeRoleResponse>\n" % (
                STS_XMLNS, escape(one("RoleSessionName")),
                escape(one("RoleArn")), access, escape(secret),
                escape(token, {"\"": "&quot;", "'": "&apos;"}), exp,
                secrets.token_hex(8))),
            "text/xml")

    # ---- SSO portal ----
    def sso_credentials(self):
        st = self.server.state
        st.count("sso_requests")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        with st.lock:
            want = dict(st.sso)
        token = self.headers.get("x-amz-sso_bearer_token")
        if not want or token != want.get("token"):
            self.reply(401, json.dumps({"message": "Session token not found "
                                        "or invalid"}), "application/json")
            return
        if query.get("account_id") != [want.get("account_id")] or \
                query.get("role_name") != [want.get("role_name")]:
            self.reply(403, json.dumps({"message": "No access"}),
                       "application/json")
            return
        creds = st.issue("sso", "sso:" + want.get("role_name"))
        if creds is None:
            self.reply(500, "")
            return
        st.count("sso_issued")
        access, secret, token, exp = creds
        with st.lock:
            expiry = st.issued[access][2]
        self.reply(200, json.dumps({"roleCredentials": {
            "accessKeyId": access,
            "secretAccessKey": secret,
            "sessionToken": token,
            "expiration": int(expiry * 1000),
        }}), "application/json")

    # ---- S3, checked then forwarded ----
    def s3_forward(self):
        st = self.server.state
        args = st.args
        signer, err = sigv4_verify(self, b"", "s3")
        if err is None and signer not in st.issued:
            err = (403, "AccessDenied", "not signed with issued credentials")
        if err:
            st.count("s3_refused")
            self.log_message("S3 refused: %s", err[1])
            body = ("<Error><Code>%s</Code><Message>%s</Message></Error>"
                    % (err[1], escape(err[2])))
            self.reply(err[0], body, "application/xml")
            return
        st.count("s3_forwarded")
        up = urllib.parse.urlsplit(args.s3_upstream)
        access, _, secret = args.s3_upstream_key.partition(":")
        path, _, query = self.path.partition("?")
        if query:
            self.reply(501, "query strings are not forwarded")
            return
        headers = sigv4_sign(self.command, up.netloc, path, access, secret)
        if self.headers.get("Range"):
            headers["Range"] = self.headers["Range"]
        conn = http.client.HTTPConnection(up.hostname, up.port or 80,
                                          timeout=60)
        try:
            conn.request(self.command, path, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status)
        for name in ("Content-Type", "Content-Range", "ETag",
                     "Last-Modified", "Accept-Ranges",
                     "x-amz-version-id"):
            if resp.getheader(name):
                self.send_header(name, resp.getheader(name))
        self.send_header("Content-Length",
                         resp.getheader("Content-Length") or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        if self.server.state.args.s3_upstream:
            self.s3_forward()
        else:
            self.reply(404, "")

    # ---- IMDS ----
    def imds_authorized(self):
        st = self.server.state
        token = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            ok = token is not None and token in st.imds_tokens
        if not ok:
            st.count("imds_unauthorized")
            self.reply(401, "")
        return ok

    def imds_get(self):
        st = self.server.state
        st.count("imds_requests")
        if not self.imds_authorized():
            return
        with st.lock:
            role, code, delay = st.imds_role, st.imds_code, st.delay
        if self.path == CREDS_PATH:
            if not role:
                self.reply(404, "")
            else:
                self.reply(200, role)
            return
        if not role or self.path != CREDS_PATH + role:
            self.reply(404, "")
            return
        if delay:
            time.sleep(delay)
        creds = st.issue("imds", role)
        if creds is None:
            self.reply(500, "")
            return
        st.count("imds_issued")
        access, secret, token, exp = creds
        self.reply(200, json.dumps({
            "Code": code,
            "LastUpdated": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": access,
            "SecretAccessKey": secret,
            "Token": token,
            "Expiration": exp,
        }, indent=2), "text/plain")

    # ---- container credentials ----
    def container_get(self):
        st = self.server.state
        st.count("container_requests")
        with st.lock:
            want, forced, delay = st.container_token, st.container_error, \
                st.delay
            keys = st.container_keys
        if want is not None and self.headers.get("Authorization") != want:
            st.count("container_unauthorized")
            self.reply(401, json.dumps({
                "code": "AccessDenied",
                "message": "missing or wrong authorization token"}),
                "application/json")
            return
        if forced:
            self.reply(forced[0], json.dumps({
                "code": forced[1], "message": forced[2]}), "application/json")
            return
        with st.lock:
            raw = st.container_raw
        if raw is not None:
            self.reply(200, raw, "application/json")
            return
        if delay:
            time.sleep(delay)
        creds = st.issue("container", "container")
        if creds is None:
            self.reply(500, json.dumps({
                "code": "ServiceUnavailable", "message": "fail_after"}),
                "application/json")
            return
        st.count("container_issued")
        access, secret, token, exp = creds
        doc = {"AccessKeyId": access, "SecretAccessKey": secret,
               "Token": token, "AccountId": "123456789012",
               "Expiration": exp}
        if keys:
            access, secret = keys[(st.stats["container_issued"] - 1) %
                                  len(keys)]
            doc.update(AccessKeyId=access, SecretAccessKey=secret)
            del doc["Token"]
        self.reply(200, json.dumps(doc), "application/json")

    def do_PUT(self):
        st = self.server.state
        self.read_body()
        if self.path != "/latest/api/token":
            self.reply(404, "")
            return
        st.count("imds_token_requests")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self.reply(400, "")
            return
        token = "fakeImdsToken-" + secrets.token_hex(16)
        with st.lock:
            st.imds_tokens.add(token)
        self.reply(200, token)

    def do_GET(self):
        st = self.server.state
        if self.path == "/_stats":
            with st.lock:
                stats = dict(st.stats, assume_calls=st.assume_calls)
                self.reply(200, json.dumps(stats), "application/json")
            return
        if self.path.startswith("/federation/credentials"):
            self.sso_credentials()
            return
        if self.path.startswith("/latest/"):
            self.imds_get()
            return
        if self.path == st.args.container_path:
            self.container_get()
            return
        if st.args.s3_upstream:
            self.s3_forward()
            return
        self.reply(404, "")

    def do_POST(self):
        st = self.server.state
        if self.path == "/_control":
            change = json.loads(self.read_body() or b"{}")
            with st.lock:
                for k, v in change.items():
                    if k not in ("expires", "delay", "imds_role", "imds_code",
                                 "sts_error", "fail_after", "static_keys",
                                 "roles", "sso", "container_token",
                                 "container_error", "container_keys",
                                 "container_raw"):
                        raise KeyError(k)
                    setattr(st, k, v)
            self.reply(200, "ok\n")
            return
        if self.path == "/":
            self.sts()
            return
        self.read_body()
        self.reply(404, "")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--issued-file", required=True)
    p.add_argument("--role-arn",
                   default="arn:aws:iam::123456789012:role/accel-test")
    p.add_argument("--web-identity-token", default="fakeWebIdentityJWT")
    p.add_argument("--imds-role", default="accel-test-role")
    p.add_argument("--expires", type=int, default=3600)
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--s3-upstream")
    p.add_argument("--s3-upstream-key", default=":")
    p.add_argument("--container-path", default="/v1/credentials")
    p.add_argument("--container-token")
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer((args.listen, args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    open(args.issued_file, "w").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
