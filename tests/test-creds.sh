#!/usr/bin/env bash
# AWS credentials end to end against a fake STS and IMDSv2 on 127.0.0.1
# (tests/lib/fake-aws.py), driven by tests/helpers/creds-get:
#  - web identity from the environment and from a profile, with the
#    secrets parsed correctly (checked against what the fake issued);
#  - STS errors (wrong role, wrong token, injected error, unreachable)
#    reported with STS's code and message;
#  - the instance role through IMDSv2 (the fake refuses token-less
#    requests), and IMDS disabled, unreachable, without a role, failing;
#  - the order: environment > web identity > IMDS;
#  - refresh before expiry from several threads: new keys appear, no
#    reader waits for the (deliberately slow) refresh, and a failing
#    refresh keeps the old keys until they expire, retrying with a
#    back-off rather than on every call;
#  - no secret key, session token, web identity token or IMDS token in
#    any output, and no full access key id in debug messages.
# Nothing here may reach a real AWS host: STS and IMDS endpoints always
# point at the fake or at closed local ports.
# accel-test: alone (times an unreachable IMDS)
. "$(dirname "$0")/lib/functions.sh"
requires python3
requires curl
. "$top/tests/lib/fake-aws.sh"
[ -x "$helper" ] || skip "tests/helpers/creds-get is not built"
make_tmpdir
clean_aws_env

jwt="fakeWebIdentityJWT.eyJzdWIiOiJhY2NlbCJ9.c2ln"
role="arn:aws:iam::123456789012:role/accel-test"
start_fake_aws fake --role-arn "$role" --web-identity-token "$jwt"
url=$fake_url_fake
export AWS_ENDPOINT_URL_STS="$url"
printf '%s\n' "$jwt" > "$tmp/token"

# with_wi CMD...: CMD with the web identity environment.
with_wi () {
  AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/token" AWS_ROLE_ARN="$role" "$@"
}

# 1. Nothing configured: anonymous, and IMDS was not asked.
run anon || fail "anonymous: exit $?"
grep -qx anonymous "$tmp/anon.out" || fail "anonymous: not anonymous"
has anon "disabled by AWS_EC2_METADATA_DISABLED" || fail "anonymous: no reason"

# 2. Web identity from the environment.
with_wi run wi --check-issued "$tmp/issued" || fail "web identity: exit $?"
has wi '^source=web-identity access_key=ASIAFAKESTS[0-9]+ session_token=yes expires_in=3[56][0-9][0-9]$' ||
  fail "web identity: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/wi.out" || fail "web identity: secrets"
has wi " as accel-[0-9]+ at $url/" || fail "web identity: session name"
AWS_ROLE_SESSION_NAME=my-session with_wi run wi-session ||
  fail "web identity with a session name"
has wi-session " as my-session " || fail "session name not used"

# 3. Web identity from a profile; environment settings win per key.
cat > "$tmp/config" <<EOF
[profile wi]
web_identity_token_file = $tmp/token
role_arn = $role
role_session_name = from-profile
region = eu-west-1
EOF
AWS_CONFIG_FILE="$tmp/config" AWS_PROFILE=wi \
  run wi-profile --region --check-issued "$tmp/issued" ||
  fail "web identity profile: exit $?"
has wi-profile '^region=eu-west-1$' || fail "profile region"
has wi-profile '^source=web-identity ' || fail "web identity profile: source"
has wi-profile ' as from-profile ' || fail "profile session name"
grep -qx 'secret=ok token=ok' "$tmp/wi-profile.out" ||
  fail "web identity profile: secrets"
AWS_CONFIG_FILE="$tmp/config" AWS_ROLE_ARN="$role-other" \
  run wi-profile-env --profile wi || fail "explicit profile: exit $?"
has wi-profile-env '^source=web-identity ' ||
  fail "explicit profile did not ignore AWS_ROLE_ARN"

# 4. STS errors carry STS's code and message.
AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/token" AWS_ROLE_ARN="$role-other" \
  run sts-role && fail "wrong role accepted"
has sts-role "STS AssumeRoleWithWebIdentity for $role-other: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity \(HTTP 403\)" ||
  fail "wrong role: message"
printf 'not-the-token\n' > "$tmp/bad-token"
AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/bad-token" AWS_ROLE_ARN="$role" \
  run sts-token && fail "wrong token accepted"
has sts-token "InvalidIdentityToken: The web identity token that was passed is invalid" ||
  fail "wrong token: message"
control "$url" '{"sts_error": [400, "IDPCommunicationError", "Couldn'"'"'t reach the IdP'"'"'s \"keys\" & <jwks>\n"]}'
with_wi run sts-error && fail "STS error accepted"
has sts-error "IDPCommunicationError: Couldn't reach the IdP's \"keys\" & <jwks>\? \(HTTP 400\)" ||
  fail "injected STS error: message"
control "$url" '{"sts_error": null}'
AWS_ENDPOINT_URL_STS="http://127.0.0.1:1" with_wi run sts-down &&
  fail "unreachable STS accepted"
has sts-down "STS AssumeRoleWithWebIdentity for $role: http://127.0.0.1:1/: " ||
  fail "unreachable STS: message"

# 5. The environment's keys come first.
AWS_ACCESS_KEY_ID=AKIAFAKEENV AWS_SECRET_ACCESS_KEY=fakeSecretEnv \
  with_wi run env-first || fail "env: exit $?"
has env-first '^source=env access_key=AKIAFAKEENV session_token=no$' ||
  fail "env did not win over web identity"

# 6. IMDSv2.  The fake insists on the session token.
code=$(curl -s -o /dev/null -w '%{http_code}' \
  "$url/latest/meta-data/iam/security-credentials/")
[ "$code" = 401 ] || fail "fake IMDS answered $code without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$url/latest/api/token")
[ "$code" = 400 ] || fail "fake IMDS gave a token without a TTL ($code)"
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$url"
unauthorized=$(counter "$url" imds_unauthorized)
AWS_EC2_METADATA_DISABLED=false run imds --check-issued "$tmp/issued" ||
  fail "imds: exit $?"
has imds '^source=imds access_key=ASIAFAKEIMDS[0-9]+ session_token=yes expires_in=' ||
  fail "imds: wrong source or key"
grep -qx 'secret=ok token=ok' "$tmp/imds.out" || fail "imds: secrets"
has imds "instance role accel-test-role" || fail "imds: role"
[ "$(counter "$url" imds_unauthorized)" = "$unauthorized" ] ||
  fail "imds: a request went without the token"

tokens=$(counter "$url" imds_token_requests)
run imds-disabled || fail "imds disabled: exit $?"
grep -qx anonymous "$tmp/imds-disabled.out" || fail "imds disabled: not anonymous"
[ "$(counter "$url" imds_token_requests)" = "$tokens" ] ||
  fail "IMDS was asked although disabled"

start=$(date +%s)
AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1 \
  run imds-down || fail "imds unreachable: exit $?"
[ $(( $(date +%s) - start )) -le 4 ] || fail "unreachable IMDS took too long"
grep -qx anonymous "$tmp/imds-down.out" || fail "imds unreachable: not anonymous"
has imds-down "instance metadata service at http://127.0.0.1:1 not reachable" ||
  fail "imds unreachable: no reason"

control "$url" '{"imds_role": ""}'
AWS_EC2_METADATA_DISABLED=false run imds-norole || fail "no role: exit $?"
grep -qx anonymous "$tmp/imds-norole.out" || fail "no role: not anonymous"
has imds-norole "no IAM role attached" || fail "no role: no reason"
control "$url" '{"imds_role": "accel-test-role", "imds_code": "Failed"}'
AWS_EC2_METADATA_DISABLED=false run imds-failed && fail "IMDS Code Failed accepted"
has imds-failed "instance metadata credentials: Code is Failed" ||
  fail "IMDS failure: message"
control "$url" '{"imds_code": "Success"}'

# Web identity comes before IMDS.
sts=$(counter "$url" sts_issued)
AWS_EC2_METADATA_DISABLED=false with_wi run wi-before-imds ||
  fail "web identity + imds: exit $?"
has wi-before-imds '^source=web-identity ' || fail "IMDS won over web identity"
[ "$(counter "$url" sts_issued)" -gt "$sts" ] || fail "web identity: STS not asked"

# 7. Refresh from 4 threads for 12 s: credentials live 20 s and are
# refreshed 16 s before expiry, and each issuance takes 1 s.  Expect
# about 3 keys, no errors, and only the refreshing calls slow.
control "$url" '{"expires": 20, "delay": 1}'
before=$(counter "$url" sts_requests)
ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  with_wi run loop-wi --loop 12 --threads 4 || fail "refresh loop: exit $?"
refreshes=$(( $(counter "$url" sts_requests) - before - 1 ))
echo "refreshes during the loop: $refreshes"
[ "$(field loop-wi errors)" = 0 ] || fail "refresh loop: errors"
[ "$(field loop-wi anonymous)" = 0 ] || fail "refresh loop: anonymous"
keys=$(field loop-wi distinct_keys)
[ "$keys" -ge 2 ] || fail "refresh loop: no refresh ($keys keys)"
[ "$refreshes" -ge 1 ] && [ "$refreshes" -le 4 ] ||
  fail "refresh loop: $refreshes refreshes"
slow=$(field loop-wi slow_calls)
[ "$slow" -ge 1 ] || fail "refresh loop: refresh was not slow (test broken?)"
[ "$slow" -le "$refreshes" ] ||
  fail "refresh loop: $slow slow calls for $refreshes refreshes: readers stalled"
[ "$(field loop-wi calls)" -ge 1000 ] || fail "refresh loop: too few calls"

# The same through IMDS.
before=$(counter "$url" imds_issued)
ACCEL_CREDS_REFRESH_MARGIN=16 ACCEL_CREDS_RETRY_INTERVAL=1 \
  AWS_EC2_METADATA_DISABLED=false run loop-imds --loop 7 --threads 4 ||
  fail "imds refresh loop: exit $?"
refreshes=$(( $(counter "$url" imds_issued) - before - 1 ))
[ "$(field loop-imds errors)" = 0 ] || fail "imds refresh loop: errors"
[ "$(field loop-imds distinct_keys)" -ge 2 ] || fail "imds refresh loop: no refresh"
slow=$(field loop-imds slow_calls)
[ "$slow" -le "$refreshes" ] || fail "imds refresh loop: readers stalled"

# 8. A failing refresh: credentials live 8 s, refresh starts 6 s before
# expiry, every refresh fails.  The old keys serve until they expire
# (no errors before ~7 s), then calls fail; attempts are spaced by the
# 2 s back-off, not made on every call.
control "$url" '{"expires": 8, "delay": 0, "fail_after": 1}'
before=$(counter "$url" sts_requests)
ACCEL_CREDS_REFRESH_MARGIN=6 ACCEL_CREDS_RETRY_INTERVAL=2 \
  with_wi run loop-fail --loop 11 --threads 4 || fail "failing loop: exit $?"
attempts=$(( $(counter "$url" sts_requests) - before - 1 ))
echo "refresh attempts: $attempts"
control "$url" '{"fail_after": null, "expires": 3600}'
[ "$(field loop-fail distinct_keys)" = 1 ] || fail "failing loop: keys changed"
first=$(field loop-fail first_error_ms)
[ "${first%.*}" -ge 6000 ] && [ "${first%.*}" -le 9500 ] ||
  fail "failing loop: first error after $first ms, not at expiry"
[ "$(field loop-fail errors)" -ge 1 ] || fail "failing loop: no errors"
[ "$attempts" -ge 3 ] && [ "$attempts" -le 8 ] ||
  fail "failing loop: $attempts refresh attempts"
has loop-fail "keeping the current ones" || fail "failing loop: no debug"
has loop-fail "ServiceUnavailable" || fail "failing loop: STS error not shown"

# 9. No secret anywhere: not in the helper's output or debug messages,
# not in the fake's log.  (The issued file is the only place they are.)
extra_secrets=("$jwt")
no_secrets_printed "$tmp"/*.out "$tmp"/*.err "$tmp/fake.log"
echo "$(wc -l < "$tmp/issued") issuances, no secret in any output"
