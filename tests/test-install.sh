#!/usr/bin/env bash
# make install puts the plugin in nbdkit's plugin directory, the tools
# in BINDIR, the shell tools' accel-lib.sh in PKGLIBDIR and the Grafana
# dashboard and alerting rules in PKGDATADIR/grafana (honouring
# DESTDIR and PREFIX); the installed shell tools find it, and the
# installed plugin loads and documents every key.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires pkg-config
make_tmpdir
plugindir=$(pkg-config nbdkit --variable=plugindir)
make -s -C "$top" install DESTDIR="$tmp/root" PREFIX=/usr > "$tmp/install.log" 2>&1 ||
  fail "make install: $(cat "$tmp/install.log")"
so="$tmp/root$plugindir/nbdkit-accel-plugin.so"
[ -x "$so" ] || fail "plugin not installed at $so"
for t in accel-index accel-mount accel-umount accel-update; do
  [ -x "$tmp/root/usr/bin/$t" ] || fail "$t not installed"
done
[ -f "$tmp/root/usr/lib/accel/accel-lib.sh" ] || fail "accel-lib.sh not installed"
[ ! -e "$tmp/root/usr/bin/accel-lib.sh" ] || fail "accel-lib.sh installed as a tool"
for f in accel-dashboard.json accel-alerts.yml; do
  cmp "$top/tools/grafana/$f" "$tmp/root/usr/share/accel/grafana/$f" ||
    fail "$f not installed in PKGDATADIR"
done
for t in accel-mount accel-umount accel-update; do
  # Found relative to the tool (under DESTDIR, before it is moved) ...
  "$tmp/root/usr/bin/$t" --help > "$tmp/$t-help.txt" 2>&1 ||
    fail "installed $t --help: $(cat "$tmp/$t-help.txt")"
  grep -q '^SYNOPSIS' "$tmp/$t-help.txt" || fail "installed $t --help: no synopsis"
  # ... and at the PKGLIBDIR written into it.
  grep -qx 'pkglibdir=/usr/lib/accel' "$tmp/root/usr/bin/$t" ||
    fail "make install did not write PKGLIBDIR into $t"
done
nbdkit --dump-plugin "$so" > "$tmp/dump.txt" || fail "nbdkit cannot load the plugin"
grep -q '^name=accel$' "$tmp/dump.txt" || fail "wrong plugin name"
grep -q '^thread_model=parallel$' "$tmp/dump.txt" || fail "not the parallel thread model"
nbdkit "$so" --help > "$tmp/help.txt" 2>&1 || fail "--help"
# Every key the plugin accepts is in --help and in the README.
for key in $(grep -o 'strcmp (key, "[a-z-]*")' "$top/plugin/accel.c" | cut -d'"' -f2); do
  grep -q "^$key=" "$tmp/help.txt" || fail "key $key missing from --help"
  grep -q "\`$key=\`" "$top/README.md" || fail "key $key missing from README"
done
# Only the entry point and debug flags are exported.
bad=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -vE '^(plugin_init|accel_debug_[a-z_]+)$')
[ -z "$bad" ] || fail "plugin exports more than it should: $bad"
echo OK
