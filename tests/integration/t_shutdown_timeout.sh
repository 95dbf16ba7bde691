#!/bin/bash
# SIGTERM with a request that outlasts shutdown_timeout: the daemon does not
# wait for it beyond the timeout, and still exits 0.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config server.shutdown_timeout=1 database.query_timeout=30
ql_start

ms=20000
curl -sS --max-time 30 --cacert "$T/ca.crt" -o "$T/slow.body" -w '%{http_code}' \
    "$(admin_url "/debug/sleep?ms=$ms")" >"$T/slow.status" 2>"$T/slow.err" &
slow_pid=$!

sleeping() {
    [ "$(ql_psql "SELECT count(*) FROM pg_stat_activity
                  WHERE state = 'active' AND query ILIKE '%pg_sleep%'
                    AND pid <> pg_backend_pid()")" -ge 1 ] 2>/dev/null
}
wait_until 10 sleeping || fail "the /debug/sleep query never showed up in pg_stat_activity"

start=${EPOCHREALTIME/./}
kill -TERM "$QL_PID" || fail "could not signal quarklinkd"
# shutdown_timeout is 1 s; allow generous slack, far below the 20 s request.
ql_wait_exit 8 || fail "quarklinkd still running 8 s after SIGTERM with shutdown_timeout = 1"
took=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
assert_eq 0 "$QL_EXIT" "exit status after the shutdown timeout"
[ "$took" -ge 900 ] || fail "quarklinkd exited after ${took} ms, before shutdown_timeout (1 s) was up"

wait "$slow_pid"
assert_ne 200 "$(cat "$T/slow.status")" "the cut-off request did not complete"
ql_log "exited ${took} ms after SIGTERM"
