# accel bench: the instrument's parts (sourced by tests/bench/bench after
# tests/lib/functions.sh, whose on_exit, free_port and _wait_gone it uses).
#
# - the S3-like origin: nginx with a 20 ms first byte and 100 MB/s per
#   connection (nginx.conf.in), and the radosgw test server;
# - one nbdkit and one mount at a time, each undone at exit by one cleanup
#   that looks at what is current (never a device or pid noted earlier,
#   which another job on the machine may own by then);
# - counting a phase: the origin's log between two quiet points, nbdkit's
#   peak RSS; the chunks a workload touches, from a traced pass;
# - the workloads, each of which checks the data it read.
#
# Needs: $run (this run's directory), $top, $rows (results file).

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3

say () { printf '[%5ds] %s\n' $(( SECONDS - bench_t0 )) "$*"; }
die () { echo "bench: $*" >&2; exit 1; }

# The page cache of everything: accel's cache files, the local image,
# nbdfuse's and the loop device's pages.  NB: tmpfs (the origin's files)
# is not dropped, as S3's disks are not ours.
drop_caches () { sync; echo 3 > /proc/sys/vm/drop_caches; }

# ---- the S3-like origin ----------------------------------------------

# origin_start ROOT: nginx serving ROOT on a free port of 127.0.0.1; sets
# origin_url and origin_log.
origin_start () {
  local root=$1 d="$run/nginx" port
  mkdir -p "$d/tmp"
  port=$(free_port) || die "no free port"
  sed -e "s|@DIR@|$d|g" -e "s|@ROOT@|$root|g" -e "s|@PORT@|$port|g" \
    "$bench_dir/nginx.conf.in" > "$d/nginx.conf"
  nginx -c "$d/nginx.conf" -p "$d" -e "$d/nginx-error.log" ||
    die "nginx did not start: $(tail -n 5 "$d/nginx-error.log")"
  on_exit origin_stop
  for _ in $(seq 50); do [ -s "$d/nginx.pid" ] && break; sleep 0.1; done
  origin_pid=$(cat "$d/nginx.pid") || die "nginx wrote no pid file"
  origin_url="http://127.0.0.1:$port"
  origin_log="$d/access.log"
  : >> "$origin_log"
}

origin_stop () {
  [ -n "${origin_pid:-}" ] || return 0
  kill "$origin_pid" 2>/dev/null && _wait_gone "$origin_pid"
  origin_pid=
}

# log_quiet FILE SECONDS: wait until FILE has not grown for SECONDS (at
# most 20 tries: background fetches end, the log is written), then print
# its size.
log_quiet () {
  local a b i
  b=$(stat -c %s "$1" 2>/dev/null || echo 0)
  for (( i = 0; i < 20; i++ )); do
    sleep "$2"
    a=$b
    b=$(stat -c %s "$1" 2>/dev/null || echo 0)
    [ "$a" = "$b" ] && break
  done
  echo "$b"
}

# origin_probe URL SIZE: the origin's first-byte time (ms), one
# connection's speed and 16 connections' aggregate speed (MB/s), as
# probe_first_ms, probe_one_mbs, probe_agg_mbs.  Each connection fetches
# eight 8 MiB ranges over one keep-alive connection.
origin_probe () {
  local url=$1 size=$2 i k off args t0 t1 n=8 mib8=$((8 << 20))
  probe_first_ms=$(for i in 1 2 3 4 5; do
      curl -s -o /dev/null -r 0-0 -w '%{time_starttransfer}\n' "$url"; done |
    sort -n | sed -n 3p | awk '{ printf "%.1f", $1 * 1000 }')
  curl_ranges () {
    local c=$1 args=() k off
    for (( k = 0; k < n; k++ )); do
      off=$(( ((c * n + k) * mib8) % (size - mib8) ))
      [ $k = 0 ] || args+=(--next)
      args+=(-s -o /dev/null -r "$off-$((off + mib8 - 1))" "$url")
    done
    curl "${args[@]}"
  }
  t0=$EPOCHREALTIME
  curl_ranges 0
  t1=$EPOCHREALTIME
  probe_one_mbs=$(awk -v b=$((n * mib8)) -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }')
  local pids=()
  t0=$EPOCHREALTIME
  for (( i = 0; i < 16; i++ )); do curl_ranges "$i" & pids+=($!); done
  wait "${pids[@]}"
  t1=$EPOCHREALTIME
  probe_agg_mbs=$(awk -v b=$((16 * n * mib8)) -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }')
}

# ---- nbdkit, one at a time -------------------------------------------

# nbd_start NAME NBDKIT-ARGS...: a daemonised nbdkit on $run/NAME.sock
# with its log in $run/logs/NAME.log; sets nbd_pid and nbd_uri.
nbd_start () {
  local name=$1; shift
  local sock="$run/$name.sock" pidf="$run/$name.pid"
  rm -f "$sock" "$pidf"
  cpu_cgroup_make "$name"
  # NB: nbdkit goes into its cgroup before it starts (a subshell joins
  # it first), and stays there when it forks into the background: none
  # of its CPU is left out.  A subshell, not sh -c: nbdkit may be
  # functions.sh's function (a sanitizer build's runtime preloaded).
  ( if [ -n "$nbd_cg" ]; then echo "$BASHPID" > "$nbd_cg/cgroup.procs" || exit 1; fi
    nbdkit -U "$sock" -P "$pidf" --log=stderr "$@" ) > "$run/logs/$name.log" 2>&1 ||
    die "nbdkit $name did not start: $(tail -n 5 "$run/logs/$name.log")"
  for _ in $(seq 100); do [ -s "$pidf" ] && break; sleep 0.1; done
  nbd_pid=$(cat "$pidf") || die "nbdkit $name wrote no pid file"
  nbd_uri="nbd+unix:///?socket=$sock"
  nbd_name=$name
}

# nbd_stop: stop the current nbdkit and wait for it (accel flushes its
# cache maps on the way out; up to 60 s).
nbd_stop () {
  [ -n "${nbd_pid:-}" ] || return 0
  kill "$nbd_pid" 2>/dev/null
  for _ in $(seq 600); do
    kill -0 "$nbd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$nbd_pid" 2>/dev/null; then
    echo "bench: nbdkit $nbd_name did not exit on SIGTERM: killed" >&2
    kill -9 "$nbd_pid"
  fi
  nbd_pid=
  cpu_cgroup_remove
}

# nbdkit's CPU time.  /proc/PID/stat counts it in clock ticks (10 ms
# here), which is half a second per GiB, more or less, on the aligner's
# 20 MB: too coarse for rows that small.  So each nbdkit runs in a
# cgroup of its own where the bench can make one, whose counter has
# every thread's time, threads gone included, in microseconds (cgroup
# v2's cpu.stat) or nanoseconds (v1's cpuacct.usage).
#
# cpu_cgroup_probe: sets cpu_cg_base and cpu_cg_kind (v2, v1, or empty:
# no cgroup can be made or joined here, and nbd_cpu uses the ticks).
cpu_cg_base= cpu_cg_kind= nbd_cg=
cpu_cgroup_probe () {
  local base kind dir
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    base=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup) kind=v2
  elif [ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
    base=/sys/fs/cgroup/cpuacct$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' /proc/self/cgroup)
    kind=v1
  else
    return 0
  fi
  base=${base%/}
  dir="$base/accel-bench-$$-probe"
  mkdir "$dir" 2> /dev/null || return 0
  if sh -c 'echo $$ > "$1/cgroup.procs"' sh "$dir" 2> /dev/null; then
    cpu_cg_base=$base cpu_cg_kind=$kind
  fi
  rmdir "$dir" 2> /dev/null || true
}
cpu_cgroup_probe

# cpu_cgroup_make NAME / cpu_cgroup_remove: nbd_cg, the cgroup of the
# nbdkit about to start (empty without cgroups).
cpu_cgroup_make () {
  nbd_cg=
  [ -n "$cpu_cg_kind" ] || return 0
  nbd_cg="$cpu_cg_base/accel-bench-$$-$1"
  mkdir "$nbd_cg" || die "cannot make the cgroup $nbd_cg"
}
cpu_cgroup_remove () {
  [ -n "$nbd_cg" ] || return 0
  rmdir "$nbd_cg" 2> /dev/null ||
    echo "bench: cgroup $nbd_cg not removed: $(cat "$nbd_cg/cgroup.procs" 2> /dev/null | tr '\n' ' ')" >&2
  nbd_cg=
}

# cpu_method: how nbd_cpu measures, for the report.
cpu_method () {
  case $cpu_cg_kind in
    v2) echo "its own cgroup's cpu.stat usage_usec, every thread's" ;;
    v1) echo "its own cgroup's cpuacct.usage, every thread's" ;;
    *) echo "user+sys in /proc/PID/stat, in clock ticks of $((1000 / clk_tck)) ms" ;;
  esac
}

# nbd_cpu: the current nbdkit's CPU time so far, in seconds.
clk_tck=$(getconf CLK_TCK)
nbd_cpu () {
  case $cpu_cg_kind in
    v2) awk '$1 == "usage_usec" { printf "%.6f\n", $2 / 1e6 }' "$nbd_cg/cpu.stat" ;;
    v1) awk '{ printf "%.6f\n", $1 / 1e9 }' "$nbd_cg/cpuacct.usage" ;;
    *) awk -v t="$clk_tck" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$nbd_pid/stat" ;;
  esac
}

# cache_page_mib: MiB of page cache held by accel's cache files (every
# image's map and data under $run/cache), as fincore sees it: issue 14
# wants them out of it (the mount's page cache holds the hot bytes).
cache_page_mib () {
  fincore -b -n -o RES "$run"/cache/images/*/data "$run"/cache/images/*/map 2> /dev/null |
    awk '{ s += $1 } END { printf "%.1f\n", s / 1048576 }'
}

# rss_reset / rss_peak: nbdkit's peak resident set (VmHWM, KiB); writing
# 5 to clear_refs starts the peak again from the current size.
rss_reset () { echo 5 > "/proc/$nbd_pid/clear_refs"; }
rss_peak () { awk '/^VmHWM:/ { print $2 }' "/proc/$nbd_pid/status"; }

# ---- one mount at a time ---------------------------------------------

# bench_mount SRC: mount the ext4 image SRC (a local file, or an NBD URI
# reached through nbdfuse as tests/lib/functions.sh does) read-only on
# $mnt through a read-only loop device.  NB: the loop device does direct
# I/O: with buffered I/O it reads its file one request at a time, so
# nbdkit would never see more than one read in flight (fio at queue depth
# 16 gave 1.0 on average), where the kernel's nbd driver, which nodes use,
# passes them on in parallel; direct I/O also keeps the image's pages
# from being cached twice.  The limit's loop device does the same.
mnt="$run/mnt"
bench_mount () {
  local src=$1 file=$1 fusedir="$run/fuse"
  mkdir -p "$mnt"
  if [[ $src == nbd* ]]; then
    mkdir -p "$fusedir"
    ! mountpoint -q "$fusedir" || die "$fusedir: still mounted"
    rm -f "$run/nbdfuse.pid"
    nbdfuse -r -P "$run/nbdfuse.pid" "$fusedir" "$src" > "$run/logs/nbdfuse.log" 2>&1 &
    fuse_pid=$!
    fuse_dir=$fusedir
    for _ in $(seq 100); do [ -s "$run/nbdfuse.pid" ] && break; sleep 0.1; done
    [ -e "$fusedir/nbd" ] || die "nbdfuse: $(cat "$run/logs/nbdfuse.log")"
    file="$fusedir/nbd"
  fi
  loop_dev=$(losetup -f --show -r --direct-io=on "$file") || die "losetup $file"
  [ "$(cat "/sys/block/${loop_dev#/dev/}/loop/dio")" = 1 ] ||
    die "$loop_dev: direct I/O refused for $file"
  mount -o ro "$loop_dev" "$mnt" || die "mount $loop_dev"
  mounted=1
}

# bench_unmount: undo bench_mount, whatever of it was done.  NB: a loop
# device lets go of its file a moment after losetup -d returns, and until
# then the FUSE file system is busy: retry, or nbdfuse would stay
# connected and nbdkit would not exit.
bench_unmount () {
  local i
  if [ -n "${mounted:-}" ]; then umount "$mnt" || return 1; mounted=; fi
  if [ -n "${loop_dev:-}" ]; then losetup -d "$loop_dev" || return 1; loop_dev=; fi
  if [ -n "${fuse_pid:-}" ]; then
    for (( i = 0; i < 100; i++ )); do
      fusermount3 -u "$fuse_dir" 2> /dev/null && break
      sleep 0.1
    done
    if ! _wait_gone "$fuse_pid"; then
      echo "bench: nbdfuse did not exit: killed" >&2
      kill "$fuse_pid"
      _wait_gone "$fuse_pid"
    fi
    fuse_pid=
  fi
}

# ---- counting one phase ------------------------------------------------

# count_begin LOG FORMAT: note where the origin's log (nginx or rgw
# format) is now.  NB: nginx writes a line as each request ends; radosgw's
# lines go through Ceph's log thread, a little later, so its log must have
# been quiet for longer.
count_begin () {
  c_log=$1 c_fmt=$2 c_quiet=0.5
  [ "$c_fmt" = nginx ] || c_quiet=3
  c_log0=$(log_quiet "$c_log" "$c_quiet")
}

# count_end: KEY=VALUE words of what the origin served since count_begin.
count_end () {
  local log1
  log1=$(log_quiet "$c_log" "$c_quiet")
  "$python" "$bench_dir/count.py" origin "$c_fmt" "$c_log" "$c_log0" "$log1"
}

# trace_pass W IMAGE MANIFEST: the chunks workload W touches, as KEY=VALUE
# words in touched_words: W runs once through the same nbdfuse + loop
# mount, from nbdkit's file plugin behind its log filter, which records
# every read.  NB: a separate pass, because the log filter slows a fast
# read path by a third; the workloads are deterministic (fio's offsets
# come from a fixed seed), so the plugin's runs touch the same chunks.
trace_pass () {
  local w=$1 img=$2 manifest=$3 trace="$run/logs/$1.trace"
  nbd_start "$w-trace" --filter=log file "$img" logfile="$trace"
  bench_mount "$nbd_uri"
  drop_caches
  "workload_$w"
  bench_unmount
  nbd_stop
  [ "$w_check" = ok ] || die "$w through nbdkit file: wrong data: $w_check"
  touched_words=$("$python" "$bench_dir/count.py" touched "$trace" 0 \
    "$(stat -c %s "$trace")" "$manifest") || die "count.py touched failed"
  # The same reads through accel's readahead detector: how many would
  # wait on a chunk not asked for first (readahead-replay.c).
  touched_words+=" $("$bench_dir/readahead-replay" "$manifest" "$trace")" ||
    die "readahead-replay failed"
}

# ---- workloads -----------------------------------------------------------
#
# Each runs against $mnt with the page cache dropped just before, and sets
# w_seconds, w_rate, w_unit, w_check (ok, or what was wrong) and w_timeout
# (1 if it was cut after $phase_timeout seconds; then a rate it cannot
# know is left empty).

# timed CMD...: run CMD under the phase timeout; sets w_seconds, w_timeout.
timed () {
  local t0 t1 rc
  t0=$EPOCHREALTIME
  timeout "$phase_timeout" "$@"
  rc=$?
  t1=$EPOCHREALTIME
  w_seconds=$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }')
  w_timeout=0
  [ $rc = 124 ] && w_timeout=1
  return $rc
}

# seq: a sequential checksum of the big file (cksum: CRC at GB/s, so
# the checksum is not what is measured).
workload_seq () {
  local out="$run/seq.out"
  w_unit=MB/s w_check=ok
  timed sh -c 'cksum < "$1" > "$2"' sh "$mnt/big.bin" "$out"
  [ "$w_timeout" = 1 ] || [ "$(cat "$out")" = "$big_cksum" ] ||
    w_check="cksum $(cat "$out") != $big_cksum"
  w_rate=
  [ "$w_timeout" = 1 ] ||
    w_rate=$(awk -v s="$w_seconds" -v b="$big_bytes" 'BEGIN { printf "%.1f", b / s / 1e6 }')
}

# rand: fio, random 4 KiB reads with O_DIRECT at queue depth 16, the same
# offsets on every run (fixed seed), $fio_ios of them or $fio_cap s.
workload_rand () {
  local json="$run/fio.json"
  w_unit=IOPS w_check=ok
  timed fio --name=rand --filename="$mnt/big.bin" --readonly --rw=randread \
    --bs=4k --iodepth=16 --ioengine=libaio --direct=1 --randrepeat=1 \
    --randseed=20240101 --number_ios="$fio_ios" --runtime="$fio_cap" \
    --output-format=json --output="$json" > /dev/null 2>&1 || w_check="fio failed"
  eval "$("$python" -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r = j["read"]
print("w_rate=%.1f fio_seconds=%.3f fio_errors=%d fio_n=%d" % (
    r["iops"], r["runtime"] / 1000.0, j.get("error", 0), r["total_ios"]))' "$json" 2>/dev/null ||
    echo 'w_rate=0 fio_seconds=0 fio_errors=1 fio_n=0')"
  [ "$fio_errors" = 0 ] || w_check="fio error $fio_errors"
  # fio's own clock: without its start-up (opening the file, etc.).
  w_seconds=$fio_seconds
  [ "$fio_n" -ge "$fio_ios" ] || w_timeout=1
}

# small: read every file of the small-files tree (find order, one
# reader), checking the sorted list of their CRCs.
workload_small () {
  local out="$run/small.out"
  w_unit=MB/s w_check=ok
  timed sh -c 'cd "$1" && find . -type f -print0 | xargs -0 cksum | LC_ALL=C sort | cksum > "$2"' \
    sh "$mnt" "$out"
  [ "$w_timeout" = 1 ] || [ "$(cat "$out")" = "$small_sum" ] ||
    w_check="file CRCs $(cat "$out") != $small_sum"
  w_rate=
  [ "$w_timeout" = 1 ] ||
    w_rate=$(awk -v s="$w_seconds" -v b="$small_bytes" 'BEGIN { printf "%.1f", b / s / 1e6 }')
}

# align: bowtie2 aligns the genome's reads against its index on the
# mount (2 threads, output in input order), checking the alignments.
workload_align () {
  local sam="$run/align.sam"
  w_unit= w_rate= w_check=ok
  timed bowtie2 -p 2 --reorder -x "$mnt/index/genome" -U "$mnt/reads.fq" \
    -S "$sam" 2> "$run/logs/bowtie2.log" || w_check="bowtie2 failed"
  [ "$w_timeout" = 1 ] || [ "$(grep -v '^@' "$sam" | cksum)" = "$align_sum" ] ||
    w_check="alignments differ"
}
