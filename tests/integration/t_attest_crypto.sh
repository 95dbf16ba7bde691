#!/bin/bash
# The server's half of attestation (src/attest_crypto.c, through
# tests/unit/attest_tool) against real TPMs: two swtpm states
# manufactured with EK certificates from two local CAs, tpm2-tools 5.4 on
# the device side.  Our MakeCredential is activated by the TPM holding the
# EK and by no other; quotes and certifications the TPM signed verify, and
# the same with a wrong nonce, other PCRs, other values, another TPM's AK
# or key are refused with their reason, and so is a key the TPM lets
# leave it (not fixedTPM); the EK certificate chains to its
# maker's CA only and matches its own EK only.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tpm_lib.sh
. "$(dirname "$0")/tpm_lib.sh"
ql_require openssl od tpm2_createak tpm2_quote tpm2_certify tpm2_activatecredential \
    tpm2_pcrread tpm2_pcrextend tpm2_makecredential
trap 'rc=$?; tpm_lib_stop; (exit $rc); ql__cleanup' EXIT

AT=$top_builddir/tests/unit/attest_tool
[ -x "$AT" ] || hard_error "$AT not built (make check builds it)"
OUT='' RC=''
# at ARGS...: run attest_tool; stdout in OUT, status in RC.
at() {
    OUT=$("$AT" "$@" 2>"$T/at.err")
    RC=$?
    [ "$RC" -le 1 ] || hard_error "attest_tool $1: $(cat "$T/at.err")"
}
# assert_at_ok MSG / assert_at_refused REASON MSG
assert_at_ok() {
    { [ "$RC" = 0 ] && [ "$OUT" = ok ]; } || ql__fail_at 1 "$1: attest_tool said '$OUT' ($RC)"
}
assert_at_refused() {
    [ "$RC" = 1 ] || ql__fail_at 1 "$2: attest_tool accepted ($OUT)"
    assert_eq "refused: $1" "$OUT" "$2"
}
hex() { od -An -v -tx1 "$@" | tr -d ' \n'; }
nonce() { head -c 32 /dev/urandom | hex; }

tpm_ca_new ca1
tpm_ca_new ca2
tpm_manufacture a ca1
tpm_manufacture b ca2
tpm_swtpm_start a
tpm_swtpm_start b
A=$(tpm_dir a) B=$(tpm_dir b)
for t in a b; do
    tpm_ek_read "$t"
    tpm_idkey_create "$t"
done
tpm_ak_create a ecc
tpm_ak_create b ecc

# ---- Names: ours are the TPM's
at name "$A/ak.pub" ak
assert_eq "$(hex "$A/ak.name")" "$OUT" "Name of the ECC AK"
at name "$B/ak.pub" ak
assert_eq "$(hex "$B/ak.name")" "$OUT" "Name of b's ECC AK"
at name "$A/ek.pub" ek
assert_eq 0 "$RC" "the TPM's EK fits the EK role"
at name "$A/id.pub" identity
assert_eq 0 "$RC" "the TPM's identity key fits the identity role"
at name "$A/ak.pub" identity
assert_at_refused "identity key is restricted" "an AK is no identity key"
at name "$A/id.pub" ak
assert_at_refused "AK is not a restricted key" "an identity key is no AK"
# A key the TPM lets leave it (duplicable: neither fixedTPM nor fixedParent)
tpm_use a
tpm2_create -C "$TPM_SRK_HANDLE" -G ecc256:ecdsa-sha256 -a "sensitivedataorigin|userwithauth|sign" \
    -u "$A/dup.pub" -r "$A/dup.priv" >"$T/dup.log" 2>&1 || hard_error "tpm2_create: $(cat "$T/dup.log")"
tpm_flush
at name "$A/dup.pub" identity
assert_at_refused "identity key is not fixedTPM" "a duplicable key is no identity key"

# ---- MakeCredential: activated by the TPM that holds the EK, not by another
activate() {    # TPM CRED OUT: ActivateCredential with AK and EK of TPM
    local d
    d=$(tpm_dir "$1")
    tpm_use "$1"
    tpm2_startauthsession --policy-session -S "$d/s.ctx" >/dev/null 2>&1 &&
        tpm2_policysecret -S "$d/s.ctx" -c e >/dev/null 2>&1 &&
        tpm2_activatecredential -c "$TPM_AK_HANDLE" -C "$TPM_EK_HANDLE" -i "$2" -o "$3" \
            -P session:"$d/s.ctx" >"$d/activate.log" 2>&1
    local rc=$?
    tpm2_flushcontext "$d/s.ctx" >/dev/null 2>&1
    tpm_flush
    return "$rc"
}
head -c 32 /dev/urandom >"$T/secret"
at makecred "$A/ek.pub" "$A/ak.name" "$T/secret" "$T/cred"
assert_at_ok "makecred for TPM a"
# tpm2_makecredential's layout: header, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET
tpm2_makecredential -T none -u "$A/ek.pub" -s "$T/secret" -n "$(hex "$A/ak.name")" \
    -o "$T/cred.tools" >/dev/null 2>&1 || hard_error "tpm2_makecredential -T none"
assert_eq "$(stat -c %s "$T/cred.tools")" "$(stat -c %s "$T/cred")" "credential file size"
assert_eq "$(head -c 12 "$T/cred.tools" | hex)" "$(head -c 12 "$T/cred" | hex)" \
    "header and TPM2B_ID_OBJECT/TPM2B_DIGEST sizes"
activate a "$T/cred" "$T/got" || fail "TPM a refused our credential: $(cat "$A/activate.log")"
assert_eq "$(hex "$T/secret")" "$(hex "$T/got")" "ActivateCredential returns the secret"
# For a's AK but to b's EK: a cannot open it.
at makecred "$B/ek.pub" "$A/ak.name" "$T/secret" "$T/cred.b"
assert_at_ok "makecred to TPM b's EK"
rm -f "$T/got2"
activate a "$T/cred.b" "$T/got2" && fail "TPM a activated a credential made for another EK"
cp "$A/activate.log" "$T/activate-other-ek.log"
# To a's EK for b's AK name: the integrity check (bound to Name(AK)) fails.
at makecred "$A/ek.pub" "$B/ak.name" "$T/secret" "$T/cred.n"
activate a "$T/cred.n" "$T/got2" && fail "TPM a activated a credential for another AK's Name"
assert_file_match 'integrity check failed' "$A/activate.log" "the TPM's refusal: integrity"
[ -e "$T/got2" ] && fail "a refused activation wrote a secret"

# ---- Quote
PCRS=sha256:0,1,2,3,4,5,6,7
quote() {       # TPM NONCE PREFIX: quote of PCRs 0-7 and the values read next
    local d
    d=$(tpm_dir "$1")
    tpm_use "$1"
    tpm2_quote -c "$TPM_AK_HANDLE" -l "$PCRS" -q "$2" -m "$T/$3.msg" -s "$T/$3.sig" \
        >"$T/$3.log" 2>&1 || { tpm_flush; hard_error "tpm2_quote: $(cat "$T/$3.log")"; }
    tpm_flush
    tpm2_pcrread "$PCRS" -o "$T/$3.pcrs" >/dev/null 2>&1 || hard_error "tpm2_pcrread"
    tpm_flush
}
n=$(nonce)
quote a "$n" qa
at quote "$A/ak.pub" "$T/qa.msg" "$T/qa.sig" "$n" ff "$T/qa.pcrs"
assert_at_ok "a quote of TPM a's ECC AK"
at quote "$A/ak.pub" "$T/qa.msg" "$T/qa.sig" "$(nonce)" ff "$T/qa.pcrs"
assert_at_refused "attestation does not carry this challenge's nonce" "quote with another nonce"
head -c 224 "$T/qa.pcrs" >"$T/qa7.pcrs"
at quote "$A/ak.pub" "$T/qa.msg" "$T/qa.sig" "$n" 7f "$T/qa7.pcrs"
assert_at_refused "quote is over other PCRs than asked" "asked PCRs 0-6, quoted 0-7"
at quote "$B/ak.pub" "$T/qa.msg" "$T/qa.sig" "$n" ff "$T/qa.pcrs"
assert_at_refused "signature does not verify with the AK" "TPM a's quote checked with b's AK"
# Values that changed after the quote: a new quote matches them, the old does not.
tpm_use a
tpm2_pcrextend "3:sha256=$(printf '%064d' 7)" >/dev/null 2>&1 || hard_error "tpm2_pcrextend"
tpm_flush
n2=$(nonce)
quote a "$n2" qa2
assert_ne "$(hex "$T/qa.pcrs")" "$(hex "$T/qa2.pcrs")" "PCR 3 changed"
at quote "$A/ak.pub" "$T/qa2.msg" "$T/qa2.sig" "$n2" ff "$T/qa2.pcrs"
assert_at_ok "quote after the extension, with the new values"
at quote "$A/ak.pub" "$T/qa2.msg" "$T/qa2.sig" "$n2" ff "$T/qa.pcrs"
assert_at_refused "PCR values do not hash to the quote's pcrDigest" "old values, new quote"
at quote "$A/ak.pub" "$T/qa.msg" "$T/qa.sig" "$n" ff "$T/qa2.pcrs"
assert_at_refused "PCR values do not hash to the quote's pcrDigest" "new values, old quote"
# b's AK replaced by an RSA AK (RSASSA-SHA256)
cp "$B/ak.pub" "$T/b-ecc-ak.pub"
tpm_ak_create b rsa
at name "$B/ak.pub" ak
assert_eq "$(hex "$B/ak.name")" "$OUT" "Name of the RSA AK"
quote b "$n" qb
at quote "$B/ak.pub" "$T/qb.msg" "$T/qb.sig" "$n" ff "$T/qb.pcrs"
assert_at_ok "a quote of TPM b's RSA AK"
at quote "$A/ak.pub" "$T/qb.msg" "$T/qb.sig" "$n" ff "$T/qb.pcrs"
assert_at_refused "signature is not ECDSA with SHA-256, the AK's scheme" "RSA quote, ECC AK"

# ---- Certify: qualifyingData = nonce through TPM2_Certify (attest_tool tpmcertify)
n=$(nonce)
tpm_use a
at tpmcertify "$TPM_LIB_TCTI" "$TPM_ID_HANDLE" "$TPM_AK_HANDLE" "$n" "$T/ca.attest" "$T/ca.sig"
tpm_flush
assert_at_ok "TPM2_Certify on TPM a"
at certify "$A/ak.pub" "$A/id.pub" "$T/ca.attest" "$T/ca.sig" "$n"
assert_at_ok "certification of a's identity key by a's AK"
at certify "$A/ak.pub" "$A/id.pub" "$T/ca.attest" "$T/ca.sig" "$(nonce)"
assert_at_refused "attestation does not carry this challenge's nonce" "certify, another nonce"
at certify "$A/ak.pub" "$B/id.pub" "$T/ca.attest" "$T/ca.sig" "$n"
assert_at_refused "certification is not of this key (its Name differs)" "certify, another key"
at certify "$T/b-ecc-ak.pub" "$A/id.pub" "$T/ca.attest" "$T/ca.sig" "$n"
assert_at_refused "signature does not verify with the AK" "certify checked with b's AK"
at certify "$B/ak.pub" "$A/id.pub" "$T/ca.attest" "$T/ca.sig" "$n"
assert_at_refused "signature is not RSASSA with SHA-256, the AK's scheme" "certify, b's RSA AK"
at certify "$A/ak.pub" "$A/id.pub" "$T/qa.msg" "$T/qa.sig" "$n"
assert_at_refused "attestation is not a TPM2_Certify result" "a quote is no certification"
# tpm2_certify (no qualifying data in tpm2-tools 5.4): its signature
# verifies (checked first), then the missing nonce refuses it.
tpm2_certify -c "$TPM_ID_HANDLE" -C "$TPM_AK_HANDLE" -g sha256 -o "$T/tc.attest" \
    -s "$T/tc.sig" >"$T/tc.log" 2>&1 || hard_error "tpm2_certify: $(cat "$T/tc.log")"
tpm_flush
at certify "$A/ak.pub" "$A/id.pub" "$T/tc.attest" "$T/tc.sig" "$(printf '%064d' 0)"
assert_at_refused "attestation does not carry this challenge's nonce" "tpm2_certify, no nonce"
head -c 40 "$T/tc.sig" >"$T/tc.sig.short"
at certify "$A/ak.pub" "$A/id.pub" "$T/tc.attest" "$T/tc.sig.short" "$(printf '%064d' 0)"
assert_at_refused "signature is not a TPMT_SIGNATURE" "truncated signature"

# ---- EK certificate: chains to its maker's CA only, matches its own EK only
bundle1=$(tpm_ca_bundle ca1)
bundle2=$(tpm_ca_bundle ca2)
at ekverify "$A/ek.der" "$bundle1"
assert_at_ok "a's EK certificate against CA 1"
at ekverify "$A/ek.der" "$T/ca1/swtpm-localca-rootca-cert.pem" "$T/ca1/issuercert.pem"
assert_at_ok "a's EK certificate against CA 1's root, the intermediate sent along"
at ekverify "$A/ek.der" "$bundle2"
assert_at_refused "EK certificate does not chain to a trusted TPM manufacturer CA" "against CA 2"
at ekverify "$B/ek.der" "$bundle2"
assert_at_ok "b's EK certificate against CA 2"
at ekverify "$A/ek.der" "$T/ca1/swtpm-localca-rootca-cert.pem"
assert_at_refused "EK certificate does not chain to a trusted TPM manufacturer CA" \
    "root alone, intermediate missing"
at ekmatch "$A/ek.der" "$A/ek.pub"
assert_at_ok "a's EK certificate names a's EK"
at ekmatch "$A/ek.der" "$B/ek.pub"
assert_at_refused "EK certificate does not match EK public" "a's certificate, b's EK"
exit 0
