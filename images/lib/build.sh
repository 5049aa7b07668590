# accel sample images: what every images/*/build script shares (source it).
#
# build_begin PROG OUTDIR checks the usage and OUTDIR (it must not exist,
# or be empty) and sets $work, a new directory beside OUTDIR that the
# recipe fills; build_finish gives everything in it the fixed mtime
# (2024-01-01 00:00:00 UTC, so that an image built from the tree is
# reproducible too), renames it to OUTDIR and prints the size and time.
# A failed build leaves no OUTDIR and no work directory behind.

# NB: Debian's python3, not whatever python3 comes first in PATH: the
# generators use only the standard library, and that one is always there.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
# No __pycache__ left in the source tree.
export PYTHONDONTWRITEBYTECODE=1

die () { echo "$prog: $*" >&2; exit 1; }

build_begin () {
  prog=$1
  if [ $# != 2 ] || [ -z "$2" ] || [ "${2:0:1}" = - ]; then
    echo "usage: $prog OUTDIR" >&2
    exit 2
  fi
  out=${2%/}
  if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    die "$out: exists and is not empty"
  fi
  mkdir -p "$(dirname "$out")" || die "$out: cannot create its parent"
  work=$(mktemp -d "$out.partial.XXXXXX") || die "$out: cannot create a work dir"
  chmod 0755 "$work"
  trap 'rm -rf "$work"' EXIT
  build_start=$(date +%s.%N)
}

build_finish () {
  find "$work" -depth -exec touch -h -d @1704067200 {} + ||
    die "$out: touch failed"
  if [ -d "$out" ]; then rmdir "$out" || die "$out: rmdir failed"; fi
  mv "$work" "$out" || die "$out: rename failed"
  trap - EXIT
  awk -v p="$prog" -v o="$out" -v s="$build_start" -v e="$(date +%s.%N)" \
      -v b="$(du -sb --apparent-size "$out" | cut -f1)" \
      -v n="$(find "$out" -type f | wc -l)" \
    'BEGIN { printf "%s: %s: %d files, %.1f MB in %.1f s\n", p, o, n, b / 1e6, e - s }' >&2
}
