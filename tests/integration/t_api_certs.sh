#!/bin/bash
# Admin API certificates: list per project and per device with the valid,
# expiring_within, revoked and device filters and keyset pagination; get
# with a PEM that openssl parses and fields parsed from it; revoke by
# reason name and code (OCSP follows at once), twice (409), across
# projects (404); malformed bodies; certificateHold and removeFromCRL refused
# (API 400, admin revoke, SQL); an audit row for every revocation.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start

# ---- an admin session (cookie jar + CSRF token) for api().
api_admin_session alice
C=/api/v1/projects/p1/certificates
items() { jq -r '.items[].serial' "$BODY"; }
sorted() { printf '%s\n' "$@" | LC_ALL=C sort; }

# ---- certificates: dev1 twice (same key), dev2, and dev3 with a 20-day
# validity; one in project p2.
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
pki_fetch_ca p1 "$T/p1.pem"
est_enroll_ok p1 dev1 -u "dev1:$tok"
id1=$DEVICE_ID s1a=$SERIAL
cp "$T/dev1.crt" "$T/dev1a.crt"
est_body "$T/dev1.der" "$T/dev1.b64"
est_post p1 simpleenroll "$T/dev1.b64" -u "dev1:$tok"
assert_status 200 "dev1 enrolls again"
est_cert_out "$T/dev1b.crt"
s1b=$(cert_serial "$T/dev1b.crt")
est_enroll_ok p1 dev2 -u "dev2:$tok"
id2=$DEVICE_ID s2=$SERIAL
api PATCH /api/v1/projects/p1 '{"cert_validity_days":20}'
assert_status 200 "shorter validity for p1"
est_enroll_ok p1 dev3 -u "dev3:$tok"
s3=$SERIAL
ql_admin_ok create-project p2 token
ql_admin_ok create-token p2 10
pki_fetch_ca p2 "$T/p2.pem"
est_enroll_ok p2 other -u "other:$ADMIN_OUT"
s_other=$SERIAL
all=$(sorted "$s1a" "$s1b" "$s2" "$s3")

# ---- list
api GET "$C"
assert_status 200 "list certificates"
assert_eq "$all" "$(items)" "the project's certificates, by serial"
assert_eq null "$(jq -r .next "$BODY")" "no next cursor"
assert_eq "$id2" "$(jq -r --arg s "$s2" '.items[] | select(.serial == $s) | .device_id' "$BODY")" \
    "list item names its device"
assert_eq null "$(jq -r --arg s "$s2" '.items[] | select(.serial == $s) | .revoked_at' "$BODY")" \
    "list item: not revoked"
assert_eq null "$(jq -r '.items[0].pem' "$BODY")" "lists carry no PEM"

# ---- pagination: limit=1 walks every certificate exactly once.
seen="" after="" pages=0
while :; do
    api GET "$C?limit=1${after:+&after=$after}"
    assert_status 200 "page $pages"
    seen="$seen$(items)"$'\n'
    after=$(jq -r '.next // empty' "$BODY")
    pages=$((pages + 1))
    [ -n "$after" ] || break
    [ "$pages" -lt 10 ] || fail "pagination does not end"
done
assert_eq "$all" "$(printf '%s' "$seen" | grep .)" "pages walk every certificate once, in order"

# ---- filters before any revocation
api GET "$C?valid=true"
assert_eq "$all" "$(items)" "valid=true: all"
api GET "$C?valid=false"
assert_eq "" "$(items)" "valid=false: none"
api GET "$C?expiring_within=30"
assert_eq "$s3" "$(items)" "expiring_within=30: the 20-day certificate"
api GET "$C?expiring_within=10"
assert_eq "" "$(items)" "expiring_within=10: none"
api GET "$C?expiring_within=400"
assert_eq "$all" "$(items)" "expiring_within=400: all"
api GET "$C?device=$id1"
assert_eq "$(sorted "$s1a" "$s1b")" "$(items)" "device=dev1"
api GET "$C?device=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
assert_status 200 "device filter with an unknown device"
assert_eq "" "$(items)" "unknown device: no certificates"
api GET "$C?device=%27%20OR%201%3D1%20--"
assert_status 200 "SQL metacharacters in the device filter"
assert_eq "" "$(items)" "metacharacters match nothing"
api GET "/api/v1/projects/p1/devices/$id1/certificates"
assert_status 200 "per-device list"
assert_eq "$(sorted "$s1a" "$s1b")" "$(items)" "/devices/dev1/certificates"
api GET "/api/v1/projects/p1/devices/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/certificates"
assert_status 404 "per-device list of an unknown device"
assert_problem 404
api GET "/api/v1/projects/p2/devices/$id1/certificates"
assert_status 404 "dev1 through project p2"
for bad in "valid=yes" "revoked=1" "expiring_within=0" "expiring_within=3651" "expiring_within=x"; do
    api GET "$C?$bad"
    assert_status 400 "$bad"
    assert_problem 400
done

# ---- get: PEM and parsed fields
api GET "$C/$s1a"
assert_status 200 "get certificate"
assert_json "$BODY" serial "$s1a"
assert_json "$BODY" device_id "$id1"
assert_json "$BODY" subject "$(ql_psql "SELECT subject FROM certificates WHERE serial = '$s1a'")"
assert_eq null "$(jq -r .revoked_at "$BODY")" "not revoked"
assert_eq null "$(jq -r .revocation_reason "$BODY")" "no reason"
jq -r .pem "$BODY" >"$T/got.pem"
openssl x509 -in "$T/got.pem" -noout 2>"$T/x509.err" || fail "PEM does not parse: $(cat "$T/x509.err")"
assert_eq "$(openssl x509 -in "$T/dev1a.crt" -outform DER | sha256sum)" \
    "$(openssl x509 -in "$T/got.pem" -outform DER | sha256sum)" "the PEM is the issued certificate"
assert_eq "$(openssl x509 -in "$T/got.pem" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')" \
    "$(jq -r .issuer "$BODY")" "issuer (RFC 2253)"
assert_eq '{"type":"EC","bits":256,"curve":"prime256v1"}' "$(jq -c .key "$BODY")" "key"
assert_eq "[\"urn:quarklink:device:$id1\"]" "$(jq -c .san_uris "$BODY")" "SAN URIs"
assert_eq '["digitalSignature"]' "$(jq -c .key_usage "$BODY")" "key usage"
assert_eq '["clientAuth"]' "$(jq -c .extended_key_usage "$BODY")" "extended key usage"
nb=$(date -u -d "$(openssl x509 -in "$T/got.pem" -noout -startdate | sed 's/^notBefore=//')" +%Y-%m-%dT%H:%M:%SZ)
na=$(date -u -d "$(openssl x509 -in "$T/got.pem" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ)
assert_json "$BODY" not_before "$nb"
assert_json "$BODY" not_after "$na"
up=$(printf '%s' "$s1a" | tr 'a-f' 'A-F')
api GET "$C/$up"
assert_status 200 "upper-case serial"
api GET "$C/$s_other"
assert_status 404 "a serial of another project"
assert_problem 404
api GET "$C/0123"
assert_status 404 "malformed serial"
api GET "$C/00000000000000000000000000000000"
assert_status 404 "unknown serial"

# ---- revoke by name: 200 with the certificate, OCSP follows at once.
assert_eq good "$(ocsp_status "$T/p1.pem" "$T/dev2.crt")" "dev2 good before revocation"
api POST "$C/$s2/revoke" '{"reason":"keyCompromise"}'
assert_status 200 "revoke by name"
assert_json "$BODY" serial "$s2"
assert_json "$BODY" revocation_reason keyCompromise
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jq -r .revoked_at "$BODY")" \
    "revoked_at is ISO 8601 UTC"
jq -r .pem "$BODY" | openssl x509 -noout || fail "revoke answer carries no PEM"
assert_eq "1|t" "$(ql_psql "SELECT revocation_reason, revoked_at IS NOT NULL FROM certificates WHERE serial = '$s2'")" \
    "row revoked"
wait_until 10 ocsp_says revoked "$T/p1.pem" "$T/dev2.crt" ||
    fail "OCSP does not say revoked: $(cat "$T/ocsp.out")"
assert_file_match 'Reason: keyCompromise' "$T/ocsp.out" "OCSP reason"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE actor = 'user:alice'
    AND action = 'certificate.revoke' AND object = '$s2' AND result = 'ok'
    AND detail = 'reason keyCompromise' AND project_id = (SELECT id FROM projects WHERE name = 'p1')")" \
    "revocation audit row"
api POST "$C/$s2/revoke" '{"reason":"superseded"}'
assert_status 409 "revoking twice"
assert_problem 409
assert_eq 1 "$(ql_psql "SELECT revocation_reason FROM certificates WHERE serial = '$s2'")" \
    "the second revocation changed nothing"

# ---- revoke by code
api POST "$C/$s1a/revoke" '{"reason":4}'
assert_status 200 "revoke by code"
assert_json "$BODY" revocation_reason superseded
wait_until 10 ocsp_says revoked "$T/p1.pem" "$T/dev1a.crt" ||
    fail "OCSP does not say revoked: $(cat "$T/ocsp.out")"
assert_file_match 'Reason: superseded' "$T/ocsp.out" "OCSP reason by code"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'
    AND object = '$s1a' AND detail = 'reason superseded'")" "audit row of the revocation by code"

# ---- bad bodies change nothing
revoke_bad() { # BODY STATUS DETAIL_ERE
    api POST "$C/$s3/revoke" "$1"
    assert_status "$2" "revoke body $1"
    assert_problem "$2"
    assert_match "$3" "$(jq -r .detail "$BODY")" "detail of $1"
}
revoke_bad '{"reason":7}' 422 '"reason"'
revoke_bad '{"reason":11}' 422 '"reason"'
revoke_bad '{"reason":-1}' 422 '"reason"'
revoke_bad '{"reason":"KeyCompromise"}' 422 '"reason"'
revoke_bad '{"reason":"bogus"}' 422 '"reason"'
revoke_bad '{"reason":true}' 400 '"reason"'
revoke_bad '{"reason":1.5}' 400 '"reason"'
revoke_bad '{"reason":["keyCompromise"]}' 400 '"reason"'
revoke_bad '{"reason":"keyCompromise","why":"x"}' 400 '"why"'
revoke_bad '{"reason":' 400 '.'
revoke_bad "{\"reason\":\"' OR 1=1 --\"}" 422 '"reason"'
assert_eq "" "$(ql_psql "SELECT revoked_at FROM certificates WHERE serial = '$s3'")" \
    "refused revocations left the certificate alone"
# certificateHold and removeFromCRL do not revoke (OpenSSL reads a CRL
# entry with reason 8 as not revoked) and a hold cannot be released: 400
# from the API, a refusal from admin revoke and from the database itself.
for r in 6 8 '"certificateHold"' '"removeFromCRL"'; do
    revoke_bad "{\"reason\":$r}" 400 'does not revoke'
done
for r in 6 8; do
    ql_admin revoke "$s3" "$r" && fail "admin revoke with reason $r succeeded"
    assert_eq 1 "$(printf '%s\n' "$ADMIN_ERR" | grep -c .)" "admin revoke $r: one line on stderr"
    assert_match 'does not revoke' "$ADMIN_ERR" "admin revoke $r says why"
    ql_psql "UPDATE certificates SET revoked_at = now(), revocation_reason = $r
        WHERE serial = '$s3'" >/dev/null 2>"$T/psql.err" &&
        fail "the database accepted revocation_reason $r"
    assert_file_match 'certificates_revocation_reason_check' "$T/psql.err" "SQL refuses reason $r"
done
assert_eq "" "$(ql_psql "SELECT revoked_at FROM certificates WHERE serial = '$s3'")" \
    "refused reasons left the certificate alone"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'
    AND object = '$s3'")" "no audit row for a refused reason"
api POST "$C/$s_other/revoke" '{"reason":1}'
assert_status 404 "revoking a serial of another project"
assert_eq "" "$(ql_psql "SELECT revoked_at FROM certificates WHERE serial = '$s_other'")" \
    "the other project's certificate is untouched"
api POST "$C/00000000000000000000000000000000/revoke" '{"reason":1}'
assert_status 404 "revoking an unknown serial"
api POST "$C/$s3/revoke" '{}'
assert_status 200 "revoke without a reason"
assert_json "$BODY" revocation_reason unspecified

# ---- filters after revocations: s2 and s1a and s3 revoked, s1b valid.
api GET "$C?revoked=true"
assert_eq "$(sorted "$s1a" "$s2" "$s3")" "$(items)" "revoked=true"
api GET "$C?revoked=false"
assert_eq "$s1b" "$(items)" "revoked=false"
api GET "$C?valid=true"
assert_eq "$s1b" "$(items)" "valid=true"
api GET "$C?valid=false"
assert_eq "$(sorted "$s1a" "$s2" "$s3")" "$(items)" "valid=false"
api GET "$C?expiring_within=30"
assert_eq "" "$(items)" "expiring_within leaves out revoked certificates"
api GET "/api/v1/projects/p1/devices/$id1/certificates?valid=true"
assert_eq "$s1b" "$(items)" "per-device list with valid=true"
api GET "$C?device=$id1&revoked=true"
assert_eq "$s1a" "$(items)" "device + revoked filters"
api GET "/api/v1/projects/p1/devices/$id1"
assert_eq "$s1b" "$(jq -r .certificate.serial "$BODY")" "the device's current certificate is the unrevoked one"
api GET "/api/v1/projects/p1/devices/$id2"
assert_eq null "$(jq -r .certificate "$BODY")" "a device whose certificate is revoked has none"
api GET "$C/$s2"
assert_json "$BODY" revocation_reason keyCompromise "get after revocation"

# ---- an RSA 3072 certificate: a longer PEM, another key type.
est_key krsa rsa3072
est_csr krsa krsa
est_body "$T/krsa.der" "$T/krsa.b64"
est_post p1 simpleenroll "$T/krsa.b64" -u "krsa:$tok"
assert_status 200 "RSA enrollment"
est_cert_out "$T/krsa.crt"
api GET "$C/$(cert_serial "$T/krsa.crt")"
assert_status 200 "get the RSA certificate"
assert_eq "$(openssl x509 -in "$T/krsa.crt" -outform DER | sha256sum)" \
    "$(jq -r .pem "$BODY" | openssl x509 -outform DER | sha256sum)" "the whole RSA PEM"
assert_eq '{"type":"RSA","bits":3072}' "$(jq -c .key "$BODY")" "RSA key"

# ---- migration 008 on a database that still holds reason 8 (stored
# before it, with 002's constraint put back): the certificate stays revoked, as unspecified, audited, and
# the CRL revokes it (OpenSSL ignores a full-CRL entry with reason 8).
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
ql_psql "ALTER TABLE certificates DROP CONSTRAINT certificates_revocation_reason_check;
    ALTER TABLE certificates ADD CONSTRAINT certificates_revocation_reason_check
        CHECK (revocation_reason BETWEEN 0 AND 10 AND revocation_reason <> 7);
    UPDATE certificates SET revocation_reason = 8 WHERE serial = '$s3';
    DELETE FROM schema_version WHERE version = 8" >/dev/null || hard_error "SQL setup failed"
ql_start
assert_eq "0|t" "$(ql_psql "SELECT revocation_reason, revoked_at IS NOT NULL FROM certificates
    WHERE serial = '$s3'")" "migration 008 keeps the certificate revoked, reason unspecified"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE actor = 'migration 008'
    AND object = '$s3'")" "migration 008 audits the change"
ql_curl "$(pki_url /pki/crl/p1.crl)"
assert_status 200 "CRL after migration 008"
openssl crl -inform DER -in "$BODY" -out "$T/crl.pem" || fail "CRL does not parse"
out=$(openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/p1.pem" -CRLfile "$T/crl.pem" \
    "$T/dev3.crt" 2>&1) && fail "verify -crl_check accepts the migrated revocation: $out"
assert_match 'certificate revoked' "$out" "the migrated revocation revokes in the CRL"

assert_eq "" "$(ql_psql "SELECT broken_id FROM ql_audit_verify()")" "audit chain intact"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
