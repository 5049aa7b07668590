#!/usr/bin/env bash
# A site cache tier (docs/fleet.md): nginx with its slice module, as
# configured by tools/site-cache/nginx-site-cache.conf, in front of the
# store (the counting proxy in front of radosgw).  NODES nbdkits, a
# cache directory each, with endpoint= the site cache, read the whole
# image at once; their signed requests are forwarded as they are.
# Asserted:
#  1. every byte right on every node; the store saw one GET per 8 MiB
#     slice of the image, not one per chunk and node, and one HEAD per
#     node (credentials are checked by the store at start-up);
#  2. a node with a wrong secret does not start (its HEAD goes to the
#     store), and an unsigned GET of a slice the cache holds is served
#     by it: whoever reaches the cache reads what it holds (the caveat
#     docs/fleet.md spells out);
#  3. the object replaced under the same key: a new node pins the new
#     ETag (If-Match, part of the cache key) and gets the new bytes,
#     never the old version's slices.
. "$(dirname "$0")/lib/functions.sh"
requires nginx; requires nbdkit; requires nbdcopy; requires curl
nginx -V 2>&1 | grep -q -- --with-http_slice_module ||
  skip "nginx has no slice module"
needs_s3
make_tmpdir
start_proxy "$tmp"

NODES=${ACCEL_SITE_NODES:-4}
MiB=1048576
SLICE=$((8 * MiB))

bucket=$(unique_bucket)
s3_mkbucket "$bucket"
# 20 MiB (chunks 2 and 3 zeros): three slices, the last one short.
publish_image "$tmp/disk.img" 20 "$bucket/disk.img"
slices=$((($(stat -c %s "$tmp/disk.img") + SLICE - 1) / SLICE))

# The site cache: the shipped configuration, its EDIT fields filled in,
# inside a minimal nginx.conf.
d="$tmp/nginx"
mkdir -p "$d/tmp" "$d/cache"
port=$(free_port) || fail "no free port"
sed -e "s|@CACHE_DIR@|$d/cache|" -e "s|@CACHE_SIZE@|1g|" \
  -e "s|@LISTEN@|127.0.0.1:$port|" -e "s|@UPSTREAM@|${proxy_url#http://}|" \
  "$top/tools/site-cache/nginx-site-cache.conf" > "$d/site-cache.conf"
cat > "$d/nginx.conf" <<EOF
daemon on;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
user root;
events { worker_connections 256; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  include $d/site-cache.conf;
}
EOF
nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" ||
  fail "nginx did not start: $(cat "$d/error.log")"
for _ in $(seq 50); do [ -s "$d/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$d/nginx.pid") || fail "nginx wrote no pid file"
on_exit "kill $nginx_pid"
cache_url="http://127.0.0.1:$port"

# 1. NODES nodes read the whole image at once through the site cache.
h0=$(proxy_count HEAD) g0=$(proxy_count GET)
for i in $(seq "$NODES"); do
  start_nbdkit "n$i" -D accel.stats=1 url="s3://$bucket/disk.img" \
    endpoint="$cache_url" cache-dir="$tmp/c$i" readahead=0 prefetch=none ||
    fail "nbdkit n$i: $(cat "$tmp/n$i.log")"
done
# (the manifest's GETs at start: one per node, not cached as slices
# count apart below)
g1=$(proxy_count GET)
pids=()
for i in $(seq "$NODES"); do
  nbdcopy --request-size=$MiB "$(nbd_uri "n$i")" "$tmp/copy$i.img" &
  pids+=($!)
done
for i in $(seq "$NODES"); do
  wait "${pids[$((i - 1))]}" || fail "node $i: nbdcopy failed: $(tail -n 5 "$tmp/n$i.log")"
  cmp "$tmp/disk.img" "$tmp/copy$i.img" || fail "node $i: wrong bytes"
done
data_gets=$(($(proxy_count GET) - g1))
heads=$(($(proxy_count HEAD) - h0))
echo "$NODES nodes: every byte right; the store saw $data_gets image GETs" \
  "($slices slices of 8 MiB; without the cache: $((NODES * 18)))," \
  "$heads HEADs, $((g1 - g0)) manifest GETs"
[ "$data_gets" = "$slices" ] ||
  fail "the store saw $data_gets image GETs, not one per slice ($slices)"
[ "$heads" -ge "$NODES" ] || fail "only $heads HEADs reached the store"
grep -q 'GET /'"$bucket"'/disk.img HTTP/1.1" 206 .* bytes=0-8388607$' "$tmp/proxy.log" ||
  fail "the store saw no 8 MiB slice GET: $(grep disk.img "$tmp/proxy.log" | tail -n 3)"
for i in $(seq "$NODES"); do stop_nbdkit "n$i"; done

# 2. A wrong secret: refused at start-up by the store, through the cache.
if AWS_SECRET_ACCESS_KEY=wrong start_nbdkit bad url="s3://$bucket/disk.img" \
  endpoint="$cache_url" cache-dir="$tmp/cbad" prefetch=none; then
  stop_nbdkit bad
  fail "a node with a wrong secret started"
fi
echo "a wrong secret: refused at start-up ($(grep -o 'HTTP 403\|403[^,]*' "$tmp/bad.log" | head -n 1))"
# ... but an unsigned GET of a cached slice is served.
etag=$(grep -o 'ETag "[0-9a-f]*"' "$tmp/n1.log" | head -n 1 | cut -d' ' -f2)
code=$(curl -s -o "$tmp/anon.bin" -w '%{http_code}' -H "If-Match: $etag" \
  -H "Range: bytes=0-4095" "$cache_url/$bucket/disk.img")
[ "$code" = 206 ] && cmp -n 4096 "$tmp/anon.bin" "$tmp/disk.img" ||
  fail "an unsigned GET of a cached slice: HTTP $code (the caveat changed: update docs/fleet.md)"
echo "an unsigned GET of a cached slice: served (HTTP $code): the cache decides who reads"

# 3. The object replaced: a new node pins the new ETag and reads the new
# bytes, fetched from the store again.
publish_image "$tmp/disk2.img" 20 "$bucket/disk.img"
g2=$(proxy_count GET)
start_nbdkit v2 url="s3://$bucket/disk.img" endpoint="$cache_url" \
  cache-dir="$tmp/cv2" readahead=0 prefetch=none || fail "nbdkit v2: $(cat "$tmp/v2.log")"
nbdcopy "$(nbd_uri v2)" "$tmp/copyv2.img" || fail "nbdcopy v2"
stop_nbdkit v2
cmp "$tmp/disk2.img" "$tmp/copyv2.img" || fail "the replaced object: old bytes served"
echo "the replaced object: new bytes, $(($(proxy_count GET) - g2 - 1)) image GETs from the store"
echo OK
