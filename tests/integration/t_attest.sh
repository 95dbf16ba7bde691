#!/bin/bash
# TPM attestation end to end (issue 15, quarklink-attest(7)) with two
# software TPMs: T, whose EK certificate comes from a local CA that the
# project trusts (added through the admin API), and U, from a CA nobody
# trusts.  The real ql-agent (key_store tpm2, T behind tpm2-abrmd) enrolls in
# a project whose policy is tpm alone and shows up with T's EK fingerprint
# and its AK; attest_client.py, an independent device side in Python
# (ESAPI), enrolls too and plays every hostile case of the issue, each
# refused with its documented status and reason and nothing recorded.
# Then measured boot: the first quote records the reference, tpm2_pcrextend
# on PCR 7 makes the next one tampered (API, audit) and the update poll is
# refused; an admin accepts the new values and the device recovers.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
# shellcheck source=tpm_lib.sh
. "$(dirname "$0")/tpm_lib.sh"
ql_require curl openssl jq psql xxd tpm2_nvread tpm2_readpublic tpm2_pcrextend tpm2_pcrread
trap 'rc=$?; tpm_stop; tpm_lib_stop; (exit $rc); ql__cleanup' EXIT

# The client needs python3-tpm2-pytss (Debian's, for Debian's python3; a
# python3 of its own earlier in PATH may not have it).
PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import tpm2_pytss, cryptography' 2>/dev/null; then
        PY=$p
        break
    fi
done
[ -n "$PY" ] || skip "no python3 with tpm2_pytss and cryptography (python3-tpm2-pytss)"

# ---- two manufacturers, two TPMs.  T runs behind tpm2-abrmd (the agent
# and the tpm2 provider need a resource manager); U is reached directly.
tpm_ca_new ca-trusted
tpm_ca_new ca-untrusted
tpm_manufacture T ca-trusted "$T/tpm"
tpm_manufacture U ca-untrusted
tpm_swtpm_start U
TCTI_U=$TPM_LIB_TCTI
tpm_start
TCTI_T=$TPM_TCTI
export TPM2TOOLS_TCTI=$TCTI_T

agent_pki_start
api_admin_session alice

# tools_t CMD...: a tpm2-tools command on T (through tpm2-abrmd).
tools_t() { TPM2TOOLS_TCTI=$TCTI_T "$@"; }

# The EK certificate of T as the device's NV holds it, and its fingerprint.
tools_t tpm2_nvread 0x01c00002 -o "$T/ek-T.der" 2>"$T/nvread.err" ||
    hard_error "tpm2_nvread on T: $(cat "$T/nvread.err")"
ek_fp=$(openssl x509 -inform DER -in "$T/ek-T.der" -noout -fingerprint -sha256 |
    sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f')
assert_match '^[0-9a-f]{64}$' "$ek_fp" "T's EK certificate fingerprint"
openssl verify -CAfile "$T/ca-trusted/swtpm-localca-rootca-cert.pem" \
    -untrusted "$T/ca-trusted/issuercert.pem" <(openssl x509 -inform DER -in "$T/ek-T.der") \
    >/dev/null 2>&1 || hard_error "T's EK certificate does not verify against ca-trusted"

# client [--ak-alg rsa] TPM ARGS...: attest_client.py against TPM T or U; its JSON result
# in $T/client.json (CL_RC: 0 the flow ran, even to a refusal; 2 it failed).
client() {
    local tcti
    local -a opt=()
    if [ "$1" = --ak-alg ]; then
        opt=(--ak-alg "$2")
        shift 2
    fi
    case $1 in
        T) tcti=$TCTI_T ;;
        U) tcti=$TCTI_U ;;
        *) hard_error "client: TPM $1?" ;;
    esac
    shift
    "$PY" "$QL_LIBDIR/attest_client.py" --tcti "$tcti" --url "$(device_url '')" \
        --cacert "$T/root.pem" --project "${CL_PROJECT:-p1}" "${opt[@]}" "$@" >"$T/client.json" \
        2>"$T/client.err"
    CL_RC=$?
    cat "$T/client.err" >>"$T/client.all.err"
}
cl() { jq -r "$1" "$T/client.json"; }

# assert_refused STEP STATUS DETAIL_ERE MSG: the last client run ended at
# STEP, refused with problem+json STATUS and a one-line detail matching
# DETAIL_ERE.
assert_refused() {
    [ "$CL_RC" = 0 ] || ql__fail_at 1 "$4: the client failed (rc $CL_RC): $(cat "$T/client.err")"
    local got
    got="$(cl .step) $(cl .status)"
    [ "$got" = "$1 $2" ] ||
        ql__fail_at 1 "$4: expected $1 refused with $2, got $got: $(cat "$T/client.json")"
    [[ $(cl .content_type) == application/problem+json* ]] ||
        ql__fail_at 1 "$4: refusal is not problem+json: $(cl .content_type)"
    local d
    d=$(cl '.detail // ""')
    if [ -z "$d" ] || [ "$(printf '%s\n' "$d" | wc -l)" != 1 ]; then
        ql__fail_at 1 "$4: detail is not one line: '$d'"
    fi
    grep -Eq -- "$3" <<<"$d" || ql__fail_at 1 "$4: detail '$d' does not match /$3/"
}

# Nothing recorded.  A refused step leaves every table as it was (audit_log
# aside, which logs refusals), devices and their attestation (state,
# reference and last PCR values, quote time) unchanged, and no session
# proven.  The challenge before a refused proof does leave its session
# (tried, never proven), and a quote challenge its nonce: snapshot counts
# those two tables apart.
snapshot() {
    api_table_counts | tr ' ' '\n' | grep -Ev '^(attest_sessions|quote_nonces)='
    ql_psql "SELECT device_id, att_state, coalesce(pcr_reference::text, '-'),
                    coalesce(pcr_last::text, '-'), coalesce(last_quote_at::text, '-'),
                    coalesce(encode(att_spki_sha256, 'hex'), '-')
             FROM devices ORDER BY 1"
    api GET /api/v1/projects/p1/devices
    jq -S '[.items[] | {device_id, attestation}]' "$BODY"
}
sessions() {
    ql_psql "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'proven')
             FROM attest_sessions"
}
take_snapshot() {
    SNAP=$(snapshot)
    SNAP_SESSIONS=$(sessions)
}
# assert_nothing_recorded MSG [challenge|proof|proven]: as take_snapshot
# left it; the refused step was the challenge (no new session), a proof (a
# new session, not proven), or came after a proof that passed (a new
# proven session, not taken by any device).
assert_nothing_recorded() {
    local now all proven want_all want_proven
    now=$(snapshot)
    if [ "$now" != "$SNAP" ]; then
        diff <(printf '%s\n' "$SNAP") <(printf '%s\n' "$now")
        ql__fail_at 1 "$1: the refused attempt changed the database"
    fi
    read -r all proven <<<"$SNAP_SESSIONS"
    case ${2:-challenge} in
        challenge) want_all=$all want_proven=$proven ;;
        proof) want_all=$((all + 1)) want_proven=$proven ;;
        proven) want_all=$((all + 1)) want_proven=$((proven + 1)) ;;
    esac
    assert_eq "$want_all $want_proven" "$(sessions)" "$1: attestation sessions (all, proven)"
    take_snapshot
}

untrusted='EK certificate does not chain to a trusted TPM manufacturer CA'

# ---- a project whose policy is tpm alone, and one that does not use it.
api POST /api/v1/projects '{"name": "p1", "policy": {"tpm": true}}'
assert_status 201 "create project p1 with policy tpm"
assert_eq true "$(jq -r .policy.tpm "$BODY")" "p1's policy shows tpm"
api POST /api/v1/projects '{"name": "p2", "policy": {"token": true}}'
assert_status 201 "create project p2 with policy token"

client T info
assert_eq "0 info 200" "$CL_RC $(cl .step) $(cl .status)" "GET /device/v1/attest/p1"
assert_eq 'true sha256 [0,1,2,3,4,5,6,7]' "$(cl '"\(.required) \(.bank) \(.pcrs | tojson)"')" \
    "p1 requires attestation over the SHA-256 PCRs 0-7"
CL_PROJECT=p2 client T info
assert_eq false "$(cl .required)" "p2 does not require attestation"
CL_PROJECT=nosuch client T info
assert_eq "info 404" "$(cl .step) $(cl .status)" "an unknown project"

# ---- the manufacturer CA is not trusted yet: T is refused like U.
take_snapshot
client T enroll "$T/early"
assert_refused challenge 403 "$untrusted" "T before its CA is trusted"
assert_nothing_recorded "T before its CA is trusted"

# ---- the admin adds the trusted manufacturer's root and intermediate.
declare -A ca_id
for f in swtpm-localca-rootca-cert.pem issuercert.pem; do
    ql_curl -X POST -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
        -H 'Content-Type: application/x-pem-file' --data-binary "@$T/ca-trusted/$f" \
        "$(admin_url /api/v1/projects/p1/tpm-cas)"
    assert_status 201 "POST tpm-cas $f"
    fp=$(openssl x509 -in "$T/ca-trusted/$f" -noout -fingerprint -sha256 |
        sed 's/^.*=//; s/://g' | tr 'A-F' 'a-f')
    assert_eq "$fp" "$(jq -r .sha256 "$BODY")" "tpm-cas answers the SHA-256 of $f"
    assert_match 'swtpm-localca' "$(jq -r .subject "$BODY")" "tpm-cas answers the subject of $f"
    ca_id[$f]=$(jq -r .id "$BODY")
done
api GET /api/v1/projects/p1/tpm-cas
assert_status 200 "list tpm-cas"
assert_eq 2 "$(jq '.items | length' "$BODY")" "two trusted manufacturer certificates"
ql_curl -X POST -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
    -H 'Content-Type: application/x-pem-file' --data-binary 'not a certificate' \
    "$(admin_url /api/v1/projects/p1/tpm-cas)"
assert_status 400 "a tpm-cas body that is not a PEM certificate"

# ---- the independent client enrolls T: the contract's whole flow.
client T enroll "$T/cl"
[ "$CL_RC" = 0 ] || fail "attest_client enroll: $(cat "$T/client.err")"
assert_eq "simpleenroll 200" "$(cl .step) $(cl .status)" "attest_client enrolls with T"
cl_id=$(cl .device_id)
cl_ak=$(cl .ak_name)
assert_eq "$ek_fp" "$(cl .ek_sha256)" "the client sent T's EK certificate"
api GET "/api/v1/projects/p1/devices/$cl_id"
assert_status 200 "the client's device in the API"
assert_eq "$ek_fp" "$(jq -r .attestation.ek_sha256 "$BODY")" "the client's device: EK fingerprint"
assert_eq "$cl_ak" "$(jq -r .attestation.ak_name "$BODY")" "the client's device: AK name"
assert_eq "$cl_id" "$(ql_psql "SELECT d.device_id FROM certificates c JOIN devices d ON d.id = c.device
    WHERE c.serial = '$(cert_serial "$T/cl/device.crt")'")" "the certificate is the device's"

# The same flow with an RSA 2048 AK (RSASSA-SHA256) and another identity key.
client --ak-alg rsa T enroll "$T/cl-rsa" --key-handle 0x81000013
[ "$CL_RC" = 0 ] || fail "attest_client enroll with an RSA AK: $(cat "$T/client.err")"
assert_eq "simpleenroll 200" "$(cl .step) $(cl .status)" "attest_client enrolls with an RSA AK"
api GET "/api/v1/projects/p1/devices/$(cl .device_id)"
assert_status 200 "the RSA-AK device in the API"
assert_eq "$(cl .ak_name)" "$(jq -r .attestation.ak_name "$BODY")" "the RSA AK's name"

# ---- the real agent on T.
agent_conf t1 key_store=tpm2 tpm2_tcti="$TCTI_T"
agent t1 enroll
assert_agent_rc 0 "ql-agent enroll with attestation on T"
id=$AGENT_OUT
assert_match '^[a-z2-7]{32}$' "$id" "the device ID"
api GET "/api/v1/projects/p1/devices/$id"
assert_status 200 "the agent's device in the API"
assert_eq "$ek_fp" "$(jq -r .attestation.ek_sha256 "$BODY")" \
    "the API shows the SHA-256 fingerprint of T's EK certificate"
tools_t tpm2_readpublic -c "$TPM_AK_HANDLE" -n "$T/ak-T.name" >/dev/null 2>"$T/readpublic.err" ||
    fail "no AK at $TPM_AK_HANDLE on T after enroll: $(cat "$T/readpublic.err")"
ak_name=$(xxd -p -c 256 "$T/ak-T.name")
assert_eq "$ak_name" "$(jq -r .attestation.ak_name "$BODY")" "the API shows the agent's AK (its TPM Name)"
assert_match '^[0-9]{4}-' "$(jq -r .attestation.attested_at "$BODY")" "attested_at"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.attested'
    AND object LIKE '%$id%'")" "device.attested audited for the agent's device"

# ---- every hostile case of issue 15, refused, nothing recorded.
client T export-ek "$T/ek-of-T"
[ "$CL_RC" = 0 ] || hard_error "export-ek T: $(cat "$T/client.err")"
assert_eq "$ek_fp" "$(cl .ek_sha256)" "the client reads the same EK certificate as tpm2_nvread"
client U export-ek "$T/ek-of-U"
[ "$CL_RC" = 0 ] || hard_error "export-ek U: $(cat "$T/client.err")"
take_snapshot

client U enroll "$T/u"
assert_refused challenge 403 "$untrusted" "an EK certificate from an untrusted CA"
assert_nothing_recorded "untrusted EK CA"

client T ek-mismatch "$T/ek-of-U/ek_public.bin"
assert_refused challenge 403 'EK certificate does not match EK public' "an EK certificate that does not match the EK public"
assert_nothing_recorded "EK certificate and EK public of two TPMs"

client T ak-unrestricted
assert_refused challenge 400 'AK|restricted' "an AK that is not a restricted signing key"
assert_nothing_recorded "unrestricted AK"

client U other-tpm "$T/ek-of-T"
assert_refused proof 403 'credential was not activated by the TPM holding this EK' \
    "a credential for T's EK answered by U"
assert_ne true "$(cl .activation)" "U could not activate a credential made for T's EK"
assert_nothing_recorded "credential activated by another TPM" proof

client T replay-proof
assert_eq "200" "$(cl '.first.device_id | if . then "200" else "none" end')" "the first proof passes"
assert_refused proof 403 'attestation session unknown, used or expired' "a replayed proof"
assert_nothing_recorded "replayed proof (a proof alone records no device)" proven

client T retry-proof
assert_eq 403 "$(cl .first.status)" "a proof with a wrong secret"
assert_match 'credential was not activated' "$(cl .first.detail)" "the wrong secret's reason"
assert_refused proof 403 'attestation session unknown, used or expired' \
    "the right secret after a wrong one: one try per session"
assert_nothing_recorded "second try on a used session" proof

client T wrong-project p2
assert_refused proof 403 'attestation session unknown, used or expired' \
    "a session of p1 proven to p2"
assert_nothing_recorded "a session of another project" proof

CL_PROJECT=p2 client T enroll "$T/p2"
assert_refused challenge 403 'project does not use TPM attestation' "a challenge to p2"
assert_nothing_recorded "challenge to a project without tpm"

for v in import created; do
    client T not-fixedtpm "$v"
    assert_refused proof 403 'identity key is not fixedTPM' \
        "an identity key that is not fixedTPM ($v)"
    assert_nothing_recorded "identity key not fixedTPM ($v)" proof
done

client T csr-mismatch
assert_refused simpleenroll 403 'no TPM attestation for this key' \
    "a CSR whose key is not the certified one"
assert_ne "$(cl .proven_device_id)" "$(cl .csr_device_id)" "the CSR's key is another key"
assert_nothing_recorded "CSR of another key" proven

# Malformed challenges: 400, nothing recorded.
ql_curl --cacert "$T/root.pem" -H 'Content-Type: application/json' --data-binary '{"ek_cert": 1}' \
    "$(device_url /device/v1/attest/p1/challenge)"
assert_status 400 "a challenge with a number for ek_cert"
assert_est_problem 400
head -c 20000 /dev/zero | tr '\0' a >"$T/big.json"
ql_curl --cacert "$T/root.pem" -H 'Content-Type: application/json' --data-binary "@$T/big.json" \
    "$(device_url /device/v1/attest/p1/challenge)"
case $HTTP_STATUS in 400 | 413) ;; *) fail "a 20 KB challenge body: HTTP $HTTP_STATUS" ;; esac
assert_nothing_recorded "malformed challenges"

# ---- measured boot.  Quote refusals on the client's device first: nothing
# recorded, the device has no reference yet.
take_snapshot
declare -A quote_refusal=(
    [other-ak]='signature does not verify with the AK'
    [other-pcrs]='quote is over other PCRs than asked'
    [bad-values]='PCR values do not hash to the quote'
)
for h in other-ak other-pcrs bad-values; do
    client T quote "$T/cl/device.crt" "handle:0x81000012" --hostile "$h"
    assert_refused quote 403 "${quote_refusal[$h]}" "a quote ($h)"
    assert_nothing_recorded "quote $h"
done
assert_eq "attested null -" "$(api GET "/api/v1/projects/p1/devices/$cl_id"; jq -r '"\(.attestation.state) \(.attestation.last_quote_at)"' "$BODY") $(
    ql_psql "SELECT coalesce(pcr_reference::text, '-') FROM devices WHERE device_id = '$cl_id'")" \
    "no quote and no reference before a good quote"
client T quote "$T/cl/device.crt" "handle:0x81000012" --hostile replay
assert_eq "200 trusted recorded" "$(cl '"\(.first.status) \(.first.state) \(.first.reference)"')" \
    "the client's first quote records the reference"
assert_refused quote 403 'quote nonce unknown, used or expired' "a replayed quote (used nonce)"

# The agent's quotes: run --once quotes when the server asks.
agent t1 run --once
assert_agent_rc 0 "ql-agent run --once (quote)"
api GET "/api/v1/projects/p1/devices/$id"
assert_eq trusted "$(jq -r .attestation.state "$BODY")" "the agent's device is trusted"
assert_match '^[0-9]{4}-' "$(jq -r .attestation.last_quote_at "$BODY")" "last_quote_at"
# The API shows whole seconds and two runs can fall in one: compare the
# stored time, to the microsecond.
quote_time() {
    ql_psql "SELECT last_quote_at FROM devices WHERE device_id = '$id'"
}
q1=$(quote_time)
agent t1 run --once
assert_agent_rc 0 "second run --once"
api GET "/api/v1/projects/p1/devices/$id"
assert_eq trusted "$(jq -r .attestation.state "$BODY")" "still trusted: the values match"
assert_ne "$q1" "$(quote_time)" "a second quote was taken"
agent t1 status --json
assert_agent_rc 0 "status"
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_match '^trusted' "$(jq -r .attestation "$T/status.json")" "status shows the last attestation result"
assert_match '^[0-9]{4}-' "$(jq -r .attested_at "$T/status.json")" "and its time"

# The AK of the agent's device, driven by the independent client: a quote
# over other PCRs is refused, a good one matches.
take_snapshot
client T quote "$T/t1/cert.pem" "handle:$TPM_ID_HANDLE" --ak-handle "$TPM_AK_HANDLE" --hostile other-pcrs
assert_refused quote 403 'quote is over other PCRs than asked' \
    "a quote over PCRs other than asked, with the agent's AK"
assert_nothing_recorded "other PCRs with the agent's AK"
client T quote "$T/t1/cert.pem" "handle:$TPM_ID_HANDLE" --ak-handle "$TPM_AK_HANDLE"
assert_eq "quote 200 trusted matched" "$(cl '"\(.step) \(.status) \(.state) \(.reference)"')" \
    "a quote with the agent's AK by another client matches the reference"

# ---- tampering: PCR 7 changes (the Secure Boot state, say).
tools_t tpm2_pcrextend "7:sha256=$(head -c 32 /dev/urandom | xxd -p -c 64)" ||
    fail "tpm2_pcrextend on T"
agent t1 run --once
api GET "/api/v1/projects/p1/devices/$id"
assert_eq tampered "$(jq -r .attestation.state "$BODY")" "PCR 7 changed: the device is tampered"
assert_eq '[7]' "$(jq -c .attestation.differ "$BODY")" "the API names PCR 7"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.tampered'
    AND object LIKE '%$id%'")" "device.tampered audited"
client T mtls GET /device/v1/update "$T/t1/cert.pem" "handle:$TPM_ID_HANDLE"
assert_refused "GET /device/v1/update" 403 'device failed attestation: PCR values differ' \
    "the tampered device's update poll"
# The client's device on the same TPM is tampered by its next quote too.
client T quote "$T/cl/device.crt" "handle:0x81000012"
assert_eq "200 tampered differs [7]" "$(cl '"\(.status) \(.state) \(.reference) \(.differ | tojson)"')" \
    "the client's device quotes the changed PCR 7"

# ---- the admin accepts the new values: trusted again, updates answered.
api POST "/api/v1/projects/p1/devices/$id/attestation/accept"
assert_status 200 "accept the agent's device's new PCR values"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.attestation_accepted'
    AND object LIKE '%$id%'")" "device.attestation_accepted audited"
agent t1 run --once
assert_agent_rc 0 "run --once after the accept"
api GET "/api/v1/projects/p1/devices/$id"
assert_eq trusted "$(jq -r .attestation.state "$BODY")" "trusted after the admin accepted"
client T mtls GET /device/v1/update "$T/t1/cert.pem" "handle:$TPM_ID_HANDLE"
[ "$CL_RC" = 0 ] || fail "update poll: $(cat "$T/client.err")"
case $(cl .status) in 200 | 204) ;; *) fail "update poll after the accept: $(cat "$T/client.json")" ;; esac
# The client's device was not accepted: still refused.
client T mtls GET /device/v1/update "$T/cl/device.crt" "handle:0x81000012"
assert_refused "GET /device/v1/update" 403 'device failed attestation' \
    "the other device on T was not accepted"

# ---- the admin removes the manufacturer CA: T's next challenge is refused.
for f in "${!ca_id[@]}"; do
    api DELETE "/api/v1/projects/p1/tpm-cas/${ca_id[$f]}"
    case $HTTP_STATUS in 200 | 204) ;; *) fail "DELETE tpm-cas $f: HTTP $HTTP_STATUS" ;; esac
done
api GET /api/v1/projects/p1/tpm-cas
assert_eq 0 "$(jq '.items | length' "$BODY")" "no trusted manufacturer left"
take_snapshot
client T enroll "$T/late"
assert_refused challenge 403 "$untrusted" "T once its CA is removed"
assert_nothing_recorded "T once its CA is removed"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
