# Shell side of tests/lib/fake-aws.py, for the credential tests: start
# it and talk to it.  Sourced after functions.sh and make_tmpdir.

# clean_aws_env: no AWS settings or proxies from the caller, an empty
# HOME, and no instance metadata unless a test asks for it.
clean_aws_env () {
  local v
  for v in $(compgen -e | grep -E '^(AWS_|ACCEL_CREDS_)'); do unset "$v"; done
  unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
  unset no_proxy NO_PROXY
  export HOME="$tmp/home"
  mkdir -p "$HOME"
  export AWS_EC2_METADATA_DISABLED=true
}

# start_fake_aws [ARGS...]: start the fake on 127.0.0.1 with ARGS; sets
# url (its base URL) and fake_pid; what it issued goes to $tmp/issued.
start_fake_aws () {
  python3 "$top/tests/lib/fake-aws.py" --port-file "$tmp/port" \
    --issued-file "$tmp/issued" "$@" > "$tmp/fake.log" 2>&1 &
  fake_pid=$!
  on_exit "kill $fake_pid; wait $fake_pid"
  for _ in $(seq 100); do
    [ -s "$tmp/port" ] && break
    sleep 0.1
  done
  [ -s "$tmp/port" ] || fail "fake-aws.py did not start: $(cat "$tmp/fake.log")"
  url="http://127.0.0.1:$(cat "$tmp/port")"
}

# control JSON: change the fake's behaviour.
control () {
  curl -sS --fail -X POST --data "$1" "$url/_control" >/dev/null ||
    fail "control $1"
}
# counter NAME: one of the fake's counters.
counter () {
  curl -sS "$url/_stats" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# run NAME ARGS...: tests/helpers/creds-get with debug on; $tmp/NAME.out
# and .err.
run () {
  local name=$1 rc; shift
  "$top/tests/helpers/creds-get" -v "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
  rc=$?
  echo "--- $name: exit $rc"
  cat "$tmp/$name.out" "$tmp/$name.err"
  return $rc
}
# has NAME PATTERN: NAME's output (stdout and stderr) matches.
has () { cat "$tmp/$1.out" "$tmp/$1.err" | grep -qE -- "$2"; }
# field NAME KEY: KEY=VALUE from NAME's last stdout line.
field () { tail -n 1 "$tmp/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# no_secrets_printed FILE...: none of the secrets and tokens the fake
# issued (nor the patterns they start with, nor any extra pattern in
# $extra_secrets) appears in FILE..., and debug messages show at most 4
# characters of an access key id.
no_secrets_printed () {
  local p pats=("fakeSecret" "fakeToken" "fakeImdsToken" "${extra_secrets[@]}")
  while read -r _ secret token; do
    pats+=("$secret" "$token")
  done < "$tmp/issued"
  for p in "${pats[@]}"; do
    if grep -F -l -- "$p" "$@"; then
      fail "a secret was printed (pattern starting ${p:0:6})"
    fi
  done
  if grep -E 'AKIAFAKE|ASIAFAKE' "$tmp"/*.err; then
    fail "a full access key id in a debug message"
  fi
}
