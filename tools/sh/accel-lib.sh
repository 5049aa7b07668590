# shellcheck shell=bash
# accel-lib.sh: the functions accel-mount, accel-umount and accel-update
# share.  It is
# sourced, not run: the tools look for it beside themselves (the source
# tree), in ../lib/accel/ (make install with BINDIR under PREFIX) and in
# the PKGLIBDIR make install wrote into them.
#
# The caller sets prog, its name, which prefixes every message, and may
# set quiet=1 to silence say.  Nothing here changes the shell's options.

: "${prog:?must be set by the tool that sources accel-lib.sh}"
run_dir=${ACCEL_RUN_DIR:-/run/accel}

say () { [ "${quiet:-0}" = 1 ] || echo "$prog: $*"; }
warn () { echo "$prog: $*" >&2; }
die () {
  warn "$*"
  exit 1
}
usage_error () {
  warn "$*"
  echo "Try '$prog --help'." >&2
  exit 2
}

# valid_name NAME: NAME could be a state directory's name (as
# systemd-escape --path writes one, or as given with --name).
valid_name () {
  [[ $1 =~ ^[A-Za-z0-9:_@\\-][A-Za-z0-9:_.@\\-]*$ ]]
}

# escape_path PATH: the path as systemd-escape --path writes it, so that
# every mountpoint has its own name and a unit's name can be derived
# from it.
escape_path () {
  local LC_ALL=C p=$1 out="" c i
  while [[ $p == *//* ]]; do p=${p//\/\//\/}; done
  p=${p#/}
  p=${p%/}
  if [ -z "$p" ]; then
    echo -
    return
  fi
  for ((i = 0; i < ${#p}; i++)); do
    c=${p:i:1}
    case $c in
      /) out+=- ;;
      [a-zA-Z0-9:_]) out+=$c ;;
      .) if ((i == 0)); then out+='\x2e'; else out+=.; fi ;;
      *)
        printf -v c '\\x%02x' "'$c"
        out+=$c
        ;;
    esac
  done
  printf '%s\n' "$out"
}

# take_lock VAR FILE SECS: open FILE and lock it (flock), waiting at
# most SECS, and put the fd in the variable VAR (which anything left
# running must not inherit: {fd}>&-).  Lock files go when what they
# guard is gone (release_lock), so the file opened may have been removed
# while we waited for its lock: then lock the one at FILE now instead.
take_lock () {
  # NB: names of our own, which the caller's VAR cannot be.
  local _tl_file=$2 _tl_end=$((SECONDS + $3)) _tl_fd _tl_left
  mkdir -p "${_tl_file%/*}"
  while :; do
    exec {_tl_fd}> "$_tl_file" || return 1
    _tl_left=$((_tl_end - SECONDS))
    ((_tl_left > 0)) || _tl_left=0
    if ! flock -w "$_tl_left" "$_tl_fd"; then
      exec {_tl_fd}>&-
      return 1
    fi
    if [ "$_tl_file" -ef "/dev/fd/$_tl_fd" ]; then
      printf -v "$1" %s "$_tl_fd"
      return 0
    fi
    exec {_tl_fd}>&-
  done
}

# release_lock FD FILE: remove FILE, whose lock we hold as FD, and let
# go of it.  The last thing done under that lock: whoever takes FILE
# next makes a new one, and nothing excludes them from us any more.
release_lock () {
  local fd=$1
  rm -f -- "$2"
  exec {fd}>&-
}

# lock_dataset NAME: take the lock that lets one accel-mount or
# accel-umount at a time work on NAME, in the fd lock_fd (which anything
# left running must not inherit: {lock_fd}>&-); lock_file is its file,
# which goes when NAME's last mount does (release_lock).
# shellcheck disable=SC2034 # the tools use lock_fd
lock_fd='' lock_file=''
lock_dataset () {
  lock_file="$run_dir/.locks/$1.lock"
  take_lock lock_fd "$lock_file" 60 ||
    die "$1: another accel-mount or accel-umount is still running (waited 60 s)"
}

# wait_until SECS COMMAND...: poll COMMAND every 0.1 s until it succeeds
# or SECS have passed (then return 1).
wait_until () {
  local tries=$(($1 * 10))
  shift
  while ! "$@"; do
    tries=$((tries - 1))
    ((tries > 0)) || return 1
    sleep 0.1
  done
}

# state_get FILE KEY: the value of KEY in a state file (last one wins),
# or nothing if there is no such key or no such file: a state directory
# can be left without its file by an accel-mount killed right after
# making it.
state_get () {
  local line v=""
  [ -f "$1" ] || return 0
  while IFS= read -r line; do
    [ "${line%%=*}" = "$2" ] && v=${line#*=}
  done < "$1"
  printf '%s\n' "$v"
}

# is_process PID PROGRAM WORD: PID is alive, runs PROGRAM and has WORD as
# one of its arguments (so a recycled pid is never mistaken for ours).
is_process () {
  local args a
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  # NB: mapfile, not tr | grep: accel-umount runs this for every
  # process on the node.
  mapfile -d '' args 2> /dev/null < "/proc/$1/cmdline" || return 1
  [ ${#args[@]} -gt 0 ] && [ "${args[0]##*/}" = "$2" ] || return 1
  for a in "${args[@]:1}"; do
    [ "$a" = "$3" ] && return 0
  done
  return 1
}

# mounted_source MNT: the device mounted on MNT (the topmost), or nothing.
mounted_source () {
  findmnt -n -M "$1" -o SOURCE 2> /dev/null | tail -n 1 || :
}

# nbd_free DEV: DEV exists and nobody has it attached (no pid, size 0):
# it can be attached, and a detached device is free once the kernel has
# let go of it.
nbd_free () {
  local b=/sys/block/${1#/dev/}
  [ -b "$1" ] && [ -d "$b" ] && [ ! -e "$b/pid" ] && [ "$(cat "$b/size")" = 0 ]
}

# holders_py: prints one line per process that keeps the filesystem of
# argv[1] busy, "PID (COMM): what".  NB: by device number, not path, so
# that processes in other mount namespaces (containers) are found too.
# Best effort: a process may come or go while it looks.
holders_py='import os, sys
dev = os.stat(sys.argv[1]).st_dev
me = os.getpid()
for p in sorted((d for d in os.listdir("/proc") if d.isdigit()), key=int):
    if int(p) == me:
        continue
    what = []
    for w in ("cwd", "root"):
        try:
            if os.stat("/proc/%s/%s" % (p, w)).st_dev == dev:
                what.append(w)
        except OSError:
            pass
    try:
        fds = os.listdir("/proc/%s/fd" % p)
    except OSError:
        fds = []
    n = 0
    for fd in fds:
        try:
            n += os.stat("/proc/%s/fd/%s" % (p, fd)).st_dev == dev
        except OSError:
            pass
    if n:
        what.append("%d open file%s" % (n, "s" if n > 1 else ""))
    want = "%02x:%02x" % (os.major(dev), os.minor(dev))
    try:
        with open("/proc/%s/maps" % p) as f:
            if any(l.split()[3:4] == [want] for l in f):
                what.append("mapped files")
    except OSError:
        pass
    if what:
        try:
            comm = open("/proc/%s/comm" % p).read().strip()
        except OSError:
            comm = "?"
        print("%s (%s): %s" % (p, comm, ", ".join(what)))'

# holders_of MNT: the processes that keep MNT busy, one a line (nothing
# if none are found).  NB: under a timeout: stat of a file on a hung
# FUSE filesystem elsewhere would hang.
holders_of () {
  command -v python3 > /dev/null || return 0
  timeout 20 python3 -c "$holders_py" "$1" 2> /dev/null || :
}
