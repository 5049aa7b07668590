#!/usr/bin/python3
"""accel bench: collect result rows and write the report.

  results.py add ROWS KEY=VALUE...
      Append one row (a JSON object a line) to ROWS.  Values that look like
      numbers are stored as numbers.

  results.py report ROWS META [--out FILE] [--readme README]
      Print the results table and the targets of issue 5, each MET or NOT
      MET with its figure, to stdout; with --out, write the same as
      Markdown to FILE; with --readme, also copy it into README between the
      lines <!-- bench:begin --> and <!-- bench:end -->.  META is a JSON
      object: date, machine, origin calibration, dataset sizes.

A row has: origin (local, s3like, rgw), workload (seq, rand, small,
align, hydrate), system (limit, file, accel, curl), phase (cold, warm, restart,
cold+hot),
seconds, rate and unit (MB/s, IOPS; none for the aligner), origin bytes
and GETs (the report adds GETs per GB), image/manifest bytes, touched
(bytes of the non-zero chunks the NBD client read; "origin / touched" is
image bytes over it), restarts, restarts_nonzero and restarts_max_bytes
(restart rows: how many restarts the row stands for, how many of the
others took bytes, the most), restarts_cpu_s (restart rows: nbdkit's
CPU seconds in each of the others, comma-separated: the row's CPU per
GiB is the median of those and its own), rss_kib (nbdkit's peak RSS in the phase),
cpu_s and cpu_runs (nbdkit's CPU seconds, lib.sh's nbd_cpu, over the
row's runs, and how many), cache_page_mib (page cache held by accel's cache files after
the row), ra_reads, ra_waits, ra_meta_waits and ra_unread_chunks (the
workload's traced reads replayed through accel's readahead detector by
readahead-replay: reads that would wait on a chunk not asked for first,
those outside files, chunks asked and never read), check (ok, or what
was wrong with the data read), timeout (1 if cut), and note.

CPU per GiB (issue 14): a cold row's CPU over the image bytes it
fetched; a warm or restart row's, per run, over the bytes of the chunks
the workload touches (its cold row's "touched").

Ratios: "to limit" is this row's speed over the limit's (same workload;
the rate when there is one, else the inverse of the time), so 1.00 is as
fast as a local file and less is slower.  "to alt." compares an accel row
with the curl+cache row of the same origin, workload and phase; a restart
is compared with curl's cold row, since the cache filter's cache does not
survive a restart, and so is a cold+hot-list row.
"""

import json
import os
import sys

TARGET_RSS_MIB = 64
TARGET_CPU_COLD = 3.0  # nbdkit CPU seconds per GiB fetched (issue 14)
TARGET_CPU_WARM = 1.0  # ... per GiB read, warm and restart
TARGET_PAGE_CACHE_MIB = 64  # page cache of accel's cache files
WORKLOADS = {
    "seq": "sequential checksum, big file",
    "rand": "fio random 4 KiB reads, QD16",
    "small": "read every small file",
    "align": "bowtie2 alignment, genome",
    "hydrate": "prefetch=all of the big image",
}
ORIGINS = {"local": "local disk", "s3like": "S3-like", "rgw": "radosgw"}


def parse_value(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def add(path, pairs):
    row = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            sys.stderr.write("results.py add: %s: not KEY=VALUE\n" % p)
            return 2
        row[k] = parse_value(v)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    return 0


def speed(row):
    """A number where bigger is faster, comparable within a workload."""
    if row.get("rate"):
        return float(row["rate"])
    if row.get("timeout"):
        return None
    if row.get("seconds"):
        return 1.0 / float(row["seconds"])
    return None


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def ratio(a, b):
    sa, sb = (speed(a) if a else None), (speed(b) if b else None)
    if sa is None or not sb:
        return None
    return sa / sb


def alt_row(rows, r):
    if r["system"] != "accel":
        return None
    phase = "warm" if r["phase"] == "warm" else "cold"
    return find(rows, origin=r["origin"], workload=r["workload"], system="curl", phase=phase)


def fmt_bytes(n):
    if n in (None, ""):
        return "-"
    n = float(n)
    if n == 0:
        return "0"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return "%.1f %s" % (n / size, unit)
    return "%d B" % n


def fmt_ratio(x):
    return "-" if x is None else ("%.2f" % x if x < 10 else "%.1f" % x)


def fmt_gets_per_gb(r):
    """GETs per GB (1e9 bytes) the origin served: what a workload costs
    against S3's per-prefix request rate and its per-request price."""
    gets, nbytes = r.get("gets"), r.get("origin_bytes")
    if not gets or not nbytes:
        return "-"
    return "%.0f" % (gets / (float(nbytes) / 1e9))


def fmt_rate(r):
    if r.get("rate") in (None, "", 0):
        return "-"
    rate = float(r["rate"])
    text = "%.0f" % rate if rate >= 100 else "%.1f" % rate
    return "%s %s" % (text, r.get("unit", ""))


def cpu_per_gib(rows, r):
    """nbdkit CPU seconds per GiB fetched (cold) or read (warm, restart)."""
    if r.get("cpu_s") in (None, "") or not r.get("cpu_runs"):
        return None
    if r["phase"].startswith("cold"):
        b = r.get("image_bytes") or r.get("touched")
    else:
        cold = find(rows, origin=r["origin"], workload=r["workload"], system=r["system"],
                    phase="cold")
        b = cold.get("touched") if cold else None
    if not b:
        return None
    cpu = float(r["cpu_s"]) / r["cpu_runs"]
    if r.get("restarts_cpu_s"):
        # Restart rows: the median of every restart's nbdkit (one run
        # varies by a third here), the row's own included.
        runs = sorted([cpu] + [float(x) for x in str(r["restarts_cpu_s"]).split(",")])
        cpu = runs[len(runs) // 2] if len(runs) % 2 else (runs[len(runs) // 2 - 1] + runs[len(runs) // 2]) / 2
    return cpu / (float(b) / 2**30)


def fmt_cpu(x):
    return "-" if x is None else "%.2f" % x


def touched_ratio(r):
    """Origin bytes (image only) over the bytes of the chunks the workload
    touched, for the rows that know both (accel's cold rows)."""
    if r["system"] != "accel" or not r.get("touched") or r.get("image_bytes") is None:
        return None
    return float(r["image_bytes"]) / float(r["touched"])


def row_label(r):
    if r["system"] == "limit":
        return "limit"
    if r["system"] == "file":
        return "nbdkit file"
    name = "accel" if r["system"] == "accel" else "curl+cache"
    return "%s %s" % (name, r["phase"])


def table(rows):
    head = ["workload", "origin", "system", "seconds", "speed", "CPU s/GiB", "cache page cache",
            "origin bytes", "GETs", "GETs/GB", "origin / touched", "peak RSS", "to limit",
            "to alt."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {"limit": 0, "file": 1, "accel": 2, "curl": 3}
    phases = {"cold": 0, "cold+hot": 1, "warm": 2, "restart": 3}
    origins = {"local": 0, "s3like": 1, "rgw": 2}
    wl = list(WORKLOADS)
    for r in sorted(rows, key=lambda r: (origins.get(r["origin"], 9) > 1,
                                          wl.index(r["workload"]) if r["workload"] in wl else 9,
                                          origins.get(r["origin"], 9),
                                          order.get(r["system"], 9), phases.get(r["phase"], 9))):
        limit = find(rows, workload=r["workload"], system="limit")
        secs = "%.2f" % float(r["seconds"]) if r.get("seconds") not in (None, "") else "-"
        if r.get("timeout"):
            secs = "> " + secs + " (cut)"
        if r.get("check", "ok") != "ok":
            secs += " (WRONG DATA: %s)" % r["check"]
        rss = "%.1f MiB" % (r["rss_kib"] / 1024.0) if r.get("rss_kib") else "-"
        origin = ORIGINS.get(r["origin"], r["origin"])
        pages = r.get("cache_page_mib")
        cells = [WORKLOADS.get(r["workload"], r["workload"]), origin, row_label(r), secs,
                 fmt_rate(r), fmt_cpu(cpu_per_gib(rows, r)),
                 "-" if pages in (None, "") else "%.1f MiB" % float(pages),
                 fmt_bytes(r.get("origin_bytes")) if r.get("origin_bytes") is not None else "-",
                 str(r["gets"]) if r.get("gets") is not None else "-",
                 fmt_gets_per_gb(r),
                 fmt_ratio(touched_ratio(r)),
                 rss,
                 fmt_ratio(ratio(r, limit)) if r["system"] != "limit" else "1.00",
                 fmt_ratio(ratio(r, alt_row(rows, r)))]
        if r.get("note"):
            cells[2] += " (%s)" % r["note"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(rows, meta):
    """Each target: (met or None when not measured, title, figure)."""
    out = []

    def row(**kw):
        return find(rows, origin="s3like", **kw)

    # 1. warm within 5 % of the limit, every workload (and, to tell the
    # plugin's cost from the NBD stack's, the ratio to nbdkit file).
    figs, ok = [], True
    for w in WORKLOADS:
        r, lim = row(workload=w, system="accel", phase="warm"), find(rows, workload=w, system="limit")
        x = ratio(r, lim)
        if x is None:
            continue
        y = ratio(r, find(rows, workload=w, system="file"))
        figs.append("%s %.2f" % (w, x) + ("" if y is None else " (%.2f of nbdkit file)" % y))
        ok = ok and x >= 0.95
    out.append((ok if figs else None, "warm within 5 % of the limit (speed ratio >= 0.95)",
                ", ".join(figs) or "not measured"))

    # 2. cold sequential >= 80 % of what the limit and the origin allow.
    r, lim = row(workload="seq", system="accel", phase="cold"), find(rows, workload="seq", system="limit")
    agg = meta.get("origin", {}).get("aggregate_mbs")
    if r and lim and r.get("rate"):
        ceiling = float(lim["rate"])
        bound = "limit %.0f MB/s" % ceiling
        if agg and agg < ceiling:
            ceiling, bound = agg, "origin's aggregate %.0f MB/s (limit %.0f)" % (agg, float(lim["rate"]))
        x = float(r["rate"]) / ceiling
        out.append((x >= 0.8, "cold sequential >= 80 % of the limit's speed (or of the origin's aggregate bandwidth if lower)",
                    "%.0f MB/s = %.2f x %s" % (float(r["rate"]), x, bound)))
    else:
        out.append((None, "cold sequential >= 80 % of the limit's speed", "not measured"))

    # 3. cold sequential >= 5x curl+cache.
    c = row(workload="seq", system="curl", phase="cold")
    x = ratio(r, c)
    out.append((None if x is None else x >= 5, "cold sequential >= 5x the curl+cache alternative",
                "not measured" if x is None else "%.1fx (%s vs %s)" % (x, fmt_rate(r), fmt_rate(c))))

    # 4. cold random IOPS >= 20x curl+cache.
    r, c = row(workload="rand", system="accel", phase="cold"), row(workload="rand", system="curl", phase="cold")
    x = ratio(r, c)
    out.append((None if x is None else x >= 20, "cold random 4 KiB reads >= 20x the alternative's IOPS",
                "not measured" if x is None else "%.1fx (%s vs %s)" % (x, fmt_rate(r), fmt_rate(c))))

    # 5. a restart takes nothing from the origin, in every run (a row
    # stands for restarts= runs: itself and restarts_nonzero others
    # that took bytes, the most restarts_max_bytes).
    rs = [r for r in rows if r["system"] == "accel" and r["phase"] == "restart"]
    bad, runs = [], 0
    for r in rs:
        n = int(r.get("restarts", 1))
        nonzero = int(r.get("restarts_nonzero", 0)) + (1 if r.get("origin_bytes", 0) else 0)
        worst = max(int(r.get("restarts_max_bytes", 0)), int(r.get("origin_bytes", 0)))
        runs += n
        if nonzero:
            bad.append("%s: %d of %d runs took bytes, up to %s" % (r["workload"], nonzero, n,
                                                                   fmt_bytes(worst)))
    out.append((None if not rs else not bad, "a restart takes 0 bytes from the origin, every run",
                "not measured" if not rs else ("; ".join(bad) if bad else
                                               "0 bytes in all %d runs (%d restart rows)" % (runs, len(rs)))))

    # 6. origin bytes <= 1.05x the chunks touched, every cold accel row.
    figs, ok = [], True
    for r in rows:
        if not r["phase"].startswith("cold") or touched_ratio(r) is None:
            continue
        x = touched_ratio(r)
        ok = ok and x <= 1.05
        figs.append("%s%s%s %.2f" % (r["workload"], "" if r["origin"] == "s3like" else "/" + r["origin"],
                                     "" if r["phase"] == "cold" else "/" + r["phase"], x))
    out.append((ok if figs else None, "origin bytes <= 1.05x the bytes of the chunks touched (cold rows; image bytes, manifest apart)",
                ", ".join(figs) or "not measured"))

    # 7. plugin RSS.
    rss = [r["rss_kib"] for r in rows if r["system"] == "accel" and r.get("rss_kib")]
    big = meta.get("datasets", {}).get("big", {}).get("image_bytes")
    out.append((None if not rss else max(rss) <= TARGET_RSS_MIB * 1024,
                "plugin peak RSS <= %d MiB whatever the image size" % TARGET_RSS_MIB,
                "not measured" if not rss else "max %.1f MiB over %d accel rows%s" % (
                    max(rss) / 1024.0, len(rss), " (largest image %s)" % fmt_bytes(big) if big else "")))

    # Issue 14: CPU per byte, and the cache's files out of the page cache.
    for phases, limit, title in ((("cold",), TARGET_CPU_COLD, "cold rows: nbdkit CPU <= %.0f s per GiB fetched"),
                                 (("warm", "restart"), TARGET_CPU_WARM,
                                  "warm and restart rows: nbdkit CPU <= %.0f s per GiB read")):
        figs, ok = [], True
        for r in rows:
            if r["system"] != "accel" or r["phase"] not in phases:
                continue
            x = cpu_per_gib(rows, r)
            if x is None:
                continue
            ok = ok and x <= limit
            figs.append("%s%s %s %.2f" % (r["workload"], "" if r["origin"] == "s3like" else "/" + r["origin"],
                                          r["phase"], x))
        out.append((ok if figs else None, title % limit, ", ".join(figs) or "not measured"))
    # The same reads served by nbdkit's file plugin through the same
    # stack: what nbdkit itself spends per request, which no plugin saves
    # (small reads cost it more per GiB than large ones).
    floor = ["%s %.2f" % (r["workload"], x) for r in rows
             if r["system"] == "file" and (x := cpu_per_gib(rows, r)) is not None]
    if floor:
        out.append(("info", "nbdkit file's CPU for the same reads through the same stack, s per GiB "
                    "(nbdkit's own cost per request, the floor under any plugin)",
                    ", ".join(floor)))
    pages = [float(r["cache_page_mib"]) for r in rows
             if r["system"] == "accel" and r.get("cache_page_mib") not in (None, "")]
    out.append((None if not pages else max(pages) <= TARGET_PAGE_CACHE_MIB,
                "accel's cache files hold <= %d MiB of page cache after every row" % TARGET_PAGE_CACHE_MIB,
                "not measured" if not pages else "max %.1f MiB over %d accel rows" % (max(pages), len(pages))))

    # Part 3: the hot list (informational until prefetch lands).
    hot = row(workload="align", system="accel", phase="cold+hot")
    cold = row(workload="align", system="accel", phase="cold")
    if hot and cold and hot.get("seconds"):
        fig = "aligner cold %.2f s, cold with the hot list %.2f s (%.2fx)" % (
            float(cold["seconds"]), float(hot["seconds"]), float(cold["seconds"]) / float(hot["seconds"]))
    else:
        fig = meta.get("hot_note", "not measured: needs prefetch")
    out.append(("info", "aligner cold time with and without the hot list", fig))
    return out


def diagnostics(rows):
    """Lines on the origin traffic of each cold row: how the time went."""
    out = []
    for r in rows:
        if r["system"] == "limit" or not r["phase"].startswith("cold") or not r.get("gets"):
            continue
        line = "%s, %s (%s): %d GETs of %s on average" % (
            WORKLOADS.get(r["workload"], r["workload"]), row_label(r),
            ORIGINS.get(r["origin"], r["origin"]), r["gets"],
            fmt_bytes(float(r.get("image_bytes", 0)) / r["gets"]))
        if r.get("get_ms"):
            line += ", %.0f ms each, %.1f in flight while any was" % (r["get_ms"], r.get("in_flight", 0))
        if r.get("busy_s") and r.get("seconds"):
            line += "; origin busy %.2f s of the row's %.2f s" % (r["busy_s"], float(r["seconds"]))
        if r.get("nbd_reads"):
            line += "; the client's reads: %d, %s" % (r["nbd_reads"], fmt_bytes(r.get("nbd_read_bytes")))
        if r["system"] == "accel" and r.get("ra_reads"):
            line += ("; replayed through the readahead detector, %d of them wait on a chunk "
                     "not asked for first (%d outside files), %d chunks asked and never read") % (
                r["ra_waits"], r.get("ra_meta_waits", 0), r.get("ra_unread_chunks", 0))
        out.append(line)
    return out


def render(rows, meta):
    md = ["# accel benchmark results", ""]
    md.append("Written by `make bench` (tests/bench/bench) on %s; %s run." % (
        meta.get("date", "?"), meta.get("variant", "?")))
    md.append("")
    for k in ("machine", "software", "load", "origin_text", "datasets_text", "notes"):
        if meta.get(k):
            md.append("- %s" % meta[k])
    md.append("")
    md += table(rows)
    md.append("")
    md.append("## Targets (issues 5 and 14)")
    md.append("")
    for met, title, fig in targets(rows, meta):
        word = {True: "MET", False: "NOT MET", None: "NOT MEASURED", "info": "INFO"}[met]
        md.append("- **%s**: %s: %s" % (word, title, fig))
    md.append("")
    diag = diagnostics(rows)
    if diag:
        md.append("## Origin traffic of the cold rows")
        md.append("")
        md += ["- " + d for d in diag]
        md.append("")
    return "\n".join(md)


def splice_readme(path, text, marker="bench"):
    """Put text into the file at path between <!-- MARKER:begin --> and
    <!-- MARKER:end --> (tests/bench/pipeline/report.py uses its own
    markers in docs/workflows.md).
    """
    begin, end = "<!-- %s:begin -->" % marker, "<!-- %s:end -->" % marker
    with open(path) as f:
        readme = f.read()
    i, j = readme.find(begin), readme.find(end)
    if i < 0 or j < i:
        sys.stderr.write("results.py: %s: no %s ... %s markers\n" % (path, begin, end))
        return 1
    # The report's own title would clash with the README's headings.
    body = "\n".join(l if not l.startswith("#") else "#" + l for l in text.splitlines()
                     if not l.startswith("# "))
    with open(path + ".tmp", "w") as f:
        f.write(readme[: i + len(begin)] + "\n" + body.strip() + "\n" + readme[j:])
    os.rename(path + ".tmp", path)
    return 0


def report(args):
    rows_path, meta_path = args[0], args[1]
    out = readme = None
    rest = args[2:]
    while rest:
        if rest[0] == "--out" and len(rest) > 1:
            out, rest = rest[1], rest[2:]
        elif rest[0] == "--readme" and len(rest) > 1:
            readme, rest = rest[1], rest[2:]
        else:
            sys.stderr.write("results.py report: bad argument %s\n" % rest[0])
            return 2
    with open(rows_path) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    with open(meta_path) as f:
        meta = json.load(f)
    text = render(rows, meta)
    sys.stdout.write(text)
    if out:
        with open(out, "w") as f:
            f.write(text)
    if readme:
        return splice_readme(readme, text)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "add":
        return add(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "report":
        return report(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
