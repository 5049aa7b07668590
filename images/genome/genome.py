"""accel sample image: a small synthetic reference genome and reads.

Writes OUTDIR/genome.fa (+ .fai) and OUTDIR/reads.fq; images/genome/build
runs this and then bowtie2-build.  The genome looks like a real assembly to
the tools that read one: four chromosomes (10 Mbp), 60-column FASTA, runs of
N (telomeres and assembly gaps), and lowercase soft-masked repeats.  The
repeats are real repeats -- mutated copies of a few "families", plus
microsatellites -- so an aligner meets multi-mapping reads as it would on a
real genome.  The reads are 100 bp single-end Illumina-style FASTQ sampled
from N-free windows of either strand with 0-3 substitutions each; each
read's comment says where it came from (chrom:pos:strand:mismatches, pos
1-based), so a test can check an aligner's answers.

Everything comes from the fixed seed below through images/lib/seeded.py, so
the output is byte-identical on every run.  Change SEED (or anything else
here) and every hash recorded elsewhere changes with it.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from seeded import Rng, stream  # noqa: E402

SEED = "accel-genome-v1"
CHROMS = [("chr1", 4_000_000), ("chr2", 3_000_000), ("chr3", 2_000_000), ("chr4", 1_000_000)]
LINE = 60
TELOMERE_N = 10_000
NR_READS = 4000
READ_LEN = 100

# Bulk bytes -> bases at about 41% GC, like the human genome: 75 of the 256
# byte values give A, 53 C, 53 G, 75 T.
BASES = bytes(b"A" * 75 + b"C" * 53 + b"G" * 53 + b"T" * 75)
COMPLEMENT = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")

# Repeat families: (name, consensus length, copies per Mbp, divergence %).
# Roughly SINE-, LINE- and satellite-like; about 9% of the genome.
FAMILIES = [("sine", 300, 120, 12), ("line", 3000, 12, 18), ("sat", 171, 25, 6), ("ltr", 600, 20, 15)]
MICROSATS = [b"CA", b"TTAGGG", b"AT", b"GGC", b"AAAT"]


def reverse_complement(seq):
    return bytes(seq).translate(COMPLEMENT)[::-1]


def mutate(rng, seq, percent):
    """Substitute about percent% of the bases of seq (a bytearray)."""
    for _ in range(len(seq) * percent // 100):
        i = rng.below(len(seq))
        seq[i] = b"ACGT"[(b"ACGT".index(seq[i]) + rng.between(1, 3)) % 4]


def make_chromosome(name, length, consensus):
    """The bases of one chromosome, soft-masked and with its gaps."""
    rng = Rng(SEED, name + ":layout")
    seq = bytearray(stream(SEED, name + ":bases", length).translate(BASES))

    # Interspersed repeats: a mutated copy of (part of) a family's
    # consensus, either strand, soft-masked.
    for fam, (_, flen, per_mbp, div) in zip(consensus, FAMILIES):
        for _ in range(per_mbp * length // 1_000_000):
            # LINE copies are mostly 5'-truncated; others nearly whole.
            start = rng.below(flen * 3 // 4 if flen > 1000 else flen // 10)
            piece = bytearray(fam[start:])
            mutate(rng, piece, div)
            if rng.chance(0.5):
                piece = bytearray(reverse_complement(piece))
            at = rng.below(length - len(piece))
            seq[at : at + len(piece)] = piece.lower()

    # Microsatellites: short tandem repeats, soft-masked.
    for _ in range(40 * length // 1_000_000):
        unit = MICROSATS[rng.below(len(MICROSATS))]
        run = (unit * 200)[: rng.between(20, 300)]
        at = rng.below(length - len(run))
        seq[at : at + len(run)] = run.lower()

    # Telomeric repeats inside the N caps, then the caps, then 2-4 assembly
    # gaps of 100 bp to 50 kbp.
    tel = (b"TTAGGG" * 400).lower()
    seq[TELOMERE_N : TELOMERE_N + len(tel)] = tel
    seq[length - TELOMERE_N - len(tel) : length - TELOMERE_N] = reverse_complement(tel)
    seq[:TELOMERE_N] = b"N" * TELOMERE_N
    seq[length - TELOMERE_N :] = b"N" * TELOMERE_N
    for _ in range(rng.between(2, 4)):
        gap = rng.log_uniform(100, 50_000)
        at = rng.between(TELOMERE_N * 5, length - TELOMERE_N * 5 - gap)
        seq[at : at + gap] = b"N" * gap
    return bytes(seq)


def write_fasta(path, chroms):
    """FASTA with LINE-column lines, and its samtools-style .fai."""
    fai = []
    with open(path, "wb") as f:
        for name, seq in chroms:
            f.write(b">%s\n" % name.encode())
            fai.append(f"{name}\t{len(seq)}\t{f.tell()}\t{LINE}\t{LINE + 1}\n")
            for i in range(0, len(seq), LINE):
                f.write(seq[i : i + LINE] + b"\n")
    with open(path + ".fai", "w") as f:
        f.writelines(fai)


def quality(rng, mismatches):
    """Phred+33 qualities: high, falling towards the 3' end, lower where a
    base was substituted (as a sequencing error would be).
    """
    q = bytearray()
    for i in range(READ_LEN):
        v = 38 - i * 8 // READ_LEN - rng.below(6)
        if rng.chance(0.01):
            v = 2 + rng.below(10)
        q.append(33 + v)
    for i in mismatches:
        q[i] = 33 + 5 + rng.below(15)
    return bytes(q)


def write_reads(path, chroms, label="reads", count=NR_READS):
    """count reads from N-free windows, chromosomes weighted by length; the
    label names their pseudo-random sequence (tests/bench/pipeline draws
    one set a task with labels of its own).
    """
    rng = Rng(SEED, label)
    total = sum(len(s) for _, s in chroms)
    with open(path, "wb") as f:
        n = 0
        while n < count:
            x = rng.below(total)
            for name, seq in chroms:
                if x < len(seq):
                    break
                x -= len(seq)
            if x + READ_LEN > len(seq):
                continue
            read = bytearray(seq[x : x + READ_LEN].upper())
            if b"N" in read:
                continue
            strand = "-" if rng.chance(0.5) else "+"
            if strand == "-":
                read = bytearray(reverse_complement(read))
            k = [0, 0, 0, 0, 0, 1, 1, 1, 2, 3][rng.below(10)]
            where = sorted({rng.below(READ_LEN) for _ in range(k)})
            for i in where:
                read[i] = b"ACGT"[(b"ACGT".index(read[i]) + rng.between(1, 3)) % 4]
            n += 1
            f.write(b"@read%05d %s:%d:%s:%d\n" % (n, name.encode(), x + 1, strand.encode(), len(where)))
            f.write(bytes(read) + b"\n+\n" + quality(rng, where) + b"\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: genome.py OUTDIR")
    out = sys.argv[1]
    consensus = [stream(SEED, "family:" + name, flen).translate(BASES) for name, flen, _, _ in FAMILIES]
    chroms = [(name, make_chromosome(name, length, consensus)) for name, length in CHROMS]
    write_fasta(os.path.join(out, "genome.fa"), chroms)
    write_reads(os.path.join(out, "reads.fq"), chroms)


if __name__ == "__main__":
    main()
