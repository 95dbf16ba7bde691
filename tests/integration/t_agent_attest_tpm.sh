#!/bin/bash
# The TPM half of attestation in ql-agent (libtss2-esys), on a software TPM
# manufactured with an EK certificate from a local CA (swtpm_setup), behind
# tpm2-abrmd, against a stand-in server (attest_server.py) that makes the
# credential with tpm2_makecredential -T none and keeps what the agent
# sent.  Everything is checked independently, with tpm2-tools and openssl:
# the EK the agent makes from the TCG template is the certified one; the
# secret it activates is the one sealed to EK and Name(AK); certify_info is
# a TPMS_ATTEST of TPM2_Certify over the nonce, naming the identity key and
# signed by the AK; the identity key is fixedTPM and is the CSR's key (and
# authenticates TLS from its persistent handle); a quote covers the asked
# PCRs with the nonce, signed by the AK, with the values the TPM reads.
# After tpm2_pcrextend the next quote carries the new value; a refused
# update poll ("device failed attestation") is one clear line and the
# daemon keeps running until the server lets it through again.  Refusals
# print the server's reason with exit 8; a file key store is refused
# locally (exit 2).  Last, the same TPM against quarklinkd itself: attested
# enrollment (EK fingerprint and AK name in the API), a trusted quote, a
# tampered one after tpm2_pcrextend with the update poll refused, and
# trusted again once an admin accepts the new values.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
# shellcheck source=tpm_lib.sh
. "$(dirname "$0")/tpm_lib.sh"
ql_require curl psql openssl python3 jq base64 sha256sum xxd tpm2_makecredential tpm2_print tpm2_readpublic \
    tpm2_evictcontrol tpm2_nvread tpm2_pcrread tpm2_pcrextend
[ -x "$QL_AGENT" ] || skip "ql-agent not built: $QL_AGENT"
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"
tls_make_certs
S="$T/standin"
mkdir -p "$S"

tpm_ca_new ekca
tpm_manufacture d ekca "$T/tpm"
# One session per connection: a policy session the agent did not flush
# (three are used: AK creation, AK load, activation) fails the next one.
# (Transient objects cannot be bounded as tightly: the tpm2 provider's TLS
# handshake keeps more than four hash sequences loaded at once.)
TPM_ABRMD_ARGS="--max-sessions=1"
tpm_start
trap 'rc=$?; kill "$spid" 2>/dev/null; tpm_stop; (exit $rc); ql__cleanup' EXIT
# The agent makes the EK itself when it is not persisted: from the TCG
# template it must come out as the key the manufacturer certified.
tpm2_evictcontrol -C o -c 0x81010001 >/dev/null 2>&1 || hard_error "cannot evict the EK"

# A project CA under the test root, for the stand-in's EST answers.
w="$T/pki-work"
cat >"$w/pca.ext" <<'EOF2'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
EOF2
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/pca.key" 2>/dev/null &&
    openssl req -new -key "$w/pca.key" -subj "/CN=attest CA/O=attest" -out "$w/pca.csr" &&
    openssl x509 -req -in "$w/pca.csr" -CA "$w/ca.crt" -CAkey "$w/ca.key" -days 2 \
        -extfile "$w/pca.ext" -set_serial 0x5151 -out "$w/pca.crt" 2>/dev/null ||
    hard_error "project CA"

python3 "$QL_LIBDIR/attest_server.py" "$T/server.crt" "$T/server.key" "$w/pca.crt" \
    "$w/pca.key" "$T/ca.crt" "$S" >"$S/port" 2>"$S/server.err" &
spid=$!
wait_until 10 test -s "$S/port" || hard_error "stand-in server did not start: $(cat "$S/server.err")"
DEVICE_PORT=$(cat "$S/port")
b64f() { jq -r ".$2" "$S/$1" | base64 -d; } # FILE.json FIELD: the decoded bytes

# tss_sig_der TPMT_SIGNATURE DER: an ECDSA TPMT_SIGNATURE as the DER
# signature openssl verifies (a change of encoding, nothing checked here).
tss_sig_der() {
    python3 - "$1" "$2" <<'EOP'
import sys
d = open(sys.argv[1], "rb").read()
assert d[0:4] == b"\x00\x18\x00\x0b", "not ECDSA-SHA256: " + d[0:4].hex()
off, ints = 4, []
for _ in range(2):
    n = int.from_bytes(d[off:off + 2], "big")
    v = d[off + 2:off + 2 + n].lstrip(b"\0") or b"\0"
    ints.append(b"\x02" + bytes([len(v) + (v[0] >> 7)]) + b"\0" * (v[0] >> 7) + v)
    off += 2 + n
assert off == len(d), "trailing bytes"
body = b"".join(ints)
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
EOP
}
# certified_name TPMS_ATTEST: the name of TPMS_CERTIFY_INFO, in hex (after
# magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion).
certified_name() {
    python3 - "$1" <<'EOP'
import sys
d = open(sys.argv[1], "rb").read()
off = 6
for _ in range(2):
    off += 2 + int.from_bytes(d[off:off + 2], "big")
off += 17 + 8
n = int.from_bytes(d[off:off + 2], "big")
print(d[off + 2:off + 2 + n].hex())
EOP
}
# attest_field FILE KEY: a scalar of tpm2_print -t TPMS_ATTEST's YAML.
attest_field() { sed -nE "s/^ *$2: *([0-9a-fx]+) *$/\\1/p" "$1" | head -n 1; }

# ---- enrollment with attestation
agent_conf d root_ca="$T/ca.crt" key_store=tpm2 tpm2_tcti="$TPM_TCTI"
agent d enroll
assert_agent_rc 0 "attested enrollment"
id=$AGENT_OUT
assert_match '^[a-z2-7]{32}$' "$id" "the device ID"
for h in 0x81010001 0x81010002 0x81000001 0x81000002; do
    tpm2_readpublic -c "$h" -o "$T/pub-$h.tss" -f pem -o "$T/pub-$h.pem" >"$T/pub-$h.yaml" 2>&1 ||
        fail "nothing persistent at $h after the enrollment: $(cat "$T/pub-$h.yaml")"
done
tpm2_readpublic -c 0x81010001 -o "$T/ek.tss" >/dev/null
tpm2_readpublic -c 0x81010002 -o "$T/ak.tss" >/dev/null
tpm2_readpublic -c 0x81000002 -o "$T/key.tss" -n "$T/key.name" >/dev/null

# EK: the certified one, its certificate from NV, chaining to the local CA.
b64f challenge.json ek_public >"$T/sent-ek.tss"
cmp -s "$T/sent-ek.tss" "$T/ek.tss" || fail "ek_public is not the TPM2B_PUBLIC at 0x81010001"
assert_file_match '^authorization policy: 837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa$' \
    "$T/pub-0x81010001.yaml" "the EK carries the TCG PolicySecret(endorsement) policy"
b64f challenge.json ek_cert >"$T/sent-ekcert.der"
tpm2_nvread 0x01c00002 -o "$T/nv-ekcert.der" 2>/dev/null || fail "tpm2_nvread of the EK certificate"
assert_eq "$(openssl x509 -inform DER -in "$T/nv-ekcert.der" -outform DER | sha256sum)" \
    "$(openssl x509 -inform DER -in "$T/sent-ekcert.der" -outform DER | sha256sum)" \
    "ek_cert is the certificate at NV 0x01c00002"
openssl verify -CAfile "$T/ekca/swtpm-localca-rootca-cert.pem" -untrusted "$T/ekca/issuercert.pem" \
    <(openssl x509 -inform DER -in "$T/sent-ekcert.der") >/dev/null 2>&1 ||
    fail "the EK certificate does not chain to the local manufacturer CA"
assert_eq "$(openssl x509 -inform DER -in "$T/sent-ekcert.der" -noout -pubkey)" \
    "$(openssl pkey -pubin -in "$T/pub-0x81010001.pem")" \
    "the EK made from the template is the certified key"

# AK: restricted ECDSA P-256 signing key; the credential opened with it.
b64f challenge.json ak_public >"$T/sent-ak.tss"
cmp -s "$T/sent-ak.tss" "$T/ak.tss" || fail "ak_public is not the TPM2B_PUBLIC at 0x81010002"
assert_file_match '^ +value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|restricted\|sign$' \
    "$T/pub-0x81010002.yaml" "AK attributes"
b64f proof.json secret >"$T/got-secret.bin"
cmp -s "$T/got-secret.bin" "$S/secret.bin" ||
    fail "the activated secret is not the one sealed to the EK and the AK's name"
assert_eq "$(jq -r .session "$S/proof.json")" "$(cat "$S/session")" "the proof names the session"

# certify_info: TPMS_ATTEST of Certify, nonce, identity key's name, AK signature.
b64f proof.json certify_info | tail -c +3 >"$T/certify.attest"
b64f proof.json certify_signature >"$T/certify.sig"
# tpm2-tools 5.4 prints the header of a TPMS_ATTEST of Certify, then
# stops at its attested part: the name is read after the header below.
tpm2_print -t TPMS_ATTEST "$T/certify.attest" >"$T/certify.yaml" 2>&1
assert_eq ff544347 "$(attest_field "$T/certify.yaml" magic)" "certify magic"
assert_match '^(0x)?8017$' "$(attest_field "$T/certify.yaml" type)" "TPM_ST_ATTEST_CERTIFY"
assert_eq "$(od -An -tx1 -v "$S/nonce.bin" | tr -d ' \n')" \
    "$(attest_field "$T/certify.yaml" extraData)" "qualifyingData is the nonce"
assert_eq "$(od -An -tx1 -v "$T/key.name" | tr -d ' \n')" \
    "$(certified_name "$T/certify.attest")" "the certified name is the identity key's"
tss_sig_der "$T/certify.sig" "$T/certify.der" || fail "certify_signature is not ECDSA-SHA256"
openssl dgst -sha256 -verify "$T/pub-0x81010002.pem" -signature "$T/certify.der" \
    "$T/certify.attest" >/dev/null 2>&1 || fail "certify_info is not signed by the AK"

# The identity key: fixedTPM, the CSR's key, the certificate's key.
b64f proof.json key_public >"$T/sent-key.tss"
cmp -s "$T/sent-key.tss" "$T/key.tss" || fail "key_public is not the TPM2B_PUBLIC at 0x81000002"
assert_file_match '^ +value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|sign$' \
    "$T/pub-0x81000002.yaml" "identity key attributes (fixedTPM, not restricted, not decrypt)"
keypem=$(openssl pkey -pubin -in "$T/pub-0x81000002.pem")
assert_eq "$keypem" "$(openssl req -inform DER -in "$S/csr.der" -noout -pubkey)" \
    "the CSR's key is key_public"
openssl req -inform DER -in "$S/csr.der" -noout -verify >/dev/null 2>&1 ||
    fail "the CSR's signature (made in the TPM) does not verify"
assert_eq "$keypem" "$(openssl x509 -in "$T/d/cert.pem" -noout -pubkey)" "the certificate's key"
assert_json "$T/d/state.json" tpm2_key handle:0x81000002 "state.json names the attested key"
[ -e "$T/d/key.tpm2.pem" ] && fail "an attested enrollment wrote a key blob"
assert_eq 0 "$(grep -cE '^(ERROR|WARNING):' "$T/d.agent.err")" "no TSS log lines on stderr"

agent d status --json
assert_agent_rc 0 "status"
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_json "$T/status.json" device_id "$id" "status device_id"
assert_match '^attested at enrollment' "$(jq -r .attestation "$T/status.json")" "status attestation"

# Idempotent: enrolled, no new attestation.
n=$(grep -c 'challenge' "$S/requests.log")
agent d enroll
assert_agent_rc 0 "second enroll"
assert_eq "$id" "$AGENT_OUT" "same ID"
assert_eq "$n" "$(grep -c 'challenge' "$S/requests.log")" "no second challenge"

# A renewal keeps the attested key (named by state.json, not the configuration).
serial0=$(cert_serial "$T/d/cert.pem")
agent d renew --force
assert_agent_rc 0 "renewal of the attested device"
assert_ne "$serial0" "$(cert_serial "$T/d/cert.pem")" "a new certificate"
assert_eq "$keypem" "$(openssl x509 -in "$T/d/cert.pem" -noout -pubkey)" "for the attested key"

# ---- quotes in the field (mutual TLS with the key at 0x81000002)
agent d run --once
assert_agent_rc 0 "a poll cycle with a quote"
assert_eq "$id" "$(cat "$S/quote-peer")" "the quote came over TLS authenticated by the identity key"
b64f quote.json quote | tail -c +3 >"$T/quote.attest"
b64f quote.json signature >"$T/quote.sig"
tpm2_print -t TPMS_ATTEST "$T/quote.attest" >"$T/quote.yaml" 2>&1 ||
    fail "quote is not a TPM2B_ATTEST: $(cat "$T/quote.yaml")"
assert_match '^(0x)?8018$' "$(attest_field "$T/quote.yaml" type)" "TPM_ST_ATTEST_QUOTE"
assert_eq "$(od -An -tx1 -v "$S/quote-nonce.bin" | tr -d ' \n')" \
    "$(attest_field "$T/quote.yaml" extraData)" "the quote carries the nonce"
tss_sig_der "$T/quote.sig" "$T/quote.der" || fail "the quote's signature is not ECDSA-SHA256"
openssl dgst -sha256 -verify "$T/pub-0x81010002.pem" -signature "$T/quote.der" \
    "$T/quote.attest" >/dev/null 2>&1 || fail "the quote is not signed by the AK"
pcrs_sent() { jq -r '.pcrs | to_entries | sort_by(.key | tonumber) | map("\(.key):\(.value)") | .[]' "$S/quote.json"; }
pcrs_tpm() { tpm2_pcrread sha256:0,1,2,3,4,5,6,7 | sed -nE 's/^ +([0-9]+) *: 0x([0-9A-F]+)$/\1:\L\2/p'; }
assert_eq "$(pcrs_tpm)" "$(pcrs_sent)" "the PCR values sent are the TPM's (0..7, SHA-256)"
digest=$(pcrs_sent | cut -d: -f2 | tr -d '\n' | xxd -r -p | sha256sum | cut -d' ' -f1)
assert_eq "$digest" "$(attest_field "$T/quote.yaml" pcrDigest)" "pcrDigest covers the values sent"
agent d status --json
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_eq "trusted (reference recorded)" "$(jq -r .attestation "$T/status.json")" "status: trusted"
agent d status
assert_match $'\nattestation: trusted \\(reference recorded\\) at [0-9]{4}-[0-9]{2}-[0-9]{2}T' \
    $'\n'"$AGENT_OUT" "status text shows the verdict and its time"

# More PCRs than one PCR_Read answers; a challenge asking for PCR 24 is
# refused by the agent (logged; the poll goes on).
echo many-pcrs >"$S/MODE"
agent d run --once
assert_agent_rc 0 "a quote over 17 PCRs"
pcrs_all() { tpm2_pcrread sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,23 |
    sed -nE 's/^ +([0-9]+) *: 0x([0-9A-F]+)$/\1:\L\2/p'; }
assert_eq "$(pcrs_all)" "$(pcrs_sent)" "the values of PCRs 0..15 and 23"
b64f quote.json quote | tail -c +3 >"$T/quote17.attest"
tpm2_print -t TPMS_ATTEST "$T/quote17.attest" >"$T/quote17.yaml" 2>&1 || fail "quote over 17 PCRs"
digest=$(pcrs_sent | cut -d: -f2 | tr -d '\n' | xxd -r -p | sha256sum | cut -d' ' -f1)
assert_eq "$digest" "$(attest_field "$T/quote17.yaml" pcrDigest)" "pcrDigest over 17 PCRs"
echo bad-pcrs >"$S/MODE"
n=$(grep -c 'POST /device/v1/quote$' "$S/requests.log")
agent d run --once
assert_agent_rc 0 "a bad quote challenge does not fail the poll"
assert_one_line_error 'quote challenge: missing or invalid pcrs$'
assert_eq "$n" "$(grep -c 'POST /device/v1/quote$' "$S/requests.log")" "no quote for PCR 24"
echo required >"$S/MODE"

# ---- tampering: PCR 7 extended, the server judges it and refuses updates
tpm2_pcrextend 7:sha256=$(printf 'tamper' | sha256sum | cut -d' ' -f1) || hard_error "tpm2_pcrextend"
echo tampered >"$S/MODE"
agent d run --once
assert_agent_rc 8 "a refused update poll"
assert_one_line_error 'poll refused: device failed attestation: PCR values differ'
assert_eq "$(pcrs_tpm | grep '^7:')" "$(pcrs_sent | grep '^7:')" "the new PCR 7 value was quoted"
assert_ne "0000000000000000000000000000000000000000000000000000000000000000" \
    "$(pcrs_sent | grep '^7:' | cut -d: -f2)" "PCR 7 changed"
agent d status --json
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_eq "tampered (reference differs; PCRs 7 differ)" "$(jq -r .attestation "$T/status.json")" \
    "status: tampered"
assert_match 'device failed attestation' "$(jq -r .last_result "$T/status.json")" "last_result"

# The daemon keeps running while refused and recovers when let through.
agent_conf d root_ca="$T/ca.crt" key_store=tpm2 tpm2_tcti="$TPM_TCTI" poll_interval=1 retry_max=1
: >"$T/loop.err"
"$QL_AGENT" -c "$T/d.conf" run >"$T/loop.out" 2>"$T/loop.err" &
lpid=$!
refused_twice() { [ "$(grep -c 'device failed attestation' "$T/loop.err" 2>/dev/null)" -ge 2 ]; }
wait_until 30 refused_twice || fail "the loop did not keep polling: $(cat "$T/loop.err")"
echo required >"$S/MODE"
recovered() { [ "$(jq -r .last_result "$T/d/state.json" 2>/dev/null)" = "no update" ]; }
wait_until 30 recovered || fail "the loop did not recover: $(cat "$T/loop.err")"
kill -TERM "$lpid"
wait_until 10 ql__exited "$lpid" || fail "the loop ignored SIGTERM"
wait "$lpid"
assert_eq 0 "$?" "SIGTERM ends run with exit 0"

# ---- refusals
agent_conf r root_ca="$T/ca.crt" key_store=tpm2 tpm2_tcti="$TPM_TCTI"
echo refuse-proof >"$S/MODE"
agent r enroll
assert_agent_rc 8 "a refused proof"
assert_one_line_error 'attestation proof refused: credential was not activated by the TPM holding this EK$'
[ -e "$T/r/cert.pem" ] && fail "a refused attestation enrolled"
echo other-name >"$S/MODE"
n=$(grep -c proof "$S/requests.log")
agent r enroll
assert_agent_rc 1 "a credential for another key than the AK"
assert_one_line_error 'TPM: ActivateCredential \(the credential is not for this TPM.s EK and AK\)'
assert_eq "$n" "$(grep -c proof "$S/requests.log")" "no proof without the secret"
echo bad-blob >"$S/MODE"
agent r enroll
assert_agent_rc 9 "a malformed credential_blob"
assert_one_line_error 'attestation challenge: missing or invalid credential_blob$'
assert_eq "$n" "$(grep -c proof "$S/requests.log")" "no proof after a bad challenge"
echo required >"$S/MODE"
agent_conf f root_ca="$T/ca.crt" key_store=file
agent f enroll
assert_agent_rc 2 "a file key store in an attesting project"
assert_one_line_error 'requires TPM attestation: set key_store = tpm2'
agent_conf k root_ca="$T/ca.crt" key_store=tpm2 tpm2_tcti="$TPM_TCTI" tpm2_key=/etc/some-key.pem
agent k enroll
assert_agent_rc 2 "tpm2_key not a handle"
assert_one_line_error 'tpm2_key /etc/some-key.pem: TPM attestation needs the identity key at a persistent handle'

# ---- the real server: quarklinkd trusts the local manufacturer CA; the
# same TPM (its keys now persistent) enrolls with attestation, quotes,
# is found tampered after tpm2_pcrextend and recovers once an admin
# accepts the new values.
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
agent_pki_start attest.manufacturer_cas="$(tpm_ca_bundle ekca)"
api_admin_session alice
api POST /api/v1/projects '{"name": "p1", "policy": {"tpm": true}}'
assert_status 201 "project p1 with policy tpm"
agent_conf q key_store=tpm2 tpm2_tcti="$TPM_TCTI"
agent q enroll
assert_agent_rc 0 "attested enrollment with quarklinkd"
assert_eq "$id" "$AGENT_OUT" "the same identity key, the same device ID"
api GET "/api/v1/projects/p1/devices/$id"
assert_status 200 "the device in the API"
assert_eq "$(openssl x509 -inform DER -in "$T/nv-ekcert.der" -outform DER | sha256sum | cut -d' ' -f1)" \
    "$(jq -r .attestation.ek_sha256 "$BODY")" "the API shows the EK certificate's SHA-256"
tpm2_readpublic -c 0x81010002 -n "$T/ak.name" >/dev/null
assert_eq "$(od -An -tx1 -v "$T/ak.name" | tr -d ' \n')" "$(jq -r .attestation.ak_name "$BODY")" \
    "the API shows the AK's name"
assert_eq "attested null" "$(jq -r '"\(.attestation.state) \(.attestation.last_quote_at)"' "$BODY")" \
    "attested, not yet trusted, before any quote"
agent q run --once
assert_agent_rc 0 "a quote to quarklinkd"
api GET "/api/v1/projects/p1/devices/$id"
assert_eq trusted "$(jq -r .attestation.state "$BODY")" "trusted after the first quote"
tpm2_pcrextend 7:sha256=$(printf 'tamper again' | sha256sum | cut -d' ' -f1) || hard_error "tpm2_pcrextend"
agent q run --once
assert_agent_rc 8 "the tampered device's update poll is refused"
assert_one_line_error 'poll refused: device failed attestation'
api GET "/api/v1/projects/p1/devices/$id"
assert_eq tampered "$(jq -r .attestation.state "$BODY")" "tampered after PCR 7 changed"
assert_eq '[7]' "$(jq -c .attestation.differ "$BODY")" "PCR 7 differs"
agent q status --json
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_match '^tampered .*PCRs 7 differ' "$(jq -r .attestation "$T/status.json")" "status: tampered"
api POST "/api/v1/projects/p1/devices/$id/attestation/accept"
assert_status 200 "an admin accepts the new values"
agent q run --once
assert_agent_rc 0 "updates answered again"
agent q status --json
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_match '^trusted' "$(jq -r .attestation "$T/status.json")" "status: trusted again"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
