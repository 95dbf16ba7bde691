#!/bin/bash
# Two quarklinkd nodes on one database: a device polling node B learns of
# a deployment created, and of its cancellation, through node A, by
# PostgreSQL NOTIFY into B's cache (B answered its earlier polls from the
# cache, so only the notification can change its answer); a status report
# through B changes what A answers; both nodes resynchronise after the
# database restarts.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=deploy_lib.sh
. "$(dirname "$0")/deploy_lib.sh"
ql_require curl openssl psql jq sha256sum

# ---- node A, then node B: one database, one token, own logs and ports.
ql_pki_start server.log_file="$T/a.log"
A_PID=$QL_PID A_ADMIN=$ADMIN_PORT A_DEVICE=$DEVICE_PORT A_LOG=$QL_LOG
trap 'rc=$?; kill -TERM "$A_PID" 2>/dev/null; wait_until 5 ql__exited "$A_PID"; (exit $rc); ql__cleanup' EXIT
ql_config server.log_file="$T/b.log"
ql_start
B_ADMIN=$ADMIN_PORT B_DEVICE=$DEVICE_PORT B_LOG=$QL_LOG
deploy_images_init
on_a() { ADMIN_PORT=$A_ADMIN DEVICE_PORT=$A_DEVICE; }
on_b() { ADMIN_PORT=$B_ADMIN DEVICE_PORT=$B_DEVICE; }

on_a
api_admin_session alice
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 5
est_enroll_ok p1 dev -u "dev:$ADMIN_OUT"
head -c 2000000 /dev/urandom >"$T/os.img"
img=$(make_image p1 os 2.0 "$T/os.img" signed)

poll() { ql_curl --cert "$T/dev.crt" --key "$T/dev.key" "$@" "$(device_url /device/v1/update)"; }
lookups() { grep -Ec "devcache: looking up [0-9]+ certificates" "$B_LOG"; }
b_says() { on_b; poll; [ "$HTTP_STATUS" = "$1" ]; }

# ---- B answers from its cache: one lookup for several polls.
on_b
poll
assert_status 204 "B: nothing to do yet"
n=$(lookups)
[ "$n" -ge 1 ] || fail "B looked the certificate up in the database once"
poll
poll
assert_status 204 "B: still nothing"
assert_eq "$n" "$(lookups)" "B's idle polls are answered from its cache"

# ---- a deployment created through A reaches B's device.
on_a
api POST /api/v1/projects/p1/deployments "{\"image\":$img}"
assert_status 201 "create through A"
dep=$(jq -r .id "$BODY")
wait_until 10 b_says 200 || fail "B did not learn of the deployment (HTTP $HTTP_STATUS)"
assert_eq "$dep" "$(jq -r .deployment "$BODY")" "B serves the deployment made through A"
assert_file_match "devcache: notified \"p [0-9]+\"" "$B_LOG" "B learned it by NOTIFY"
etag=$(ql_header ETag)
n=$(lookups)
poll -H "If-None-Match: $etag"
assert_status 304 "B: unchanged, 304"
assert_eq "$n" "$(lookups)" "a cached idle poll costs B no lookup"

# ---- a report through B changes A's answer.
on_a
poll
assert_status 200 "A serves the deployment too"
on_b
ql_curl --cert "$T/dev.crt" --key "$T/dev.key" -H 'Content-Type: application/json' \
    --data "{\"deployment\":$dep,\"state\":\"downloading\",\"progress\":10}" \
    "$(device_url /device/v1/status)"
assert_status 204 "report downloading through B"
on_a
api GET "/api/v1/projects/p1/deployments/$dep"
assert_eq 1 "$(jq -r .counts.downloading "$BODY")" "A's API sees the report made through B"

# ---- cancelled through A: B's device has nothing to do.
api POST "/api/v1/projects/p1/deployments/$dep/cancel"
assert_status 200 "cancel through A"
wait_until 10 b_says 204 || fail "B still serves a cancelled deployment (HTTP $HTTP_STATUS)"
on_a
poll
assert_status 204 "A: nothing to do either"

# ---- after the database restarts, both nodes resynchronise (the NULL
# payload of db_listen: notifications may have been missed).
nb=$(grep -c "devcache: cleared (connected" "$B_LOG")
pg_restart
wait_until 20 eval '[ "$(grep -c "devcache: cleared (connected" "$B_LOG")" -gt "$nb" ]' ||
    fail "B did not clear its cache after reconnecting"
on_a
api POST /api/v1/projects/p1/deployments "{\"image\":$img}"
assert_status 201 "a new deployment after the restart"
wait_until 20 b_says 200 || fail "B does not learn of deployments after reconnecting"
