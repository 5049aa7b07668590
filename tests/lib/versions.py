#!/usr/bin/python3
"""accel: what a node holding one version of an image fetches for the next.

Issue 12's measure, from two manifests (sqlite: meta, chunks(idx, sha256,
zero), files, extents, nodes), shared by tests/test-mkimage-base.sh and
tests/bench/versions:

  versions.py digests DIR OUT
      the SHA-256 of every regular file under DIR (symbolic links left
      out), one "sha256 /path" line each, to OUT: a version's contents,
      kept without keeping a copy of its tree.

  versions.py compare OLD NEW [--changed BYTES] [--same OLD_D NEW_D]
                              [--identity] [--renamed FROM TO]...
      prints "chunks bytes data target same pct": the distinct chunks of
      NEW that OLD lacks and their bytes (what a node holding OLD
      fetches: all-zero chunks are never fetched, a chunk held under
      another index is copied, a partial last chunk counts its real
      size), NEW's non-zero bytes, the target (BYTES rounded up to
      chunks plus 4 chunks; 0 without --changed), the files whose
      contents did not change (--same, from two digests files; else 0)
      and the share of NEW fetched, in %.  With --same, an unchanged
      file whose extents or inode number differ fails; with --identity,
      a file system UUID or hash seed that differs fails (ext4 built
      on a base).  --renamed: the directory /FROM is /TO in NEW (paths
      below it are compared under their new names; several apply in
      turn).  Failures exit 1
      with the reason on stderr.

  versions.py freed OLD NEW
      prints the chunks of NEW, not all zeros, that hold image bytes that
      were file data in OLD and are none in NEW (deleted, shrunk or
      moved files): a new image does not keep what was deleted (its
      free space is zeros), so these chunks change whatever the layout.

  versions.py shares OLD NEW [OLD NEW]...
      prints, for each pair, the share of NEW fetched (%), on one line:
      the other formats of a version, compared in one process.

  versions.py slots IMAGE
      the inodes in use of the ext4 IMAGE whose extent header is
      followed by stale entries past its count (read from the image's
      inode tables): their bytes differ from version to version,
      changing inode-table chunks for nothing.  Prints how many; exit
      1 if any.
"""
import sqlite3
import stat
import sys


def open_manifest(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    # Paths are the tree's bytes, which need not be UTF-8: as Python's
    # os functions give them (surrogateescape).
    db.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    return db, dict(db.execute("select key, value from meta"))


def fetched(old, new, nm):
    """The distinct chunks of NEW that OLD lacks: (chunks, bytes, data)."""
    size, cs = int(nm["image_size"]), int(nm["chunk_size"])
    have = {h for (h,) in old.execute("select sha256 from chunks where zero = 0")}
    need, data = {}, 0
    for idx, h in new.execute("select idx, sha256 from chunks where zero = 0"):
        n = min(cs, size - idx * cs)
        data += n
        if h not in have:
            need.setdefault(h, n)
    return len(need), sum(need.values()), data


def regular_files(top):
    """Every regular file under TOP (symbolic links left out), as paths
    relative to TOP, in a fixed order."""
    import os
    out = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, top))
    return out


def digests(top, out):
    import hashlib
    import os
    with open(out, "w", encoding="utf-8") as o:
        for rel in regular_files(top):
            h = hashlib.sha256()
            with open(os.path.join(top, rel), "rb") as fh:
                for b in iter(lambda: fh.read(1 << 20), b""):
                    h.update(b)
            o.write(f"{h.hexdigest()} {quote('/' + rel)}\n")


def quote(p):
    """A path on one line of text: backslashes and newlines escaped, and
    bytes that are not UTF-8 as \\xNN."""
    b = p.encode("utf-8", "surrogateescape")
    return b.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").decode(
        "utf-8", "backslashreplace")


def unquote(q):
    """quote's inverse."""
    import codecs
    b = codecs.escape_decode(q.encode("utf-8"))[0]
    return b.decode("utf-8", "surrogateescape")


def read_digests(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            h, p = line.rstrip("\n").split(" ", 1)
            out[unquote(p)] = h
    return out


def placement(db, path):
    """A file's extents and inode number, as the manifest records them."""
    # NB: the path's bytes, as stored (not UTF-8, maybe).
    raw = path.encode("utf-8", "surrogateescape")
    ext = db.execute("select e.file_offset, e.image_offset, e.length "
                     "from files f join extents e on e.file_id = f.id "
                     "where f.path = cast(? as text) order by e.file_offset",
                     (raw,)).fetchall()
    r = db.execute("select ino from nodes where path = cast(? as text)",
                   (raw,)).fetchone()
    return ext, r and r[0]


def dir_entries(db):
    """Each directory's path -> (its inode, {name: inode} of its entries)."""
    nodes = db.execute("select path, ino, mode from nodes").fetchall()
    dirs = {p: (i, {}) for p, i, m in nodes if stat.S_ISDIR(m)}
    for p, i, _ in nodes:
        parent, _, name = p.rpartition("/")
        if (parent or "/") in dirs and p != "/":
            dirs[parent or "/"][1][name] = i
    return dirs


def moved_dirs(old, new):
    """Directories with the same inode and entries in both versions whose
    blocks are not the same: a directory that did not change must not
    move (its chunks would change for nothing)."""
    blocks = lambda db, i: db.execute(
        "select lblk, block, count from node_blocks where ino = ? "
        "order by lblk", (i,)).fetchall()
    a, b = dir_entries(old), dir_entries(new)
    return [p for p in sorted(a) if p in b and a[p] == b[p]
            and blocks(old, a[p][0]) != blocks(new, b[p][0])]


def renamed_path(p, renamed):
    """p's name in the new version, where each (FROM, TO) in turn
    renamed /FROM (a later one may rename inside an earlier one's TO)."""
    for frm, to in renamed:
        frm, to = "/" + frm.strip("/"), "/" + to.strip("/")
        if p == frm or p.startswith(frm + "/"):
            p = to + p[len(frm):]
    return p


def compare(args):
    old_m, new_m = args[0], args[1]
    changed, same_files, identity, renamed = None, None, False, []
    rest = args[2:]
    while rest:
        if rest[0] == "--changed":
            changed, rest = int(rest[1]), rest[2:]
        elif rest[0] == "--renamed":
            renamed.append((rest[1], rest[2]))
            rest = rest[3:]
        elif rest[0] == "--same":
            same_files, rest = rest[1:3], rest[3:]
        elif rest[0] == "--identity":
            identity, rest = True, rest[1:]
        else:
            sys.exit(f"versions.py compare: {rest[0]}: unknown option")
    old, om = open_manifest(old_m)
    new, nm = open_manifest(new_m)
    if identity:
        for k in ("fs_uuid", "fs_hash_seed"):
            if om.get(k) != nm.get(k):
                sys.exit(f"{k} changed: {om.get(k)} -> {nm.get(k)}")
    nchunks, nbytes, data = fetched(old, new, nm)
    nsame = 0
    if same_files:
        a, b = read_digests(same_files[0]), read_digests(same_files[1])
        for p in sorted(a):
            q = renamed_path(p, renamed)
            if b.get(q) != a[p]:
                continue
            nsame += 1
            (oe, oi), (ne, ni) = placement(old, p), placement(new, q)
            if oe != ne:
                sys.exit(f"{q}: unchanged, but its extents moved")
            if oi != ni:
                sys.exit(f"{q}: unchanged, but its inode changed ({oi} -> {ni})")
        moved = moved_dirs(old, new)
        if moved:
            sys.exit(f"{moved[0]}: its entries did not change, but its "
                     f"blocks moved ({len(moved)} such directories)")
    cs = int(nm["chunk_size"])
    target = (changed + cs - 1) // cs + 4 if changed is not None else 0
    print(nchunks, nbytes, data, target, nsame,
          "%.1f" % (100 * nbytes / max(data, 1)))


def data_ranges(db):
    """The image's file data as sorted, merged [start, end) ranges."""
    out = []
    for a, n in db.execute("select image_offset, length from extents "
                           "order by image_offset"):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], a + n)
        else:
            out.append([a, a + n])
    return out


def freed(args):
    old, _ = open_manifest(args[0])
    new, nm = open_manifest(args[1])
    cs = int(nm["chunk_size"])
    now = data_ranges(new)
    zero = {i for (i,) in new.execute("select idx from chunks where zero = 1")}
    chunks, j = set(), 0
    for a, b in data_ranges(old):
        # The parts of [a, b) that no range of NEW covers.
        while j < len(now) and now[j][1] <= a:
            j += 1
        k, pos = j, a
        while pos < b:
            if k < len(now) and now[k][0] <= pos:
                pos = max(pos, now[k][1])
                k += 1
                continue
            end = min(b, now[k][0]) if k < len(now) else b
            chunks.update(range(pos // cs, (end - 1) // cs + 1))
            pos = end
    print(len(chunks - zero))


def shares(args):
    out = []
    for old_m, new_m in zip(args[0::2], args[1::2]):
        old, _ = open_manifest(old_m)
        new, nm = open_manifest(new_m)
        _, nbytes, data = fetched(old, new, nm)
        out.append("%.1f" % (100 * nbytes / max(data, 1)))
    print(*out)


def stale_slots(image):
    """The in-use inodes whose i_block has non-zero bytes past its
    extents, read from the ext4 image's inode tables."""
    bad = []
    u32 = lambda b, o: int.from_bytes(b[o:o + 4], "little")
    u16 = lambda b, o: int.from_bytes(b[o:o + 2], "little")
    with open(image, "rb") as f:
        f.seek(1024)
        sb = f.read(1024)
        bs = 1024 << u32(sb, 24)
        first, ipg, isz = u32(sb, 20), u32(sb, 40), u16(sb, 88)
        groups = -(-u32(sb, 0) // ipg)
        is64 = u32(sb, 96) & 0x80
        dsz = u16(sb, 254) if is64 else 32
        f.seek((first + 1) * bs)
        gdt = f.read(groups * dsz)
        for g in range(groups):
            d = gdt[g * dsz:(g + 1) * dsz]
            f.seek((u32(d, 8) | ((u32(d, 40) << 32) if is64 else 0)) * bs)
            table = f.read(ipg * isz)
            for k in range(ipg):
                i = table[k * isz:(k + 1) * isz]
                if u16(i, 26) == 0 or u16(i, 40) != 0xF30A:
                    continue  # free, or no extents (inline data, a link)
                n = u16(i, 42)
                if n <= 4 and any(i[40 + 12 + 12 * n:100]):
                    bad.append(g * ipg + k + 1)
    return bad


def slots(args):
    bad = stale_slots(args[0])
    print(len(bad))
    if bad:
        sys.exit("stale extent entries in inodes %s" %
                 " ".join(map(str, bad[:20])))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "digests":
        digests(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and len(sys.argv) % 2 == 0 and sys.argv[1] == "shares":
        shares(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "slots":
        slots(sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "freed":
        freed(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        compare(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
