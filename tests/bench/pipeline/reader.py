#!/usr/bin/python3
"""accel reader bench: a data-parallel reader's epochs, with Dask.

  reader.py make OUTDIR FILES
      A training-set-like tree: FILES shards (shards/NNN/shard-NNNNN.bin,
      100 to a directory) of 16 to 160 KiB of pseudo-random bytes, from a
      fixed seed (images/lib/seeded.py), so the same bytes on every run;
      and OUTDIR.crc, each shard's path and CRC-32, what an epoch checks.

  reader.py epoch SOURCE CRCS WORKERS EPOCH
      One epoch: W Dask workers (processes, started before the clock
      starts, as a training job's loader workers are) read every shard
      once, in an order shuffled by the epoch's number, and check each
      against its CRC.  SOURCE is a directory (the shards on local disk
      or on an accel mount) or an http:// URL prefix (the status quo: one
      whole-object GET per shard over each worker's keep-alive
      connection).  Prints "seconds=S bytes=B files=N"; exits 1 if any
      shard is missing or wrong.
"""

import concurrent.futures
import http.client
import os
import sys
import time
import urllib.parse
import zlib

import dask
import dask.bag

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "images", "lib"))
from seeded import Rng, stream  # noqa: E402

SEED = "accel-reader-v1"
PER_DIR = 100

_conn = None


def read_http(prefix, path):
    global _conn
    u = urllib.parse.urlsplit(prefix)
    if _conn is None:
        _conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    _conn.request("GET", u.path.rstrip("/") + "/" + path)
    resp = _conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise OSError("GET %s: HTTP %d" % (path, resp.status))
    return body


def read_one(source, item):
    """(bytes, 1 if the shard's CRC is right) of one shard."""
    path, crc = item
    if source.startswith("http://"):
        data = read_http(source, path)
    else:
        with open(os.path.join(source, path), "rb") as f:
            data = f.read()
    return len(data), int(zlib.crc32(data) == crc)


def make(outdir, files):
    rng = Rng(SEED, "sizes")
    lines = []
    for i in range(files):
        rel = "shards/%03d/shard-%05d.bin" % (i // PER_DIR, i)
        data = stream(SEED, "shard-%d" % i, rng.between(16 << 10, 160 << 10))
        os.makedirs(os.path.join(outdir, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(outdir, rel), "wb") as f:
            f.write(data)
        lines.append("%s %d\n" % (rel, zlib.crc32(data)))
    with open(outdir + ".crc", "w") as f:
        f.writelines(lines)


def epoch(source, crcs, workers, number):
    with open(crcs) as f:
        items = [(p, int(c)) for p, c in (line.split() for line in f)]
    rng = Rng(SEED, "epoch-%d" % number)
    for i in range(len(items) - 1, 0, -1):  # Fisher-Yates, our own generator
        j = rng.below(i + 1)
        items[i], items[j] = items[j], items[i]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        list(pool.map(abs, range(workers * 4)))  # the workers are up
        with dask.config.set(pool=pool, scheduler="processes"):
            bag = dask.bag.from_sequence(items, npartitions=workers * 8)
            t0 = time.monotonic()
            results = bag.map(lambda it: read_one(source, it)).compute()
            seconds = time.monotonic() - t0
    nbytes = sum(n for n, _ in results)
    good = sum(ok for _, ok in results)
    print("seconds=%.3f bytes=%d files=%d" % (seconds, nbytes, good))
    if good != len(items):
        sys.exit("reader: %d of %d shards wrong or missing" % (len(items) - good, len(items)))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "epoch":
        epoch(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
