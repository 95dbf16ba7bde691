#!/bin/bash
# The CA signs only what the policy allows (issue 9, finding 3): refused
# enrollments cost no token signature (counted on /metrics), a pending
# device on an approval project is audited, and a reservation that never
# became a certificate holds its token use only until it expires.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start

# signed KIND: quarklink_token_signatures_total{kind="KIND"} from /metrics.
signed() {
    ql_curl "$(admin_url /metrics)"
    [ "$HTTP_STATUS" = 200 ] || fail "GET /metrics: HTTP $HTTP_STATUS"
    sed -nE "s/^quarklink_token_signatures_total\\{kind=\"$1\"\\} ([0-9]+)\$/\\1/p" "$BODY"
}
n_certs() { ql_psql "SELECT count(*) FROM certificates"; }

ql_admin_ok create-project pt token
ql_admin_ok create-token pt 1
tok=$ADMIN_OUT
est_key d1
est_csr d1 d1
est_body "$T/d1.der" "$T/d1.b64"

s0=$(signed certificate)
[ -n "$s0" ] || fail "/metrics has no certificate signature counter: $(cat "$BODY")"
c0=$(n_certs)
for i in 1 2 3 4 5; do
    est_post pt simpleenroll "$T/d1.b64"
    assert_est_problem 401
    est_post pt simpleenroll "$T/d1.b64" -u "d1:wrong-token-$i"
    assert_est_problem 401 'invalid enrollment token'
done
assert_eq "$s0" "$(signed certificate)" "10 refused enrollments made no signature"
assert_eq "$c0" "$(n_certs)" "and recorded no certificate"

# ---- a reservation left by a crash between decide and record: it holds
# the one use of this token while it lives, and nothing once expired.
tid=$(ql_psql "SELECT t.id FROM enrollment_tokens t JOIN projects p ON p.id = t.project_id
               WHERE p.name = 'pt'") && [ -n "$tid" ] || hard_error "no token id"
ql_psql "INSERT INTO enrollment_reservations (project_id, ca_id, device_id, token_id, spki_sha256)
         SELECT p.id, c.id, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', $tid, '\\x00'
         FROM projects p JOIN cas c ON c.project_id = p.id AND c.kind = 'issuing'
         WHERE p.name = 'pt'" >/dev/null || hard_error "cannot insert a reservation"
est_post pt simpleenroll "$T/d1.b64" -u "d1:$tok"
assert_est_problem 401 'used up'
assert_eq "$s0" "$(signed certificate)" "a use held by a reservation costs no signature"
ql_psql "UPDATE enrollment_reservations SET expires_at = now() - interval '1 second'" >/dev/null
est_post pt simpleenroll "$T/d1.b64" -u "d1:$tok"
assert_status 200 "an expired reservation gives its token use back"
assert_eq $((s0 + 1)) "$(signed certificate)" "one enrollment, one signature"
assert_eq "1|0" "$(ql_psql "SELECT uses, (SELECT count(*) FROM enrollment_reservations)
                            FROM enrollment_tokens WHERE id = $tid")" \
    "the token counts one use; no reservation is left"
est_key d2
est_csr d2 d2
est_body "$T/d2.der" "$T/d2.b64"
s1=$(signed certificate)
est_post pt simpleenroll "$T/d2.b64" -u "d2:$tok"
assert_est_problem 401 'used up'
assert_eq "$s1" "$(signed certificate)" "a used-up token costs no signature"

# ---- approval: the pending device is audited, and nothing is signed
ql_admin_ok create-project pb approval
est_key b1
est_csr b1 b1
est_body "$T/b1.der" "$T/b1.b64"
idb=$(device_id_of "$T/b1.csr")
est_post pb simpleenroll "$T/b1.b64" -u "label-from-the-wire:"
assert_status 202 "approval project: pending"
est_post pb simpleenroll "$T/b1.b64" -u "label-from-the-wire:"
assert_status 202 "still pending"
assert_eq "$s1" "$(signed certificate)" "pending requests cost no signature"
assert_eq "1|device:$idb|label label-from-the-wire" \
    "$(ql_psql "SELECT count(*) OVER (), actor, detail FROM audit_log
                WHERE action = 'device.pending' AND object = '$idb'")" \
    "one audit row for the pending device, with its label"
ql_admin_ok approve pb "$idb"
est_post pb simpleenroll "$T/b1.b64"
assert_status 200 "approved device enrolls"
assert_eq $((s1 + 1)) "$(signed certificate)" "one signature for the approved device"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
