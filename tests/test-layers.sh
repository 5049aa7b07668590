#!/usr/bin/env bash
# The libraries are layers (docs/architecture.md): no call up a layer,
# no circle between the files of a library or of the plugin, internal
# headers used only inside their library (tests/lib/layers.py).  First
# the check itself is shown to catch each kind of violation, on a small
# tree built here, then it runs on ours.
. "$(dirname "$0")/lib/functions.sh"
requires nm
make_tmpdir

# A tree with every violation: low (utils) calls high; a.c and b.c of
# high call each other; plugin/p.c includes high's internal header.
t=$tmp/tree
mkdir -p "$t/low" "$t/high" "$t/plugin"
echo 'int high_a (void); int low_f (void) { return high_a (); }' > "$t/low/f.c"
echo 'int high_b (void); int high_a (void) { return high_b (); }' > "$t/high/a.c"
echo 'int high_a (void); int high_b (void) { return high_a () + 1; }' > "$t/high/b.c"
echo '/* internal */' > "$t/high/high-internal.h"
printf '#include "high-internal.h"\nint p (void) { return 0; }\n' > "$t/plugin/p.c"
for d in low high plugin; do
  for c in "$t/$d"/*.c; do cc -I"$t/high" -c -o "${c%.c}.o" "$c" || fail "cc $c"; done
done
ar rcs "$t/low/libaccel-low.a" "$t/low"/*.o
ar rcs "$t/high/libaccel-high.a" "$t/high"/*.o
out=$(printf 'high high high/libaccel-high.a low\nlow low low/libaccel-low.a\n' |
      ACCEL_TOP=$t python3 "$top/tests/lib/layers.py") &&
  fail "the layer check passed a tree with violations: $out"
echo "$out"
grep -q 'low: f.o uses high_a of high, which is not below it' <<<"$out" ||
  fail "a call up a layer was not reported"
grep -q 'high: files use each other in a circle: a.c -> b.c -> a.c' <<<"$out" ||
  fail "a circle between files was not reported"
grep -q 'plugin/p.c: includes high-internal.h, internal to high' <<<"$out" ||
  fail "an internal header used outside its library was not reported"

# Ours.
# NB: --no-print-directory: under `make -C DIR check`, MAKEFLAGS carries
# -w and the sub-make would print "Entering directory" lines here.
make -s --no-print-directory -C "$top" print-libs | python3 "$top/tests/lib/layers.py" ||
  fail "the libraries are not layers"
