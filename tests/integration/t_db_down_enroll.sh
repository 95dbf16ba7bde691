#!/bin/bash
# With PostgreSQL down an enrollment gets 503 and no certificate (nothing
# is handed out that is not on record); once the database is back, readyz
# recovers and enrollment works again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 5
tok=$ADMIN_OUT
# Load the project into the daemon so the outage hits the recording step.
ql_curl "$(device_url /.well-known/est/p1/cacerts)"
assert_status 200 "cacerts before the outage"
est_enroll_ok p1 before -u "before:$tok"

est_key dev
est_csr dev dev
est_body "$T/dev.der" "$T/dev.b64"
devid=$(device_id_of "$T/dev.csr")

pg_stop
ready_down() { ql_curl "$(admin_url /readyz)"; [ "$HTTP_STATUS" = 503 ]; }
wait_until 10 ready_down || fail "readyz did not report the database down: HTTP $HTTP_STATUS"

for i in 1 2; do
    est_post p1 simpleenroll "$T/dev.b64" -u "dev:$tok"
    assert_est_problem 503
    assert_no_match 'pkcs7|pkix' "$(ql_header Content-Type)" "503 ($i) is not a certificate response"
    assert_no_match 'MII' "$(cat "$BODY")" "503 ($i) body carries no base64 DER"
done
# Re-enrollment too.
est_csr re before "/O=p1/CN=$DEVICE_ID"
est_body "$T/re.der" "$T/re.b64"
est_post p1 simplereenroll "$T/re.b64" --cert "$T/before.crt" --key "$T/before.key"
assert_est_problem 503
assert_no_match 'MII' "$(cat "$BODY")" "re-enroll 503 carries no certificate"
ql_alive || fail "quarklinkd died while the database was down"

pg_start
ready_up() { ql_curl "$(admin_url /readyz)"; [ "$HTTP_STATUS" = 200 ]; }
wait_until 15 ready_up || fail "readyz did not recover: HTTP $HTTP_STATUS $(cat "$BODY")"
assert_json "$BODY" database ok

assert_eq 0 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$devid'")" \
    "the refused enrollment left no device"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates")" "only the certificate issued before the outage"
assert_eq 1 "$(ql_psql "SELECT sum(uses) FROM enrollment_tokens")" "the outage used no token"

est_post p1 simpleenroll "$T/dev.b64" -u "dev:$tok"
assert_status 200 "enrollment after the database came back"
est_cert_out "$T/dev.crt"
serial=$(cert_serial "$T/dev.crt")
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE serial = '$serial'")" "certificate recorded"
est_post p1 simplereenroll "$T/re.b64" --cert "$T/before.crt" --key "$T/before.key"
assert_status 200 "re-enrollment after the database came back"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
