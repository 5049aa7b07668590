#!/usr/bin/env bash
# The node service files are valid and say what they must: the systemd
# unit passes systemd-analyze verify without a single warning (skipped
# if systemd-analyze is not installed), calls accel-mount/accel-umount
# with the instance's settings and stays in the host's mount namespace;
# the Kubernetes files parse and have the fields that make the mounts
# work (privileged, Bidirectional and HostToContainer propagation, the
# hostPaths, preStop), and the DaemonSet's script is valid bash.
. "$(dirname "$0")/lib/functions.sh"
make_tmpdir
unit="$top/tools/systemd/accel@.service"
[ -f "$unit" ] || fail "no $unit"

# 1. The unit, as the instance "test", with the tools of this tree (the
# unit names make install's paths, which verify checks exist).
# shellcheck disable=SC2016 # systemd's ${VAR}, not the shell's
grep -q '^ExecStart=/usr/local/bin/accel-mount --name %i .*\${URL} \${MOUNTPOINT} \$EXTRA$' "$unit" ||
  fail "ExecStart does not pass the instance's settings to accel-mount"
grep -q '^ExecStop=/usr/local/bin/accel-umount --name %i$' "$unit" || fail "no ExecStop"
grep -q '^EnvironmentFile=/etc/accel/%i.conf$' "$unit" || fail "no EnvironmentFile"
grep -q '^PIDFile=/run/accel/%i/nbdkit.pid$' "$unit" || fail "no PIDFile"
# Anything that gives the service its own mount namespace (or a device
# policy) would hide the mount from the node or the devices from it.
bad=$(grep -E '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProtectClock|ReadOnlyPaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|DevicePolicy|DeviceAllow|RootDirectory|RootImage)=' "$unit" || :)
[ -z "$bad" ] || fail "the unit would not mount in the host's namespace: $bad"
if command -v systemd-analyze > /dev/null 2>&1; then
  mkdir "$tmp/units"
  # A dummy instance configuration, as an operator would write it.
  printf 'URL=s3://bucket/test.img\nMOUNTPOINT=/mnt/datasets/test\nEXTRA=cache-size=1G\n' \
    > "$tmp/test.conf"
  sed -e "s|/usr/local/bin/|$top/tools/sh/|g" \
    -e "s|^EnvironmentFile=/etc/accel/%i.conf|EnvironmentFile=$tmp/%i.conf|" \
    "$unit" > "$tmp/units/accel@test.service"
  (cd "$tmp/units" && systemd-analyze verify --man=no ./accel@test.service) \
    > "$tmp/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
  [ ! -s "$tmp/verify.log" ] || fail "systemd-analyze verify warns: $(cat "$tmp/verify.log")"
  # The check is not blind: a misspelt setting is reported.
  sed 's/^Type=forking/Type=forkng/' "$tmp/units/accel@test.service" > "$tmp/units/accel@bad.service"
  (cd "$tmp/units" && systemd-analyze verify --man=no ./accel@bad.service) \
    > "$tmp/verify-bad.log" 2>&1
  grep -q 'forkng' "$tmp/verify-bad.log" || fail "verify missed a bad Type="
  echo "systemd-analyze verify: clean"
else
  echo "systemd-analyze is not installed: unit not verified"
fi

# 2. The Kubernetes files.  NB: Debian's python3, which has python3-yaml.
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
/usr/bin/python3 - "$top/tools/k8s" "$tmp/node-script.sh" <<'EOF' || fail "Kubernetes files"
import os, sys, yaml

k8s, script_out = sys.argv[1], sys.argv[2]
errors = []

def check(cond, what):
    if not cond:
        errors.append(what)

def load(name):
    with open(os.path.join(k8s, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]

docs = load("accel-daemonset.yaml")
kinds = {d["kind"]: d for d in docs}
for k in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"):
    check(k in kinds, "accel-daemonset.yaml: no " + k)
ds, cm = kinds["DaemonSet"], kinds["ConfigMap"]
check(ds["apiVersion"] == "apps/v1", "DaemonSet: apiVersion")
pod = ds["spec"]["template"]["spec"]
check(ds["spec"]["selector"]["matchLabels"].items()
      <= ds["spec"]["template"]["metadata"]["labels"].items(),
      "DaemonSet: selector does not match the template")
(c,) = pod["containers"]
check(c["securityContext"].get("privileged") is True, "DaemonSet: not privileged")
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
def host_path(path):
    for m in mounts.values():
        v = vols.get(m["name"], {})
        if v.get("hostPath", {}).get("path") == path:
            return m
    return None
for p in ("/var/cache/accel", "/dev", "/mnt/datasets", "/run/accel"):
    m = host_path(p)
    check(m is not None and m["mountPath"] == p, "DaemonSet: no hostPath " + p)
check(host_path("/mnt/datasets").get("mountPropagation") == "Bidirectional",
      "DaemonSet: /mnt/datasets is not Bidirectional")
cfg = mounts.get("/etc/accel")
check(cfg is not None and vols[cfg["name"]]["configMap"]["name"]
      == cm["metadata"]["name"], "DaemonSet: /etc/accel is not the ConfigMap")
check(cm["metadata"]["namespace"] == ds["metadata"]["namespace"],
      "ConfigMap and DaemonSet in different namespaces")
for key, conf in cm["data"].items():
    check(key.endswith(".conf"), "ConfigMap key %s is not NAME.conf" % key)
    check(any(l.startswith("URL=s3://") for l in conf.splitlines()),
          "ConfigMap %s: no URL=" % key)
pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
check("accel-umount" in pre, "DaemonSet: preStop does not run accel-umount")
cmd = c["command"]
check(cmd[:2] == ["/bin/bash", "-c"], "DaemonSet: command is not bash -c")
check("accel-mount" in cmd[2] and "trap" in cmd[2],
      "DaemonSet: the script does not run accel-mount or trap SIGTERM")
with open(script_out, "w") as f:
    f.write(cmd[2])

(p,) = load("example-pod.yaml")
check(p["kind"] == "Pod", "example-pod.yaml: not a Pod")
pvols = {v["name"]: v for v in p["spec"]["volumes"]}
(pc,) = p["spec"]["containers"]
ok = False
for m in pc["volumeMounts"]:
    hp = pvols[m["name"]].get("hostPath", {}).get("path", "")
    if hp.startswith("/mnt/datasets"):
        ok = (m.get("readOnly") is True
              and m.get("mountPropagation") == "HostToContainer")
check(ok, "example Pod: no read-only HostToContainer hostPath of /mnt/datasets")

for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
EOF
bash -n "$tmp/node-script.sh" || fail "the DaemonSet's script is not valid bash"
if command -v shellcheck > /dev/null 2>&1; then
  shellcheck -s bash "$tmp/node-script.sh" || fail "shellcheck: the DaemonSet's script"
fi
echo "Kubernetes files: ok"
echo OK
