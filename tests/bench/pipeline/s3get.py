#!/usr/bin/python3
"""accel pipeline bench: the status quo's download, a fair and fast one.

  s3get.py [--jobs N] [--part BYTES] DESTDIR URL...

Copies each object URL (plain http://, as the bench's S3-like origin
serves them) to DESTDIR/BASENAME the way `aws s3 cp --recursive` does with
its defaults: a HEAD for each object's size, then GETs of 8 MiB parts
(Range), 10 at a time over keep-alive connections, every part written in
place (pwrite) as it arrives, so no part is copied twice.  A short or
failed part is an error (exit 1): the task must not run on a partial
index.  Prints nothing on success.
"""

import argparse
import concurrent.futures
import http.client
import os
import sys
import threading
import urllib.parse

local = threading.local()


def connection(host, port):
    """One keep-alive connection per worker thread."""
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(host, port, timeout=60)
    return conn


def request(url, method, headers):
    u = urllib.parse.urlsplit(url)
    conn = connection(u.hostname, u.port or 80)
    conn.request(method, u.path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    return resp.status, resp.headers, body


def size_of(url):
    status, headers, _ = request(url, "HEAD", {})
    if status != 200:
        raise OSError("HEAD %s: HTTP %d" % (url, status))
    return int(headers["Content-Length"])


def get_part(url, fd, start, length):
    status, _, body = request(url, "GET", {"Range": "bytes=%d-%d" % (start, start + length - 1)})
    if status not in (200, 206) or len(body) != length:
        raise OSError("GET %s bytes %d+%d: HTTP %d, %d bytes" % (url, start, length, status, len(body)))
    os.pwrite(fd, body, start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--part", type=int, default=8 << 20)
    ap.add_argument("dest")
    ap.add_argument("urls", nargs="+")
    args = ap.parse_args()
    fds = []
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            sizes = list(pool.map(size_of, args.urls))
            parts = []
            for url, size in zip(args.urls, sizes):
                fd = os.open(os.path.join(args.dest, os.path.basename(url)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                fds.append(fd)
                os.ftruncate(fd, size)
                for start in range(0, size, args.part):
                    parts.append(pool.submit(get_part, url, fd, start, min(args.part, size - start)))
            for p in parts:
                p.result()
    except (OSError, http.client.HTTPException) as e:
        sys.exit("s3get: %s" % e)
    finally:
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
