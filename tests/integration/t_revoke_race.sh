#!/bin/bash
# One certificate revoked by several requests at once (ql_cert_revoke,
# sql/013): exactly one revokes it (200), every other one gets 409, the
# reason is the winner's, there is exactly one audit row; then deleting its
# device revokes the device's other certificate (cessationOfOperation) and
# audits only that one.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start
api_admin_session admin

ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
est_enroll_ok p1 dev1 -u "dev1:$tok"
id1=$DEVICE_ID s1=$SERIAL
est_body "$T/dev1.der" "$T/dev1.b64"
est_post p1 simpleenroll "$T/dev1.b64" -u "dev1:$tok"
assert_status 200 "dev1 enrolls again"
est_cert_out "$T/dev1b.crt"
s1b=$(cert_serial "$T/dev1b.crt")
assert_ne "$s1" "$s1b" "a second certificate"

PAR=8
reasons=(keyCompromise superseded affiliationChanged cessationOfOperation
    unspecified cACompromise privilegeWithdrawn aACompromise)
pids=()
for i in $(seq 0 $((PAR - 1))); do
    curl -sS --max-time 30 --cacert "$T/ca.crt" -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
        -H 'Content-Type: application/json' --data "{\"reason\":\"${reasons[$i]}\"}" \
        -o "$T/r.$i.body" -w '%{http_code}\n' \
        "$(admin_url "/api/v1/projects/p1/certificates/$s1/revoke")" \
        >"$T/r.$i.code" 2>"$T/r.$i.err" &
    pids+=($!)
done
wait "${pids[@]}"   # not a bare wait: the daemon is a child too
codes=$(cat "$T"/r.*.code | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
assert_eq "200:1 409:$((PAR - 1)) " "$codes" "$PAR parallel revocations"
winner=""
for i in $(seq 0 $((PAR - 1))); do
    [ "$(cat "$T/r.$i.code")" = 200 ] && winner=$i
done
assert_eq "${reasons[$winner]}" "$(jq -r .revocation_reason "$T/r.$winner.body")" \
    "the 200 shows its own reason"
assert_ne null "$(jq -r .revoked_at "$T/r.$winner.body")" "the 200 shows when"
for i in $(seq 0 $((PAR - 1))); do
    [ "$i" = "$winner" ] && continue
    assert_eq 'the certificate is already revoked' "$(jq -r .detail "$T/r.$i.body")" "409 detail"
done
api GET "/api/v1/projects/p1/certificates/$s1"
assert_status 200 "get the revoked certificate"
assert_eq "${reasons[$winner]}" "$(jq -r .revocation_reason "$BODY")" \
    "the stored reason is the winner's"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'
    AND object = '$s1'")" "one audit row for one revocation"
assert_eq "reason ${reasons[$winner]}" "$(ql_psql "SELECT detail FROM audit_log
    WHERE action = 'certificate.revoke' AND object = '$s1'")" "the audit row is the winner's"

# Deleting the device revokes what is left (s1b) through the same home.
api DELETE "/api/v1/projects/p1/devices/$id1"
assert_status 204 "delete the device"
assert_eq "5|t" "$(ql_psql "SELECT revocation_reason, revoked_at IS NOT NULL
    FROM certificates WHERE serial = '$s1b'")" "the other certificate: cessationOfOperation"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'
    AND object = '$s1'")" "the already revoked one is not revoked again"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'
    AND object = '$s1b' AND detail LIKE 'reason cessationOfOperation: device % deleted'")" \
    "one audit row for the device's revocation"
assert_eq "1 certificates revoked" "$(ql_psql "SELECT detail FROM audit_log
    WHERE action = 'device.delete' AND object = '$id1'")" "device.delete counts one"
ql_log "ok"
