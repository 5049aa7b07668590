#!/usr/bin/env bash
# Run fuzz targets built by `make fuzz` (see the Makefile), each for a
# bounded time, and say how it went.
#
#   FUZZ_DIR=build-fuzz FUZZ_SECONDS=60 tests/fuzz/run.sh [NAME...]
#
# Each target NAME starts from its seeds (tests/fuzz/corpus/NAME/), the
# inputs of crashes already fixed (tests/fuzz/regressions/NAME/) and
# what earlier runs found ($FUZZ_DIR/corpus/NAME/, where new inputs
# go, so tests/ only ever holds what someone chose to keep).  libFuzzer
# runs it with limits on time per input (-timeout), memory (-rss_limit_mb)
# and in all (-max_total_time), with tests/fuzz/NAME.dict if there is
# one.  A crash, leak, timeout or out-of-memory input is saved in
# tests/fuzz/crashes/NAME/: to make it a regression test, fix the bug
# and move the file to tests/fuzz/regressions/NAME/.  The log of each
# run is $FUZZ_DIR/NAME.log.
#
# One line per target with its executions, speed and coverage (edges
# and features, as libFuzzer counts them in our instrumented code, not
# in the system libraries), then "N targets, N crashes"; the exit status
# is 1 if any target crashed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
dir=${FUZZ_DIR:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
case "$secs" in ''|*[!0-9]*) echo "run.sh: FUZZ_SECONDS=$secs is not a number" >&2; exit 2 ;; esac

if [ $# -eq 0 ]; then
  set -- $(for f in tests/fuzz/fuzz-*.c; do n=${f#tests/fuzz/fuzz-}; echo "${n%.c}"; done)
fi

# Targets write their files under TMPDIR (fuzz.h); a crash leaves them
# behind, so all of them go in one directory removed at the end, in
# memory where possible (the indexer target writes a manifest per input).
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm="$dir"
tmp=$(mktemp -d "$shm/accel-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
export TMPDIR="$tmp"
# Leaks are bugs; UBSan's reports abort (the build says so too).
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# The value of "stat::NAME: VALUE" in libFuzzer's final statistics.
stat () { awk -v k="stat::$1:" '$1 == k { v = $2 } END { print v + 0 }' "$2"; }

targets=0 crashes=0
for name in "$@"; do
  bin="$dir/fuzz-$name"
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin: not built (make fuzz)" >&2
    exit 2
  fi
  targets=$((targets + 1))
  work="$dir/corpus/$name"
  crashdir="tests/fuzz/crashes/$name"
  log="$dir/$name.log"
  mkdir -p "$work" "$crashdir"
  seeds=()
  for d in "tests/fuzz/corpus/$name" "tests/fuzz/regressions/$name"; do
    [ -d "$d" ] && seeds+=("$d")
  done
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  before=$(ls "$crashdir" | wc -l)

  # NB: the outer timeout only guards against libFuzzer itself hanging.
  timeout -k 10 $((secs + 300)) "$bin" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashdir/" \
    "${dict[@]}" "$work" "${seeds[@]}" > "$log" 2>&1
  rc=$?

  done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  printf '%s: %s runs, %s exec/s, cov %s, ft %s, corpus %s, peak rss %s MB: ' \
    "$name" "$(stat number_of_executed_units "$log")" \
    "$(stat average_exec_per_sec "$log")" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$(stat peak_rss_mb "$log")"
  after=$(ls "$crashdir" | wc -l)
  if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
    crashes=$((crashes + 1))
    echo "CRASH (exit $rc), see $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: )|runtime error' "$log" | head -n 5 | sed 's/^/    /'
    ls -t "$crashdir" | head -n 3 | sed "s|^|    saved: $crashdir/|"
  else
    echo ok
    rmdir "$crashdir" 2>/dev/null
  fi
done

echo "$targets targets, $crashes crashes"
[ $crashes -eq 0 ]
