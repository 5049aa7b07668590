#!/usr/bin/env bash
# The DaemonSet's credentials on EKS, as tools/k8s/accel-daemonset.yaml
# documents them, in a network namespace of the test's own where the
# AWS link-local addresses are on the loopback device and served by
# tests/lib/fake-aws.py:
#  - EKS Pod Identity: the environment EKS injects (the YAML's
#    "pod-identity-env" comment block) plus the DaemonSet container's
#    own env; the container endpoint must be reached at 169.254.170.23,
#    with the token file's contents as Authorization, read again after
#    rotation, refreshed before expiry;
#  - IRSA: the "irsa-env" block against the fake STS;
#  - accel-inspect --whoami says which, in both.
# The env blocks are YAML in comments: the lines after "#      NAME:"
# up to the next line that is not more indented, with "#" and the
# indent removed, parsed by python3-yaml.  Token paths under
# /var/run/secrets are moved under the test's directory.
. "$(dirname "$0")/lib/functions.sh"

# Outside the namespace: make it, run this script again inside, drop it.
if [ -z "${ACCEL_CREDS_NETNS:-}" ]; then
  requires ip
  [ "$(id -u)" = 0 ] || skip "needs root for a network namespace"
  ns=accel-creds-$$
  ip netns add "$ns" || skip "cannot create a network namespace"
  on_exit "ip netns del $ns"
  ip netns exec "$ns" env ACCEL_CREDS_NETNS="$ns" bash "$0" "$@"
  exit $?
fi

requires python3
requires curl
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
. "$top/tests/lib/fake-aws.sh"
[ -x "$helper" ] || skip "tests/helpers/creds-get is not built"
make_tmpdir
clean_aws_env

ip link set lo up
ip addr add 169.254.170.23/32 dev lo
ip addr add 169.254.170.2/32 dev lo

# The env blocks and the DaemonSet container's env, as NAME=VALUE lines.
yaml_env () {
  /usr/bin/python3 - "$top/tools/k8s/accel-daemonset.yaml" "$1" "$tmp" <<'PY'
import re, sys, yaml
path, block, tmp = sys.argv[1:]
lines = open(path).read().splitlines()
if block == "daemonset":
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    env = ds["spec"]["template"]["spec"]["containers"][0].get("env", [])
else:
    start = [i for i, l in enumerate(lines)
             if re.fullmatch(r"#\s+%s:" % re.escape(block), l)]
    assert len(start) == 1, "no single %s block" % block
    indent = len(lines[start[0]]) - len(lines[start[0]].lstrip("# "))
    body = []
    for l in lines[start[0] + 1:]:
        text = l[1:] if l.startswith("#") else None
        if text is None or (text.strip() and
                            len(text) - len(text.lstrip()) + 1 <= indent):
            break
        body.append(text[indent - 1:])
    env = yaml.safe_load("\n".join(body))
for e in env:
    value = str(e["value"]).replace("/var/run/secrets/", tmp + "/secrets/")
    print("%s=%s" % (e["name"], value))
PY
}
yaml_env daemonset > "$tmp/ds.env" || fail "DaemonSet env"
yaml_env pod-identity-env > "$tmp/pi.env" || fail "pod-identity-env block"
yaml_env irsa-env > "$tmp/irsa.env" || fail "irsa-env block"
cat "$tmp/ds.env" "$tmp/pi.env" "$tmp/irsa.env"
grep -qx 'AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials' \
  "$tmp/pi.env" || fail "the YAML's Pod Identity URL changed"
grep -q '^AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=' "$tmp/pi.env" ||
  fail "no token file in the YAML's Pod Identity env"
role=$(sed -n 's/^AWS_ROLE_ARN=//p' "$tmp/irsa.env")
[ -n "$role" ] || fail "no AWS_ROLE_ARN in the YAML's IRSA env"

jwt="fakeWebIdentityJWT.irsa"
start_fake_aws aws --listen 0.0.0.0 --port 80 --role-arn "$role" \
  --web-identity-token "$jwt" --container-token "fakeAuthToken-pod-1"
url=$fake_url_aws

# pod ENVFILE CMD...: CMD with only the pod's environment (and the
# test's HOME and PATH).
pod () {
  local f=$1; shift
  # shellcheck disable=SC2046 # NAME=VALUE words without blanks
  env -i PATH="$PATH" HOME="$HOME" AWS_EC2_METADATA_DISABLED=true \
    $(cat "$tmp/ds.env" "$f") "$@"
}

# 1. Pod Identity.
token_file=$(sed -n 's/^AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=//p' "$tmp/pi.env")
mkdir -p "$(dirname "$token_file")"
printf 'fakeAuthToken-pod-1' > "$token_file"
pod "$tmp/pi.env" "$helper" -v --check-issued "$tmp/issued" \
  > "$tmp/pi.out" 2> "$tmp/pi.err" || fail "Pod Identity: $(cat "$tmp/pi.err")"
cat "$tmp/pi.out"
grep -qE '^source=container access_key=ASIAFAKECONTAINER[0-9]+ session_token=yes ' \
  "$tmp/pi.out" || fail "Pod Identity: wrong source"
grep -qx 'secret=ok token=ok' "$tmp/pi.out" || fail "Pod Identity: secrets"
grep -q "container endpoint http://169.254.170.23/v1/credentials" "$tmp/pi.err" ||
  fail "Pod Identity: not through 169.254.170.23"
[ "$(counter "$url" container_issued)" = 1 ] || fail "Pod Identity: fake not asked"

# The agent rotates the token: the new file is read, the old one refused.
control "$url" '{"container_token": "fakeAuthToken-pod-2", "expires": 20}'
pod "$tmp/pi.env" "$helper" > "$tmp/pi-old.out" 2> "$tmp/pi-old.err" &&
  fail "Pod Identity: an outdated token was accepted"
printf 'fakeAuthToken-pod-2\n' > "$token_file"
before=$(counter "$url" container_issued)
pod "$tmp/pi.env" env ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  "$helper" --loop 9 --threads 4 > "$tmp/pi-loop.out" 2> "$tmp/pi-loop.err" ||
  fail "Pod Identity refresh: $(cat "$tmp/pi-loop.err")"
cat "$tmp/pi-loop.out"
issued=$(( $(counter "$url" container_issued) - before ))
[ "$issued" -ge 3 ] || fail "Pod Identity: $issued fetches, no refresh"
[ "$(field pi-loop errors)" = 0 ] || fail "Pod Identity refresh: errors"
control "$url" '{"expires": 3600}'

pod "$tmp/pi.env" "$top/tools/accel-inspect" --whoami > "$tmp/pi-whoami.out" \
  2> "$tmp/pi-whoami.err" || fail "Pod Identity whoami: $(cat "$tmp/pi-whoami.err")"
cat "$tmp/pi-whoami.out"
grep -qxF "credentials: container: container endpoint http://169.254.170.23/v1/credentials" \
  "$tmp/pi-whoami.out" || fail "Pod Identity: whoami"

# The ECS form reaches 169.254.170.2 the same way.
pod "$tmp/pi.env" env AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v1/credentials \
  "$helper" -v > "$tmp/ecs.out" 2> "$tmp/ecs.err" ||
  fail "ECS relative URI: $(cat "$tmp/ecs.err")"
grep -q "container endpoint http://169.254.170.2/v1/credentials" "$tmp/ecs.err" ||
  fail "ECS relative URI: not through 169.254.170.2"

# 2. IRSA, with STS at the fake (on EKS: https://sts.REGION.amazonaws.com).
jwt_file=$(sed -n 's/^AWS_WEB_IDENTITY_TOKEN_FILE=//p' "$tmp/irsa.env")
mkdir -p "$(dirname "$jwt_file")"
printf '%s\n' "$jwt" > "$jwt_file"
pod "$tmp/irsa.env" env AWS_ENDPOINT_URL_STS="$url" "$helper" -v \
  --check-issued "$tmp/issued" > "$tmp/irsa.out" 2> "$tmp/irsa.err" ||
  fail "IRSA: $(cat "$tmp/irsa.err")"
cat "$tmp/irsa.out"
grep -qE '^source=web-identity access_key=ASIAFAKESTS[0-9]+ session_token=yes ' \
  "$tmp/irsa.out" || fail "IRSA: wrong source"
grep -qx 'secret=ok token=ok' "$tmp/irsa.out" || fail "IRSA: secrets"
pod "$tmp/irsa.env" env AWS_ENDPOINT_URL_STS="$url" \
  "$top/tools/accel-inspect" --whoami > "$tmp/irsa-whoami.out" 2>&1 ||
  fail "IRSA whoami: $(cat "$tmp/irsa-whoami.out")"
grep -qF "credentials: web-identity: web identity: role $role, token file $jwt_file, STS $url" \
  "$tmp/irsa-whoami.out" || fail "IRSA: whoami"

no_secrets_printed "$tmp"/*.out "$tmp"/*.err "$tmp/aws.log"
grep -F "$jwt" "$tmp"/*.out "$tmp"/*.err && fail "the web identity token was printed"
echo "Pod Identity and IRSA from the DaemonSet's env shape: ok"
