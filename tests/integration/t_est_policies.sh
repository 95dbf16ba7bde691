#!/bin/bash
# Enrollment policies: allowlist (no token, device pre-registered with
# "admin allow"), approval (202 + Retry-After while pending, 200 after
# "admin approve"), and re-enrollment with a new key keeping the device.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start
count() { ql_psql "SELECT count(*) FROM $1"; }

# ---- allowlist
ql_admin_ok create-project pa allowlist
est_key a1
est_csr a1 a1
est_body "$T/a1.der" "$T/a1.b64"
ida=$(device_id_of "$T/a1.csr")
est_post pa simpleenroll "$T/a1.b64"
case $HTTP_STATUS in
    401|403) assert_est_problem "$HTTP_STATUS" 'allowlist' ;;
    *) fail "allowlist project, device not listed: expected 401/403, got $HTTP_STATUS: $(cat "$BODY")" ;;
esac
assert_eq "0 0 0" "$(count devices) $(count device_keys) $(count certificates)" \
    "a device not on the allowlist leaves no rows"
ql_admin allow pa bogus && fail "admin allow accepted a malformed device ID"
assert_eq 1 "$(printf '%s\n' "$ADMIN_ERR" | wc -l)" "admin allow error is one line"
ql_admin_ok allow pa "$ida"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM allowlist WHERE device_id = '$ida'")" "allowlist row"
est_post pa simpleenroll "$T/a1.b64"
assert_status 200 "allowlisted device enrolls without a token"
est_cert_out "$T/a1.crt"
assert_eq "subject=CN=$ida,O=pa" "$(openssl x509 -in "$T/a1.crt" -noout -subject -nameopt RFC2253)" \
    "allowlisted device certificate subject"
pki_fetch_ca pa "$T/pa.pem"
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/pa.pem" "$T/a1.crt" 2>&1) ||
    fail "allowlist certificate does not verify: $out"
assert_eq "active" "$(ql_psql "SELECT status FROM devices WHERE device_id = '$ida'")" "device active"
# Another key is still not allowed.
est_key a2
est_csr a2 a2
est_body "$T/a2.der" "$T/a2.b64"
est_post pa simpleenroll "$T/a2.b64"
case $HTTP_STATUS in
    401|403) assert_est_problem "$HTTP_STATUS" ;;
    *) fail "allowlist project, second unlisted device: expected 401/403, got $HTTP_STATUS" ;;
esac

# ---- approval
ql_admin_ok create-project pb approval
pki_fetch_ca pb "$T/pb.pem"
est_key b1
est_csr b1 b1
est_body "$T/b1.der" "$T/b1.b64"
idb=$(device_id_of "$T/b1.csr")
certs0=$(count certificates)
est_post pb simpleenroll "$T/b1.b64" -u "sensor-b1:"
assert_status 202 "first request on an approval project"
assert_eq 60 "$(ql_header Retry-After)" "202 carries Retry-After: 60"
assert_no_match 'BEGIN|MII' "$(cat "$BODY")" "202 carries no certificate"
assert_eq "pending|1" \
    "$(ql_psql "SELECT status, count(*) OVER () FROM devices d JOIN projects p ON p.id = d.project_id
                WHERE p.name = 'pb' AND d.device_id = '$idb'")" "devices row pending"
assert_eq "$certs0" "$(count certificates)" "no certificate while pending"

est_post pb simpleenroll "$T/b1.b64"
assert_status 202 "second request while pending"
assert_eq 60 "$(ql_header Retry-After)" "second 202 carries Retry-After: 60"
assert_eq "pending|1" \
    "$(ql_psql "SELECT status, count(*) OVER () FROM devices WHERE device_id = '$idb'")" \
    "still one pending row"
assert_eq "$certs0" "$(count certificates)" "still no certificate"

other=$(head -c 20 /dev/urandom | base32 | tr -d = | tr '[:upper:]' '[:lower:]')
ql_admin approve pb "$other" && fail "admin approve accepted a device that is not pending"
[ -n "$ADMIN_ERR" ] || fail "admin approve of an unknown device: no reason on stderr"
ql_admin_ok approve pb "$idb"
assert_eq approved "$(ql_psql "SELECT status FROM devices WHERE device_id = '$idb'")" "approved"

est_post pb simpleenroll "$T/b1.b64"
assert_status 200 "the same request after approval"
est_cert_out "$T/b1.crt"
assert_eq "subject=CN=$idb,O=pb" "$(openssl x509 -in "$T/b1.crt" -noout -subject -nameopt RFC2253)" \
    "approved device certificate subject"
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/pb.pem" "$T/b1.crt" 2>&1) ||
    fail "approved device certificate does not verify: $out"
serial_b1=$(cert_serial "$T/b1.crt")
assert_eq "active|1" \
    "$(ql_psql "SELECT status, count(*) OVER () FROM devices WHERE device_id = '$idb'")" \
    "one devices row, active"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE serial = '$serial_b1'")" "certificate row"

# ---- re-enrollment with a new key and the same subject
dev_pk=$(ql_psql "SELECT id FROM devices WHERE device_id = '$idb'")
assert_eq 1 "$(ql_psql "SELECT count(*) FROM device_keys WHERE device = $dev_pk")" "one key so far"
est_key b1new
est_csr b1re b1new "/O=pb/CN=$idb"
est_body "$T/b1re.der" "$T/b1re.b64"
est_post pb simplereenroll "$T/b1re.b64" --cert "$T/b1.crt" --key "$T/b1.key"
assert_status 200 "re-enroll with a new key"
est_cert_out "$T/b1re.crt"
assert_eq "subject=CN=$idb,O=pb" "$(openssl x509 -in "$T/b1re.crt" -noout -subject -nameopt RFC2253)" \
    "re-enrolled certificate keeps the device ID"
assert_eq "$(openssl pkey -in "$T/b1new.key" -pubout)" "$(openssl x509 -in "$T/b1re.crt" -noout -pubkey)" \
    "re-enrolled certificate carries the new key"
serial_re=$(cert_serial "$T/b1re.crt")
assert_ne "$serial_b1" "$serial_re" "new serial"
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/pb.pem" "$T/b1re.crt" 2>&1) ||
    fail "re-enrolled certificate does not verify: $out"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$idb'")" "still one devices row"
assert_eq 2 "$(ql_psql "SELECT count(*) FROM device_keys WHERE device = $dev_pk")" "device_keys has a second row"
assert_eq 2 "$(ql_psql "SELECT count(*) FROM certificates WHERE device = $dev_pk")" "two certificates for the device"
# No new device row for the new key's own ID.
assert_eq 0 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$(device_id_of "$T/b1re.csr")'")" \
    "the new key did not create a device"

# The new certificate works for the next re-enrollment.
est_post pb simplereenroll "$T/b1re.b64" --cert "$T/b1re.crt" --key "$T/b1new.key"
assert_status 200 "re-enroll with the re-enrolled certificate"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
