#!/usr/bin/env python3
"""A counting, fault-injecting HTTP/1.1 reverse proxy for accel's tests.

Integration tests put it between the plugin and the test S3 server
(tests/lib/rgw.sh) to count what the plugin asks for and to see how it
copes with a misbehaving server.  Requests go upstream unchanged, Host and
Authorization included, so SigV4 signatures still check; responses are
streamed back in blocks, never buffered whole.

Usage: s3proxy.py --upstream http://HOST:PORT [--listen 127.0.0.1:0]
         [--port-file F] [--stats-file S] [--faults R] [--strip-prefix P]

With --strip-prefix /P it stands for a gateway that serves the store
under a path: it forwards /P/REST as /REST and answers 404 to anything
else.  F gets the port once the proxy listens; a line per request goes to stderr
(the request line, status, body bytes sent and, if any, the Range header:
  "GET /b/disk.img HTTP/1.1" 206 8388608 bytes=0-8388607).
S is replaced (atomically) with JSON counting each request, status and
body byte before the client can see it:
  {"requests": 13, "GET": 12, "HEAD": 1, "status": {"206": 12, "200": 1},
   "bytes": 12582912, "faults": {"status": 2}}
R is re-read at every request: a JSON list of rules.  The first live one
whose "method" (default any), "match" (substring of path and query,
default any) and "range" (substring of the Range header, e.g.
"bytes=6291456-" for GETs that start at that offset; default any, and a
rule with "range" never fits a request without one) fit the request
applies:
  {"action": "status", "status": 503}     answer with an S3 XML error
                                          ("code": ...) instead of forwarding
  {"action": "delay", "seconds": 2}       sleep, then forward
  {"action": "reset", "after_bytes": N}   forward the headers and N body
                                          bytes, then send a TCP RST
  {"action": "truncate", "after_bytes": N}  the same, then close cleanly
  {"action": "corrupt", "offset": N}      invert the body byte at offset N
                                          (reset and truncate take an
                                          "offset" too: a wrong byte in
                                          the part that is sent)
  {"action": "header", "headers": {H: V}} forward, with these response
                                          headers added (or replaced)
  {"action": "long", "extra": N}          forward, then N bytes more than
                                          the Content-Length on the same
                                          kept-alive connection
  {"action": "limit", "rate": R}          admit R requests a second (a
                                          token bucket shared by every
                                          client, "burst" tokens at most,
                                          default max(1, R)) and answer
                                          the rest 503 SlowDown, as S3
                                          does above its per-prefix rate
A rule with "count" applies that many times.  Uses are remembered by the
rule's text: add an "id" to re-arm an identical rule.  A "limit" rule
has no count and never stops matching; rewrite it to change R mid-run
(the bucket keeps its tokens).  Its requests are counted in the stats'
"limit": {"admitted": N, "slowdown": N}.
NB: request bodies need a Content-Length (no chunked uploads).
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

BLOCK = 64 * 1024

# Headers about one hop, not the message: never forwarded.  The handler
# itself answers "Expect: 100-continue".
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te",
               "trailer", "upgrade", "transfer-encoding", "expect"}

ERROR_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError",
               502: "BadGateway", 503: "SlowDown"}

# Shared by the handler threads, all protected by lock.
lock = threading.Lock()
stats = {"requests": 0, "status": {}, "bytes": 0, "faults": {}}
rule_uses = {}          # rule's canonical text -> times applied
bucket = {"tokens": None, "time": 0.0}   # the "limit" rule's token bucket
args = None


def write_atomically(path, text):
    """Readers polling PATH must never see it half-written."""
    tmp = "%s.tmp%d" % (path, threading.get_ident())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def publish(method=None, status=None, nbytes=0):
    """Count a new request, a status or body bytes; rewrite the stats."""
    with lock:
        if method:
            stats["requests"] += 1
            stats[method] = stats.get(method, 0) + 1
        if status:
            code = str(status)
            stats["status"][code] = stats["status"].get(code, 0) + 1
        stats["bytes"] += nbytes
        if args.stats_file:
            write_atomically(args.stats_file, json.dumps(stats, indent=1))


def admit(rule):
    """With lock held: take a token of the "limit" rule's bucket, if
    there is one.  Tokens accrue at the rule's current rate."""
    rate = float(rule.get("rate", 1))
    burst = float(rule.get("burst", max(1.0, rate)))
    now = time.monotonic()
    if bucket["tokens"] is None:
        bucket["tokens"] = burst
    else:
        bucket["tokens"] += (now - bucket["time"]) * rate
    bucket["tokens"] = min(bucket["tokens"], burst)
    bucket["time"] = now
    ok = bucket["tokens"] >= 1
    if ok:
        bucket["tokens"] -= 1
    limit = stats.setdefault("limit", {"admitted": 0, "slowdown": 0})
    limit["admitted" if ok else "slowdown"] += 1
    return ok


def pick_fault(method, path, range_header):
    """Return the first live rule matching the request, using it up."""
    if not args.faults:
        return None
    try:
        with open(args.faults) as f:
            rules = json.load(f)
    except (OSError, ValueError) as e:
        print("s3proxy: %s: %s" % (args.faults, e), file=sys.stderr)
        return None
    with lock:
        for rule in rules:
            if rule.get("method", method) != method or \
               rule.get("match", "") not in path or \
               ("range" in rule and rule["range"] not in range_header):
                continue
            if rule.get("action") == "limit":
                if admit(rule):
                    continue
                stats["faults"]["limit"] = stats["faults"].get("limit", 0) + 1
                return {"action": "status", "status": 503,
                        "code": "SlowDown",
                        "message": "Please reduce your request rate."}
            key = json.dumps(rule, sort_keys=True)
            if "count" in rule and rule_uses.get(key, 0) >= rule["count"]:
                continue
            rule_uses[key] = rule_uses.get(key, 0) + 1
            action = rule.get("action", "?")
            stats["faults"][action] = stats["faults"].get(action, 0) + 1
            return rule
    return None


class Proxy(http.server.BaseHTTPRequestHandler):
    """One client connection; may carry many requests (keep-alive)."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else small writes wait on delayed ACKs
    upstream = None     # this connection's upstream HTTPConnection

    def do_proxy(self):
        self.sent = 0       # response body bytes sent to the client
        self.counted = 0    # how many of those are in the stats
        self.status = 0     # response status sent to the client, if any
        publish(method=self.command)
        try:
            self.forward()
        except (OSError, http.client.HTTPException) as e:
            # The client went away, or upstream broke off mid-response.
            self.log_message("%s %s: %s", self.command, self.path, e)
            self.close_connection = True
            self.upstream = None
        finally:
            self.count_sent()
            self.log_request(self.status, self.sent)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_proxy

    def forward(self):
        """Answer one request, from upstream or from a fault rule."""
        length = int(self.headers.get("Content-Length", 0))
        prefix = args.strip_prefix
        if prefix:
            if not self.path.startswith(prefix + "/"):
                return self.send_error_xml(404, "NoSuchKey",
                                           "not under " + prefix)
            self.path = self.path[len(prefix):]
        rule = pick_fault(self.command, self.path,
                          self.headers.get("Range", "")) or {}
        action = rule.get("action")
        if action == "status":
            while length > 0:       # drain the request body, unsent
                block = self.rfile.read(min(BLOCK, length))
                length = length - len(block) if block else 0
            return self.send_error_xml(rule["status"], rule.get("code"),
                                       rule.get("message",
                                                "injected by s3proxy"))
        if action == "delay":
            time.sleep(float(rule.get("seconds", 1)))
        try:
            resp = self.ask_upstream(length)
        except (OSError, http.client.HTTPException) as e:
            return self.send_error_xml(502, "BadGateway", str(e))

        self.send_status(resp.status, resp.reason)
        added = rule.get("headers", {}) if action == "header" else {}
        for name, value in resp.getheaders():
            if name.lower() not in HOP_HEADERS and name not in added:
                self.send_header(name, value)
        for name, value in added.items():
            self.send_header(name, value)
        chunked = resp.chunked
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif resp.length is None:       # body ends when upstream closes
            self.close_connection = True
        self.end_headers()

        limit = None
        if action in ("reset", "truncate"):
            limit = int(rule.get("after_bytes", 0))
        flip = int(rule.get("offset", 0 if action == "corrupt" else -1))
        while self.command != "HEAD" and (limit is None or self.sent < limit):
            block = resp.read(BLOCK if limit is None
                              else min(BLOCK, limit - self.sent))
            if not block:
                break
            if 0 <= flip - self.sent < len(block):
                i = flip - self.sent
                block = block[:i] + bytes([block[i] ^ 0xff]) + block[i + 1:]
            self.sent += len(block)
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                continue
            if resp.length == 0:        # this block ends the response
                self.count_sent()
            self.wfile.write(block)
        self.count_sent()
        if chunked and limit is None:
            self.wfile.write(b"0\r\n\r\n")
        if action == "long" and not chunked and self.command != "HEAD":
            self.wfile.write(b"x" * int(rule.get("extra", 1)))
        self.wfile.flush()
        if self.command == "HEAD":
            # Done with the (empty) response, or the upstream connection
            # refuses the next request ("Request-sent").
            resp.read()

        if limit is not None:
            self.upstream.close()
            self.upstream = None
            self.close_connection = True
            if action == "reset":
                # Linger 0 makes close send RST, not FIN.  NB: detach, as
                # rfile and wfile would keep a plain close() from closing.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                os.close(self.connection.detach())
        elif resp.will_close:
            self.upstream = None

    def ask_upstream(self, length):
        """Send the request upstream as it came; return the response.
        A kept-alive upstream connection may have been closed meanwhile:
        then a request without a body is retried on a new one."""
        while True:
            fresh = self.upstream is None
            if fresh:
                u = urllib.parse.urlsplit(args.upstream)
                self.upstream = http.client.HTTPConnection(
                    u.hostname, u.port or 80, timeout=60)
            up = self.upstream
            try:
                up.putrequest(self.command, self.path, skip_host=True,
                              skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_HEADERS:
                        up.putheader(name, value)
                up.endheaders()
                left = length
                while left > 0:
                    block = self.rfile.read(min(BLOCK, left))
                    if not block:
                        raise ConnectionError("client closed mid-body")
                    up.send(block)
                    left -= len(block)
                return up.getresponse()
            except (OSError, http.client.HTTPException):
                up.close()
                self.upstream = None
                if fresh or length:
                    raise

    def log_request(self, code="-", size="-"):
        """The request line, status and body bytes, then its Range: what
        tests read to see how large the client's GETs were."""
        rng = self.headers.get("Range", "") if self.headers else ""
        self.log_message('"%s" %s %s%s', self.requestline, str(code),
                         str(size), " " + rng if rng else "")

    def send_status(self, status, reason=None):
        """Count STATUS, then start a response with it."""
        self.status = status
        publish(status=status)
        self.send_response_only(status, reason)

    def count_sent(self):
        """Add the body bytes sent (or about to be) to the stats."""
        if self.sent > self.counted:
            publish(nbytes=self.sent - self.counted)
            self.counted = self.sent

    def send_error_xml(self, status, code=None, message="injected by s3proxy"):
        """Answer with an S3-style error document."""
        code = code or ERROR_CODES.get(status, "InjectedError")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s'
                '</Code><Message>%s</Message></Error>\n' % (code, message))
        body = body.encode()
        self.send_status(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.sent += len(body)
            self.count_sent()
            self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    """A thread per client connection; many may connect at once."""
    request_queue_size = 128
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT")
    p.add_argument("--port-file", help="write the listening port here")
    p.add_argument("--stats-file", help="JSON counters, rewritten per request")
    p.add_argument("--faults", help="JSON list of fault rules")
    p.add_argument("--strip-prefix", help="serve upstream under this path")
    args = p.parse_args()

    host, _, port = args.listen.rpartition(":")
    server = Server((host, int(port)), Proxy)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: sys.exit(0))
    if args.stats_file:
        write_atomically(args.stats_file, json.dumps(stats, indent=1))
    if args.port_file:
        write_atomically(args.port_file, "%d\n" % server.server_address[1])
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
