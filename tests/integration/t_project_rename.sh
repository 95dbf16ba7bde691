#!/bin/bash
# Renaming a project keeps its certificates working (issue 9, finding 5):
# the CRL URL in a device certificate names the CA by its id, which never
# changes; re-enrollment follows the device, not the project's name; a new
# project reusing the old name never answers for the old certificates.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start
api_admin_session admin

ql_admin_ok create-project old1 token
ql_admin_ok create-token old1 10
tok=$ADMIN_OUT
pki_fetch_ca old1 "$T/old1-ca.pem"
est_enroll_ok old1 d1 -u "d1:$tok"
id1=$DEVICE_ID
serial1=$SERIAL
cdp=$(openssl x509 -in "$T/d1.crt" -noout -ext crlDistributionPoints |
    sed -nE 's/^ *URI:(.*)$/\1/p')
assert_match '/pki/crl/id/[0-9]+\.crl$' "$cdp" "the CRL URL names the CA by id"

api PATCH /api/v1/projects/old1 '{"name":"new1"}'
assert_status 200 "rename old1 -> new1"

# crl_ok FILE: the CRL at the certificate's URL verifies with old1's CA and
# d1's status agrees (EXPECT: OK or revoked).
crl_check() {
    ql_curl "$cdp"
    assert_status 200 "GET the certificate's CRL URL after the rename"
    openssl crl -inform DER -in "$BODY" -out "$T/cdp.crl" 2>/dev/null ||
        fail "the CRL URL does not serve a DER CRL"
    openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/old1-ca.pem" \
        -CRLfile "$T/cdp.crl" "$T/$1.crt" >"$T/verify.out" 2>&1
}
crl_check d1 || fail "d1 does not verify against the CRL at its URL: $(cat "$T/verify.out")"

# Mutual-TLS re-enrollment after the rename, under the new name and the old.
est_key d1b
est_csr d1re d1b "/O=old1/CN=$id1"
est_body "$T/d1re.der" "$T/d1re.b64"
est_post new1 simplereenroll "$T/d1re.b64" --cert "$T/d1.crt" --key "$T/d1.key"
assert_status 200 "re-enrollment after a rename"
est_cert_out "$T/d1b.crt"
assert_eq "subject=CN=$id1,O=new1" "$(openssl x509 -in "$T/d1b.crt" -noout -subject -nameopt RFC2253)" \
    "the new certificate carries the current name and the same device ID"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$id1'")" "still one device"
est_key d1c
est_csr d1re2 d1c "/O=new1/CN=$id1"
est_body "$T/d1re2.der" "$T/d1re2.b64"
est_post old1 simplereenroll "$T/d1re2.b64" --cert "$T/d1b.crt" --key "$T/d1b.key"
assert_status 200 "a device that still uses the old name in the path re-enrolls"
est_cert_out "$T/d1c.crt"

# A new project takes the old name: the old certificates' URL still serves
# the renamed project's CA, never the newcomer's.
ql_admin_ok create-project old1 token
ql_curl "$(pki_url /pki/crl/old1.crl)"
assert_status 200 "the name is an alias of the newcomer's CRL"
# Both CAs are called "O=old1" (the first was created under that name):
# tell them apart by their key identifier.
crl_aki() { openssl crl -inform DER -in "$1" -noout -text | grep -A1 'Authority Key Identifier' | tail -n 1; }
alias_aki=$(crl_aki "$BODY")
[ -n "$alias_aki" ] || fail "the CRL has no authority key identifier"
crl_check d1 && fail "d1 (superseded) verifies as good"
assert_file_match 'certificate revoked' "$T/verify.out" "d1 is revoked (superseded) at its CRL URL"
crl_check d1c || fail "d1c does not verify against the CRL at its URL: $(cat "$T/verify.out")"
assert_ne "$alias_aki" "$(crl_aki "$BODY")" \
    "the certificate's CRL URL and the reused name serve different CAs"
ql_curl "$(pki_url /pki/crl/new1.crl)"
assert_status 200 "the current name is an alias too"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE serial = '$serial1'
                         AND revocation_reason = 4")" "d1 was superseded"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
