#!/bin/bash
# Revocation is final for a key (issue 9, finding 2): a key revoked for
# keyCompromise never gets another certificate, in any project; a device
# whose current certificate is revoked cannot enroll again until an admin
# approves or allows it again (audited); deleting a device removes its
# allowlist entry; re-enrollment revokes the certificate it replaces
# (reason superseded) once the new one is committed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start
api_admin_session admin
status_of() { ql_psql "SELECT status FROM devices WHERE device_id = '$1'"; }
audit_count() {
    ql_psql "SELECT count(*) FROM audit_log WHERE action = '$1' AND object = '$2'"
}

ql_admin_ok create-project pt token
ql_admin_ok create-token pt 100
tok=$ADMIN_OUT
ql_admin_ok create-project pa allowlist

# ---- keyCompromise: the same key never again, in this project or another
est_enroll_ok pt k1 -u "k1:$tok"
id1=$DEVICE_ID
ql_admin_ok revoke "$SERIAL" 1
est_post pt simpleenroll "$T/k1.b64" -u "k1:$tok"
assert_est_problem 403 'keyCompromise'
ql_admin_ok allow pa "$id1"
est_post pa simpleenroll "$T/k1.b64"
assert_est_problem 403 'keyCompromise'
assert_eq 0 "$(ql_psql "SELECT count(*) FROM certificates c JOIN cas ON cas.id = c.ca_id
                        JOIN projects p ON p.id = cas.project_id WHERE p.name = 'pa'")" \
    "a compromised key gets no certificate in another project"
# Even after an admin approves the device again.
ql_admin_ok approve pt "$id1"
est_post pt simpleenroll "$T/k1.b64" -u "k1:$tok"
assert_est_problem 403 'keyCompromise'

# ---- token project: a revoked device needs re-approval
est_enroll_ok pt t2 -u "t2:$tok"
id2=$DEVICE_ID
ql_admin_ok revoke "$SERIAL" 0
wait_until 5 test "$(status_of "$id2")" = revoked || fail "device not blocked: $(status_of "$id2")"
est_post pt simpleenroll "$T/t2.b64" -u "t2:$tok"
assert_est_problem 403 'revoked'
n=$(audit_count device.approve "$id2")
ql_admin_ok approve pt "$id2"
assert_eq $((n + 1)) "$(audit_count device.approve "$id2")" "re-approval is audited"
est_post pt simpleenroll "$T/t2.b64" -u "t2:$tok"
assert_status 200 "re-approved device enrolls again"
assert_eq active "$(status_of "$id2")" "device active again"

# ---- allowlist project, no credentials: blocked until re-allowed
est_key a3
est_csr a3 a3
est_body "$T/a3.der" "$T/a3.b64"
id3=$(device_id_of "$T/a3.csr")
ql_admin_ok allow pa "$id3"
est_post pa simpleenroll "$T/a3.b64"
assert_status 200 "allowlisted device enrolls"
est_cert_out "$T/a3.crt"
api POST "/api/v1/projects/pa/certificates/$(cert_serial "$T/a3.crt")/revoke" '{"reason":"affiliationChanged"}'
assert_status 200 "revoke through the API"
est_post pa simpleenroll "$T/a3.b64"
assert_est_problem 403 'revoked'
assert_eq revoked "$(status_of "$id3")" "status revoked"
n=$(audit_count device.approve "$id3")
api POST /api/v1/projects/pa/allowlist "{\"device_ids\":[\"$id3\"]}"
case $HTTP_STATUS in 200|201) ;; *) assert_status 200 "re-allow through the API" ;; esac
assert_eq $((n + 1)) "$(audit_count device.approve "$id3")" "re-allowing is audited"
est_post pa simpleenroll "$T/a3.b64"
assert_status 200 "re-allowed device enrolls again"
est_cert_out "$T/a3b.crt"

# ---- re-enrollment: the replaced certificate is revoked as superseded
old=$(cert_serial "$T/a3b.crt")
est_key a3new
est_csr a3re a3new "/O=pa/CN=$id3"
est_body "$T/a3re.der" "$T/a3re.b64"
est_post pa simplereenroll "$T/a3re.b64" --cert "$T/a3b.crt" --key "$T/a3.key"
assert_status 200 "re-enrollment"
est_cert_out "$T/a3re.crt"
assert_eq 4 "$(ql_psql "SELECT revocation_reason FROM certificates WHERE serial = '$old'")" \
    "the replaced certificate is revoked, reason superseded"
assert_eq active "$(status_of "$id3")" "superseding does not block the device"
est_post pa simplereenroll "$T/a3re.b64" --cert "$T/a3re.crt" --key "$T/a3new.key"
assert_status 200 "the new certificate re-enrolls"

# ---- deleting a device removes its allowlist entry
api DELETE "/api/v1/projects/pa/devices/$id3"
assert_status 204 "delete the device"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM allowlist WHERE device_id = '$id3'")" \
    "allowlist entry gone with the device"
est_post pa simpleenroll "$T/a3.b64"
assert_est_problem 401 'allowlist'

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
