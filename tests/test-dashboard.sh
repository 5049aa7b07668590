#!/usr/bin/env bash
# The Grafana dashboard and the alerting rules of tools/grafana/, against
# a real scrape of the plugin's metrics.
#
#  1. The dashboard is well-formed JSON in Grafana's current schema: a
#     datasource variable of type prometheus, image and instance
#     variables from label values, and every panel has a title, that
#     datasource and at least one query.  Every metric it or the rules
#     name is one the plugin writes (plugin/metrics.c) or one of
#     node_exporter's textfile collector.
#  2. The rules pass promtool check rules, and promtool test rules with
#     tests/data/accel-alerts-test.yml (each alert fires on a sick
#     series, not on healthy ones).
#  3. Two nbdkits serve two images from the test S3 server, writing
#     metrics files into one directory; node_exporter (Debian's, textfile
#     collector only) exposes them and Prometheus (Debian's, 1 s scrapes,
#     storage in the test's directory, the rules loaded) scrapes it, all
#     on 127.0.0.1.  Reads move the counters.  Then every panel's query,
#     with Grafana's variables filled in (all images, then one image),
#     goes through Prometheus' HTTP API and must return a series with a
#     number; the variables' queries list both images; the hit ratio and
#     the cap are the expected values; Prometheus evaluates every rule
#     without error.
# shellcheck source-path=SCRIPTDIR source=lib/functions.sh
. "$(dirname "$0")/lib/functions.sh"
requires nbdkit; requires nbdcopy; requires promtool; requires prometheus
requires prometheus-node-exporter
dash="$top/tools/grafana/accel-dashboard.json"
rules="$top/tools/grafana/accel-alerts.yml"
make_tmpdir

# ---- 1. the dashboard's shape, and no metric we do not write ----
/usr/bin/python3 - "$dash" "$rules" "$top/plugin/metrics.c" <<'EOF' ||
import json, re, sys, yaml
dash_path, rules_path, metrics_c = sys.argv[1:]
errors = []
def err(msg):
    errors.append(msg)

d = json.load(open(dash_path))  # NB: malformed JSON fails here
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    err("schemaVersion %r: not Grafana's current schema" % d.get("schemaVersion"))
for k in ("uid", "title"):
    if not d.get(k):
        err("no dashboard " + k)
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("datasource", {})
if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    err("no datasource variable of type prometheus: %r" % ds)
DS = {"type": "prometheus", "uid": "${datasource}"}
for name in ("instance", "image"):
    v = variables.get(name, {})
    if v.get("type") != "query" or v.get("datasource") != DS or \
            not v.get("definition", "").startswith("label_values("):
        err("variable %s: not a label_values query on $datasource" % name)

panels = d.get("panels", [])
if len(panels) < 10:
    err("only %d panels" % len(panels))
ids, cells = set(), set()
for p in panels:
    t = p.get("title") or "panel %s" % p.get("id")
    if not p.get("title"):
        err("%s: no title" % t)
    if p.get("id") in ids:
        err("%s: duplicate id" % t)
    ids.add(p.get("id"))
    if p.get("datasource") != DS:
        err("%s: datasource %r, not $datasource" % (t, p.get("datasource")))
    targets = p.get("targets") or []
    if not targets:
        err("%s: no target" % t)
    for q in targets:
        if q.get("datasource") != DS or not q.get("expr") or not q.get("refId"):
            err("%s: target %r lacks datasource, expr or refId" % (t, q.get("refId")))
    if len({q.get("refId") for q in targets}) != len(targets):
        err("%s: duplicate refId" % t)
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24:
        err("%s: gridPos %r" % (t, g))
        continue
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                err("%s: overlaps another panel at %d,%d" % (t, x, y))
            cells.add((x, y))

# The names the plugin writes: every "accel_..." string in metrics.c,
# and a histogram's series.
src = open(metrics_c).read()
ours = set(re.findall(r'"(accel_[a-z_]+)"', src))
ours |= {n + s for n in ours if n.endswith("_seconds") for s in ("_bucket", "_sum", "_count")}
theirs = {"node_textfile_mtime_seconds", "node_textfile_scrape_error"}
exprs = [q["expr"] for p in panels for q in p.get("targets", [])]
exprs += [v.get("definition", "") for v in variables.values()]
rules = [r for g in yaml.safe_load(open(rules_path))["groups"] for r in g["rules"]]
for e in exprs + [r["expr"] for r in rules]:
    for m in re.findall(r"\b((?:accel|node)_[a-z_]+)\b", e):
        if m not in ours | theirs:
            err("metric %s: the plugin does not write it" % m)
if errors:
    sys.exit("\n".join(errors))
print("dashboard: %d panels, %d queries, all on $datasource; metrics used: %s" %
      (len(panels), len(exprs), " ".join(sorted({m for e in exprs for m in
       re.findall(r"\b(?:accel|node)_[a-z_]+\b", e)}))))
EOF
  fail "dashboard check"

# ---- 2. the rules, on their own ----
promtool check rules "$rules" > "$tmp/check-rules.out" 2>&1 ||
  fail "promtool check rules: $(cat "$tmp/check-rules.out")"
grep 'SUCCESS' "$tmp/check-rules.out"
promtool test rules "$top/tests/data/accel-alerts-test.yml" > "$tmp/test-rules.out" 2>&1 ||
  fail "promtool test rules: $(cat "$tmp/test-rules.out")"
echo "promtool test rules: $(grep -c 'alertname:' "$top/tests/data/accel-alerts-test.yml") alert checks pass"

# ---- 3. a real scrape ----
needs_s3
bucket=$(unique_bucket)
s3_mkbucket "$bucket"
MiB=1048576
for img in a:8 b:6; do
  name=${img%:*}
  make_image "$tmp/$name.img" "${img#*:}"
  "$top/indexer/accel-index" "$tmp/$name.img" -o "$tmp/$name.img.manifest" ||
    fail "accel-index $name"
  s3_put "$tmp/$name.img" "$bucket/d/$name.img"
  s3_put "$tmp/$name.img.manifest" "$bucket/d/$name.img.manifest"
done
textfile="$tmp/textfile"
mkdir "$textfile"
for name in a b; do
  start_nbdkit "$name" url="s3://$bucket/d/$name.img" \
    endpoint="$ACCEL_TEST_S3_ENDPOINT" cache-dir="$tmp/cache" cache-size=64M \
    readahead=0 metrics-file="$textfile/accel-$name.prom" metrics-interval=1 ||
    fail "nbdkit $name: $(cat "$tmp/$name.log")"
done

# start_on_port NAME COMMAND...: run a server in the background on a
# free port of 127.0.0.1 (@PORT@ in its arguments), log in $tmp/NAME.log,
# until URL/PATH answers; sets port.  NB: the port may be taken between
# free_port and the server's bind, so try again on "address already in
# use".
start_on_port () {
  local name=$1 path=$2 pid i
  shift 2
  for _ in 1 2 3; do
    port=$(free_port) || fail "no free port"
    "${@//@PORT@/$port}" > "$tmp/$name.log" 2>&1 &
    pid=$!
    on_exit "_kill_wait $pid"
    for i in $(seq 100); do
      curl -sf "http://127.0.0.1:$port$path" > /dev/null && return 0
      kill -0 $pid 2>/dev/null || break
      sleep 0.1
    done
    [ "$i" = 100 ] && fail "$name did not answer on $port"
    grep -qi 'address already in use' "$tmp/$name.log" ||
      fail "$name exited: $(tail -n 5 "$tmp/$name.log")"
  done
  fail "$name: no port"
}

start_on_port node-exporter /metrics prometheus-node-exporter \
  --web.listen-address=127.0.0.1:@PORT@ --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$textfile"
exporter="127.0.0.1:$port"
curl -sf "http://$exporter/metrics" > "$tmp/exporter.txt" || fail "scraping node_exporter"
[ "$(grep -c '^accel_image_info{' "$tmp/exporter.txt")" = 2 ] ||
  fail "node_exporter does not show both files: $(grep -E '^(accel_image_info|node_textfile)' "$tmp/exporter.txt")"

cat > "$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['$exporter']
EOF
start_on_port prometheus /-/ready prometheus --config.file="$tmp/prometheus.yml" \
  --storage.tsdb.path="$tmp/prometheus-data" --web.listen-address=127.0.0.1:@PORT@
prom="http://127.0.0.1:$port"

# promql QUERY: the result of an instant query, as JSON.
promql () {
  curl -sf --get "$prom/api/v1/query" --data-urlencode "query=$1"
}
# wait_series QUERY N: until QUERY has N series (30 s at most).
wait_series () {
  for _ in $(seq 300); do
    [ "$(promql "$1" | /usr/bin/python3 -c 'import json,sys
print(len(json.load(sys.stdin)["data"]["result"]))')" = "$2" ] && return 0
    sleep 0.1
  done
  fail "Prometheus: no $2 series of $1: $(promql "$1")"
}
wait_series accel_image_info 2
# A few scrapes of the counters at rest, so that rate() sees them move.
sleep 3

# a: read whole twice (misses, then hits); b: once, then its first chunk.
nbdcopy "$(nbd_uri a)" null: || fail "nbdcopy a"
nbdcopy "$(nbd_uri a)" null: || fail "nbdcopy a again"
nbdcopy "$(nbd_uri b)" null: || fail "nbdcopy b"
nbdcheck read "$(nbd_uri b)" 0 $MiB || fail "read b again"
wait_series 'accel_cache_hits_total > 0' 2
wait_series "accel_cache_dir_bytes >= $((10 * MiB))" 2
sleep 3

# Every panel's queries, and the variables', through the HTTP API.
/usr/bin/python3 - "$dash" "$prom" "s3://$bucket/d/a.img" <<'EOF' || fail "panel queries"
import json, math, re, sys, urllib.parse, urllib.request
dash_path, prom, image_a = sys.argv[1:]
d = json.load(open(dash_path))
errors = []

def api(path, **params):
    url = prom + path + "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]

# Grafana's variables: a PromQL regex of the selected values (escaped as
# Grafana does for a multi-value variable), or .* for All.
def fill(expr, image):
    for k, v in (("$__rate_interval", "1m"), ("$__range", "5m"),
                 ("$__interval", "15s"), ("$instance", ".*"), ("$image", image)):
        expr = expr.replace(k, v)
    if "$" in expr:
        errors.append("unfilled variable in " + expr)
    return expr

variables = {v["name"]: v for v in d["templating"]["list"]}
for name in ("instance", "image"):
    m = re.fullmatch(r"label_values\((.*), *(\w+)\)", variables[name]["definition"])
    values = api("/api/v1/label/%s/values" % m.group(2),
                 **{"match[]": fill(m.group(1), ".*")})
    print("variable %s: %s" % (name, " ".join(values)))
    if name == "image" and not {image_a, image_a.replace("a.img", "b.img")} <= set(values):
        errors.append("variable image: %r" % values)

one = re.escape(image_a).replace("\\", "\\\\")  # inside a PromQL string
results = {}
for p in d["panels"]:
    for q in p["targets"]:
        for image in (".*", one):
            res = api("/api/v1/query", query=fill(q["expr"], image))["result"]
            nums = [float(s["value"][1]) for s in res
                    if not math.isnan(float(s["value"][1]))]
            what = "%s/%s (%s)" % (p["title"], q["refId"], "all" if image == ".*" else "a.img")
            if not nums:
                errors.append("%s: %d series, no number: %s" % (what, len(res), q["expr"]))
            results[(p["title"], q["refId"], image)] = res
            print("%-58s %d series, %s" % (what, len(res),
                  " ".join("%.4g" % n for n in nums[:4])))

def values(title, ref, image=".*"):
    return {s["metric"].get("image") or s["metric"].get("instance"): float(s["value"][1])
            for s in results.get((title, ref, image), [])}

# a: 6 data chunks read twice and 2 zero chunks; b read once, plus one
# chunk again: both between 0 and 1, a well above b.
r = values("Hit ratio per image", "A")
if not (len(r) == 2 and 0 < r[image_a.replace("a.img", "b.img")] < r[image_a] < 1):
    errors.append("hit ratios: %r" % r)
if list(values("Cache usage against the cap", "B").values()) != [64 * 1048576]:
    errors.append("cap: %r" % values("Cache usage against the cap", "B"))
if list(values("Hit ratio per image", "A", one)) != [image_a]:
    errors.append("one image selected, but: %r" % values("Hit ratio per image", "A", one))

groups = api("/api/v1/rules")["groups"]
bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
       if r.get("health") != "ok"]
n = sum(len(g["rules"]) for g in groups)
print("Prometheus evaluates %d rules, %d with errors" % (n, len(bad)))
if n < 10 or bad:
    errors.append("rules: %d loaded, unhealthy: %r" % (n, bad))
if errors:
    sys.exit("\n".join(errors))
EOF
echo OK
