#!/bin/bash
# Refused EST requests are security decisions of the project named: each
# refusal (401 no or wrong credentials, 403 disabled device, 401 re-enroll
# without a certificate) writes exactly one audit row in that project
# (result denied, actor device:<ID>, the reason, status and client address);
# a refusal naming no existing project writes none. An unauthenticated
# flood is capped at 60 rows a minute installation-wide: the rest are
# counted in one installation-level row at the end of the minute.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start
ql_admin_ok create-project pt token
pid=$(ql_psql "SELECT id FROM projects WHERE name = 'pt'")
denied() { ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied' AND project_id = $pid"; }
all_denied() { ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied'"; }
newest() {
    ql_psql "SELECT actor || '|' || action || '|' || coalesce(object, '') || '|' || detail
             FROM audit_log WHERE project_id = $pid ORDER BY id DESC LIMIT 1"
}

est_key d1
est_csr d1 d1
est_body "$T/d1.der" "$T/d1.b64"
id1=$(device_id_of "$T/d1.csr")

# ---- no credentials: one row in pt.
n=$(denied)
est_post pt simpleenroll "$T/d1.b64"
assert_est_problem 401
want=$((n + 1))
one_more() { [ "$(denied)" = "$want" ]; }
wait_until 5 one_more || fail "a refusal without credentials was not audited (rows: $(denied))"
assert_match "^device:$id1\\|device.enroll\\|$id1\\|.*\\(HTTP 401, from 127\\.0\\.0\\.1\\)\$" "$(newest)" \
    "the refusal's row: actor, action, device, reason, status, address"

# ---- a wrong token: one row, naming why.
est_post pt simpleenroll "$T/d1.b64" -u "d1:not-a-token"
assert_est_problem 401
want=$((n + 2))
wait_until 5 one_more || fail "a wrong token was not audited"
assert_match 'invalid enrollment token \(HTTP 401' "$(newest)" "the reason is recorded"

# ---- a disabled device: 403, one row.
ql_admin_ok create-token pt 10 1
tok=$ADMIN_OUT
est_post pt simpleenroll "$T/d1.b64" -u "d1:$tok"
assert_status 200 "d1 enrolls"
ql_psql "UPDATE devices SET status = 'disabled' WHERE device_id = '$id1'"
n=$(denied)
est_post pt simpleenroll "$T/d1.b64" -u "d1:$tok"
assert_est_problem 403
want=$((n + 1))
wait_until 5 one_more || fail "a refusal of a disabled device was not audited"
assert_match 'device is disabled \(HTTP 403' "$(newest)" "the disabled device's refusal"

# ---- re-enrollment without a client certificate: one row, action reenroll.
est_post pt simplereenroll "$T/d1.b64"
assert_est_problem 401
want=$((n + 2))
wait_until 5 one_more || fail "a refused re-enrollment was not audited"
assert_match '^device:-\|device.reenroll\|\|' "$(newest)" "re-enrollment refusal, no device named"

# ---- no project, no row: an unknown project's refusal writes nothing.
total=$(all_denied)
est_post nosuch simpleenroll "$T/d1.b64"
case $HTTP_STATUS in 401|404) ;; *) fail "unknown project: HTTP $HTTP_STATUS" ;; esac
est_post pt simpleenroll "$T/d1.b64" -u "d1:not-a-token"   # a marker after it
want_all=$((total + 1))
marker() { [ "$(all_denied)" -ge "$want_all" ]; }
wait_until 5 marker || fail "the marker refusal was not audited"
assert_eq "$want_all" "$(all_denied)" "the unknown project's refusal wrote no row"
# Successes are not refusals: no denied row for them.
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied'
                        AND detail LIKE '%HTTP 200%'")" "no row for a success"

# ---- the cap: 60 rows a minute; the rest counted in one row at its end.
# Rows so far in this minute count against the cap too.
est_key d2
est_csr d2 d2
est_body "$T/d2.der" "$T/d2.b64"
for i in $(seq 1 70); do
    est_post pt simpleenroll "$T/d2.b64" -u "d2:flood"
    [ "$HTTP_STATUS" = 401 ] || fail "flood request $i: HTTP $HTTP_STATUS"
done
capped() { [ "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'est.refusals_capped'")" = 1 ]; }
wait_until 75 capped || fail "no row counts the refusals over the cap"
recorded=$(all_denied)
detail=$(ql_psql "SELECT detail FROM audit_log WHERE action = 'est.refusals_capped'")
suppressed=$(printf '%s' "$detail" | sed -nE 's/^([0-9]+) EST refusals over the cap of 60 a minute.*/\1/p')
[ -n "$suppressed" ] || fail "the count row says: $detail"
# Every refusal is accounted for: the refusals so far, the unknown
# project's (counted against the cap, no row), the marker and the flood =
# the rows one by one (all denied rows but the count row) + the count +
# the unknown project's.
assert_eq $((total + 1 + 1 + 70)) $((recorded - 1 + suppressed + 1)) "every refusal is accounted for"
[ "$suppressed" -ge 10 ] || fail "only $suppressed refusals were over the cap"
assert_eq "" "$(ql_psql "SELECT project_id FROM audit_log WHERE action = 'est.refusals_capped'")" \
    "the count row is installation-level"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
