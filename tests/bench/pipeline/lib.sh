# shellcheck shell=bash
# accel workflow benches (tests/bench/pipeline/bench and reader): what
# both do, sourced after tests/lib/functions.sh.
#
#   workflow_setup NAME CMD...   checks (root, the plugin, the commands),
#       then the directories: work=$BENCH_DIR/NAME (datasets, kept
#       between runs), run=$work/run (this run: logs, mounts, caches;
#       emptied first), and the bench's own parts (tests/bench/lib.sh:
#       the S3-like origin, counting, drop_caches)
#   node_mount K URL / node_umount K   one node's accel-mount on
#       $run/mnt-K with cache directory $run/cache-K (kept between
#       mounts: a restarted node keeps its cache), undone at exit; its
#       nbdkit's log is kept in $run/logs/nbdkit-K.log

python=/usr/bin/python3
# shellcheck disable=SC2034 # used by the scripts that source this
here="$top/tests/bench/pipeline"

workflow_setup () {
  local name=$1 c
  shift
  [ "$(id -u)" = 0 ] || { echo "bench-$name: needs root (drops caches, mounts)" >&2; exit 1; }
  [ -x "$plugin" ] || { echo "bench-$name: $plugin: not built (make)" >&2; exit 1; }
  for c in nginx nbdfuse losetup "$@"; do
    command -v "$c" > /dev/null ||
      { echo "bench-$name: $c: not installed (tools/install-deps)" >&2; exit 1; }
  done
  BENCH_DIR=${BENCH_DIR:-/var/tmp/accel-bench}
  work="$BENCH_DIR/$name"
  run="$work/run"
  if findmnt -rn -o TARGET | grep -q "^$run/"; then
    echo "bench-$name: something is still mounted under $run (an earlier run?)" >&2
    exit 1
  fi
  rm -rf "$run"
  mkdir -p "$run/logs" || exit 1
  # shellcheck disable=SC2034 # functions.sh's fail shows $tmp's logs
  tmp=$run
  rows="$run/rows.jsonl"
  : > "$rows"
  . "$top/tests/bench/lib.sh"
  export PATH="$top/tools:$top/tools/sh:$top/indexer:$PATH"
  export ACCEL_RUN_DIR="$run/accel"
  export ACCEL_PLUGIN="$plugin"
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
}

# run_note: when and under what load, for the report.
run_note () {
  echo "Run on $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs shared with other jobs (load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end): times are noisy, compare the ratios."
}

# node_release K: keep node K's nbdkit log ($run/logs/nbdkit-K.log, the
# plugin's errors), then accel-umount it; nothing to do if not mounted.
node_release () {
  local sdir="$ACCEL_RUN_DIR/pipeline-$1"
  [ ! -f "$sdir/nbdkit.log" ] || cat "$sdir/nbdkit.log" >> "$run/logs/nbdkit-$1.log"
  accel-umount --name "pipeline-$1" -q
}

# node_mount K URL [KEY=VALUE...]
node_mount () {
  local k=$1 url=$2
  shift 2
  on_exit "node_release $k"
  accel-mount "$url" "$run/mnt-$k" --cache-dir "$run/cache-$k" \
    --name "pipeline-$k" "$@" >> "$run/logs/mount-$k.log" 2>&1 ||
    die "accel-mount node $k: $(tail -n 5 "$run/logs/mount-$k.log")"
}
node_umount () {
  node_release "$1" >> "$run/logs/mount-$1.log" 2>&1 ||
    die "accel-umount node $1: $(tail -n 5 "$run/logs/mount-$1.log")"
}
