#!/usr/bin/python3
"""accel pipeline bench: each task's own reads, drawn from the reference.

  reads.py GENOME.FA OUTDIR COUNT TASK...

Writes OUTDIR/taskI.fq for each TASK number I: COUNT 100 bp reads sampled
from GENOME.FA exactly as images/genome draws the sample's reads.fq
(genome.write_reads: N-free windows, either strand, 0-3 substitutions),
from a pseudo-random sequence labelled "pipeline-task-I", so every task
has different reads and the same task the same bytes on every run.
"""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "images", "genome"))
import genome  # noqa: E402


def read_fasta(path):
    """[(name, bases)] of a FASTA file."""
    chroms, name, lines = [], None, []
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b">"):
                if name is not None:
                    chroms.append((name, b"".join(lines)))
                name, lines = line[1:].split()[0].decode(), []
            else:
                lines.append(line.rstrip(b"\n"))
    if name is not None:
        chroms.append((name, b"".join(lines)))
    return chroms


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: reads.py GENOME.FA OUTDIR COUNT TASK...")
    chroms = read_fasta(sys.argv[1])
    for task in sys.argv[4:]:
        out = os.path.join(sys.argv[2], "task%d.fq" % int(task))
        genome.write_reads(out + ".tmp", chroms, "pipeline-task-%d" % int(task), int(sys.argv[3]))
        os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
