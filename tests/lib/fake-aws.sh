# accel: drive tests/lib/fake-aws.py from a test (source it after
# functions.sh and make_tmpdir).  Used by the test-creds*.sh
# tests.
#
#   start_fake_aws NAME [fake-aws.py options]  start one on 127.0.0.1 (or
#       --listen), register its cleanup; sets fake_url_NAME, and its
#       files are $tmp/NAME.port, $tmp/NAME.log, $tmp/issued
#   control URL JSON        change the fake's behaviour
#   counter URL NAME        one of its counters
#   run NAME ARGS...        tests/helpers/creds-get -v ARGS, output in
#                           $tmp/NAME.out and $tmp/NAME.err
#   has NAME PATTERN        NAME's output (stdout and stderr) matches
#   field NAME KEY          KEY=VALUE from NAME's last stdout line
#   no_secrets_printed FILES...  (see below)

helper="$top/tests/helpers/creds-get"

# clean_aws_env: no AWS settings or proxies from the caller; a HOME of
# the test's own, and no instance metadata unless a test asks.
clean_aws_env () {
  local v
  for v in $(compgen -e | grep -E '^(AWS_|ACCEL_CREDS_)'); do unset "$v"; done
  unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
  unset no_proxy NO_PROXY
  export HOME="$tmp/home"
  mkdir -p "$HOME"
  export AWS_EC2_METADATA_DISABLED=true
}

start_fake_aws () {
  local name=$1 pid; shift
  python3 "$top/tests/lib/fake-aws.py" --port-file "$tmp/$name.port" \
    --issued-file "$tmp/issued" "$@" > "$tmp/$name.log" 2>&1 &
  pid=$!
  on_exit "kill $pid; wait $pid"
  for _ in $(seq 100); do
    [ -s "$tmp/$name.port" ] && break
    sleep 0.1
  done
  [ -s "$tmp/$name.port" ] ||
    fail "fake-aws.py did not start: $(cat "$tmp/$name.log")"
  eval "fake_url_$name=http://127.0.0.1:$(cat "$tmp/$name.port")"
}

control () {
  curl -sS --fail -X POST --data "$2" "$1/_control" >/dev/null ||
    fail "control $2"
}
counter () {
  curl -sS "$1/_stats" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
run () {
  local name=$1 rc; shift
  "$helper" -v "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
  rc=$?
  echo "--- $name: exit $rc"
  cat "$tmp/$name.out" "$tmp/$name.err"
  return $rc
}
has () { cat "$tmp/$1.out" "$tmp/$1.err" | grep -qE -- "$2"; }
field () { tail -n 1 "$tmp/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# no_secrets_printed FILES...: none of the secrets the fakes issued (the
# issued file is the only place they are), nor the fakes' fixed
# prefixes, nor any extra secret of the test's (the array
# extra_secrets) is in FILES; and debug messages show at most 4
# characters of an access key id.
no_secrets_printed () {
  local p secret token
  local pats=("fakeSecret" "fakeToken" "fakeImdsToken" "${extra_secrets[@]}")
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
