#!/usr/bin/env bash
# shellcheck finds nothing in the shell tools, tools/sh/*: the tools are
# checked with -x, so that the accel-lib.sh they source is followed, and
# accel-lib.sh on its own too.  Any finding fails, notes and style
# included; a finding that is wrong is disabled where it occurs, with
# the reason.  The check is not blind: a planted unquoted expansion is
# reported.
. "$(dirname "$0")/lib/functions.sh"
requires shellcheck
make_tmpdir
shellcheck --version | sed -n 's/^version: /shellcheck /p'

files=("$top"/tools/sh/*)
[ ${#files[@]} -ge 4 ] || fail "expected accel-mount, accel-umount, accel-update and accel-lib.sh: ${files[*]}"
# NB: from another directory: the tools' source= must not depend on it.
(cd "$tmp" && shellcheck -x --severity=style "${files[@]}") > "$tmp/findings.txt" 2>&1 ||
  fail "shellcheck: $(cat "$tmp/findings.txt")"
echo "checked: ${files[*]#"$top"/}"

sed 's/^  \[ -f "\$1" \] || return 0$/  [ -f $1 ] || return 0/' \
  "$top/tools/sh/accel-lib.sh" > "$tmp/planted.sh"
! cmp -s "$top/tools/sh/accel-lib.sh" "$tmp/planted.sh" || fail "could not plant a finding"
shellcheck -x --severity=style "$tmp/planted.sh" > "$tmp/planted.txt" 2>&1 &&
  fail "shellcheck missed an unquoted \$1"
grep -q SC2086 "$tmp/planted.txt" || fail "not the planted finding: $(cat "$tmp/planted.txt")"
echo OK
