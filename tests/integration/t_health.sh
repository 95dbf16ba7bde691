#!/bin/bash
# /healthz and /readyz answer on the admin listener; every response carries an
# X-Request-Id that the daemon's request log line repeats.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

# /healthz: 200 {"status":"ok"} as JSON.
ql_curl "$(admin_url /healthz)" || fail "GET /healthz failed: $(cat "$T/curl.err")"
assert_status 200
assert_match '^application/json' "$(ql_header Content-Type)" "healthz Content-Type"
json_valid "$BODY" || fail "healthz body is not JSON: $(cat "$BODY")"
assert_json "$BODY" status ok
health_id=$(ql_header X-Request-Id) || fail "healthz response has no X-Request-Id"
assert_match '^[A-Za-z0-9._-]{8,}$' "$health_id" "X-Request-Id looks like an id"
wait_until 5 ql_request_logged "$health_id" GET /healthz 200 admin ||
    fail "no log line 'info request id=$health_id admin GET /healthz 200 ...'"

# /readyz: database and token are both up.
ql_curl "$(admin_url /readyz)" || fail "GET /readyz failed: $(cat "$T/curl.err")"
assert_status 200
json_valid "$BODY" || fail "readyz body is not JSON: $(cat "$BODY")"
assert_json "$BODY" status ready
assert_json "$BODY" database ok
assert_json "$BODY" pkcs11 ok
ready_id=$(ql_header X-Request-Id) || fail "readyz response has no X-Request-Id"
assert_ne "$health_id" "$ready_id" "request ids are unique"
wait_until 5 ql_request_logged "$ready_id" GET /readyz 200 admin ||
    fail "no log line 'info request id=$ready_id admin GET /readyz 200 ...'"

# Error responses carry the id too, and are logged with their status.
ql_curl "$(admin_url /no-such-path)"
assert_status 404
nf_id=$(ql_header X-Request-Id) || fail "404 response has no X-Request-Id"
wait_until 5 ql_request_logged "$nf_id" GET /no-such-path 404 admin ||
    fail "no log line 'info request id=$nf_id admin GET /no-such-path 404 ...'"

# Each request is logged exactly once.
for id in "$health_id" "$ready_id" "$nf_id"; do
    n=$(grep -c " info request id=$id " "$QL_LOG")
    assert_eq 1 "$n" "request id=$id logged once"
done

# The plain-HTTP pki listener tags its responses and log lines as well.
ql_curl "$(pki_url /no-such-path)"
assert_status 404
pki_id=$(ql_header X-Request-Id) || fail "pki 404 response has no X-Request-Id"
wait_until 5 ql_request_logged "$pki_id" GET /no-such-path 404 pki ||
    fail "no log line 'info request id=$pki_id pki GET /no-such-path 404 ...'"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
