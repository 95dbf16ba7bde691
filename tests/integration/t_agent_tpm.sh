#!/bin/bash
# ql-agent with key_store = tpm2 on a software TPM (swtpm behind
# tpm2-abrmd): the key is made in the TPM, only a TSS2 blob reaches the
# disk and no private key can be read from it; enrollment prints the ID the
# API lists; the TPM key authenticates TLS for the renewal (mutual TLS
# through CURLOPT_SSL_CTX_FUNCTION), and status reads the identity back.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require curl openssl jq psql
trap 'rc=$?; tpm_stop; (exit $rc); ql__cleanup' EXIT

tpm_start
agent_pki_start
api_admin_session alice
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT

agent_conf t1 key_store=tpm2 tpm2_tcti="$TPM_TCTI"
agent t1 enroll --token "$tok"
assert_agent_rc 0 "enroll with a TPM key"
id=$AGENT_OUT
assert_match '^[a-z2-7]{32}$' "$id" "the device ID"
api GET /api/v1/projects/p1/devices
assert_status 200 "list devices"
assert_eq "$id" "$(jq -r '.items[].device_id' "$BODY")" "the API lists the printed ID"

# Only a TPM blob on disk, and no private key comes out of it.
key="$T/t1/key.tpm2.pem"
[ -f "$T/t1/key.pem" ] && fail "a tpm2 key store wrote a file key"
assert_file_match '^-----BEGIN TSS2 PRIVATE KEY-----$' "$key" "the key file is a TSS2 blob"
assert_eq 600 "$(stat -c %a "$key")" "key blob mode"
openssl pkey -in "$key" -noout 2>/dev/null && fail "OpenSSL read the TPM blob as a software key"
out=$(TPM2OPENSSL_TCTI=$TPM_TCTI openssl pkey -provider tpm2 -provider default -in "$key" \
    -text -noout 2>&1) || fail "the tpm2 provider cannot load the key: $out"
assert_no_match '^priv:' "$out" "the provider shows no private scalar"
out=$(TPM2OPENSSL_TCTI=$TPM_TCTI openssl pkey -provider tpm2 -provider default -in "$key" \
    -outform DER -out "$T/exported.der" 2>&1)
if [ -s "$T/exported.der" ]; then
    openssl pkey -inform DER -in "$T/exported.der" -noout 2>/dev/null &&
        fail "the private key was exported from the TPM as a software key"
fi
assert_eq "$(TPM2OPENSSL_TCTI=$TPM_TCTI openssl pkey -provider tpm2 -provider default -in "$key" -pubout)" \
    "$(openssl x509 -in "$T/t1/cert.pem" -noout -pubkey)" "the certificate carries the TPM key"

# Idempotent.
agent t1 enroll --token "$tok"
assert_agent_rc 0 "second enroll"
assert_eq "$id" "$AGENT_OUT" "same ID"

# Mutual TLS with the TPM key: a renewal.
serial0=$(cert_serial "$T/t1/cert.pem")
agent t1 renew --force
assert_agent_rc 0 "renewal with the TPM key over mutual TLS"
assert_ne "$serial0" "$(cert_serial "$T/t1/cert.pem")" "a new certificate"
assert_eq "$id" "$(ql_psql "SELECT d.device_id FROM certificates c JOIN devices d ON d.id = c.device
                           WHERE c.serial = '$(cert_serial "$T/t1/cert.pem")'")" "for the same device"
agent t1 renew --force
assert_agent_rc 0 "a second handshake with the TPM key"

agent t1 status --json
assert_agent_rc 0 "status"
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_json "$T/status.json" device_id "$id" "status device_id"

# The content key of an encrypted image comes as CMS EnvelopedData (ECDH
# key agreement to the certificate key, as openssl cms -encrypt makes it):
# the agent's code opens it with the TPM key (raw ECDH in the TPM).
head -c 32 /dev/urandom >"$T/content.key"
openssl cms -encrypt -binary -aes256 -in "$T/content.key" -recip "$T/t1/cert.pem" \
    -outform DER -out "$T/key.cms" || fail "cannot wrap a key for the device certificate"
[ -x "$top_builddir/tests/integration/agent_unwrap" ] ||
    hard_error "tests/integration/agent_unwrap not built (make check builds it)"
"$top_builddir/tests/integration/agent_unwrap" "$T/t1.conf" "$T/t1/cert.pem" "$T/key.cms" \
    >"$T/unwrapped.key" 2>"$T/unwrap.err" || fail "the TPM key cannot unwrap: $(cat "$T/unwrap.err")"
cmp -s "$T/content.key" "$T/unwrapped.key" || fail "the TPM unwrapped another key"
# A key wrapped for another device is not opened.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
openssl req -new -x509 -key "$T/other.key" -subj /CN=other -days 1 -out "$T/other.crt"
openssl cms -encrypt -binary -aes256 -in "$T/content.key" -recip "$T/other.crt" \
    -outform DER -out "$T/other.cms" || fail "cannot wrap a key for another certificate"
"$top_builddir/tests/integration/agent_unwrap" "$T/t1.conf" "$T/t1/cert.pem" "$T/other.cms" \
    >/dev/null 2>"$T/unwrap.err" && fail "the TPM key opened another device's key"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
