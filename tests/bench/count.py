#!/usr/bin/python3
"""accel bench: count what one phase took from the origin and touched.

  count.py origin nginx|rgw LOG START END
      The requests logged between byte offsets START and END of an origin's
      log: nginx's access log in the bench's format ("METHOD URI STATUS
      BYTES SECONDS END-TIME", tests/bench/nginx.conf.in) or radosgw's log
      (its " beast: " lines).  Prints requests=N gets=N
      origin_bytes=N (the response bodies) image_bytes=N manifest_bytes=N,
      and from nginx's log get_ms=N (mean time of an image GET),
      in_flight=X (image GETs in flight on average while any was) and
      busy_s=X (seconds during which any was).

  count.py touched TRACE START END MANIFEST
      The NBD reads that nbdkit's log filter wrote between byte offsets
      START and END of TRACE, mapped to the chunks of the image that
      MANIFEST describes.  Prints nbd_reads=N nbd_read_bytes=N, and
      touched_chunks=N touched=BYTES: the distinct chunks read that are not
      all-zero (the plugin never fetches those) and their bytes (the last
      chunk may be short).

Output is KEY=VALUE words, ready for "results.py add".

Offsets, not line numbers: the bench notes a log's size when a phase
starts and ends, so a line is counted in exactly one phase.
"""

import re
import sqlite3
import sys


def read_slice(path, start, end):
    with open(path, "rb") as f:
        partial_first = False
        if start > 0:
            f.seek(start - 1)
            partial_first = f.read(1) != b"\n"
        f.seek(start)
        data = f.read(max(0, end - start))
    if partial_first:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    # NB: the bench notes an offset only once the log has been quiet for
    # a while, so a slice holds whole lines; a partial last line (none is
    # expected) is left out rather than misread.
    cut = data.rfind(b"\n")
    return data[: cut + 1].decode("utf-8", "replace").splitlines()


def busy_seconds(spans):
    """The time during which at least one of the (start, end) spans ran."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def count_origin(fmt, lines):
    out = {"requests": 0, "gets": 0, "origin_bytes": 0, "image_bytes": 0, "manifest_bytes": 0}
    spans = []
    for line in lines:
        if fmt == "nginx":
            parts = line.split()
            try:
                method, uri, nbytes = parts[0], parts[1], int(parts[3])
                if method == "GET" and not uri.endswith(".manifest"):
                    end, took = float(parts[5]), float(parts[4])
                    spans.append((end - took, end))
            except (IndexError, ValueError):
                continue
        else:
            m = BEAST.search(line)
            if not m:
                continue
            method, uri = m.group(1), m.group(2)
            nbytes = 0 if m.group(4) == "-" else int(m.group(4))
        out["requests"] += 1
        if method == "GET":
            out["gets"] += 1
        out["origin_bytes"] += nbytes
        if uri.split("?")[0].endswith(".manifest"):
            out["manifest_bytes"] += nbytes
        else:
            out["image_bytes"] += nbytes
    if spans:
        took = sum(e - s for s, e in spans)
        out["get_ms"] = 1000 * took / len(spans)
        busy = busy_seconds(spans)
        out["in_flight"] = took / busy if busy > 0 else float(len(spans))
        out["busy_s"] = busy
    return out


# radosgw's line for each HTTP request in its log (tests/lib/rgw.sh).
# NB: not its ops log, whose JSON objects threads sometimes write onto
# one line.
BEAST = re.compile(r' beast: .*"([A-Z]+) (\S+) HTTP/[0-9.]+" ([0-9]{3}) ([0-9]+|-)')

READ = re.compile(r"\b(?:Read|Cache) id=\d+ offset=(0x[0-9a-fA-F]+) count=(0x[0-9a-fA-F]+)")


def count_touched(lines, manifest):
    db = sqlite3.connect("file:%s?mode=ro" % manifest, uri=True)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    chunk = int(meta["chunk_size"])
    size = int(meta["image_size"])
    zero = {idx for (idx,) in db.execute("SELECT idx FROM chunks WHERE zero = 1")}
    db.close()
    touched = set()
    reads = read_bytes = 0
    for line in lines:
        m = READ.search(line)
        if not m:
            continue
        off, n = int(m.group(1), 16), int(m.group(2), 16)
        reads += 1
        read_bytes += n
        if n == 0:
            continue
        touched.update(range(off // chunk, (off + n - 1) // chunk + 1))
    touched -= zero
    nbytes = sum(min(chunk, size - i * chunk) for i in touched)
    return {"nbd_reads": reads, "nbd_read_bytes": read_bytes, "touched_chunks": len(touched),
            "touched": nbytes}


def words(d):
    return " ".join(("%s=%d" if isinstance(v, int) else "%s=%.2f") % (k, v) for k, v in d.items())


def main(argv):
    if len(argv) == 6 and argv[1] == "origin" and argv[2] in ("nginx", "rgw"):
        lines = read_slice(argv[3], int(argv[4]), int(argv[5]))
        print(words(count_origin(argv[2], lines)))
    elif len(argv) == 6 and argv[1] == "touched":
        lines = read_slice(argv[2], int(argv[3]), int(argv[4]))
        print(words(count_touched(lines, argv[5])))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
