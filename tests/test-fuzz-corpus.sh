#!/usr/bin/env bash
# The fuzz targets (tests/fuzz/fuzz-*.c), built with the normal compiler
# as tests/fuzz/replay-NAME, on every input kept in the tree: each
# target's seed corpus (tests/fuzz/corpus/NAME/) and the inputs of
# crashes found and fixed (tests/fuzz/regressions/NAME/), and then every
# other target's files too, since any parser may be handed anything.
# A target crashes or aborts on a bug (under make check SANITIZE=...
# also on a memory error, leak or undefined behaviour), so this is
# where a fixed crash stays fixed.  The seeds of the manifest and
# indexer targets are valid files, and must be read without an error,
# or they would no longer reach the code behind the checks.
. "$(dirname "$0")/lib/functions.sh"
make_tmpdir
export TMPDIR="$tmp"

names=()
for src in "$top"/tests/fuzz/fuzz-*.c; do
  n=${src##*/fuzz-}
  names+=("${n%.c}")
done
[ ${#names[@]} -ge 8 ] || fail "only ${#names[@]} fuzz targets: ${names[*]}"

all=()
for n in "${names[@]}"; do
  [ -x "$top/tests/fuzz/replay-$n" ] || fail "tests/fuzz/replay-$n is not built"
  seeds=("$top/tests/fuzz/corpus/$n"/*)
  [ -f "${seeds[0]}" ] || fail "no seed corpus in tests/fuzz/corpus/$n"
  all+=("${seeds[@]}")
  for f in "$top/tests/fuzz/regressions/$n"/*; do
    [ -f "$f" ] && all+=("$f")
  done
done

total=0
for n in "${names[@]}"; do
  own=()
  for f in "$top/tests/fuzz/corpus/$n"/* "$top/tests/fuzz/regressions/$n"/*; do
    [ -f "$f" ] && own+=("$f")
  done
  "$top/tests/fuzz/replay-$n" "${own[@]}" > "$tmp/$n.log" 2>&1 ||
    fail "replay-$n on its corpus: exit $? ($(tail -n 3 "$tmp/$n.log"))"
  "$top/tests/fuzz/replay-$n" "${all[@]}" > "$tmp/$n-all.log" 2>&1 ||
    fail "replay-$n on every corpus: exit $? ($(tail -n 3 "$tmp/$n-all.log"))"
  total=$((total + ${#own[@]} + ${#all[@]}))
done

# Valid seeds stay valid: no error from opening or indexing them.
for n in manifest index-ext4 index-squashfs index-erofs; do
  for f in "$top/tests/fuzz/corpus/$n"/*; do
    out=$(ACCEL_FUZZ_VERBOSE=1 "$top/tests/fuzz/replay-$n" "$f" 2>&1) ||
      fail "replay-$n $f: exit $?"
    [ -z "$out" ] || fail "replay-$n: seed ${f#$top/} is refused: $out"
  done
done

# Nothing left behind by the targets.
leftover=$(find "$tmp" -mindepth 1 -not -name '*.log')
[ -z "$leftover" ] || fail "left behind: $leftover"
echo "${#names[@]} targets, $total inputs replayed"
