#!/bin/bash
# TPM attestation without a TPM: the admin API and the database side.
# Policy tpm on and off (an all-off policy refused, nothing changed) and the
# attestation settings; a project's TPM manufacturer CAs added, listed and
# deleted (bad PEM, a leaf, two certificates and another project's admin
# refused); the device "attestation" object; accept on a device that is not
# tampered (409) and on one that is (a tampered state written as a quote
# would leave it: its update poll and re-enrollment are refused until then);
# the device endpoints' refusals (unknown project, a project without tpm,
# malformed bodies, an unknown session) with nothing recorded; EST in a tpm
# project without attestation refused 403 with nothing recorded, with a
# proven session (as the proof leaves it) consumed by the enrollment, and
# re-enrollment in a tpm project that keeps or changes the attested key;
# [attest] manufacturer_cas checked by -t (file:reason), read at start,
# kept on a SIGHUP that cannot read them and re-read on the next.
# The full flow with swtpm is t_attest_tpm.sh's.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl base64 base32 psql

ql_pki_start
ql_admin_ok create-admin alice
ADM=(-H "Authorization: Bearer $(api_token_new admin "")")
count() { ql_psql "SELECT count(*) FROM $1"; }
# apij METHOD PATH JSON: an admin API call with a JSON body.
apij() { ql_curl -X "$1" "${ADM[@]}" -H 'Content-Type: application/json' \
    --data-binary "$3" "$(admin_url "$2")"; }
apic() { ql_curl -X "$1" "${ADM[@]}" "$(admin_url "$2")"; }
devj() { ql_curl -X POST -H 'Content-Type: application/json' --data-binary "$2" \
    "$(device_url "$1")"; }
spki_sha256() {
    openssl req -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | od -An -tx1 | tr -d ' \n'
}

# ---- policy tpm and the attestation settings
apij POST /api/v1/projects '{"name": "pt", "policy": {"tpm": true}}'
assert_status 201 "a project with only the tpm policy"
assert_eq '{"token":false,"allowlist":false,"approval":false,"tpm":true}' \
    "$(jq -c .policy "$BODY")" "policy of a tpm-only project"
assert_eq '{"pcrs":[0,1,2,3,4,5,6,7],"refuse_tampered":true}' \
    "$(jq -c .attestation "$BODY")" "default attestation settings"
apij POST /api/v1/projects '{"name": "pz", "policy": {"token": false}}'
assert_status 422 "create with every policy off"
ql_admin_ok create-project pa token
apij PATCH /api/v1/projects/pa '{"policy": {"token": false}}'
assert_status 422 "PATCH turning the last policy off"
assert_problem 422
assert_match 'at least one enrollment policy' "$(jq -r .detail "$BODY")" "all-off detail"
assert_eq t "$(ql_psql "SELECT policy_token FROM projects WHERE name = 'pa'")" \
    "refused PATCH left the policy"
apij PATCH /api/v1/projects/pt '{"policy": {"tpm": false}}'
assert_status 422 "PATCH turning tpm, the only policy, off"
apij PATCH /api/v1/projects/pa '{"policy": {"token": false, "tpm": true}}'
assert_status 200 "token off and tpm on in one PATCH"
assert_eq "false true" "$(jq -r '"\(.policy.token) \(.policy.tpm)"' "$BODY")" "policy after"
apij PATCH /api/v1/projects/pa '{"policy": {"token": true, "tpm": false}}'
assert_status 200
# A project left all-off by an older daemon can still be renamed or fixed.
ql_psql "UPDATE projects SET policy_token = false WHERE name = 'pa'" >/dev/null
apij PATCH /api/v1/projects/pa '{"cert_validity_days": 30}'
assert_status 200 "PATCH of a project that already had no policy on"
apij PATCH /api/v1/projects/pa '{"policy": {"token": true}}'
assert_status 200
apij PATCH /api/v1/projects/pt '{"attestation": {"pcrs": [0, 2, 7], "refuse_tampered": false}}'
assert_status 200 "attestation settings"
assert_eq '{"pcrs":[0,2,7],"refuse_tampered":false}' "$(jq -c .attestation "$BODY")" \
    "attestation settings after PATCH"
assert_eq "133|false" "$(ql_psql "SELECT attest_pcrs || '|' || attest_refuse_tampered
    FROM projects WHERE name = 'pt'")" "attestation settings stored"
for bad in '{"attestation": {"pcrs": [24]}}' '{"attestation": {"pcrs": [1, 1]}}' \
        '{"attestation": {"pcrs": ["0"]}}' '{"attestation": {"pcr": [0]}}' \
        '{"attestation": []}' '{"attestation": {"refuse_tampered": 1}}' \
        '{"policy": {"tpm": "yes"}}'; do
    apij PATCH /api/v1/projects/pt "$bad"
    assert_status 400 "PATCH $bad"
    assert_problem 400
done
assert_eq "133|false|true" "$(ql_psql "SELECT attest_pcrs || '|' || attest_refuse_tampered || '|'
    || policy_tpm FROM projects WHERE name = 'pt'")" "refused PATCHes changed nothing"
apij PATCH /api/v1/projects/pt '{"attestation": {"pcrs": [0, 1, 2, 3, 4, 5, 6, 7], "refuse_tampered": true}}'
assert_status 200
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'project.update'
    AND detail NOT LIKE 'policy token=%'")" "project.update audit rows carry the settings"

# ---- TPM manufacturer CAs of a project
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=tpm-maker-ca -addext basicConstraints=critical,CA:TRUE \
    -keyout "$T/mca.key" -out "$T/mca.pem" >/dev/null 2>&1 || hard_error "openssl req"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=leaf -addext basicConstraints=critical,CA:FALSE \
    -keyout "$T/leaf.key" -out "$T/leaf.pem" >/dev/null 2>&1 || hard_error "openssl req"
cat "$T/mca.pem" "$T/mca.pem" >"$T/two.pem"
pem_post() { ql_curl -X POST "${ADM[@]}" -H "Content-Type: ${3:-application/x-pem-file}" \
    --data-binary "@$2" "$(admin_url "/api/v1/projects/$1/tpm-cas")"; }
printf 'not a certificate\n' >"$T/junk.pem"
for f in junk leaf two; do
    pem_post pt "$T/$f.pem"
    assert_status 400 "tpm-cas POST of $f.pem"
    assert_problem 400
done
pem_post pt "$T/mca.pem" application/json
assert_status 415 "tpm-cas POST as JSON"
assert_eq 0 "$(count tpm_cas)" "refused CAs left no rows"
pem_post pt "$T/mca.pem"
assert_status 201 "tpm-cas POST of a CA"
ca_id=$(jq -r .id "$BODY")
want=$(openssl x509 -in "$T/mca.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
assert_eq "$want" "$(jq -r .sha256 "$BODY")" "sha256 of the CA's DER"
assert_match 'tpm-maker-ca' "$(jq -r .subject "$BODY")" "subject"
assert_match "/api/v1/projects/pt/tpm-cas/$ca_id" "$(ql_header Location)" "Location"
pem_post pt "$T/mca.pem"
assert_status 409 "the same CA twice"
apic GET /api/v1/projects/pt/tpm-cas
assert_status 200
assert_eq "$ca_id $want" "$(jq -r '.items[] | "\(.id) \(.sha256)"' "$BODY")" "list"
# Another project's admin, and an operator of this one.
ql_admin_ok create-project pb token
OTHER=(-H "Authorization: Bearer $(api_token_new admin pb)")
OPER=(-H "Authorization: Bearer $(api_token_new operator pt)")
ql_curl "${OTHER[@]}" "$(admin_url /api/v1/projects/pt/tpm-cas)"
assert_status 404 "another project's admin lists"
ql_curl -X POST "${OTHER[@]}" -H 'Content-Type: application/x-pem-file' \
    --data-binary "@$T/leaf.pem" "$(admin_url /api/v1/projects/pt/tpm-cas)"
assert_status 404 "another project's admin adds"
ql_curl -X DELETE "${OTHER[@]}" "$(admin_url "/api/v1/projects/pt/tpm-cas/$ca_id")"
assert_status 404 "another project's admin deletes"
ql_curl -X DELETE "${OPER[@]}" "$(admin_url "/api/v1/projects/pt/tpm-cas/$ca_id")"
assert_status 403 "an operator deletes"
assert_eq 1 "$(count tpm_cas)" "the CA is still there"
apic DELETE "/api/v1/projects/pb/tpm-cas/$ca_id"
assert_status 404 "a CA id of another project"
apic DELETE "/api/v1/projects/pt/tpm-cas/$ca_id"
assert_status 204 "delete"
apic DELETE "/api/v1/projects/pt/tpm-cas/$ca_id"
assert_status 404 "delete again"
assert_eq "tpm_ca.add|$ca_id tpm_ca.delete|$ca_id" "$(ql_psql "SELECT string_agg(action || '|'
    || object, ' ' ORDER BY id) FROM audit_log WHERE action LIKE 'tpm_ca.%'")" "audited"

# ---- device endpoints: settings, refusals, nothing recorded
ql_curl "$(device_url /device/v1/attest/pt)"
assert_status 200 "attestation settings of a tpm project"
assert_eq '{"required":true,"bank":"sha256","pcrs":[0,1,2,3,4,5,6,7]}' "$(jq -c . "$BODY")" \
    "settings body"
ql_curl "$(device_url /device/v1/attest/pa)"
assert_eq "200 false" "$HTTP_STATUS $(jq -r .required "$BODY")" "a project without tpm"
ql_curl "$(device_url /device/v1/attest/nope)"
assert_est_problem 404 'unknown project'
B64=$(head -c 300 /dev/urandom | base64 -w0)
devj /device/v1/attest/pa/challenge "{\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\"}"
assert_est_problem 403 'project does not use TPM attestation'
devj /device/v1/attest/nope/challenge "{\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\"}"
assert_est_problem 404
chal_bad=('{}' '[]' 'not json' '{"ek_cert": 1, "ek_public": "AA==", "ak_public": "AA=="}'
    "{\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\",\"x\":1}"
    "{\"ek_cert\":\"a b\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\"}"
    "{\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\"}"
    "{\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\",\"ek_chain\":\"x\"}"
    "{\"ek_cert\":\"$B64\",\"ek_cert\":\"$B64\",\"ek_public\":\"$B64\",\"ak_public\":\"$B64\"}")
for b in "${chal_bad[@]}"; do
    devj /device/v1/attest/pt/challenge "$b"
    assert_est_problem 400
done
big=$(head -c 17000 /dev/zero | base64 -w0)
devj /device/v1/attest/pt/challenge "{\"ek_cert\":\"$big\",\"ek_public\":\"AA==\",\"ak_public\":\"AA==\"}"
assert_est_problem 413
ql_curl -X POST -H 'Content-Type: text/plain' --data-binary '{}' \
    "$(device_url /device/v1/attest/pt/challenge)"
assert_est_problem 415
SID=0123456789abcdef0123456789abcdef
S32=$(head -c 32 /dev/urandom | base64 -w0)
proof() { printf '{"session":"%s","secret":"%s","key_public":"%s","certify_info":"%s","certify_signature":"%s"}' \
    "$1" "$2" "$B64" "$B64" "$B64"; }
for b in "$(proof "${SID^^}" "$S32")" "$(proof "${SID:1}" "$S32")" "$(proof "$SID" "$B64")" \
        "$(proof "$SID" "$S32" | jq -c 'del(.certify_info)')"; do
    devj /device/v1/attest/pt/proof "$b"
    assert_est_problem 400
done
devj /device/v1/attest/pt/proof "$(proof "$SID" "$S32")"
assert_est_problem 403 'attestation session unknown, used or expired'
assert_eq "0 0" "$(count attest_sessions) $(count devices)" "device refusals left no rows"

# ---- EST in a tpm project: refused without attestation, nothing recorded
est_key t1
est_csr t1 t1
est_body "$T/t1.der" "$T/t1.b64"
est_post pt simpleenroll "$T/t1.b64"
assert_est_problem 403 'no TPM attestation for this key'
assert_eq "0 0 0" "$(count devices) $(count certificates) $(count enrollment_reservations)" \
    "a refused tpm enrollment leaves no rows"
# tpm and token: a good token does not open the gate, and keeps its uses.
ql_admin_ok create-project pq token tpm
ql_admin_ok create-token pq 5
tok=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
est_post pq simpleenroll "$T/t1.b64" -u "t1:$tok"
assert_est_problem 403 'no TPM attestation for this key'
assert_eq "0 0" "$(count devices) $(ql_psql "SELECT sum(uses) FROM enrollment_tokens")" \
    "the token was not used, no device"
# tpm and approval: no pending device without attestation.
ql_admin_ok create-project pr approval tpm
est_post pr simpleenroll "$T/t1.b64"
assert_est_problem 403 'no TPM attestation for this key'
assert_eq 0 "$(count devices)" "no pending row"

# A proven session for the CSR's key, as the proof leaves it (the TPM side
# is t_attest_tpm.sh's): the enrollment consumes it and attests the device.
spki=$(spki_sha256 "$T/t1.csr")
prove() {   # PROJECT SPKI_HEX EK_BYTE
    ql_psql "INSERT INTO attest_sessions (id, project_id, ek_cert, ek_sha256, ak_public,
        ak_name, secret_sha256, nonce, state, spki_sha256, expires_at)
        SELECT gen_random_bytes_ql(), p.id, '\\x$3$3', sha256('\\x$3$3'), '\\x0102',
            '\\x000b$3', sha256('\\x00'), sha256('\\x01'), 'proven', '\\x$2',
            now() + interval '5 minutes' FROM projects p WHERE p.name = '$1'" >/dev/null ||
        fail "cannot insert a proven session"
}
ql_psql "CREATE FUNCTION gen_random_bytes_ql() RETURNS bytea LANGUAGE sql AS
    \$\$ SELECT substring(sha256(random()::text::bytea) FROM 1 FOR 16) \$\$" >/dev/null
# A session of another project or another key opens nothing.
prove pq "$spki" aa
prove pt "$(printf '%064d' 0)" aa
est_post pt simpleenroll "$T/t1.b64"
assert_est_problem 403 'no TPM attestation for this key'
prove pt "$spki" ee
est_post pt simpleenroll "$T/t1.b64"
assert_status 200 "enrollment with a proven session"
est_cert_out "$T/t1.crt"
id1=$(device_id_of "$T/t1.csr")
assert_eq "2" "$(count attest_sessions)" "the session used is gone, the others stay"
ekhash=$(ql_psql "SELECT encode(sha256('\\xeeee'), 'hex')")
apic GET "/api/v1/projects/pt/devices/$id1"
assert_status 200
assert_eq "attested $ekhash 000bee []" \
    "$(jq -r '.attestation | "\(.state) \(.ek_sha256) \(.ak_name) \(.differ)"' "$BODY")" \
    "the device's attestation"
jq -e '.attestation.attested_at != null and .attestation.last_quote_at == null' "$BODY" \
    >/dev/null || fail "attested_at/last_quote_at: $(jq -c .attestation "$BODY")"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.attested'
    AND object = '$id1'")" "audited device.attested"
# Quotes: the project asks for them, but a device without AK gets none.
ql_curl -X POST "$(device_url /device/v1/quote/challenge)"
assert_est_problem 401
ql_curl -X POST --cert "$T/t1.crt" --key "$T/t1.key" "$(device_url /device/v1/quote/challenge)"
assert_status 200 "quote challenge of an attested device"
assert_eq "sha256 [0,1,2,3,4,5,6,7] 300" \
    "$(jq -r '"\(.bank) \(.pcrs | tostring) \(.expires_in)"' "$BODY")" "quote challenge body"
assert_eq 32 "$(jq -r .nonce "$BODY" | base64 -d | wc -c)" "a 32-byte nonce"
assert_eq 1 "$(count quote_nonces)" "one nonce outstanding"
ql_curl -X POST --cert "$T/t1.crt" --key "$T/t1.key" -H 'Content-Type: application/json' \
    --data-binary "{\"nonce\":\"$S32\",\"quote\":\"$B64\",\"signature\":\"$B64\",\"pcrs\":{}}" \
    "$(device_url /device/v1/quote)"
assert_est_problem 403 'quote nonce unknown, used or expired'
ql_curl -X POST --cert "$T/t1.crt" --key "$T/t1.key" -H 'Content-Type: application/json' \
    --data-binary "{\"nonce\":\"$S32\",\"quote\":\"$B64\",\"signature\":\"$B64\",\"pcrs\":{\"01\":\"00\"}}" \
    "$(device_url /device/v1/quote)"
assert_est_problem 400 'pcrs'
assert_eq "1 attested" "$(ql_psql "SELECT count(*) || ' ' || min(d.att_state) FROM quote_nonces q
    JOIN devices d ON d.id = q.device")" "refused quotes changed nothing"

# ---- tampered: update and re-enrollment refused until an admin accepts
apic POST "/api/v1/projects/pt/devices/$id1/attestation/accept"
assert_status 409 "accept on a trusted device"
assert_problem 409
assert_match 'not tampered' "$(jq -r .detail "$BODY")" "409 detail"
ref=$(printf '"%s"' "$(printf '%064d' 0)")
ql_psql "UPDATE devices SET att_state = 'tampered', pcr_differ = '{7}',
    pcr_reference = '{\"7\": $ref}', pcr_last = '{\"7\": \"$(printf '%064d' 1)\"}'
    WHERE device_id = '$id1'" >/dev/null
apic GET "/api/v1/projects/pt/devices/$id1"
assert_eq "tampered [7]" "$(jq -r '.attestation | "\(.state) \(.differ | tostring)"' "$BODY")" \
    "a tampered device in the API"
ql_curl --cert "$T/t1.crt" --key "$T/t1.key" "$(device_url /device/v1/update)"
assert_est_problem 403 'device failed attestation: PCR values differ from the reference'
est_csr t1b t1 "/O=pt/CN=$id1"
est_body "$T/t1b.der" "$T/t1b.b64"
est_post pt simplereenroll "$T/t1b.b64" --cert "$T/t1.crt" --key "$T/t1.key"
assert_est_problem 403 'device failed attestation'
# refuse_tampered off: served again (every node's cache is told).
apij PATCH /api/v1/projects/pt '{"attestation": {"refuse_tampered": false}}'
assert_status 200
# update_served: the device's update poll is not refused.
update_served() {
    ql_curl --cert "$T/t1.crt" --key "$T/t1.key" "$(device_url /device/v1/update)"
    [ "$HTTP_STATUS" = 200 ] || [ "$HTTP_STATUS" = 204 ]
}
wait_until 10 update_served ||
    fail "the update poll of a tampered device is refused with refuse_tampered off: $HTTP_STATUS"
apij PATCH /api/v1/projects/pt '{"attestation": {"refuse_tampered": true}}'
assert_status 200
ncerts=$(count certificates)
apic POST "/api/v1/projects/pt/devices/$id1/attestation/accept"
assert_status 200 "accept a tampered device"
assert_eq "trusted []" "$(jq -r '.attestation | "\(.state) \(.differ | tostring)"' "$BODY")" \
    "accepted"
assert_eq "$(printf '%064d' 1)" "$(ql_psql "SELECT pcr_reference->>'7' FROM devices
    WHERE device_id = '$id1'")" "the last quoted values are the reference"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action =
    'device.attestation_accepted' AND object = '$id1'")" "audited"
wait_until 10 update_served || fail "update poll still refused after accept: $(cat "$BODY")"
# Re-enrollment in a tpm project keeps the attested key.
est_key t1c
est_csr t1c t1c "/O=pt/CN=$id1"
est_body "$T/t1c.der" "$T/t1c.b64"
est_post pt simplereenroll "$T/t1c.b64" --cert "$T/t1.crt" --key "$T/t1.key"
assert_est_problem 403 'not the TPM-attested key'
assert_eq "$ncerts" "$(count certificates)" "no certificate for another key"
est_post pt simplereenroll "$T/t1b.b64" --cert "$T/t1.crt" --key "$T/t1.key"
assert_status 200 "re-enrollment with the attested key"

# A device of a project that turns tpm on later has no attestation to keep.
ql_admin_ok create-token pb 1
est_enroll_ok pb b1 -u "b1:$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)"
apic GET "/api/v1/projects/pb/devices/$DEVICE_ID"
assert_eq '{"state":"none","ek_sha256":null,"ak_name":null,"attested_at":null,"last_quote_at":null,"differ":[]}' \
    "$(jq -c .attestation "$BODY")" "attestation of a device never attested"
ql_curl -X POST --cert "$T/b1.crt" --key "$T/b1.key" "$(device_url /device/v1/quote/challenge)"
assert_status 204 "no quote asked of a device without AK"
apij PATCH /api/v1/projects/pb '{"policy": {"tpm": true}}'
assert_status 200
est_csr b1r b1 "/O=pb/CN=$DEVICE_ID"
est_body "$T/b1r.der" "$T/b1r.b64"
est_post pb simplereenroll "$T/b1r.b64" --cert "$T/b1.crt" --key "$T/b1.key"
assert_est_problem 403 'no TPM attestation'

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- [attest] manufacturer_cas: checked by -t, read at start, kept on a
# SIGHUP that cannot read them.
check_t() { (cd / && "$QUARKLINKD" -t -c "$T/quarklinkd.conf") >"$T/t.out" 2>"$T/t.err" </dev/null; }
ql_config attest.manufacturer_cas="$T/nope.pem"
check_t && fail "-t accepted a missing manufacturer CA file"
assert_match 'attest.manufacturer_cas: .*nope.pem' "$(cat "$T/t.err")" "-t names the file"
mkdir -p "$T/cas"
cp "$T/mca.pem" "$T/cas/a.pem"
cp "$T/junk.pem" "$T/cas/b.pem"
ql_config "attest.manufacturer_cas=cas two.pem"
check_t && fail "-t accepted a directory holding a file without certificates"
assert_match 'cas/b.pem: no PEM certificate' "$(cat "$T/t.err")" "-t names the bad file"
rm "$T/cas/b.pem"
check_t || fail "-t refused relative paths of a directory and a file: $(cat "$T/t.err")"
assert_match 'configuration OK' "$(cat "$T/t.out" "$T/t.err")" "-t with manufacturer CAs"
ql_start
grep -q 'attest: 3 TPM manufacturer CAs' "$QL_LOG" || fail "the CAs read at start are not logged"
printf 'garbage\n' >"$T/two.pem"
kill -HUP "$QL_PID" || fail "cannot signal quarklinkd"
kept() { grep -q 'two.pem: no PEM certificate; keeping the TPM manufacturer CAs loaded before' "$QL_LOG"; }
wait_until 10 kept || fail "a SIGHUP with an unreadable CA file is not logged as keeping the old set"
ql_alive || fail "quarklinkd died on a SIGHUP with a bad CA file"
cp "$T/mca.pem" "$T/two.pem"
kill -HUP "$QL_PID" || fail "cannot signal quarklinkd"
reloaded() { [ "$(grep -c 'attest: 2 TPM manufacturer CAs' "$QL_LOG")" -ge 1 ]; }
wait_until 10 reloaded || fail "a SIGHUP does not re-read the CA files"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
