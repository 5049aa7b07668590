# accel: running code built with `make SANITIZE=...` (source it).
#
# tests/run and tests/lib/functions.sh use these.  Every sanitized
# process writes its reports to a file in $ACCEL_SANITIZER_LOGS (one a
# process: asan.PID, ubsan.PID, tsan.PID) instead of stderr, so that a
# report is seen even when it comes from a daemon (nbdkit, whose exit
# status no test sees) or from a command a test expects to fail; a test
# fails if any file appears there.  The options do nothing to programs
# that are not instrumented, so they are set for plain builds too.
#
# nbdkit itself is not instrumented: it loads our sanitized plugin with
# dlopen, which ASan and TSan refuse (their runtime must come before
# every other library), so nbdkit is started with the runtime in
# LD_PRELOAD (sanitizer_preload), and with tests/helpers/sanitizer-preload.so
# after it, without which it would hang at exit (that file says why).
# What nbdkit itself leaks when it quits with clients connected is not a
# failure (sanitizer_nbdkit_quit).

# sanitizer_preload PLUGIN: what nbdkit needs in LD_PRELOAD to run PLUGIN:
# the sanitizer runtimes it is linked with (ASan or TSan first, as they
# must be) and sanitizer-preload.so; empty for a plain build.
sanitizer_preload () {
  local libs lib list
  libs=$(ldd "$1" 2>/dev/null) || return 0
  list=$(for lib in asan tsan ubsan; do
           awk -v l="lib$lib.so" 'index($1, l) == 1 && $3 ~ /^\// { print $3 }' \
             <<<"$libs"
         done | paste -sd: -)
  case "$list" in
    */libasan.so* | */libtsan.so*)
      list+=":${ACCEL_TOP:?}/tests/helpers/sanitizer-preload.so" ;;
  esac
  echo "$list"
}

# sanitizer_env DIR: export the options that send every report to a file
# in DIR and make it fail the process.
#   ASan: halts at the first error (its default); leaks are checked at
#     exit (LSan, with tests/lib/lsan.supp for other people's leaks).
#   UBSan: halts too (the build also says -fno-sanitize-recover).
#   TSan: reports every race and exits 66 at the end; tests/lib/tsan.supp
#     lists the false positives, each with the reason.
# Options already in the environment are kept, before ours.
sanitizer_env () {
  local d=$1 lib="${ACCEL_TOP:?}/tests/lib"
  mkdir -p "$d"
  export ACCEL_SANITIZER_LOGS="$d"
  export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}:log_path=$d/asan"
  export LSAN_OPTIONS="suppressions=$lib/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}:log_path=$d/ubsan"
  export TSAN_OPTIONS="suppressions=$lib/tsan.supp:second_deadlock_stack=1:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}:log_path=$d/tsan"
}

# sanitizer_nbdkit_quit FILE: whether FILE is only LeakSanitizer's report
# of what nbdkit leaks when it quits with clients still connected: it
# then skips .close and frees neither its connections' contexts (leaks
# allocated in nbdkit alone) nor, with them, our handles (indirect
# leaks).  A direct leak with any frame outside nbdkit is ours.
sanitizer_nbdkit_quit () {
  awk '
    /ERROR: LeakSanitizer/ { lsan = 1; next }
    /ERROR: / { other = 1 }
    /^Direct leak/ { direct++; in_direct = 1; next }
    /^Indirect leak/ || /^$/ { in_direct = 0; next }
    in_direct && $1 ~ /^#[1-9]/ && $0 !~ /\/nbdkit\+0x[0-9a-f]+\)$/ { ours = 1 }
    END { exit !(lsan && direct && !other && !ours) }' "$1"
}

# sanitizer_reports [LINES]: print the reports in $ACCEL_SANITIZER_LOGS
# (the first LINES lines of each, default all) to stderr; false if none.
# nbdkit's leaks at quit (sanitizer_nbdkit_quit) are noted and removed.
sanitizer_reports () {
  local f found=1
  [ -n "${ACCEL_SANITIZER_LOGS:-}" ] || return 1
  for f in "$ACCEL_SANITIZER_LOGS"/*; do
    [ -s "$f" ] || continue
    if sanitizer_nbdkit_quit "$f"; then
      echo "note: $f: nbdkit quit with clients connected (its leak, ignored)" >&2
      rm -f "$f"
      continue
    fi
    echo "--- sanitizer report $f:" >&2
    if [ -n "${1:-}" ]; then head -n "$1" "$f" >&2; else cat "$f" >&2; fi
    found=0
  done
  return $found
}
