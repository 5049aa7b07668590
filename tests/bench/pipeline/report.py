#!/usr/bin/python3
"""accel workflow benches: the table, ratios and targets of one run.

  report.py pipeline ROWS --n N --jobs J --reads R --index-bytes B
            --image-bytes B --command CMD [--note TEXT] [--doc FILE]
      ROWS holds one JSON object per way (tests/bench/pipeline/bench
      writes them with results.py add): way (a, b, c, h, l, kK), label, nodes,
      total_s, mount_s, peak_bytes, the origin's counts (gets,
      origin_bytes, manifest_bytes, ...) and times,
      "start,ready,first,end;..." for each task.  Markers in FILE:
      <!-- pipeline-nN:begin --> and <!-- pipeline-nN:end -->.

  report.py reader ROWS --files N --workers W --bytes B --command CMD
            [--note TEXT] [--doc FILE]
      ROWS holds one JSON object per epoch (tests/bench/pipeline/reader):
      way (local, s3 or accel), epoch, seconds, the origin's counts.
      Markers: <!-- reader:begin --> and <!-- reader:end -->.

Prints the table and issue 16's targets as Markdown; with --doc, also
puts them into FILE between the markers.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from results import fmt_bytes, fmt_ratio, splice_readme  # noqa: E402


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))
    return v[k]


def task_times(row):
    return [[float(x) for x in t.split(",")] for t in str(row["times"]).split(";") if t]


def run_s(row):
    """The pipeline's own run (Snakemake's), without the node's start-up."""
    return row["total_s"] - row["mount_s"]


def fmt_mib(n):
    return "-" if n in (None, "") else "%.0f MiB" % (float(n) / (1 << 20))


def verdict(ok):
    return "**MET**" if ok else "**NOT MET**"


def render(rows, a):
    by = {r["way"]: r for r in rows}
    head = ["way", "pipeline", "node start-up", "task start latency p50 / p95", "index copy p50",
            "bytes from S3", "GETs", "peak RAM", "pipeline / (a)", "with start-up / (a)"]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = by.get("a")
    for r in rows:
        t = task_times(r)
        lat = [first - start for start, _, first, _ in t]
        copy = [ready - start for start, ready, _, _ in t]
        md.append("| " + " | ".join([
            "(%s) %s" % (r["way"], r["label"]),
            "%.1f s" % run_s(r),
            "%.1f s" % r["mount_s"] if r["way"] not in ("a", "l") else "-",
            "%.2f / %.2f s" % (percentile(lat, 50), percentile(lat, 95)),
            "%.2f s" % percentile(copy, 50) if r["way"] == "a" else "-",
            fmt_bytes(r.get("origin_bytes", 0)),
            str(r.get("gets", 0)),
            fmt_mib(r.get("peak_bytes")),
            fmt_ratio(run_s(r) / run_s(base)) if base else "-",
            fmt_ratio(r["total_s"] / base["total_s"]) if base else "-",
        ]) + " |")
    md.append("")
    md.append("**Targets** (issue 16; the runtime target is set for N = 32):")
    md.append("")
    b, c = by.get("b"), by.get("c")
    if base and b:
        x = run_s(b) / run_s(base)
        md.append("- %s (b) total runtime <= 0.5x (a): %.2fx (%.1f s vs %.1f s; with the node's "
                  "start-up, accel-mount, %.2fx)%s" % (
                      verdict(x <= 0.5), x, run_s(b), run_s(base), b["total_s"] / base["total_s"],
                      "" if a.n == 32 else "; N = %d here" % a.n))
        y = b.get("origin_bytes", 0) / max(1, base.get("origin_bytes", 0))
        md.append("- %s (b) bytes from S3 <= 1/N of (a): %.3f of (a), 1/N = %.3f (%s vs %s)" % (
            verdict(y <= 1.0 / a.n), y, 1.0 / a.n, fmt_bytes(b.get("origin_bytes", 0)),
            fmt_bytes(base.get("origin_bytes", 0))))
        if b.get("peak_bytes") and base.get("peak_bytes"):
            md.append("- INFO: (b) peak RAM / (a): %.2f" % (b["peak_bytes"] / base["peak_bytes"]))
    if c:
        chunks = c.get("image_bytes", 0)
        md.append("- %s (c) 0 bytes from S3: %s (%s of image chunks, %s of manifest, %d GETs)" % (
            verdict(c.get("origin_bytes", 0) == 0), fmt_bytes(c.get("origin_bytes", 0)),
            fmt_bytes(chunks), fmt_bytes(c.get("manifest_bytes", 0)), c.get("gets", 0)))
    floor = by.get("l")
    if floor and base:
        md.append("- INFO: the floor, (l) the index already on local disk (nothing fetched or "
                  "copied): pipeline %.1f s, %.2fx (a); (b) takes %.2fx (l), (c) %s" % (
                      run_s(floor), run_s(floor) / run_s(base),
                      run_s(b) / run_s(floor) if b else float("nan"),
                      "%.2fx (l)" % (run_s(c) / run_s(floor)) if c else "not run"))
    h = by.get("h")
    if b and h:
        lb = [first - start for start, _, first, _ in task_times(b)]
        lh = [first - start for start, _, first, _ in task_times(h)]
        md.append("- INFO: the hot list (h) against (b): pipeline %.2fx, start latency p50 %.2f s "
                  "vs %.2f s, %s vs %s from S3" % (
                      run_s(h) / run_s(b), percentile(lh, 50), percentile(lb, 50),
                      fmt_bytes(h.get("origin_bytes", 0)), fmt_bytes(b.get("origin_bytes", 0))))
    for r in rows:
        if not r["way"].startswith("k") or not b:
            continue
        k = r["nodes"]
        z = r.get("origin_bytes", 0) / max(1, b.get("origin_bytes", 0))
        md.append("- %s %d nodes take about %d x one node's working set from S3, not %d x N: "
                  "%.2f x one cold node's bytes (%s vs %s); the status quo took %s" % (
                      verdict(z <= k * 1.1), k, k, k, z, fmt_bytes(r.get("origin_bytes", 0)),
                      fmt_bytes(b.get("origin_bytes", 0)),
                      fmt_bytes(base.get("origin_bytes", 0)) if base else "-"))
    md.append("")
    md.append("N = %d tasks, %d at once (snakemake --cores %d, bowtie2 -p 1), %d reads each; "
              "index %s in 6 objects, image %s. Made by `%s`." % (
                  a.n, a.jobs, a.jobs, a.reads, fmt_bytes(a.index_bytes), fmt_bytes(a.image_bytes),
                  a.command))
    if a.note:
        md.append(a.note)
    return "\n".join(md) + "\n"


LABELS = {"local": "local disk (reference)",
          "stack": "the image through nbdfuse + loop from nbdkit file (no plugin)",
          "s3": "status quo: GET per shard from S3", "accel": "accel mount (cold cache at epoch 1)"}


def render_reader(rows, a):
    by = {(r["way"], r["epoch"]): r for r in rows}
    md = ["| way | epoch 1 | epoch 2 | epoch 3 | bytes from S3 (epochs 1 / 2 / 3) | GETs |",
          "|---|---|---|---|---|---|"]
    for way in ("local", "stack", "s3", "accel"):
        if (way, 1) not in by:
            continue
        e = [by[(way, i)] for i in (1, 2, 3)]
        md.append("| %s | %s | %s / %s | %s |" % (
            LABELS[way], " | ".join("%.1f s" % r["seconds"] for r in e),
            " / ".join(fmt_bytes(r.get("origin_bytes", 0)) for r in e[:2]),
            fmt_bytes(e[2].get("origin_bytes", 0)), " / ".join(str(r.get("gets", 0)) for r in e)))
    md += ["", "**Targets** (issue 16):", ""]
    if ("accel", 3) in by:
        later = [by[("accel", i)] for i in (2, 3)]
        nbytes = sum(r.get("origin_bytes", 0) for r in later)
        md.append("- %s accel's epochs 2 and 3 take 0 bytes from S3: %s" % (
            "**MET**" if nbytes == 0 else "**NOT MET**", fmt_bytes(nbytes)))
        if ("local", 3) in by:
            x = [by[("accel", i)]["seconds"] / by[("local", i)]["seconds"] for i in (2, 3)]
            md.append("- %s accel's epochs 2 and 3 within 1.2x of local disk: %.2fx and %.2fx" % (
                "**MET**" if max(x) <= 1.2 else "**NOT MET**", x[0], x[1]))
        if ("stack", 3) in by:
            z = [by[("accel", i)]["seconds"] / by[("stack", i)]["seconds"] for i in (2, 3)]
            md.append("- INFO: accel's epochs 2 and 3 take %.2fx and %.2fx the time of the same stack "
                      "without the plugin (nbdkit file)" % tuple(z))
        if ("s3", 3) in by:
            y = [by[("s3", i)]["seconds"] / by[("accel", i)]["seconds"] for i in (1, 2, 3)]
            md.append("- INFO: the status quo's epochs take %.2fx, %.2fx and %.2fx accel's" % tuple(y))
    md += ["", "%d shards, %s, %d Dask workers (processes); the page cache dropped before every "
           "epoch. Made by `%s`." % (a.files, fmt_bytes(a.bytes), a.workers, a.command)]
    if a.note:
        md.append(a.note)
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("pipeline", "reader"))
    ap.add_argument("rows")
    for opt in ("--n", "--jobs", "--reads", "--index-bytes", "--image-bytes", "--files", "--workers",
                "--bytes"):
        ap.add_argument(opt, type=int)
    ap.add_argument("--command", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--doc")
    a = ap.parse_args()
    with open(a.rows) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if a.kind == "pipeline":
        text, marker = render(rows, a), "pipeline-n%d" % a.n
    else:
        text, marker = render_reader(rows, a), "reader"
    sys.stdout.write(text)
    return splice_readme(a.doc, text, marker) if a.doc else 0


if __name__ == "__main__":
    sys.exit(main())
