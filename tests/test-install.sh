#!/usr/bin/env bash
# make install puts the plugin in nbdkit's plugin directory and the tools
# in BINDIR (honouring DESTDIR and PREFIX), and the installed plugin loads
# and documents every key.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires pkg-config
make_tmpdir
plugindir=$(pkg-config nbdkit --variable=plugindir)
make -s -C "$top" install DESTDIR="$tmp/root" PREFIX=/usr > "$tmp/install.log" 2>&1 ||
  fail "make install: $(cat "$tmp/install.log")"
so="$tmp/root$plugindir/nbdkit-accel-plugin.so"
[ -x "$so" ] || fail "plugin not installed at $so"
for t in accel-index accel-mount accel-umount; do
  [ -x "$tmp/root/usr/bin/$t" ] || fail "$t not installed"
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
