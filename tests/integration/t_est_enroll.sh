#!/bin/bash
# EST happy path: cacerts, simpleenroll with an enrollment token (Basic and
# Bearer; base64 bodies without, with LF and with CRLF line breaks), the
# issued certificate's contents, its database row, token use counting, and
# csrattrs.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
assert_match '^[A-Za-z0-9_-]{40,}$' "$tok" "create-token prints the secret on one line"
pki_fetch_ca p1 "$T/p1.pem"

# ---- cacerts: certs-only PKCS#7 with the project CA and the root.
ql_curl "$(device_url /.well-known/est/p1/cacerts)"
assert_status 200 "cacerts"
assert_match '^application/pkcs7-mime' "$(ql_header Content-Type)" "cacerts Content-Type"
assert_eq base64 "$(ql_header Content-Transfer-Encoding)" "cacerts Content-Transfer-Encoding"
base64 -d <"$BODY" >"$T/cacerts.der" || fail "cacerts body is not base64: $(head -c 300 "$BODY")"
openssl pkcs7 -inform DER -in "$T/cacerts.der" -print_certs -out "$T/cacerts.pem" ||
    fail "cacerts body is not a DER PKCS#7"
assert_eq 2 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$T/cacerts.pem")" "cacerts holds two certificates"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
awk -v d="$T" '/-----BEGIN CERTIFICATE-----/ { n++ } n { print > (d "/cacert." n) }' "$T/cacerts.pem"
got=$( (fp "$T/cacert.1"; fp "$T/cacert.2") | sort)
want=$( (fp "$T/root.pem"; fp "$T/p1.pem") | sort)
assert_eq "$want" "$got" "cacerts = {project CA, root}"
out=$(openssl verify -CAfile "$T/root.pem" "$T/p1.pem" 2>&1) ||
    fail "project CA does not verify against the root: $out"
assert_eq "$T/p1.pem: OK" "$out" "project CA chains to the root"

# ---- enrollment with Basic credentials, base64 with LF line breaks.
est_enroll_ok p1 dev1 -u "dev-one:$tok"
assert_match '^application/pkcs7-mime; ?smime-type=certs-only$' "$(ql_header Content-Type)" \
    "simpleenroll Content-Type"
assert_eq base64 "$(ql_header Content-Transfer-Encoding)" "simpleenroll Content-Transfer-Encoding"
serial1=$SERIAL
id1=$DEVICE_ID
assert_match '^[a-z2-7]{32}$' "$id1" "device ID formula"
crt="$T/dev1.crt"

# The row is committed before the reply: no waiting.
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE serial = '$serial1'")" \
    "certificates has exactly one row for $serial1"
assert_eq "$(openssl x509 -in "$crt" -outform DER | od -An -tx1 -v | tr -d ' \n')" \
    "$(ql_psql "SELECT encode(cert_der, 'hex') FROM certificates WHERE serial = '$serial1'")" \
    "the stored certificate is the one sent"
assert_eq "active|dev-one" \
    "$(ql_psql "SELECT status, label FROM devices WHERE device_id = '$id1'")" \
    "devices row: active, label from the Basic user name"

# Chain: root trusted, project CA untrusted intermediate.
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/p1.pem" "$crt" 2>&1) ||
    fail "issued certificate does not verify: $out"
assert_eq "$crt: OK" "$out" "issued certificate verifies against the root"

# Subject: exactly CN=<device id>, O=p1.
subj=$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253)
assert_eq "subject=CN=$id1,O=p1" "$subj" "subject is CN=<device id>, O=<project> (RFC 4514)"

ext() { openssl x509 -in "$crt" -noout -ext "$1" 2>/dev/null; }
san=$(ext subjectAltName)
assert_match "^ *URI:urn:quarklink:device:$id1\$" "$san" "SAN URI"
assert_eq 1 "$(printf '%s\n' "$san" | sed 1d | tr ',' '\n' | grep -c .)" "SAN holds exactly one name"
ku=$(ext keyUsage)
assert_match 'Key Usage: critical' "$ku" "keyUsage is critical"
assert_match '^ *Digital Signature$' "$ku" "keyUsage is digitalSignature only"
eku=$(ext extendedKeyUsage)
assert_match '^ *TLS Web Client Authentication$' "$eku" "EKU is clientAuth only"
aia=$(ext authorityInfoAccess)
assert_match "OCSP - URI:http://127\\.0\\.0\\.1:$PKI_PORT/pki/ocsp\$" "$aia" "AIA OCSP URL"
cdp=$(ext crlDistributionPoints)
# By the CA's id, which a rename cannot change (issue 9, finding 5).
p1_ca=$(ql_psql "SELECT c.id FROM cas c JOIN projects p ON p.id = c.project_id
                 WHERE p.name = 'p1' AND c.kind = 'issuing'")
assert_match "URI:http://127\\.0\\.0\\.1:$PKI_PORT/pki/crl/id/$p1_ca\\.crl\$" "$cdp" "CRL distribution point"

# Serial: 16 bytes (32 hex digits, no leading zero byte).
assert_match '^[0-9a-f]{32}$' "$serial1" "serial is 16 bytes"
assert_no_match '^00' "$serial1" "serial does not start with a zero byte"

# Validity: about 365 days.
nb=$(date -d "$(openssl x509 -in "$crt" -noout -startdate | sed 's/^notBefore=//')" +%s)
na=$(date -d "$(openssl x509 -in "$crt" -noout -enddate | sed 's/^notAfter=//')" +%s)
now=$(date +%s)
days=$(( (na - nb) / 86400 ))
{ [ "$days" -ge 364 ] && [ "$days" -le 366 ]; } || fail "validity is $days days, expected ~365"
[ "$nb" -le $((now + 5)) ] || fail "notBefore is in the future ($nb > $now)"
[ "$na" -ge $((now + 364 * 86400)) ] || fail "notAfter is less than 364 days away"

# ---- Bearer, base64 without line breaks; then CRLF line breaks.
est_key dev2
est_csr dev2 dev2
est_body "$T/dev2.der" "$T/dev2.b64" none
[ "$(wc -l <"$T/dev2.b64")" = 0 ] || hard_error "body with no line breaks has line breaks"
est_post p1 simpleenroll "$T/dev2.b64" -H "Authorization: Bearer $tok"
assert_status 200 "Bearer token, base64 without line breaks"
est_cert_out "$T/dev2.crt"
assert_match "CN ?= ?$(device_id_of "$T/dev2.csr")" "$(openssl x509 -in "$T/dev2.crt" -noout -subject)" \
    "Bearer enrollment issued for the CSR's key"

est_key dev3
est_csr dev3 dev3
est_body "$T/dev3.der" "$T/dev3.b64" crlf
grep -q $'\r$' "$T/dev3.b64" || hard_error "CRLF body has no CRLF"
est_post p1 simpleenroll "$T/dev3.b64" -u "dev-three:$tok"
assert_status 200 "base64 with CRLF line breaks"
est_cert_out "$T/dev3.crt"
assert_match "CN ?= ?$(device_id_of "$T/dev3.csr")" "$(openssl x509 -in "$T/dev3.crt" -noout -subject)" \
    "CRLF enrollment issued for the CSR's key"

assert_eq 3 "$(ql_psql "SELECT uses FROM enrollment_tokens WHERE token_hash = sha256(convert_to('$tok', 'UTF8'))")" \
    "three enrollments used the token three times"
assert_eq 3 "$(ql_psql "SELECT count(*) FROM certificates WHERE kind = 'device'")" "three device certificates"

# ---- a token with max_uses 2: two enrollments, the third is refused.
ql_admin_ok create-token p1 2
tok2=$ADMIN_OUT
uses2() { ql_psql "SELECT uses FROM enrollment_tokens WHERE token_hash = sha256(convert_to('$tok2', 'UTF8'))"; }
assert_eq 0 "$(uses2)" "fresh token unused"
est_enroll_ok p1 dev4 -u "dev4:$tok2"
assert_eq 1 "$(uses2)" "token used once"
est_enroll_ok p1 dev5 -u "dev5:$tok2"
assert_eq 2 "$(uses2)" "token used twice"
est_key dev6
est_csr dev6 dev6
est_body "$T/dev6.der" "$T/dev6.b64"
certs_before=$(ql_psql "SELECT count(*) FROM certificates")
est_post p1 simpleenroll "$T/dev6.b64" -u "dev6:$tok2"
assert_est_problem 401 'used up'
assert_match '^Basic realm="est"' "$(ql_header WWW-Authenticate)" "401 carries WWW-Authenticate"
assert_eq 2 "$(uses2)" "a refused enrollment does not count a use"
assert_eq "$certs_before" "$(ql_psql "SELECT count(*) FROM certificates")" "refused: no certificate row"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$(device_id_of "$T/dev6.csr")'")" \
    "refused: no device row"

# ---- the other accepted key types: P-384 and RSA 3072.
for kt in p384 rsa3072; do
    est_key "k$kt" "$kt"
    est_csr "k$kt" "k$kt"
    est_body "$T/k$kt.der" "$T/k$kt.b64"
    est_post p1 simpleenroll "$T/k$kt.b64" -u "k$kt:$tok"
    assert_status 200 "enrollment with a $kt key"
    est_cert_out "$T/k$kt.crt"
    assert_eq "$(openssl pkey -in "$T/k$kt.key" -pubout)" "$(openssl x509 -in "$T/k$kt.crt" -noout -pubkey)" \
        "$kt certificate carries the CSR's key"
    assert_eq "subject=CN=$(device_id_of "$T/k$kt.csr"),O=p1" \
        "$(openssl x509 -in "$T/k$kt.crt" -noout -subject -nameopt RFC2253)" "$kt device ID"
done

# ---- csrattrs: 200, base64 DER.
ql_curl "$(device_url /.well-known/est/p1/csrattrs)"
assert_status 200 "csrattrs"
assert_match '^application/csrattrs' "$(ql_header Content-Type)" "csrattrs Content-Type"
base64 -d <"$BODY" >"$T/csrattrs.der" || fail "csrattrs body is not base64: $(head -c 300 "$BODY")"
out=$(openssl asn1parse -inform DER -in "$T/csrattrs.der" 2>&1) || fail "csrattrs is not DER: $out"
assert_match 'SEQUENCE' "$out" "csrattrs is a SEQUENCE"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
