# accel: shell functions for integration tests (source it).
#
# Every resource a test starts is registered with on_exit, and one trap
# releases them all in reverse order on every path (pass, failure,
# signal).  Tests start real servers on loopback only.

set -u
top=${ACCEL_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export ACCEL_TOP="$top"
plugin="$top/plugin/nbdkit-accel-plugin.so"
. "$top/tests/lib/sanitizer.sh"

# Never let the credential chain reach for an instance metadata service.
export AWS_EC2_METADATA_DISABLED=true

_cleanups=()
on_exit () { _cleanups+=("$1"); }
_run_cleanups () {
  local i
  for (( i=${#_cleanups[@]}-1; i>=0; i-- )); do
    eval "${_cleanups[$i]}" >/dev/null 2>&1 || :
  done
  _cleanups=()
}
trap '_rc=$?; _run_cleanups; _exit_checks || _rc=1; exit $_rc' EXIT
trap 'exit 130' INT TERM

# A plugin built with `make SANITIZE=...`: nbdkit needs the runtime
# preloaded (here and in accel-mount, through ACCEL_NBDKIT_PRELOAD), and
# a report from any process of the test fails it (at exit, once the
# cleanups have stopped every daemon).  tests/run gives each test its
# own report directory; run alone, a test makes one.
_san_preload=$(sanitizer_preload "$plugin")
[ -z "$_san_preload" ] || export ACCEL_NBDKIT_PRELOAD="$_san_preload"
# sanitizer_build: is this a build with a sanitizer (make SANITIZE=...)?
sanitizer_build () { [ -n "$_san_preload" ]; }
_san_own_logs=
if [ -n "$_san_preload" ] && [ -z "${ACCEL_SANITIZER_LOGS:-}" ]; then
  _san_own_logs=$(mktemp -d /tmp/accel-sanitizer.XXXXXX)
  sanitizer_env "$_san_own_logs"
fi
# _exit_checks: after the cleanups, a daemon that had to be killed
# (_kill_wait) or any sanitizer report fails the test.
_stuck=
_exit_checks () {
  local rc=0
  if [ -n "$_stuck" ]; then
    echo "FAIL: did not exit on SIGTERM within 10 s, killed:$_stuck" >&2
    rc=1
  fi
  if sanitizer_reports; then
    echo "FAIL: sanitizer reports (above)" >&2
    rc=1
  fi
  [ -z "$_san_own_logs" ] || rm -rf "$_san_own_logs"
  return $rc
}

# nbdkit: every nbdkit a test starts gets the sanitizer runtime the
# plugin needs (none for a plain build).
nbdkit () {
  if [ -n "${ACCEL_NBDKIT_PRELOAD:-}" ]; then
    LD_PRELOAD="$ACCEL_NBDKIT_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}" \
      command nbdkit "$@"
  else
    command nbdkit "$@"
  fi
}

# On failure, show the tail of every log the test wrote, then the reason.
fail () {
  local f
  for f in "${tmp:-/nonexistent}"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f (last 40 lines)" >&2
    tail -n "${ACCEL_LOG_LINES:-40}" "$f" >&2
  done
  echo "FAIL: $*" >&2
  exit 1
}
skip () { echo "SKIP: $*"; exit 77; }
requires () { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }

# make_tmpdir: set tmp to a new temp dir, removed at exit.  NB: not
# tmp=$(make_tmpdir): the cleanup would be registered in a subshell.
make_tmpdir () {
  tmp=$(mktemp -d /tmp/accel-test.XXXXXX) || fail "mktemp"
  on_exit "rm -rf '$tmp'"
}

# The shared test S3 server, or our own when run alone.
needs_s3 () {
  if [ -z "${ACCEL_TEST_S3_ENDPOINT:-}" ]; then
    local d
    d=$(mktemp -d /tmp/accel-rgw.XXXXXX)
    on_exit "rm -rf '$d'"
    on_exit "'$top/tests/lib/rgw.sh' stop '$d'"
    "$top/tests/lib/rgw.sh" start "$d" >&2 || fail "could not start radosgw"
    . "$d/env"
  fi
  export ACCEL_TEST_S3_ENDPOINT ACCEL_TEST_S3_ACCESS_KEY ACCEL_TEST_S3_SECRET_KEY
  export AWS_ACCESS_KEY_ID="$ACCEL_TEST_S3_ACCESS_KEY"
  export AWS_SECRET_ACCESS_KEY="$ACCEL_TEST_S3_SECRET_KEY"
  export AWS_REGION=us-east-1
  unset AWS_SESSION_TOKEN AWS_PROFILE
}

# Signed requests with curl (test set-up only; the plugin has its own).
s3_curl () {
  curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    --user "$ACCEL_TEST_S3_ACCESS_KEY:$ACCEL_TEST_S3_SECRET_KEY" "$@"
}
s3_mkbucket () { s3_curl -X PUT "$ACCEL_TEST_S3_ENDPOINT/$1" >/dev/null; }
s3_put () { s3_curl -X PUT --upload-file "$1" "$ACCEL_TEST_S3_ENDPOINT/$2" >/dev/null; }

# A bucket name unique to this test run.
unique_bucket () { echo "t-$(basename "$0" .sh | tr -cd 'a-z0-9-')-$$-$RANDOM"; }

# start_proxy DIR [S3PROXY-OPTION...]: start the counting proxy in
# front of the S3 server: sets proxy_url, proxy_stats (JSON file),
# proxy_faults (rules file, initially []) and proxy_pid.
start_proxy () {
  local d=$1 port
  shift
  proxy_stats="$d/proxy-stats.json"
  proxy_faults="$d/proxy-faults.json"
  echo '[]' > "$proxy_faults"
  rm -f "$d/proxy-port"
  python3 "$top/tests/lib/s3proxy.py" --upstream "$ACCEL_TEST_S3_ENDPOINT" \
    --port-file "$d/proxy-port" --stats-file "$proxy_stats" \
    --faults "$proxy_faults" "$@" > "$d/proxy.log" 2>&1 &
  local pid=$!
  proxy_pid=$pid
  on_exit "kill $pid; wait $pid"
  for _ in $(seq 100); do
    [ -s "$d/proxy-port" ] && break
    sleep 0.1
  done
  [ -s "$d/proxy-port" ] || fail "proxy did not start: $(cat "$d/proxy.log")"
  port=$(cat "$d/proxy-port")
  proxy_url="http://127.0.0.1:$port"
}

# proxy_count KEY: a counter from the proxy's stats (GET, HEAD, bytes...);
# KEY may name one inside "status" or "faults": status.503, faults.reset.
proxy_count () {
  python3 -c 'import json,sys
try: s = json.load(open(sys.argv[1]))
except FileNotFoundError: s = {}
for k in sys.argv[2].split("."): s = s.get(k, {}) if isinstance(s, dict) else {}
print(s if isinstance(s, int) else 0)' "$proxy_stats" "$1"
}

# proxy_faults_summary: "kind=N ..." of every fault the proxy injected.
proxy_faults_summary () {
  python3 -c 'import json,sys
f = json.load(open(sys.argv[1])).get("faults", {})
print(" ".join("%s=%d" % kv for kv in sorted(f.items())) or "none")' "$proxy_stats"
}

# cached_chunks CACHE_DIR: the chunks present in the cache of the one
# image in CACHE_DIR, one index per line (docs/cache-format.md: a
# 4096-byte header, then a 40-byte entry per chunk, bit 0 = present).
cached_chunks () {
  python3 -c 'import glob,struct,sys
maps = glob.glob(sys.argv[1] + "/images/*/map")
if len(maps) != 1: sys.exit("cached_chunks: %d images in %s" % (len(maps), sys.argv[1]))
data = open(maps[0], "rb").read()
n = struct.unpack_from("<Q", data, 32)[0]
for i in range(n):
    if struct.unpack_from("<I", data, 4096 + 40 * i)[0] & 1: print(i)' "$1"
}

# nbdkit_stat NAME KEY: a counter from the "stats:" line that
# -D accel.stats=1 makes a stopped nbdkit print to $tmp/NAME.log, e.g.
# nbdkit_stat a "verify failures".  Prints nothing (and says why) if
# there is none, so that the caller's comparison fails.
nbdkit_stat () {
  local line
  line=$(grep -o 'stats: .*' "$tmp/$1.log" | tail -n 1)
  [ -n "$line" ] || fail "nbdkit $1 printed no stats (is -D accel.stats=1 set?)"
  echo "$line" | grep -oE "(: |, )$2 [0-9]+" | grep -oE '[0-9]+$' ||
    fail "no counter '$2' in: $line"
}

# start_nbdkit NAME ARGS...: nbdkit with the plugin on a private Unix
# socket, as a daemon (NB: nbdkit 1.32 in the foreground dies with the
# script that started it), waiting for its pidfile.  Sets sock_NAME and
# pid_NAME; its log is $tmp/NAME.log.  Returns nbdkit's exit status if
# it fails to start.
start_nbdkit () {
  local name=$1; shift
  local sock="$tmp/$name.sock" pidf="$tmp/$name.pid" log="$tmp/$name.log"
  rm -f "$sock" "$pidf"
  # NB: --log=stderr, else a daemon sends its errors to syslog.
  nbdkit -U "$sock" -P "$pidf" --log=stderr -v "$plugin" "$@" > "$log" 2>&1
  local rc=$?
  [ $rc = 0 ] || return $rc
  _nbdkit_started "$name" "$pidf"
  eval "sock_$name='$sock'"
}

# start_nbdkit_tcp NAME ARGS...: the same, listening on a free TCP port
# of 127.0.0.1 instead, for clients that cannot reach a Unix socket (a
# VM).  Sets port_NAME and pid_NAME.
start_nbdkit_tcp () {
  local name=$1; shift
  local pidf="$tmp/$name.pid" log="$tmp/$name.log" port rc
  # NB: the port may be taken between free_port and nbdkit's bind.
  for _ in 1 2 3; do
    port=$(free_port) || fail "no free TCP port"
    rm -f "$pidf"
    nbdkit -p "$port" -i 127.0.0.1 -P "$pidf" --log=stderr -v "$plugin" "$@" \
      > "$log" 2>&1
    rc=$?
    [ $rc = 0 ] && break
    grep -q 'Address already in use' "$log" || return $rc
  done
  [ $rc = 0 ] || return $rc
  _nbdkit_started "$name" "$pidf"
  eval "port_$name=$port"
}

# _nbdkit_started NAME PIDFILE: wait for a daemonised nbdkit's pidfile,
# register its stop and set pid_NAME.
_nbdkit_started () {
  local name=$1 pidf=$2 pid
  for _ in $(seq 100); do
    [ -s "$pidf" ] && break
    sleep 0.1
  done
  [ -s "$pidf" ] || fail "nbdkit $name did not write its pidfile"
  pid=$(cat "$pidf")
  on_exit "_kill_wait $pid"
  eval "pid_$name=$pid"
}

# _kill_wait PID: SIGTERM, then wait up to 10 s for it to be gone (so
# that what it does on the way out, a sanitizer's leak check too, is
# over when the test ends); else SIGKILL, and the test fails.
_kill_wait () {
  kill "$1" 2>/dev/null || return 0
  _wait_gone "$1" && return 0
  kill -9 "$1" 2>/dev/null
  _stuck+=" $1"
}
_wait_gone () {
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on now.
free_port () {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# stop_nbdkit NAME: stop it and wait until it has exited (it flushes
# its cache on the way out).
stop_nbdkit () {
  local pid
  eval "pid=\$pid_$1"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      ! sanitizer_reports 2>/dev/null ||
        fail "nbdkit $1 exited with sanitizer reports (below)"
      return 0
    fi
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  fail "nbdkit $1 did not exit on SIGTERM"
}

# nbd_uri NAME: the NBD URI of a started nbdkit.
nbd_uri () { eval "echo \"nbd+unix:///?socket=\$sock_$1\""; }

# A random test image with a few all-zero chunks: make_image FILE MiB
make_image () {
  local f=$1 mib=$2
  head -c $((mib * 1024 * 1024)) /dev/urandom > "$f"
  # Zero chunks 2 and 3 (1 MiB chunks) and the last half-chunk stays data.
  dd if=/dev/zero of="$f" bs=1M seek=2 count=2 conv=notrunc status=none
  not_a_filesystem "$f"
}

# publish_image FILE MiB BUCKET/KEY: make_image FILE MiB, index it to
# FILE.manifest and upload both (KEY and KEY.manifest).
publish_image () {
  make_image "$1" "$2"
  "$top/indexer/accel-index" "$1" -o "$1.manifest" 2>/dev/null ||
    fail "accel-index $1"
  s3_put "$1" "$3" || fail "upload of $1"
  s3_put "$1.manifest" "$3.manifest" || fail "upload of $1.manifest"
}

# not_a_filesystem FILE: zero FILE's first 4 KiB, so that random bytes
# never carry ext4's magic (0xEF53 at byte 1080, one image in 65536),
# which would make accel-index take it for a damaged ext4 image.
not_a_filesystem () {
  dd if=/dev/zero of="$1" bs=4096 count=1 conv=notrunc status=none
}

# libnbd's Python bindings are installed for Debian's python3, not for
# any other python3 that may come first in PATH.
nbdcheck () { /usr/bin/python3 "$top/tests/lib/nbdcheck.py" "$@"; }

# make_tree DIR: a small tree of awkward files (nested, empty, sparse,
# hard-linked, long and non-ASCII names) for filesystem tests.
make_tree () {
  local d=$1
  mkdir -p "$d/a/b/c/d/e" "$d/empty-dir" "$d/ünïcødé dir"
  head -c 3000000 /dev/urandom > "$d/a/big.bin"
  head -c 1 /dev/urandom > "$d/a/b/one-byte"
  : > "$d/a/b/c/empty"
  echo "hello accel" > "$d/a/b/c/d/e/deep.txt"
  truncate -s 5M "$d/sparse.bin"
  printf 'middle' | dd of="$d/sparse.bin" bs=1 seek=3000000 conv=notrunc status=none
  ln "$d/a/big.bin" "$d/a/hardlink.bin"
  echo "名前" > "$d/ünïcødé dir/ファイル.txt"
  echo long > "$d/$(printf 'n%.0s' $(seq 200))"
  local i
  for i in $(seq 50); do echo "file $i" > "$d/a/b/small-$i.txt"; done
}

# mount_export URI MNT: the stand-in for nbd-client + mount on machines
# without the nbd driver: nbdfuse exposes the export as a file, a
# read-only loop device is made of it, and that is mounted read-only.
# Everything is undone at exit.  Sets loopdev.  A third argument
# "direct" makes the loop device do direct I/O, as the bench's does: a
# buffered one reads ahead in the file below it, so nbdkit sees reads
# the file system never asked for.
mount_export () {
  local uri=$1 mnt=$2 fusedir="$tmp/fuse" dio=()
  [ "${3:-}" = direct ] && dio=(--direct-io=on)
  mkdir -p "$fusedir" "$mnt"
  rm -f "$tmp/nbdfuse.pid"
  nbdfuse -r -P "$tmp/nbdfuse.pid" "$fusedir" "$uri" > "$tmp/nbdfuse.log" 2>&1 &
  # NB: the undo waits for nbdfuse to be gone, so that nbdkit, stopped
  # next, has no client left.
  _nbdfuse_pid=$!
  on_exit "fusermount3 -u '$fusedir'; _wait_gone $_nbdfuse_pid"
  for _ in $(seq 100); do
    [ -s "$tmp/nbdfuse.pid" ] && break
    sleep 0.1
  done
  [ -e "$fusedir/nbd" ] || fail "nbdfuse: $(cat "$tmp/nbdfuse.log")"
  loopdev=$(losetup -f --show -r "${dio[@]}" "$fusedir/nbd") || fail "losetup"
  on_exit "loop_detach_file '$fusedir/nbd'"
  mount -o ro "$loopdev" "$mnt" || fail "mount $loopdev"
  on_exit "umount '$mnt'"
}

# loop_detach_file FILE: detach every loop device FILE backs.  The exit
# trap's undo for a loop device: by then the device may have been
# detached already and its number taken by other work on the machine,
# which "losetup -d /dev/loopN" would then break.
loop_detach_file () {
  local d
  for d in $(losetup -n -O NAME -j "$1" 2>/dev/null); do losetup -d "$d"; done
}

# unmount_export MNT: undo mount_export now (the exit trap's undo then
# finds nothing left to do).
unmount_export () {
  umount "$1" && losetup -d "$loopdev" && fusermount3 -u "$tmp/fuse" &&
    _wait_gone "$_nbdfuse_pid"
}

# leftovers: for the node tools' tests (accel-mount, accel-update):
# everything of ours still there, one line each: processes with the run
# directory ($ACCEL_RUN_DIR) in their arguments, loop devices over files
# under $tmp, mounts under $tmp, state directories and lock files.
leftovers () {
  local p args a b
  for p in /proc/[0-9]*; do
    mapfile -d '' args 2>/dev/null < "$p/cmdline" || continue
    for a in "${args[@]}"; do
      case $a in *"$ACCEL_RUN_DIR"*)
        echo "process ${p#/proc/}: ${args[*]}"
        break ;;
      esac
    done
  done
  for b in /sys/block/loop*/loop/backing_file; do
    [ -f "$b" ] || continue
    case $(cat "$b" 2>/dev/null) in "$tmp"/*)
      echo "loop device ${b#/sys/block/}: $(cat "$b")" ;;
    esac
  done
  grep -F " $tmp/" /proc/mounts | sed 's/^/mount: /'
  for b in "$ACCEL_RUN_DIR"/*/; do
    [ -d "$b" ] && echo "state directory: $b"
  done
  # A name's lock file lasts as long as its mount; the others, as long
  # as the command that took them (nbd.lock, one for the node, stays).
  for b in "$ACCEL_RUN_DIR"/.locks/*; do
    [ -e "$b" ] && [ "${b##*/}" != nbd.lock ] && echo "lock file: $b"
  done
  return 0
}

# force_cleanup: the node tools' tests' safety net, should the tools
# fail: undo by hand whatever is left (mounts and loop devices under
# $tmp, processes leftovers finds).
force_cleanup () {
  local m l p
  grep -F " $tmp/" /proc/mounts | awk '{ print $2 }' | sort -r |
    while read -r m; do umount -l "$(printf '%b' "$m")"; done
  for l in /sys/block/loop*/loop/backing_file; do
    case $(cat "$l" 2>/dev/null) in "$tmp"/*)
      losetup -d "/dev/$(basename "$(dirname "$(dirname "$l")")")" ;;
    esac
  done
  for p in $(leftovers | sed -n 's/^process \([0-9]*\):.*/\1/p'); do
    kill -9 "$p"
  done
}
