#!/bin/bash
# SIGTERM: the daemon stops accepting connections at once, lets the in-flight
# request finish, then exits 0.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config server.shutdown_timeout=10
ql_start

ms=2000
curl -sS --max-time 20 --cacert "$T/ca.crt" -o "$T/slow.body" -w '%{http_code}' \
    "$(admin_url "/debug/sleep?ms=$ms")" >"$T/slow.status" 2>"$T/slow.err" &
slow_pid=$!

# The slow request is really in flight: its pg_sleep runs in PostgreSQL.
sleeping() {
    [ "$(ql_psql "SELECT count(*) FROM pg_stat_activity
                  WHERE state = 'active' AND query ILIKE '%pg_sleep%'
                    AND pid <> pg_backend_pid()")" -ge 1 ] 2>/dev/null
}
wait_until 10 sleeping || fail "the /debug/sleep query never showed up in pg_stat_activity"

kill -TERM "$QL_PID" || fail "could not signal quarklinkd"

# New connections are refused (curl exit 7) while the slow request still runs.
refused() {
    curl -sS --max-time 2 --cacert "$T/ca.crt" -o /dev/null "$(admin_url /healthz)" 2>/dev/null
    [ $? = 7 ]
}
wait_until 5 refused || fail "the admin port still accepts connections after SIGTERM"
if ! kill -0 "$slow_pid" 2>/dev/null; then
    fail "the slow request ended before the listener closed (status $(cat "$T/slow.status"))"
fi
ql_alive || fail "quarklinkd exited before the in-flight request finished"

# The in-flight request completes normally.
wait "$slow_pid"
rc=$?
assert_eq 0 "$rc" "curl exit status of the in-flight request ($(cat "$T/slow.err"))"
assert_eq 200 "$(cat "$T/slow.status")" "status of the in-flight request"
assert_json "$T/slow.body" slept_ms "$ms"

ql_wait_exit 15 || fail "quarklinkd did not exit within 15 s of SIGTERM"
assert_eq 0 "$QL_EXIT" "exit status after SIGTERM"
assert_file_match " info request id=[^ ]+ admin GET /debug/sleep(\?[^ ]*)? 200 " "$QL_LOG" \
    "the in-flight request was logged"
