#!/usr/bin/python3
"""Read an NBD export with libnbd and compare it with a local file.

  nbdcheck.py random URI FILE COUNT [SEED]   COUNT random reads (sizes 1 B
      to 256 KiB, anywhere) must equal FILE's bytes at the same offsets
  nbdcheck.py same URI FILE OFFSET LEN N      N connections read the same
      range at once (threads released together); all must equal FILE
  nbdcheck.py seq URI FILE BLOCK              read the whole export in
      order, BLOCK bytes at a time, on one connection; must equal FILE
  nbdcheck.py cache URI OFFSET LEN           NBD_CMD_CACHE of the range
  nbdcheck.py read URI OFFSET LEN            read once; exit 1 on error,
      printing libnbd's error message
  nbdcheck.py flood URI CONNS DEPTH BLOCK COUNT   CONNS connections each
      keep DEPTH reads of BLOCK bytes in flight (random aligned offsets)
      and each of those makes COUNT reads: the most a server must hold at once

Exit status 0 on success, 1 on a mismatch or error (with a message).
"""

import random
import sys
import threading

import nbd


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def expect(data, path, offset, length, what):
    with open(path, "rb") as f:
        f.seek(offset)
        want = f.read(length)
    if data != want:
        bad = next(i for i in range(len(want)) if data[i] != want[i])
        sys.exit("%s: mismatch at offset %d (+%d)" % (what, offset, bad))


def random_reads(uri, path, count, seed):
    h = connect(uri)
    size = h.get_size()
    rng = random.Random(seed)
    for i in range(count):
        length = rng.randint(1, 256 * 1024)
        offset = rng.randrange(0, size - length)
        expect(h.pread(length, offset), path, offset, length, "read %d" % i)
    h.shutdown()


def sequential(uri, path, block):
    h = connect(uri)
    size = h.get_size()
    for offset in range(0, size, block):
        length = min(block, size - offset)
        expect(h.pread(length, offset), path, offset, length, "seq read")
    h.shutdown()


def run_all(threads, errors):
    """Start the threads, wait for them all, exit with their errors."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("; ".join(errors))


def same_range(uri, path, offset, length, n):
    handles = [connect(uri) for _ in range(n)]
    barrier = threading.Barrier(n)
    errors = []

    def run(h):
        barrier.wait()
        try:
            data = h.pread(length, offset)
            expect(data, path, offset, length, "concurrent read")
        except BaseException as e:      # noqa: B036 (SystemExit too)
            errors.append(str(e))

    run_all([threading.Thread(target=run, args=(h,)) for h in handles],
            errors)


def flood(uri, conns, depth, block, count):
    handles = [connect(uri) for _ in range(conns)]
    size = handles[0].get_size()
    errors = []

    # NB: a libnbd handle is thread-safe: DEPTH threads on one handle
    # keep DEPTH commands in flight on its connection.
    def run(h, seed):
        rng = random.Random(seed)
        try:
            for _ in range(count):
                h.pread(block, rng.randrange(0, size // block) * block)
        except nbd.Error as e:
            errors.append(str(e))

    run_all([threading.Thread(target=run, args=(h, i * depth + j))
             for i, h in enumerate(handles) for j in range(depth)], errors)


def main():
    mode = sys.argv[1]
    if mode == "random":
        seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        random_reads(sys.argv[2], sys.argv[3], int(sys.argv[4]), seed)
    elif mode == "seq":
        sequential(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "same":
        same_range(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                   int(sys.argv[5]), int(sys.argv[6]))
    elif mode == "cache":
        h = connect(sys.argv[2])
        if not h.can_cache():
            sys.exit("the server does not advertise NBD_CMD_CACHE")
        h.cache(int(sys.argv[4]), int(sys.argv[3]))
    elif mode == "read":
        h = connect(sys.argv[2])
        try:
            h.pread(int(sys.argv[4]), int(sys.argv[3]))
        except nbd.Error as e:
            sys.exit("read failed: %s" % e)
    elif mode == "flood":
        flood(sys.argv[2], *(int(a) for a in sys.argv[3:7]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
