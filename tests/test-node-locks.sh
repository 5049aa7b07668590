#!/usr/bin/env bash
# The node tools' locks (tools/sh/accel-lib.sh: take_lock, release_lock)
# exclude each other although their files are removed as they are let
# go: workers take one lock over and over, each removing its file when
# done, while the others wait on the file just removed.  Two workers
# inside at once, or a lock file left at the end, fail.  Without
# take_lock's check that the file it locked is still the one at its
# path, two get in (tried: several times in the 100 turns).
. "$(dirname "$0")/lib/functions.sh"
requires flock
make_tmpdir

export ACCEL_RUN_DIR="$tmp/run"
lock="$ACCEL_RUN_DIR/.locks/x.lock"

# worker N TURNS: take the lock TURNS times; inside, $tmp/inside must
# not exist (else another worker is inside too).
worker () {
  local prog="worker$1" turns=$2 fd i
  # shellcheck source=../tools/sh/accel-lib.sh
  . "$top/tools/sh/accel-lib.sh"
  for ((i = 0; i < turns; i++)); do
    take_lock fd "$lock" 30 || die "no lock in 30 s"
    if ! mkdir "$tmp/inside" 2> /dev/null; then
      echo "worker $1: turn $i: another worker is inside" >> "$tmp/violations"
    fi
    sleep 0.00$((RANDOM % 5))
    rmdir "$tmp/inside" 2> /dev/null
    release_lock "$fd" "$lock"
  done
}

pids=()
for n in 1 2 3 4; do
  worker "$n" 25 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a worker failed"; done
[ ! -s "$tmp/violations" ] ||
  fail "two workers held the lock at once: $(head -n 5 "$tmp/violations")"
[ ! -e "$lock" ] || fail "the lock file is left"

# A lock held elsewhere: take_lock gives up after its time, and says so.
prog=test
# shellcheck source=../tools/sh/accel-lib.sh
. "$top/tools/sh/accel-lib.sh"
take_lock held "$lock" 5 || fail "take_lock on a free lock"
( take_lock other "$lock" 1 ) && fail "took a lock that is held"
release_lock "$held" "$lock"
[ ! -e "$lock" ] || fail "release_lock left the file"
echo "OK: 4 workers x 25 turns, one at a time; no lock file left"
