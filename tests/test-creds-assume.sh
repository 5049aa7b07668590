#!/usr/bin/env bash
# Assume-role and SSO profiles (common/s3/creds-assume.c, creds-sso.c)
# against the fake STS, IMDS and SSO portal of tests/lib/fake-aws.py,
# which verifies the SigV4 signature of every AssumeRole request and
# checks who signed it.  Driven by tests/helpers/creds-get:
#  - source_profile with keys (in the credentials file), a two-level
#    chain, a profile sourcing its own keys, a source with keys and a
#    role of its own (its keys are used, as in the CLI), a source with a
#    credential_process, credential_source Environment,
#    Ec2InstanceMetadata and EcsContainer (the fake's container
#    endpoint): each AssumeRole is signed by the expected source (the
#    fake refuses anyone else);
#  - external_id, role_session_name and duration_seconds sent, and the
#    defaults (accel-session-SECONDS, 3600);
#  - refresh of short-lived role credentials from several threads: the
#    whole chain is resolved again, the inner role's credentials too;
#  - errors naming the profile and role: AccessDenied, a missing
#    source_profile, both or neither of source_profile and
#    credential_source, a loop, a chain too long, mfa_serial,
#    EcsContainer without a container endpoint, a bad duration_seconds;
#  - SSO: sso-session and legacy profiles with a valid cached token,
#    its role credentials refreshed before they expire;
#    expired, missing or refused tokens and incomplete profiles give an
#    error naming "aws sso login" and "aws configure export-credentials";
#  - accel-inspect --whoami names the role, the profile chain and the
#    first source, and the SSO account and role;
#  - no secret key, session token or SSO token in any output.
# Nothing here may reach a real AWS host.
. "$(dirname "$0")/lib/functions.sh"
requires python3
requires curl
requires sha1sum
[ -x "$top/tests/helpers/creds-get" ] || skip "tests/helpers/creds-get is not built"
make_tmpdir
. "$top/tests/lib/fake-aws.sh"

clean_aws_env
mkdir -p "$HOME/.aws/sso/cache"

start_fake_aws fake
url=$fake_url_fake
export AWS_ENDPOINT_URL_STS="$url" AWS_ENDPOINT_URL_SSO="$url"
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$url"
export AWS_CONFIG_FILE="$tmp/config" AWS_SHARED_CREDENTIALS_FILE="$tmp/credentials"

arn=arn:aws:iam::123456789012:role
src_key=AKIAFAKESRC0001 src_secret="fakeSecretSrc/+&<x>"
self_key=AKIAFAKESELF001 self_secret=fakeSecretSelf
env_key=AKIAFAKEENV0001 env_secret=fakeSecretEnv
kr_key=AKIAFAKEKR00001 kr_secret=fakeSecretKr
proc_key=AKIAFAKEPROC001 proc_secret=fakeSecretProc
control "$url" "$(printf '{"static_keys": {"%s": "%s", "%s": "%s", "%s": "%s", "%s": "%s", "%s": "%s"},
  "roles": {"%s/one": "%s", "%s/two": "role:%s/one", "%s/self": "%s",
            "%s/env": "%s", "%s/imds": "role:accel-test-role", "%s/kr": "%s",
            "%s/proc": "%s", "%s/ecs": "role:container"}}' \
  "$src_key" "${src_secret//\"/\\\"}" "$self_key" "$self_secret" \
  "$env_key" "$env_secret" "$kr_key" "$kr_secret" "$proc_key" "$proc_secret" \
  "$arn" "$src_key" "$arn" "$arn" "$arn" "$self_key" "$arn" "$env_key" "$arn" \
  "$arn" "$kr_key" "$arn" "$proc_key" "$arn")"
# A credential_process that prints the proc keys and counts its runs.
cat > "$tmp/proc" <<EOF2
#!/bin/sh
echo run >> "$tmp/proc.runs"
printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s"}\\n' \\
  "$proc_key" "$proc_secret"
EOF2
chmod +x "$tmp/proc"

cat > "$tmp/credentials" <<EOF2
[src]
aws_access_key_id = $src_key
aws_secret_access_key = $src_secret

[self]
aws_access_key_id = $self_key
aws_secret_access_key = $self_secret

[keys-and-role]
aws_access_key_id = $kr_key
aws_secret_access_key = $kr_secret
EOF2
cat > "$tmp/config" <<EOF2
[profile one]
role_arn = $arn/one
source_profile = src
external_id = ext-1234
role_session_name = accel-test-one
duration_seconds = 1800

[profile two]
role_arn = $arn/two
source_profile = one

[profile self]
role_arn = $arn/self
source_profile = self

[profile keys-and-role]
role_arn = $arn/two
source_profile = one

[profile uses-kr]
role_arn = $arn/kr
source_profile = keys-and-role

[profile env]
role_arn = $arn/env
credential_source = Environment

[profile imds]
role_arn = $arn/imds
credential_source = Ec2InstanceMetadata

[profile denied]
role_arn = $arn/not-allowed
source_profile = src

[profile missing]
role_arn = $arn/one
source_profile = nosuch

[profile both]
role_arn = $arn/one
source_profile = src
credential_source = Environment

[profile neither]
role_arn = $arn/one

[profile loop-a]
role_arn = $arn/one
source_profile = loop-b

[profile loop-b]
role_arn = $arn/two
source_profile = loop-a

[profile loop-self]
role_arn = $arn/one
source_profile = loop-self

[profile mfa]
role_arn = $arn/one
source_profile = src
mfa_serial = arn:aws:iam::123456789012:mfa/user

[profile ecs]
role_arn = $arn/ecs
credential_source = EcsContainer

[profile proc-src]
credential_process = $tmp/proc

[profile uses-proc]
role_arn = $arn/proc
source_profile = proc-src

[profile bad-source]
role_arn = $arn/one
credential_source = Ec2

[profile long-duration]
role_arn = $arn/one
source_profile = src
duration_seconds = 99999

[profile empty-source]
role_arn = $arn/one
source_profile = nokeys

[profile nokeys]
region = eu-west-1
EOF2
# A chain of 9 roles: one too many.
for i in 1 2 3 4 5 6 7 8 9; do
  printf '[profile c%d]\nrole_arn = %s/one\nsource_profile = c%d\n' \
    "$i" "$arn" $((i + 1))
done >> "$tmp/config"
printf '[c10]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$src_key" "$src_secret" >> "$tmp/credentials"

# last_call FIELD: a field of the last AssumeRole the fake received.
last_call () {
  curl -sS "$url/_stats" | python3 -c '
import json, sys
print(json.load(sys.stdin)["assume_calls"][-1][sys.argv[1]])' "$1"
}
# fails NAME PATTERN ARGS...: creds-get ARGS fails saying PATTERN.
fails () {
  local name=$1 pattern=$2; shift 2
  run "$name" "$@" && fail "$name: accepted"
  has "$name" "$pattern" || fail "$name: no message matching: $pattern"
  grep -qE '^source=' "$tmp/$name.out" && fail "$name: credentials printed"
  return 0
}

# 0. The fake's signature check is real: curl's own SigV4 signer gets
# through with the right secret, not with a wrong one.
sts_curl () {
  curl -sS -o "$tmp/curl.xml" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:sts" \
    --user "$1" --data "Action=AssumeRole&Version=2011-06-15&RoleArn=$arn/one&RoleSessionName=curl" \
    "$url/"
}
[ "$(sts_curl "$src_key:$src_secret")" = 200 ] ||
  fail "curl-signed AssumeRole refused: $(cat "$tmp/curl.xml")"
[ "$(sts_curl "$src_key:wrong")" = 403 ] && grep -q SignatureDoesNotMatch "$tmp/curl.xml" ||
  fail "a wrong signature was accepted"
rm -f "$tmp/curl.xml"

# 1. source_profile with keys: AssumeRole signed by them, with the
# profile's external_id, session name and duration.
run one --profile one --check-issued "$tmp/issued" || fail "one: exit $?"
has one '^source=assume-role access_key=ASIAFAKEASSUME[0-9]+ session_token=yes expires_in=3[56][0-9][0-9]$' ||
  fail "one: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/one.out" || fail "one: secrets"
[ "$(last_call signer)" = "$src_key" ] || fail "one: not signed by the source"
[ "$(last_call token)" = False ] || fail "one: a session token with static keys"
[ "$(last_call ExternalId)" = ext-1234 ] || fail "one: external_id"
[ "$(last_call RoleSessionName)" = accel-test-one ] || fail "one: session name"
[ "$(last_call DurationSeconds)" = 1800 ] || fail "one: duration"
# Through AWS_PROFILE too; the environment's keys come first then.
AWS_PROFILE=one run one-env-profile || fail "AWS_PROFILE=one: exit $?"
has one-env-profile '^source=assume-role ' || fail "AWS_PROFILE=one: source"
AWS_PROFILE=one AWS_ACCESS_KEY_ID=$env_key AWS_SECRET_ACCESS_KEY=$env_secret \
  run env-wins || fail "env first: exit $?"
has env-wins "^source=env access_key=$env_key " || fail "env did not come first"

# 2. A two-level chain: two's source is one's role credentials, so the
# fake sees two AssumeRoles, the second signed by the first's issue
# (with its session token), and the defaults.
before=$(counter "$url" assume_issued)
run two --profile two --check-issued "$tmp/issued" || fail "two: exit $?"
[ $(( $(counter "$url" assume_issued) - before )) = 2 ] || fail "two: not 2 AssumeRoles"
has two '^source=assume-role access_key=ASIAFAKEASSUME' || fail "two: source"
grep -qx 'secret=ok token=ok' "$tmp/two.out" || fail "two: secrets"
case $(last_call signer) in ASIAFAKEASSUME*) ;; *) fail "two: signer";; esac
[ "$(last_call token)" = True ] || fail "two: no session token sent"
[ "$(last_call RoleArn)" = "$arn/two" ] || fail "two: role"
[ "$(last_call DurationSeconds)" = 3600 ] || fail "two: default duration"
[[ "$(last_call RoleSessionName)" =~ ^accel-session-[0-9]+$ ]] ||
  fail "two: default session name $(last_call RoleSessionName)"
[ "$(last_call ExternalId)" = None ] || fail "two: an external id"
# accel-inspect --whoami names the role, the chain and the first source.
inspect="$top/tools/accel-inspect"
"$inspect" --whoami --profile two > "$tmp/whoami-two.out" 2> "$tmp/whoami-two.err" ||
  fail "whoami two: $(cat "$tmp/whoami-two.err")"
cat "$tmp/whoami-two.out"
grep -qxF "credentials: assume-role: role $arn/two, profile chain two -> one -> src, source: [src] in $tmp/credentials" \
  "$tmp/whoami-two.out" || fail "whoami two: credentials line"
grep -qx 'session token: yes' "$tmp/whoami-two.out" || fail "whoami two: token"
AWS_ACCESS_KEY_ID=$env_key AWS_SECRET_ACCESS_KEY=$env_secret \
  "$inspect" --whoami --json --profile env > "$tmp/whoami-env.out" \
  2> "$tmp/whoami-env.err" || fail "whoami env: $(cat "$tmp/whoami-env.err")"
python3 - "$tmp/whoami-env.out" "$arn/env" <<'PY' || fail "whoami --json env: wrong"
import json, sys
w = json.load(open(sys.argv[1]))
assert w["source"] == "assume-role", w
assert w["origin"] == ("role %s, profile chain env -> (credential_source "
                       "Environment), source: the environment "
                       "(AWS_ACCESS_KEY_ID)" % sys.argv[2]), w["origin"]
assert w["access_key_prefix"] == "ASIA" and w["session_token"], w
PY

# 3. A profile sourcing its own keys (allowed as in the AWS CLI).
run self --profile self || fail "self: exit $?"
[ "$(last_call signer)" = "$self_key" ] || fail "self: not signed by its keys"

# A source_profile with keys and a role of its own: its keys are the
# source (the AWS CLI's rule), its role is not assumed.
before=$(counter "$url" assume_issued)
run uses-kr --profile uses-kr || fail "uses-kr: exit $?"
[ "$(last_call signer)" = "$kr_key" ] || fail "uses-kr: not signed by the source's keys"
[ $(( $(counter "$url" assume_issued) - before )) = 1 ] || fail "uses-kr: the source's role was assumed"

# 4. credential_source Environment and Ec2InstanceMetadata.
AWS_ACCESS_KEY_ID=$env_key AWS_SECRET_ACCESS_KEY=$env_secret \
  run env --profile env || fail "Environment: exit $?"
has env '^source=assume-role ' || fail "Environment: source"
[ "$(last_call signer)" = "$env_key" ] || fail "Environment: signer"
fails env-unset "profile env: credential_source Environment, but AWS_ACCESS_KEY_ID" \
  --profile env
AWS_EC2_METADATA_DISABLED=false run imds --profile imds || fail "imds: exit $?"
case $(last_call signer) in ASIAFAKEIMDS*) ;; *) fail "imds: signer";; esac
[ "$(last_call token)" = True ] || fail "imds: no session token sent"
fails imds-off "credential_source Ec2InstanceMetadata, but the instance metadata service gave no role credentials" \
  --profile imds
# EcsContainer: the fake's container endpoint (as EKS Pod Identity sets
# it), its credentials sign the AssumeRole with their session token.
before=$(counter "$url" container_issued)
AWS_CONTAINER_CREDENTIALS_FULL_URI="$url/v1/credentials" \
  run ecs --profile ecs --check-issued "$tmp/issued" || fail "ecs: exit $?"
has ecs '^source=assume-role access_key=ASIAFAKEASSUME' || fail "ecs: source"
grep -qx 'secret=ok token=ok' "$tmp/ecs.out" || fail "ecs: secrets"
[ "$(counter "$url" container_issued)" = $((before + 1)) ] ||
  fail "ecs: the container endpoint was not asked"
case $(last_call signer) in ASIAFAKECONTAINER*) ;; *) fail "ecs: signer";; esac
[ "$(last_call token)" = True ] || fail "ecs: no session token sent"
fails ecs-unset "profile ecs: credential_source EcsContainer, but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set" \
  --profile ecs
AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:1/v1/credentials" \
  fails ecs-down "container credentials: http://127.0.0.1:1/v1/credentials: " \
  --profile ecs

# A source_profile whose credentials come from its credential_process.
run uses-proc --profile uses-proc || fail "uses-proc: exit $?"
has uses-proc '^source=assume-role ' || fail "uses-proc: source"
[ "$(last_call signer)" = "$proc_key" ] || fail "uses-proc: not signed by the process's keys"
[ "$(wc -l < "$tmp/proc.runs")" = 1 ] || fail "uses-proc: the process ran $(wc -l < "$tmp/proc.runs") times"

# 5. Errors name the profile and the role.
fails denied "STS AssumeRole for $arn/not-allowed: AccessDenied: User: .* is not authorized to perform: sts:AssumeRole on resource: $arn/not-allowed \(HTTP 403\)" \
  --profile denied
has denied "profile denied: could not assume role $arn/not-allowed" ||
  fail "denied: profile not named"
fails missing "profile missing: its source_profile nosuch does not exist in $tmp/credentials or $tmp/config" \
  --profile missing
fails both "profile both: role_arn $arn/one with both source_profile and credential_source" \
  --profile both
fails neither "profile neither: role_arn $arn/one without source_profile or credential_source" \
  --profile neither
fails loop "profile loop-a: source_profile loop: loop-a -> loop-b -> loop-a" \
  --profile loop-a
fails loop-self "profile loop-self: source_profile loop: loop-self -> loop-self" \
  --profile loop-self
fails chain "profile c1: role chain longer than 8 profiles: c1 -> c2 -> .* -> c9" \
  --profile c1
fails mfa "profile mfa: role $arn/one needs an MFA code \(mfa_serial\).*aws configure export-credentials --profile mfa" \
  --profile mfa
fails bad-source "profile bad-source: unknown credential_source Ec2 " \
  --profile bad-source
fails long-duration "profile long-duration: duration_seconds must be 900 to 43200: 99999" \
  --profile long-duration
fails empty-source "profile empty-source: its source_profile nokeys has no credentials \(no keys, web identity, SSO or credential_process settings\)" \
  --profile empty-source
control "$url" '{"sts_error": [400, "RegionDisabledException", "STS is not activated in this region"]}'
fails sts-error "STS AssumeRole for $arn/one: RegionDisabledException: STS is not activated" \
  --profile one
control "$url" '{"sts_error": null}'
AWS_ENDPOINT_URL_STS=http://127.0.0.1:1 fails sts-down \
  "STS AssumeRole for $arn/one: http://127.0.0.1:1/: " --profile one

# 6. Refresh: role credentials live 20 s, refreshed 16 s before expiry,
# from 4 threads for 12 s.  Each refresh resolves the chain again: two
# AssumeRoles a time, none failing (the fake refuses an expired signer).
control "$url" '{"expires": 20, "delay": 0.5}'
before=$(counter "$url" assume_issued)
errors=$(counter "$url" assume_errors)
ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  run loop --profile two --loop 12 --threads 4 || fail "refresh loop: exit $?"
control "$url" '{"expires": 3600, "delay": 0}'
issued=$(( $(counter "$url" assume_issued) - before ))
echo "AssumeRoles during the loop: $issued"
[ "$(field loop errors)" = 0 ] || fail "refresh loop: errors"
[ "$(counter "$url" assume_errors)" = "$errors" ] || fail "refresh loop: STS refused a call"
[ "$(field loop distinct_keys)" -ge 2 ] || fail "refresh loop: no refresh"
[ $((issued % 2)) = 0 ] && [ "$issued" -ge 4 ] && [ "$issued" -le 10 ] ||
  fail "refresh loop: $issued AssumeRoles (expected 2 per resolution)"
slow=$(field loop slow_calls)
[ "$slow" -le $((issued / 2 - 1)) ] || fail "refresh loop: readers stalled"

# 7. SSO.  The fake portal wants this token for this account and role.
sso_token="fakeSsoToken-$RANDOM$RANDOM"
extra_secrets=("$sso_token")
control "$url" "{\"sso\": {\"token\": \"$sso_token\", \"account_id\": \"111122223333\", \"role_name\": \"ReadOnly\"}}"
cache_file () {
  printf '%s' "$1" | sha1sum | sed 's/ .*//;s|^|'"$HOME"'/.aws/sso/cache/|;s/$/.json/'
}
# write_token KEY EXPIRES_AT: the cache file "aws sso login" would write.
write_token () {
  printf '{"startUrl": "https://example.awsapps.com/start", "region": "eu-west-1",
  "accessToken": "%s", "expiresAt": "%s",
  "clientId": "x", "clientSecret": "y", "refreshToken": "fakeToken-refresh"}\n' \
    "$sso_token" "$2" > "$(cache_file "$1")"
}
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
earlier=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
cat >> "$tmp/config" <<EOF2
[profile sso]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = ReadOnly
region = us-west-2

[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile sso-legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 111122223333
sso_role_name = ReadOnly

[profile sso-other-role]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Admin

[profile sso-no-session]
sso_session = nosuch
sso_account_id = 111122223333
sso_role_name = ReadOnly

[profile sso-partial]
sso_start_url = https://legacy.awsapps.com/start
sso_account_id = 111122223333

[profile sso-source]
role_arn = $arn/sso
source_profile = sso
EOF2
write_token corp "$later"
run sso --profile sso --check-issued "$tmp/issued" || fail "sso: exit $?"
has sso '^source=sso access_key=ASIAFAKESSO[0-9]+ session_token=yes expires_in=3[56][0-9][0-9]$' ||
  fail "sso: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/sso.out" || fail "sso: secrets"
"$inspect" --whoami --profile sso > "$tmp/whoami-sso.out" 2> "$tmp/whoami-sso.err" ||
  fail "whoami sso: $(cat "$tmp/whoami-sso.err")"
cat "$tmp/whoami-sso.out"
grep -qxF "credentials: sso: SSO account 111122223333, role ReadOnly (profile sso, token $(cache_file corp))" \
  "$tmp/whoami-sso.out" || fail "whoami sso: credentials line"
grep -qx 'region: us-west-2 (from profile sso in .*)' "$tmp/whoami-sso.out" ||
  fail "whoami sso: region"
# The portal's role credentials expire too: the cached token is
# exchanged again before they do, from 3 threads, none failing.
control "$url" '{"expires": 20}'
before=$(counter "$url" sso_issued)
ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  run sso-loop --profile sso --loop 10 --threads 3 || fail "sso refresh loop: exit $?"
control "$url" '{"expires": 3600}'
issued=$(( $(counter "$url" sso_issued) - before ))
echo "SSO exchanges during the loop: $issued"
[ "$(field sso-loop errors)" = 0 ] || fail "sso refresh loop: errors"
[ "$(field sso-loop distinct_keys)" -ge 2 ] || fail "sso refresh loop: no refresh"
[ "$issued" -ge 2 ] && [ "$issued" -le 8 ] ||
  fail "sso refresh loop: $issued exchanges (expected one per 4 s or so)"
# Older CLIs wrote expiresAt as "...UTC".
write_token https://legacy.awsapps.com/start \
  "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SUTC)"
run sso-legacy --profile sso-legacy || fail "sso legacy: exit $?"
has sso-legacy '^source=sso ' || fail "sso legacy: source"
# An SSO profile as the source of a role.
control "$url" "{\"roles\": {\"$arn/sso\": \"role:sso:ReadOnly\"}}"
requests=$(counter "$url" sso_issued)
run sso-source --profile sso-source || fail "sso source: exit $?"
has sso-source '^source=assume-role ' || fail "sso source: source"
[ "$(counter "$url" sso_issued)" -gt "$requests" ] || fail "sso source: portal not asked"

how="run \"aws sso login --profile sso\", or pass credentials from \"aws configure export-credentials --profile sso\""
write_token corp "$earlier"
requests=$(counter "$url" sso_requests)
fails sso-expired "profile sso: SSO token .*/\.aws/sso/cache/[0-9a-f]{40}\.json has expired: $how" \
  --profile sso
[ "$(counter "$url" sso_requests)" = "$requests" ] || fail "an expired token was sent"
rm "$(cache_file corp)"
fails sso-missing "SSO token .* not found: $how" --profile sso
sso_token_saved=$sso_token sso_token=fakeToken-wrong
write_token corp "$later"
sso_token=$sso_token_saved
fails sso-refused "SSO token .* was refused by the SSO portal: $how" --profile sso
write_token corp "$later"
fails sso-forbidden "profile sso-other-role: SSO: no access to role Admin in account 111122223333 \(HTTP 403\)" \
  --profile sso-other-role
fails sso-no-session "profile sso-no-session: sso_session nosuch: no \[sso-session nosuch\] section" \
  --profile sso-no-session
fails sso-partial "profile sso-partial: SSO profile without sso_region" \
  --profile sso-partial

# 8. No secret anywhere.
no_secrets_printed "$tmp"/*.out "$tmp"/*.err "$tmp/fake.log"
echo "$(wc -l < "$tmp/issued") issuances, no secret in any output"
