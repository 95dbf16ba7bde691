#!/bin/bash
# CA keys live on the token only: the root, project CA and code-signing keys
# are sensitive and never extractable, the database holds no private key,
# the code-signing certificate chains to the root with EKU codeSigning, and
# "tls_cert = auto" serves root-issued certificates with 0600 key files,
# each audited once (installation-level); so is the audit checkpoint key.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl psql pkcs11-tool pg_dump

# auto TLS for both listeners; no extra client CA (root + project CAs only).
ql_pki_start admin.tls_cert=auto device.tls_cert=auto admin.tls_key device.tls_key device.client_ca=
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 5
tok=$ADMIN_OUT

# ---- token objects
p11() {
    SOFTHSM2_CONF="$T/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
        --token-label quarklink --login --pin "$(cat "$T/pin")" "$@"
}
p11 --list-objects --type privkey >"$T/privkeys.txt" 2>&1 ||
    fail "pkcs11-tool --list-objects failed: $(cat "$T/privkeys.txt")"
# label -> Access line, one "label<TAB>access" per key.
awk '/^Private Key Object/ { l = "" } /^ *label:/ { sub(/^ *label: */, ""); l = $0 }
     /^ *Access:/ { sub(/^ *Access: */, ""); print l "\t" $0 }' "$T/privkeys.txt" >"$T/keys.tsv"
assert_eq 4 "$(grep -c . "$T/keys.tsv")" \
    "four private keys on the token (root, audit checkpoints, p1 CA, p1 signing)"
audit_label=$(ql_psql "SELECT key_label FROM audit_checkpoint_key")
assert_eq "sensitive, always sensitive, never extractable, local" \
    "$(awk -F '\t' -v l="$audit_label" '$1 == l { print $2 }' "$T/keys.tsv")" "Access of $audit_label"
labels=$(ql_psql "SELECT kind || ' ' || key_label FROM cas ORDER BY id")
assert_eq 3 "$(printf '%s\n' "$labels" | grep -c .)" "three CAs in the database"
while read -r kind label; do
    case $kind in
        root) prefix=ql-root ;;
        issuing) prefix=ql-p1-ca ;;
        codesign) prefix=ql-p1-sign ;;
        *) fail "unexpected CA kind $kind" ;;
    esac
    # The contract names the labels ql-root, ql-<project>-ca, ql-<project>-sign;
    # the daemon appends a random suffix so a retried creation never collides.
    assert_match "^$prefix(-[0-9a-f]+)?\$" "$label" "token label of the $kind key"
    access=$(awk -F '\t' -v l="$label" '$1 == l { print $2 }' "$T/keys.tsv")
    [ -n "$access" ] || fail "no private key labelled $label on the token: $(cat "$T/privkeys.txt")"
    assert_eq "sensitive, always sensitive, never extractable, local" "$access" "Access of $label"
done <<<"$labels"

# The root certificate's key is the token's ql-root key.
root_label=$(ql_psql "SELECT key_label FROM cas WHERE kind = 'root'")
p11 --read-object --type pubkey --label "$root_label" -o "$T/rootkey.der" >/dev/null 2>&1 ||
    fail "cannot read the public key $root_label"
assert_eq "$(openssl x509 -in "$T/root.pem" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1 -v)" \
    "$(openssl pkey -pubin -inform DER -in "$T/rootkey.der" -outform DER | od -An -tx1 -v)" \
    "the root certificate carries the token's root public key"
# A sensitive key cannot be read out.
p11 --read-object --type privkey --label "$root_label" -o "$T/rootpriv.der" >/dev/null 2>&1 &&
    [ -s "$T/rootpriv.der" ] && fail "pkcs11-tool read the root private key out of the token"

# ---- no private key material in the database
pg_dump -d "$PG_CONNINFO" >"$T/dump.sql" 2>"$T/dump.err" || fail "pg_dump failed: $(cat "$T/dump.err")"
[ -s "$T/dump.sql" ] || fail "pg_dump wrote nothing"
grep -q 'CREATE TABLE public.cas' "$T/dump.sql" || fail "the dump does not hold the cas table"
assert_no_match 'PRIVATE KEY' "$(cat "$T/dump.sql")" "no PEM private key in the database"
cols=$(ql_psql "SELECT table_name || '.' || column_name FROM information_schema.columns
                WHERE table_schema = 'public' AND column_name ~* 'key|secret|priv|pin'
                  -- an image version as four integers, the sort key of versions
                  AND column_name <> 'version_key' ORDER BY 1")
# images.enc_key_wrapped: content keys of encrypted images, only as wrapped
# by a token secret key (t_image_encrypt.sh checks none is there in clear).
# attest_sessions.secret_sha256: only the SHA-256 of a credential secret,
# which the device proves it activated (compared in constant time).
assert_eq "attest_sessions.secret_sha256
audit_checkpoint_key.key_label
audit_checkpoint_key.public_key
cas.key_label
images.enc_key_wrapped
token_secrets.key_label" "$cols" "the only key-like columns are labels, wrapped keys and the checkpoint public key"
ql_psql "SELECT encode(public_key, 'base64') FROM audit_checkpoint_key" | base64 -d >"$T/audit.pub.der"
openssl pkey -pubin -inform DER -in "$T/audit.pub.der" -noout 2>/dev/null ||
    fail "audit_checkpoint_key.public_key is not a public key"
assert_eq "$(stat -c %s "$T/audit.pub.der")" \
    "$(openssl pkey -pubin -inform DER -in "$T/audit.pub.der" -outform DER | wc -c)" \
    "the checkpoint public key holds nothing else"
# Every bytea in cas is a certificate, nothing else.
assert_eq "cert_der" "$(ql_psql "SELECT string_agg(column_name, ',') FROM information_schema.columns
                                 WHERE table_name = 'cas' AND data_type = 'bytea'")" "cas bytea columns"
for id in $(ql_psql "SELECT id FROM cas"); do
    ql_psql "SELECT encode(cert_der, 'base64') FROM cas WHERE id = $id" | base64 -d >"$T/cas$id.der"
    openssl x509 -inform DER -in "$T/cas$id.der" -noout 2>/dev/null || fail "cas row $id cert_der is not a certificate"
    # Trailing bytes after the certificate would be a place to hide a key.
    assert_eq "$(stat -c %s "$T/cas$id.der")" \
        "$(openssl x509 -inform DER -in "$T/cas$id.der" -outform DER | wc -c)" "cas row $id holds exactly a certificate"
done

# ---- the code-signing certificate
ql_psql "SELECT encode(c.cert_der, 'base64') FROM cas c JOIN projects p ON p.id = c.project_id
         WHERE p.name = 'p1' AND c.kind = 'codesign'" | base64 -d >"$T/sign.der"
openssl x509 -inform DER -in "$T/sign.der" -out "$T/sign.pem" || fail "code-signing certificate is not DER"
eku=$(openssl x509 -in "$T/sign.pem" -noout -ext extendedKeyUsage)
assert_match '^ *Code Signing$' "$eku" "code-signing EKU"
assert_no_match 'TLS Web' "$eku" "code-signing certificate is not a TLS certificate"
assert_match 'Digital Signature' "$(openssl x509 -in "$T/sign.pem" -noout -ext keyUsage)" "code-signing keyUsage"
assert_match 'CA:FALSE' "$(openssl x509 -in "$T/sign.pem" -noout -ext basicConstraints)" "code-signing is not a CA"
out=$(openssl verify -CAfile "$T/root.pem" "$T/sign.pem" 2>&1) || fail "code-signing certificate: $out"
assert_eq "$T/sign.pem: OK" "$out" "code-signing certificate chains to the root"
pki_fetch_ca p1 "$T/p1.pem"
assert_match 'CA:TRUE' "$(openssl x509 -in "$T/p1.pem" -noout -ext basicConstraints)" "project CA is a CA"

# ---- auto TLS certificates
for l in admin device; do
    for f in "$T/$l-auto.crt" "$T/$l-auto.key"; do
        [ -f "$f" ] || fail "$f was not written"
    done
    assert_eq 600 "$(stat -c %a "$T/$l-auto.key")" "$l-auto.key mode"
    port=$ADMIN_PORT; [ $l = device ] && port=$DEVICE_PORT
    out=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost -verify_return_error \
        -CAfile "$T/root.pem" -verify_hostname localhost </dev/null 2>&1) ||
        fail "s_client to the $l listener: $(printf '%s\n' "$out" | tail -n 20)"
    assert_match 'Verify return code: 0 \(ok\)' "$out" "$l auto certificate verifies against the root"
    out=$(openssl s_client -connect "127.0.0.1:$port" -verify_return_error -CAfile "$T/root.pem" \
        -verify_ip 127.0.0.1 </dev/null 2>&1) || fail "$l auto certificate lacks IP 127.0.0.1"
    out=$(openssl s_client -connect "127.0.0.1:$port" -verify_return_error -CAfile "$T/ca.crt" \
        </dev/null 2>&1) && fail "$l auto certificate verified against the unrelated test CA"
    openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null |
        openssl x509 -out "$T/$l-served.pem" || fail "cannot read the $l server certificate"
    assert_eq "$(openssl x509 -in "$T/$l-auto.crt" -noout -fingerprint -sha256)" \
        "$(openssl x509 -in "$T/$l-served.pem" -noout -fingerprint -sha256)" "$l serves $l-auto.crt"
    assert_match 'TLS Web Server Authentication' \
        "$(openssl x509 -in "$T/$l-served.pem" -noout -ext extendedKeyUsage)" "$l auto EKU serverAuth"
    assert_match 'ASN1 OID: prime256v1' "$(openssl x509 -in "$T/$l-served.pem" -noout -text)" \
        "$l auto key is P-256"
    # Each issued listener certificate is audited once, installation-level.
    assert_eq "daemon|ok|$l listener|" "$(ql_psql "SELECT actor || '|' || result || '|' ||
        split_part(detail, ':', 1) || '|' || coalesce(project_id::text, '')
        FROM audit_log WHERE action = 'tls_certificate.issue'
        AND object = '$(cert_serial "$T/$l-auto.crt")'")" "$l auto certificate audited"
done
assert_eq 2 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'tls_certificate.issue'")" \
    "one audit row per issued listener certificate"
curl -sS --max-time 10 --cacert "$T/root.pem" -o "$BODY" -w '%{http_code}' \
    "https://localhost:$ADMIN_PORT/healthz" >"$T/code" 2>"$T/curl.err" ||
    fail "curl to the admin listener with the root as CA: $(cat "$T/curl.err")"
assert_eq 200 "$(cat "$T/code")" "healthz over the auto certificate"

# Enrollment over the auto device certificate; the issued certificate is
# accepted for mTLS with no client_ca configured.
est_enroll_ok p1 dev1 --cacert "$T/root.pem" -u "dev1:$tok"
ql_curl --cacert "$T/root.pem" --cert "$T/dev1.crt" --key "$T/dev1.key" "$(device_url /device/v1/whoami)"
assert_status 200 "a project certificate is trusted for mTLS without client_ca"

# ---- a restart reuses the auto certificates
fp_admin=$(openssl x509 -in "$T/admin-auto.crt" -noout -fingerprint -sha256)
fp_device=$(openssl x509 -in "$T/device-auto.crt" -noout -fingerprint -sha256)
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
ql_start
assert_eq "$fp_admin" "$(openssl x509 -in "$T/admin-auto.crt" -noout -fingerprint -sha256)" \
    "admin-auto.crt reused after a restart"
assert_eq "$fp_device" "$(openssl x509 -in "$T/device-auto.crt" -noout -fingerprint -sha256)" \
    "device-auto.crt reused after a restart"
p11 --list-objects --type privkey 2>/dev/null | grep -c '^Private Key Object' >"$T/n" || true
assert_eq 4 "$(cat "$T/n")" "no new token keys after a restart"
assert_eq 2 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'tls_certificate.issue'")" \
    "a reused listener certificate is not issued, nor audited, again"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
