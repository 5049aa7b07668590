"""accel sample image: a tree of many small files.

Writes about 5000 files into OUTDIR, the shape that stresses metadata and
small random reads rather than bandwidth: a project-like tree of nested
directories (up to 10 deep) holding text, CSV, JSON and binary files of
100 B to 20 KiB (spread evenly over the doublings, so most are small), 2%
empty marker files (*.done), a few shell scripts with mode 0755, a few empty directories,
a few names with spaces or non-ASCII letters, and four large files of 1-4
MiB (two random, so incompressible; two text).

Everything comes from the fixed seed below through images/lib/seeded.py, so
the tree is byte-identical on every run; modes are set explicitly (not left
to the umask) and images/smallfiles/build fixes every mtime.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from seeded import Rng, stream  # noqa: E402

SEED = "accel-smallfiles-v1"
NR_FILES = 5000
NR_DIRS = 300
MIN_SIZE, MAX_SIZE = 100, 20 * 1024

WORDS = (
    "sample read align index chunk cache block image manifest genome model "
    "tensor batch epoch layer weight train valid test node task queue job "
    "alpha beta gamma delta sigma omega north south east west red green blue "
    "amber cedar maple birch pine oak willow river lake ocean cloud storm "
    "rain snow wind stone iron copper silver gold lead zinc carbon oxygen "
    "the a of and to in is was for on with as by at from that this it be"
).split()
# A word for each byte value (the list repeated), to turn bulk bytes into prose.
VOCAB = [w.encode() for w in (WORDS * (256 // len(WORDS) + 1))[:256]]
TOP = ["data", "docs", "src", "results", "config", "logs"]
KINDS = ["txt", "csv", "json", "bin", "log", "md"]


def text(seed_label, size):
    """size bytes of word salad, ten words a line."""
    raw = stream(SEED, seed_label, size // 4 + 16)
    words = [VOCAB[b] for b in raw]
    lines = [b" ".join(words[i : i + 10]) for i in range(0, len(words), 10)]
    return (b"\n".join(lines) + b"\n")[:size]


def csv(seed_label, size):
    """size bytes of a four-column CSV table with a header."""
    raw = stream(SEED, seed_label, size // 4 + 64)
    rows = [b"id,sample,value,flag"]
    for i in range(0, len(raw) - 4, 4):
        rows.append(b"%d,s%03d,%d.%02d,%d" % (i // 4, raw[i], raw[i + 1] * 7, raw[i + 2] % 100, raw[i + 3] & 1))
    return (b"\n".join(rows) + b"\n")[:size]


def json_doc(rng, seed_label, size):
    """A valid JSON object of about size bytes (never truncated)."""
    doc = {
        "id": rng.below(10**9),
        "name": text(seed_label + ":name", 24).decode().strip(),
        "score": rng.below(10**6) / 1000,
        "notes": text(seed_label, max(size - 100, 1)).decode().splitlines(),
    }
    out = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
    while len(out) > size and doc["notes"]:
        del doc["notes"][-(len(out) - size) // 64 - 1 :]
        out = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
    return out


def content(rng, kind, label, size):
    """The bytes of a file of this kind (its extension) and size."""
    if size == 0:
        return b""
    if kind in ("txt", "log", "md"):
        return text(label, size)
    if kind == "csv":
        return csv(label, size)
    if kind == "json":
        return json_doc(rng, label, size)
    return stream(SEED, label, size)


def make_dirs(rng):
    """NR_DIRS directories: each new one goes under a random existing one
    (so the tree is bushy near the top, deep in a few places), plus one
    chain 10 deep.
    """
    dirs = list(TOP)
    while len(dirs) < NR_DIRS:
        parent = dirs[rng.below(len(dirs))]
        if parent.count("/") >= 6:
            continue
        name = "%s-%03d" % (WORDS[rng.below(len(WORDS))], rng.below(1000))
        path = parent + "/" + name
        if path not in dirs:
            dirs.append(path)
    dirs.append("data/deep/" + "/".join("level-%d" % i for i in range(1, 9)))
    dirs += ["data/with space", "docs/ünïcødé", "results/日本語"]
    return dirs


def write(out, path, data, mode):
    """Create a file with an explicit mode (not the umask's)."""
    full = os.path.join(out, path)
    with open(full, "wb") as f:
        f.write(data)
    os.chmod(full, mode)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: smallfiles.py OUTDIR")
    out = sys.argv[1]
    rng = Rng(SEED, "tree")
    dirs = make_dirs(rng)
    for d in dirs + ["empty/one", "empty/two/three"]:
        os.makedirs(os.path.join(out, d), exist_ok=True)

    names = set()
    for i in range(NR_FILES - 4):
        d = dirs[rng.below(len(dirs))]
        kind = KINDS[rng.below(len(KINDS))]
        size = 0 if rng.chance(0.02) else rng.log_uniform(MIN_SIZE, MAX_SIZE)
        mode = 0o644
        if size == 0:
            kind = "done"
        elif rng.chance(0.01):
            kind, mode = "sh", 0o755
        path = "%s/%s-%05d.%s" % (d, WORDS[rng.below(len(WORDS))], i, kind)
        names.add(path)
        if kind == "sh":
            body = text("file:%d" % i, size).replace(b"\n", b"\n# ")
            data = (b"#!/bin/sh\n# " + body)[: max(size, 16)].rstrip(b"# ") + b"\nexit 0\n"
        else:
            data = content(rng, kind, "file:%d" % i, size)
        write(out, path, data, mode)

    os.makedirs(os.path.join(out, "data/large"), exist_ok=True)
    for j, (kind, mib) in enumerate([("bin", 4), ("bin", 1), ("txt", 3), ("csv", 2)]):
        path = "data/large/large-%d.%s" % (j, kind)
        write(out, path, content(rng, kind, "large:%d" % j, mib << 20), 0o644)

    for dirpath, _, _ in os.walk(out):
        os.chmod(dirpath, 0o755)


if __name__ == "__main__":
    main()
