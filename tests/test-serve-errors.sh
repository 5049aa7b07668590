#!/usr/bin/env bash
# What users get when things are wrong: a wrong secret and a missing
# object fail at start-up with one clear message naming the bucket and
# key; an object replaced while served gives HTTP 412, a clear error and
# no mixed data; a corrupted byte in the cache is detected and refetched.
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy
needs_s3
make_tmpdir
start_proxy "$tmp"
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
make_image "$tmp/disk.img" 8
"$top/indexer/accel-index" "$tmp/disk.img" -o "$tmp/disk.img.manifest" ||
  fail "accel-index"
s3_put "$tmp/disk.img" "$bucket/disk.img"
s3_put "$tmp/disk.img.manifest" "$bucket/disk.img.manifest"
url="s3://$bucket/disk.img"

# 1. Wrong secret: nbdkit refuses to start, saying why.
if AWS_SECRET_ACCESS_KEY=wrong-secret-1234567890 \
   start_nbdkit bad url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache"; then
  fail "nbdkit started with a wrong secret"
fi
cat "$tmp/bad.log"
grep -q "403" "$tmp/bad.log" || fail "no 403 in the error"
grep -q "$bucket/disk.img" "$tmp/bad.log" || fail "error does not name the object"
grep -q "wrong-secret" "$tmp/bad.log" && fail "the secret appears in the log"

# 2. Missing object.
if start_nbdkit missing url="s3://$bucket/nope.img" endpoint="$proxy_url" \
     cache-dir="$tmp/cache"; then
  fail "nbdkit started on a missing object"
fi
cat "$tmp/missing.log"
grep -q "404\|no such\|No such\|NoSuchKey" "$tmp/missing.log" ||
  fail "missing object: unclear error"

# 2a. A node key (cache-key=) others can read, inside the cache, or not
# a key: refused, saying why; a missing one is made 0600.
printf '%064d\n' 0 > "$tmp/open.key"; chmod 644 "$tmp/open.key"
printf 'not a key\n' > "$tmp/bad.key"; chmod 600 "$tmp/bad.key"
mkdir -p "$tmp/cache"
for k in "open.key:chmod 600" "cache/in.key:not be inside cache-dir" \
         "bad.key:not a key" "rel:absolute path"; do
  f=${k%%:*} want=${k#*:}
  path="$tmp/$f"
  [ "$f" = rel ] && path=node.key
  if start_nbdkit key url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
       cache-key="$path"; then
    fail "nbdkit started with cache-key=$path"
  fi
  grep -q "cache-key=.*$want" "$tmp/key.log" ||
    fail "cache-key=$path: no clear error: $(cat "$tmp/key.log")"
done
[ -e "$tmp/cache/in.key" ] && fail "a key was made inside the cache"
start_nbdkit key url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  cache-key="$tmp/keys/node.key" && fail "started without the key's directory"
mkdir -m 700 "$tmp/keys"
start_nbdkit key url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  cache-key="$tmp/keys/node.key" || fail "nbdkit with a new key: $(cat "$tmp/key.log")"
stop_nbdkit key
[ "$(stat -c %a "$tmp/keys/node.key")" = 600 ] || fail "the new key is not 0600"
grep -qxE '[0-9a-f]{64}' "$tmp/keys/node.key" || fail "the new key is not 64 hex digits"

# 2b. manifest-sha256= pins the manifest: the right digest serves, any
# other is refused before the manifest is even parsed.
good=$(sha256sum "$tmp/disk.img.manifest" | cut -d' ' -f1)
bad=$(printf '%064d' 0)
if start_nbdkit pin url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
     manifest-sha256="$bad"; then
  fail "nbdkit accepted a manifest that does not match its pin"
fi
grep -q "manifest-sha256= pins $bad: refusing it" "$tmp/pin.log" ||
  fail "no clear error for a pinned manifest mismatch"
start_nbdkit pin2 url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  manifest-sha256="$good" || fail "nbdkit refused the pinned manifest"
nbdcheck read "$(nbd_uri pin2)" 0 4096 || fail "read with a pinned manifest"
stop_nbdkit pin2
if start_nbdkit pin3 url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
     manifest=none manifest-sha256="$good"; then
  fail "nbdkit started with manifest=none and a pin"
fi

# 3. Corrupted byte in the cache: detected at the first read after a
# restart, refetched, never served.
start_nbdkit a url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  readahead=0 || fail "nbdkit: $(cat "$tmp/a.log")"
nbdcopy "$(nbd_uri a)" "$tmp/copy.img" || fail "nbdcopy"
cmp "$tmp/disk.img" "$tmp/copy.img" || fail "first copy differs"
stop_nbdkit a
data=$(echo "$tmp"/cache/images/*/data)
[ -f "$data" ] || fail "no cache data file"
# Flip one byte in chunk 5.
off=$((5 * 1048576 + 12345))
orig=$(dd if="$data" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\x$(printf %02x $(( (orig + 1) % 256 )))" |
  dd of="$data" bs=1 seek=$off conv=notrunc status=none
before=$(proxy_count GET)
start_nbdkit b url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  readahead=0 || fail "nbdkit: $(cat "$tmp/b.log")"
nbdcopy "$(nbd_uri b)" "$tmp/copy2.img" || fail "nbdcopy 2"
cmp "$tmp/disk.img" "$tmp/copy2.img" || fail "a corrupted cache byte was served"
after=$(proxy_count GET)
echo "GETs after corrupting one cached chunk: $((after - before))"
[ $((after - before)) = 1 ] || fail "expected one refetch, got $((after - before))"
grep -q "damaged" "$tmp/b.log" || fail "damage not logged"

# 4. Replace the object while serving: reads of uncached chunks fail
# with a clear error (412), never bytes of the new version.
rm -rf "$tmp/cache"
start_nbdkit c url="$url" endpoint="$proxy_url" cache-dir="$tmp/cache" \
  readahead=0 || fail "nbdkit: $(cat "$tmp/c.log")"
nbdcheck read "$(nbd_uri c)" 0 4096 || fail "first read"
head -c $((8 * 1048576)) /dev/urandom > "$tmp/other.img"
not_a_filesystem "$tmp/other.img"
s3_put "$tmp/other.img" "$bucket/disk.img"
if nbdcheck read "$(nbd_uri c)" $((6 * 1048576)) 4096; then
  fail "read of a replaced object succeeded"
fi
grep -q "changed since it was opened.*refusing to mix versions" "$tmp/c.log" || {
  cat "$tmp/c.log"; fail "no clear error for a replaced object"; }
echo OK
