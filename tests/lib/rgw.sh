#!/usr/bin/env bash
# A throwaway one-node Ceph cluster serving S3 through radosgw, for tests.
#
# Integration tests need a real S3 server that checks SigV4 signatures,
# honours Range and If-Match and does multipart uploads; radosgw is the one
# Debian packages.  This script builds a private cluster in a directory the
# caller made: one monitor, one OSD on the memstore object store (so nothing
# touches a disk but a few small files) and one radosgw, all on loopback
# ports picked at start.  Nothing is read from or written to /etc/ceph,
# /var/lib/ceph, /var/run/ceph or /var/log/ceph, and nothing uses systemd.
#
# Usage:
#   tests/lib/rgw.sh start DIR   build the cluster in DIR (empty) and start
#                                it; once S3 answers signed requests, write
#                                DIR/env and exit 0
#   tests/lib/rgw.sh stop DIR    stop every daemon that start began there
#
# DIR/env holds shell assignments of ACCEL_TEST_S3_ENDPOINT,
# ACCEL_TEST_S3_ACCESS_KEY and ACCEL_TEST_S3_SECRET_KEY.  Any region name
# is accepted in signatures (e.g. us-east-1); path-style URLs only.
#
# radosgw writes one line per HTTP request, whatever its outcome, to
# DIR/rgw.log among its other (few) messages; count them with ' beast: ':
#   TIME THREAD  1 beast: 0xREQ: 127.0.0.1 - USER [21/Nov/2026:13:26:55.757
#   +0000] "GET /bucket/key HTTP/1.1" 206 100 - "curl/7.88.1" bytes=0-99
#   latency=0.004000000s
# (one line; USER is "-" when authentication failed, the field after the
# user agent is the Range header or "-").  DIR/rgw-ops.log has one JSON
# object per S3 operation on an existing bucket ("operation", "uri",
# "http_status", "bytes_sent", ...).  Daemon logs are in DIR/log/.
#
# NB: curl 7.88's --aws-sigv4 does not send x-amz-content-sha256, which
# radosgw then takes to be UNSIGNED-PAYLOAD while curl signed the hash of
# the body: add -H "x-amz-content-sha256: UNSIGNED-PAYLOAD".  Write bare
# query keys with "=" ("?uploads="), or curl signs them differently.
#
# memstore keeps every object in the OSD's memory; the OSD is given 3 GiB.
# On failure, start prints the log tails, stops what it started and exits
# non-zero.  stop is safe to run twice, on a half-started DIR or on a
# removed one, and leaves DIR itself for the caller to remove.
set -u

prog=rgw.sh

# How long (seconds) start waits for each step, and stop for each daemon
# to exit after SIGTERM.
step_timeout=60
stop_timeout=15

# The daemons in the order start launches them (stop goes in reverse).
daemons="mon.a osd.0 client.rgw.a"

usage ()
{
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[ $# = 2 ] || usage
cmd=$1
# Nothing can run from a directory that is gone.
[ "$cmd" = stop ] && [ ! -e "$2" ] && exit 0
[ -d "$2" ] || { echo "$prog: $2: not a directory" >&2; exit 2; }
dir=$(cd "$2" && pwd)
conf=$dir/ceph.conf
export CEPH_CONF=$conf

# Print a progress line with the seconds since start.
t0=$(date +%s%N)
say ()
{
  local ds=$(( ($(date +%s%N) - t0) / 100000000 ))
  printf '%s: [%3d.%ds] %s\n' "$prog" $(( ds / 10 )) $(( ds % 10 )) "$*"
}

# Is PID alive and one of ours?  Pids are reused, so check that the
# process's command line names our config file before ever signalling it.
ours ()
{
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

# Has PID exited but not yet been reaped?  Our daemons outlive start, so
# init reaps them, and some inits (in containers) take a second or so.
zombie ()
{
  local stat
  read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

# Stop one daemon by its pid file: SIGTERM, then SIGKILL if it has not
# exited after stop_timeout seconds.  Adds its pid to $stopped.
stop_one ()
{
  local name=$1 pidfile=$dir/run/$1.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for (( i = 0; i < stop_timeout * 10; i++ )); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      echo "$prog: $name (pid $pid) ignored SIGTERM, killing it" >&2
      kill -KILL "$pid" 2>/dev/null
      for (( i = 0; i < 50; i++ )); do
        ours "$pid" || break
        sleep 0.1
      done
    fi
  fi
  if ours "$pid"; then
    echo "$prog: $name (pid $pid) would not die" >&2
    return 1
  fi
  stopped="$stopped $pid"
  rm -f "$pidfile"
}

# Stop the daemons, clients first, and wait (a bounded time) until init
# has reaped them, so that no <defunct> entry is left for pgrep to see.
do_stop ()
{
  local d pid i r=0 stopped=""
  for d in $(echo "$daemons" | tr ' ' '\n' | tac); do
    stop_one "$d" || r=1
  done
  for pid in $stopped; do
    for (( i = 0; i < 50; i++ )); do
      zombie "$pid" || break
      sleep 0.1
    done
  done
  return $r
}

# On a failed start: show what the logs say, stop everything, exit 1.
fail ()
{
  local f
  echo "$prog: start failed: $*" >&2
  for f in "$dir"/log/*.log "$dir"/log/*.out "$dir/rgw.log"; do
    [ -s "$f" ] || continue
    echo "--- last lines of $f:" >&2
    tail -n 20 "$f" >&2
  done
  do_stop
  exit 1
}

# Run "$@" until it succeeds, at most step_timeout seconds, checking
# that daemon $1 (its pid file) is still alive between tries.
wait_for ()
{
  local name=$1 end=$(( $(date +%s) + step_timeout ))
  shift
  while ! "$@" >/dev/null 2>&1; do
    ours "$(cat "$dir/run/$name.pid" 2>/dev/null)" ||
      fail "$name exited"
    [ "$(date +%s)" -lt "$end" ] || fail "timed out waiting for: $*"
    sleep 0.2
  done
}

# Run daemon NAME from program BIN as a background job, not letting it fork
# (-f), so that its pid is known at once even if it dies straight away.
launch ()
{
  local name=$1 bin=$2
  shift 2
  "$bin" -c "$conf" -n "$name" -f "$@" \
    </dev/null >"$dir/log/$name.out" 2>&1 &
  echo $! > "$dir/run/$name.pid"
}

# Print N free TCP ports on 127.0.0.1, one a line.  NB: another process
# could take one before we bind it; the daemons' start then fails loudly.
free_ports ()
{
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# A random string of N characters from the class SET.
random_string ()
{
  LC_ALL=C tr -dc "$2" < /dev/urandom | head -c "$1"
}

# A SigV4-signed S3 request: s3 KEY SECRET [curl args...] URL.  Prints the
# HTTP status only.
s3 ()
{
  local key=$1 secret=$2
  shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# Succeeds once radosgw answers an anonymous request with any HTTP status.
rgw_answers ()
{
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/")
  [ "$code" != 000 ]
}

# Succeeds once a signed ListBuckets request gets 200.
s3_ready ()
{
  [ "$(s3 "$access_key" "$secret_key" "$endpoint/")" = 200 ]
}

do_start ()
{
  local ports mon_port rgw_port fsid osd_uuid code

  if [ -n "$(ls -A "$dir")" ]; then
    echo "$prog: $dir: not empty" >&2
    exit 2
  fi
  mkdir -p "$dir/log" "$dir/run" "$dir/mon" "$dir/osd" "$dir/rgw" \
    "$dir/crash" || exit 1

  ports=$(free_ports 2) || fail "cannot find free ports"
  mon_port=$(echo "$ports" | sed -n 1p)
  rgw_port=$(echo "$ports" | sed -n 2p)
  endpoint=http://127.0.0.1:$rgw_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  access_key=$(random_string 20 'A-Z0-9')
  secret_key=$(random_string 40 'A-Za-z0-9')

  say "writing $conf (mon 127.0.0.1:$mon_port, s3 $endpoint)"
  cat > "$conf" <<EOF
# Generated by $prog for a throwaway test cluster.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
crash dir = $dir/crash
log to file = true
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $dir/log/cluster.log
# One OSD: no replication, no health warnings about it, small PG counts.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
# Commit map changes at once, not once a second: radosgw's first start
# creates pools one after another, each a new OSD map.
paxos propose interval = 0.05

[mon.a]
mon data = $dir/mon

[osd.0]
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 3221225472
osd op num shards = 2

[client.rgw.a]
log file = $dir/rgw.log
debug rgw = 1/1
rgw enable ops log = true
rgw ops log rados = false
rgw ops log file path = $dir/rgw-ops.log
rgw data = $dir/rgw
# NB: without tcp_nodelay, error responses on a kept-alive connection
# take 40 ms (Nagle's algorithm against the client's delayed ACK).
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
EOF

  say "creating keys and monitor"
  # One keyring holds every key: the monitor imports all of it at mkfs, so
  # no daemon's key needs adding later.
  {
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. \
        --cap mon 'allow *' &&
    ceph-authtool "$dir/keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' \
        --cap mds 'allow *' &&
    ceph-authtool "$dir/keyring" --gen-key -n osd.0 \
        --cap mon 'allow profile osd' --cap osd 'allow *' \
        --cap mgr 'allow profile osd' &&
    ceph-authtool "$dir/keyring" --gen-key -n client.rgw.a \
        --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' &&
    monmaptool --create --fsid "$fsid" \
        --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" &&
    ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" \
        --keyring "$dir/keyring"
  } >"$dir/log/mkfs-mon.out" 2>&1 ||
    fail "cannot create the monitor"

  say "starting monitor"
  launch mon.a ceph-mon
  # The OSD's store does not need the monitor: make it meanwhile.
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config \
      >"$dir/log/mkfs-osd.out" 2>&1 ||
    fail "cannot create the OSD's store"

  say "registering OSD"
  timeout "$step_timeout" ceph -c "$conf" --connect-timeout "$step_timeout" \
      osd new "$osd_uuid" 0 >"$dir/log/osd-new.out" 2>&1 ||
    fail "cannot register the OSD (ceph osd new)"

  say "starting OSD"
  launch osd.0 ceph-osd
  say "starting radosgw"
  launch client.rgw.a radosgw

  # radosgw opens its port only after creating its pools, which needs the
  # OSD up and its placement groups active.
  wait_for client.rgw.a rgw_answers
  say "radosgw answers; creating S3 user"
  timeout "$step_timeout" radosgw-admin -c "$conf" user create \
      --uid=accel-test --display-name="accel test" \
      --access-key="$access_key" --secret-key="$secret_key" \
      >"$dir/log/user-create.out" 2>&1 ||
    fail "cannot create the S3 user (radosgw-admin user create)"

  wait_for client.rgw.a s3_ready
  # A wrong secret must be refused, or the server checks nothing.
  code=$(s3 "$access_key" "x$secret_key" "$endpoint/")
  [ "$code" = 403 ] ||
    fail "a request with a wrong secret got HTTP $code, not 403"

  cat > "$dir/env.tmp" <<EOF
ACCEL_TEST_S3_ENDPOINT=$endpoint
ACCEL_TEST_S3_ACCESS_KEY=$access_key
ACCEL_TEST_S3_SECRET_KEY=$secret_key
EOF
  mv "$dir/env.tmp" "$dir/env"
  say "S3 ready at $endpoint (env in $dir/env)"
}

case "$cmd" in
  start)
    trap 'fail "interrupted"' INT TERM
    do_start
    ;;
  stop)
    do_stop
    ;;
  *)
    usage
    ;;
esac
