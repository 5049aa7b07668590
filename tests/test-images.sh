#!/usr/bin/env bash
# The sample datasets of images/: each recipe builds twice to the same
# bytes, modes and mtimes; each stays within its size budget and has the
# shape images/README.md promises; the genome's bowtie2 index is real (the
# reads align, nearly all of them where they were sampled from); and a
# recipe refuses a non-empty OUTDIR and bad usage, leaving nothing behind.
. "$(dirname "$0")/lib/functions.sh"
requires bowtie2; requires bowtie2-build; requires sha256sum
make_tmpdir

# tree_state DIR: every path with its type, mode, mtime, size and, for
# files, SHA-256; two identical trees give identical output.
tree_state () {
  (cd "$1" && find . -printf '%p %y %m %T@ %s\n' | LC_ALL=C sort &&
     find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}

# build NAME OUT: run a recipe (it prints its size and time).
build () {
  "$top/images/$1/build" "$2" 2> "$tmp/build.err" ||
    fail "images/$1/build $2: $(cat "$tmp/build.err")"
  cat "$tmp/build.err"
}

# size_mb DIR: total bytes of the files in DIR, in whole MB.
size_mb () { echo $(( $(du -sb "$1" | cut -f1) / 1000000 )); }

for name in genome smallfiles; do
  build $name "$tmp/$name.1"
  build $name "$tmp/$name.2"
  diff -r "$tmp/$name.1" "$tmp/$name.2" > /dev/null ||
    fail "$name: two builds differ (diff -r)"
  tree_state "$tmp/$name.1" > "$tmp/$name.1.state"
  tree_state "$tmp/$name.2" > "$tmp/$name.2.state"
  cmp -s "$tmp/$name.1.state" "$tmp/$name.2.state" ||
    fail "$name: two builds differ in modes, mtimes or hashes"
  echo "ok: $name: two builds identical ($(wc -l < "$tmp/$name.1.state") lines of state)"
  ls -d "$tmp"/*partial* 2>/dev/null && fail "$name: a work dir was left behind"
done

# The genome: 4 chromosomes, 10 Mbp, 60-column FASTA with N runs and
# soft-masking, a .fai that matches, the 6 index files, 4000 reads.
g="$tmp/genome.1"
mb=$(size_mb "$g")
[ "$mb" -ge 10 ] && [ "$mb" -le 60 ] || fail "genome: $mb MB, not 10-60"
for f in genome.fa genome.fa.fai reads.fq index/genome.{1,2,3,4,rev.1,rev.2}.bt2; do
  [ -s "$g/$f" ] || fail "genome: $f missing or empty"
done
/usr/bin/python3 - "$g" <<'EOF' || fail "genome: FASTA checks"
import sys
g = sys.argv[1]
seqs, name, lens = {}, None, set()
for line in open(g + "/genome.fa", "rb"):
    line = line.rstrip(b"\n")
    if line.startswith(b">"):
        name = line[1:].decode()
        seqs[name] = []
    else:
        seqs[name].append(line)
        lens.add(len(line))
assert list(seqs) == ["chr1", "chr2", "chr3", "chr4"], list(seqs)
full = {n: b"".join(v) for n, v in seqs.items()}
total = sum(map(len, full.values()))
assert total == 10_000_000, total
assert max(lens) == 60, lens
allbases = b"".join(full.values())
n = allbases.count(b"N")
lower = sum(allbases.count(c) for c in b"acgt")
assert 0.005 < n / total < 0.05, n
assert 0.03 < lower / total < 0.2, lower
assert set(allbases) <= set(b"ACGTNacgt"), set(allbases)
# .fai: name, length, offset, 60, 61; offsets point at each sequence.
data = open(g + "/genome.fa", "rb").read()
for row in open(g + "/genome.fa.fai"):
    nm, ln, off, lb, lw = row.split("\t")
    assert int(ln) == len(full[nm]) and (lb, lw) == ("60", "61\n"), row
    assert data[int(off) : int(off) + 60] == full[nm][:60], row
print("ok: genome.fa: %d bp, %.1f%% N, %.1f%% soft-masked, fai matches"
      % (total, 100 * n / total, 100 * lower / total))
EOF
[ "$(grep -c '^@read' "$g/reads.fq")" = 4000 ] || fail "reads.fq: not 4000 reads"

# Align the reads: a high overall rate, and nearly every uniquely aligned
# read at the position its name says it came from.
bowtie2 -p 2 -x "$g/index/genome" -U "$g/reads.fq" -S "$tmp/out.sam" \
  2> "$tmp/bowtie2.log" || fail "bowtie2: $(cat "$tmp/bowtie2.log")"
cat "$tmp/bowtie2.log"
rate=$(sed -n 's/^\([0-9.]*\)% overall alignment rate$/\1/p' "$tmp/bowtie2.log")
[ -n "$rate" ] || fail "bowtie2: no overall alignment rate in its summary"
awk -v r="$rate" 'BEGIN { exit !(r > 90) }' || fail "alignment rate $rate% <= 90%"
/usr/bin/python3 - "$g/reads.fq" "$tmp/out.sam" <<'EOF' || fail "alignment positions"
import sys
truth = {}
for line in open(sys.argv[1]):
    if line.startswith("@read"):
        name, where = line[1:].split()
        chrom, pos, strand, mm = where.split(":")
        truth[name] = (chrom, int(pos), strand)
right = total = 0
for line in open(sys.argv[2]):
    if line.startswith("@"):
        continue
    f = line.split("\t")
    if int(f[1]) & 4 or int(f[4]) < 30:
        continue
    total += 1
    chrom, pos, strand = truth[f[0]]
    right += (f[2], int(f[3]), "-" if int(f[1]) & 16 else "+") == (chrom, pos, strand)
print("ok: %d of %d uniquely aligned reads (MAPQ >= 30) at their origin" % (right, total))
assert total >= 3600 and right >= 0.99 * total
EOF

# The small files: 5000 files, ~2% empty, 4 large ones, nothing else over
# 20 KiB, nested at least 8 deep, within 10-60 MB.
s="$tmp/smallfiles.1"
mb=$(size_mb "$s")
[ "$mb" -ge 10 ] && [ "$mb" -le 60 ] || fail "smallfiles: $mb MB, not 10-60"
nfiles=$(find "$s" -type f | wc -l)
[ "$nfiles" = 5000 ] || fail "smallfiles: $nfiles files, not 5000"
nempty=$(find "$s" -type f -empty | wc -l)
[ "$nempty" -ge 50 ] && [ "$nempty" -le 150 ] || fail "smallfiles: $nempty empty files"
[ "$(find "$s" -type f -size +20k | wc -l)" = 4 ] ||
  fail "smallfiles: not exactly 4 files over 20 KiB"
[ "$(find "$s" -type d -empty | wc -l)" -ge 2 ] || fail "smallfiles: no empty dirs"
[ "$(find "$s" -mindepth 9 | head -n 1)" ] || fail "smallfiles: nothing 9 deep"
[ "$(find "$s" -type f -perm -0100 | wc -l)" -ge 1 ] ||
  fail "smallfiles: no executable files"
echo "ok: smallfiles: $nfiles files, $nempty empty, $mb MB"

# Usage and refusal: exit 2 without OUTDIR, exit 1 for a non-empty OUTDIR
# (left untouched), and no work dirs left behind.
"$top/images/smallfiles/build" > /dev/null 2>&1
[ $? = 2 ] || fail "build without OUTDIR: not exit 2"
"$top/images/genome/build" "$s" 2> "$tmp/err"
[ $? = 1 ] || fail "build into a non-empty dir: not exit 1"
grep -q "^images/genome/build: $s: exists and is not empty$" "$tmp/err" ||
  fail "non-empty OUTDIR: message: $(cat "$tmp/err")"
[ "$(find "$s" -type f | wc -l)" = 5000 ] || fail "a refused build touched OUTDIR"
mkdir "$tmp/empty-out"
"$top/images/smallfiles/build" "$tmp/empty-out" 2>/dev/null ||
  fail "build into an existing empty dir"
ls -d "$tmp"/*partial* 2>/dev/null && fail "a work dir was left behind"
echo "all image checks passed"
