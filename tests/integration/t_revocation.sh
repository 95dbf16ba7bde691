#!/bin/bash
# Revocation: OCSP (POST with and without nonce, GET), CRL, and the device
# listener's mTLS check all follow "admin revoke" and a plain SQL UPDATE of
# certificates.revoked_at without a restart; unknown serials are "unknown";
# the CA certificates are served as DER.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
pki_fetch_ca p1 "$T/p1.pem"
# pki_fetch_ca checked 200, application/pkix-cert and DER for both.
ql_curl "$(pki_url /pki/ca/nosuch.crt)"
assert_status 404 "unknown CA certificate"

est_enroll_ok p1 dev1 -u "dev1:$tok"
s1=$SERIAL
est_enroll_ok p1 dev2 -u "dev2:$tok"
s2=$SERIAL
est_enroll_ok p1 dev3 -u "dev3:$tok"

# ---- OCSP good: with a nonce (openssl's default), then twice without
# (the second is served from the cache).
st=$(ocsp_status "$T/p1.pem" "$T/dev1.crt") || fail "OCSP request failed"
assert_eq good "$st" "OCSP status of a fresh certificate (nonce)"
assert_no_match 'nonce' "$(cat "$T/ocsp.out")" "the nonce is echoed (no nonce warning)"
for i in 1 2; do
    st=$(ocsp_status "$T/p1.pem" "$T/dev1.crt" -no_nonce) || fail "OCSP request $i without nonce failed"
    assert_eq good "$st" "OCSP status without a nonce ($i)"
done
# Signed by the issuing CA: the project CA alone verifies it.
openssl ocsp -issuer "$T/p1.pem" -cert "$T/dev1.crt" -url "$(pki_url /pki/ocsp)" \
    -VAfile "$T/p1.pem" -no_nonce >"$T/ocsp.va" 2>&1 || fail "OCSP with -VAfile failed: $(cat "$T/ocsp.va")"
assert_file_match '^Response verify OK' "$T/ocsp.va" "OCSP response signed by the project CA"

# ---- CRL before any revocation
crl_get() {
    ql_curl "$(pki_url /pki/crl/p1.crl)" || return 1
    [ "$HTTP_STATUS" = 200 ] || return 1
    openssl crl -inform DER -in "$BODY" -out "$T/crl.pem" 2>/dev/null || return 1
    openssl crl -in "$T/crl.pem" -noout -text >"$T/crl.txt"
}
crl_number() { printf '%d' "$(openssl crl -in "$T/crl.pem" -noout -crlnumber | sed 's/^crlNumber=//')"; }
crl_get || fail "GET /pki/crl/p1.crl: HTTP $HTTP_STATUS $(head -c 300 "$BODY")"
assert_eq application/pkix-crl "$(ql_header Content-Type)" "CRL Content-Type"
out=$(openssl crl -in "$T/crl.pem" -noout -CAfile "$T/p1.pem" 2>&1)
assert_match '^verify OK' "$out" "CRL signed by the project CA"
n0=$(crl_number) || fail "CRL has no CRL number"
assert_no_match 'Serial Number' "$(cat "$T/crl.txt")" "fresh CRL lists nothing"
out=$(openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/p1.pem" -CRLfile "$T/crl.pem" \
    "$T/dev1.crt" 2>&1) || fail "verify -crl_check before revocation: $out"
ql_curl "$(pki_url /pki/crl/nosuch.crl)"
assert_status 404 "CRL of an unknown CA"

# ---- admin revoke, reason 1 (keyCompromise)
ql_admin_ok revoke "$s1" 1
wait_until 10 ocsp_says revoked "$T/p1.pem" "$T/dev1.crt" ||
    fail "OCSP (nonce) does not say revoked after admin revoke: $(cat "$T/ocsp.out")"
assert_file_match 'Reason: keyCompromise' "$T/ocsp.out" "OCSP revocation reason"
assert_file_match 'Revocation Time' "$T/ocsp.out" "OCSP revocation time"
for i in 1 2; do
    st=$(ocsp_status "$T/p1.pem" "$T/dev1.crt" -no_nonce) || fail "OCSP without nonce failed"
    assert_eq revoked "$st" "OCSP without nonce after revocation ($i)"
done
ql_admin revoke "$s1" 1 && fail "revoking an already revoked certificate succeeded"
assert_eq 1 "$(printf '%s\n' "$ADMIN_ERR" | grep -c .)" "admin revoke error is one line"

serial_up=$(printf '%s' "$s1" | tr 'a-f' 'A-F')
crl_lists() { crl_get && grep -q "Serial Number: $1" "$T/crl.txt"; }
wait_until 10 crl_lists "$serial_up" || fail "CRL does not list $s1: $(cat "$T/crl.txt")"
grep -A4 "Serial Number: $serial_up" "$T/crl.txt" | grep -q 'Key Compromise' ||
    fail "CRL entry for $s1 has no reason keyCompromise: $(cat "$T/crl.txt")"
n1=$(crl_number)
[ "$n1" -gt "$n0" ] || fail "CRL number did not increase: $n0 -> $n1"
out=$(openssl crl -in "$T/crl.pem" -noout -CAfile "$T/p1.pem" 2>&1)
assert_match '^verify OK' "$out" "new CRL signed by the project CA"
out=$(openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/p1.pem" -CRLfile "$T/crl.pem" \
    "$T/dev1.crt" 2>&1) && fail "verify -crl_check accepted the revoked certificate: $out"
assert_match 'certificate revoked' "$out" "verify -crl_check says revoked"
out=$(openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/p1.pem" -CRLfile "$T/crl.pem" \
    "$T/dev3.crt" 2>&1) || fail "verify -crl_check rejects an unrevoked certificate: $out"

# ---- revocation by SQL: reaches OCSP and mTLS at once (NOTIFY), no restart.
whoami() { ql_curl --cert "$T/dev2.crt" --key "$T/dev2.key" "$(device_url /device/v1/whoami)"; }
whoami
assert_status 200 "dev2 certificate accepted for mTLS before revocation"
st=$(ocsp_status "$T/p1.pem" "$T/dev2.crt" -no_nonce) || fail "OCSP dev2 failed"
assert_eq good "$st" "dev2 good before the SQL revocation (and now cached)"
ql_psql "UPDATE certificates SET revoked_at = now(), revocation_reason = 4 WHERE serial = '$s2'" >/dev/null ||
    hard_error "SQL UPDATE failed"
wait_until 10 ocsp_says revoked "$T/p1.pem" "$T/dev2.crt" -no_nonce ||
    fail "OCSP (cached, no nonce) does not say revoked after the SQL UPDATE: $(cat "$T/ocsp.out")"
assert_file_match 'Reason: superseded' "$T/ocsp.out" "OCSP reason of the SQL revocation"
refused() { whoami; [ "$HTTP_STATUS" = 000 ] && [ "$CURL_RC" != 0 ]; }
wait_until 10 refused || fail "mTLS with the SQL-revoked certificate: HTTP $HTTP_STATUS, expected a refused handshake"
s2_up=$(printf '%s' "$s2" | tr 'a-f' 'A-F')
wait_until 10 crl_lists "$s2_up" || fail "CRL does not list $s2 after the SQL UPDATE"
ql_curl --cert "$T/dev3.crt" --key "$T/dev3.key" "$(device_url /device/v1/whoami)"
assert_status 200 "an unrevoked certificate still works for mTLS"

# ---- unknown serial of a known issuer
openssl ocsp -issuer "$T/p1.pem" -serial 0x0123456789abcdef0123456789abcdef \
    -url "$(pki_url /pki/ocsp)" -CAfile "$T/root.pem" >"$T/ocsp.unk" 2>&1 ||
    fail "OCSP for an unknown serial failed: $(cat "$T/ocsp.unk")"
assert_file_match '^Response verify OK' "$T/ocsp.unk" "unknown-serial response verifies"
assert_file_match '^0x0123456789abcdef0123456789abcdef: unknown$' "$T/ocsp.unk" "unknown serial"

# ---- OCSP GET (RFC 6960 A.1): base64 of the DER request, URL-encoded.
ocsp_get() {    # ocsp_get CERT: status word from a GET request
    openssl ocsp -issuer "$T/p1.pem" -cert "$1" -no_nonce -reqout "$T/req.der" >/dev/null 2>&1 ||
        hard_error "cannot build an OCSP request"
    local enc
    enc=$(base64 -w 0 "$T/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
    ql_curl "$(pki_url "/pki/ocsp/$enc")"
    [ "$HTTP_STATUS" = 200 ] || fail "OCSP GET: HTTP $HTTP_STATUS $(head -c 300 "$BODY")"
    assert_eq application/ocsp-response "$(ql_header Content-Type)" "OCSP GET Content-Type"
    openssl ocsp -respin "$BODY" -issuer "$T/p1.pem" -cert "$1" -CAfile "$T/root.pem" \
        >"$T/ocsp.get" 2>&1 || fail "OCSP GET response: $(cat "$T/ocsp.get")"
    grep -q '^Response verify OK' "$T/ocsp.get" || fail "OCSP GET response does not verify: $(cat "$T/ocsp.get")"
    sed -nE "s|^$(ere_quote "$1"): ([a-z]+)\$|\\1|p" "$T/ocsp.get"
}
assert_eq revoked "$(ocsp_get "$T/dev1.crt")" "OCSP GET for the revoked certificate"
assert_eq good "$(ocsp_get "$T/dev3.crt")" "OCSP GET for a good certificate"
# The unencoded form (base64 '/' and '+' as they are) is what some clients send.
ql_curl "$(pki_url "/pki/ocsp/$(base64 -w 0 "$T/req.der")")"
case $HTTP_STATUS in
    200|400|404) ;;
    *) fail "OCSP GET without URL-encoding: HTTP $HTTP_STATUS" ;;
esac

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
