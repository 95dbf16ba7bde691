#!/bin/bash
# /readyz follows the database: 503 while PostgreSQL is down, 200 again once
# it is back, and the same daemon process reconnects by itself.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config database.reconnect_max=1
ql_start
pid=$QL_PID

readyz_is() {   # readyz_is STATUS: GET /readyz answers STATUS
    ql_curl "$(admin_url /readyz)" && [ "$HTTP_STATUS" = "$1" ]
}

readyz_is 200 || assert_status 200 "readyz before the database stops"
assert_json "$BODY" database ok

pg_stop

wait_until 15 readyz_is 503 || assert_status 503 "readyz while the database is down"
json_valid "$BODY" || fail "503 readyz body is not JSON: $(cat "$BODY")"
assert_json "$BODY" status "not ready"
db=$(json_get "$BODY" database) || fail "503 readyz has no database field: $(cat "$BODY")"
assert_ne ok "$db" "database field while PostgreSQL is down"
assert_match '^unavailable' "$db" "database field says unavailable"
assert_json "$BODY" pkcs11 ok "the token is unaffected"

# Liveness is independent of the database.
ql_curl "$(admin_url /healthz)"
assert_status 200 "healthz while the database is down"

pg_start
assert_eq 1 "$(ql_psql 'SELECT 1')" "the cluster is back"

wait_until 15 readyz_is 200 || assert_status 200 "readyz after the database is back"
assert_json "$BODY" database ok
assert_json "$BODY" status ready

# Same process throughout: still running, same PID, started once.
assert_eq "$pid" "$QL_PID" "daemon PID"
ql_alive || fail "quarklinkd is not running"
assert_eq 1 "$(grep -c ' info ready$' "$QL_LOG")" "the daemon logged 'ready' once (no restart)"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
