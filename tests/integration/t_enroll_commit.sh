#!/bin/bash
# What changes between an enrollment's decision and its commit (the token
# signs in between) refuses it with nothing written but the spent
# reservation. The token is made slow (tests/p11slow) so that the test can
# act while an EST simpleenroll is signing: the enrollment token revoked
# through the API refuses a first enrollment (403 "enrollment token
# revoked", no device row, no certificate, the token's uses unchanged);
# the device disabled through the API refuses a repeated first enrollment
# of its key (403 "device is disabled", its last_seen unchanged).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 psql jq

SLOW=$top_builddir/tests/p11slow/p11slow.so
[ -r "$SLOW" ] || hard_error "$SLOW not built (make check builds it)"
[ -r /usr/lib/softhsm/libsofthsm2.so ] || skip "SoftHSM module not found"
export P11SLOW_MODULE=/usr/lib/softhsm/libsofthsm2.so P11SLOW_DELAY_MS=1500

ql_pki_start pkcs11.module="$SLOW"
api_admin_session admin
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
tok_id=$(ql_psql "SELECT id FROM enrollment_tokens")

# enroll_bg NAME: simpleenroll NAME's CSR with the token in the background;
# the status in $T/NAME.status when done.
enroll_bg() {
    curl -sS --max-time 60 --cacert "$T/ca.crt" -u "$1:$tok" \
        -H 'Content-Type: application/pkcs10' --data-binary "@$T/$1.b64" \
        -o "$T/$1.out" -w '%{http_code}' \
        "$(device_url /.well-known/est/p1/simpleenroll)" >"$T/$1.status.tmp" 2>"$T/$1.err"
    mv "$T/$1.status.tmp" "$T/$1.status"
}
reserved() { [ "$(ql_psql "SELECT count(*) FROM enrollment_reservations")" = 1 ]; }
answered() { [ -f "$T/$1.status" ]; }
state() {
    ql_psql "SELECT (SELECT count(*) FROM devices) || ' ' || (SELECT count(*) FROM certificates)
             || ' ' || (SELECT uses FROM enrollment_tokens WHERE id = $tok_id)
             || ' ' || (SELECT count(*) FROM enrollment_reservations)"
}

# ---- the token revoked while the certificate of a new device is signed
est_key a
est_csr a a
est_body "$T/a.der" "$T/a.b64"
before=$(state)
enroll_bg a &
pid=$!
QL_CHILD_PIDS+=("$pid")
wait_until 20 reserved || fail "the enrollment never reached the token (no reservation)"
api DELETE "/api/v1/projects/p1/enrollment-tokens/$tok_id"
assert_status 204 "revoke the enrollment token while it is in use"
wait_until 30 answered a || fail "the enrollment did not answer"
wait "$pid"
assert_eq 403 "$(cat "$T/a.status")" "EST after the token was revoked during signing"
assert_eq "enrollment token revoked" "$(jq -r .detail "$T/a.out")" "its reason"
# The devices and certificates counts are those before; the reservation is spent.
after=$(state)
assert_eq "${before% *} 0" "$after" "devices, certificates, token uses and reservations after the refusal"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$(device_id_of "$T/a.csr")'")" \
    "no device row for the refused enrollment"

# ---- a device disabled while a repeated first enrollment of its key signs
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
tok_id=$(ql_psql "SELECT id FROM enrollment_tokens WHERE revoked_at IS NULL")
est_key b
est_csr b b
est_body "$T/b.der" "$T/b.b64"
est_post p1 simpleenroll "$T/b.b64" -u "b:$tok"
assert_status 200 "first enrollment of b"
id_b=$(device_id_of "$T/b.csr")
ql_psql "UPDATE devices SET last_seen = now() - interval '1 day' WHERE device_id = '$id_b'" >/dev/null
seen=$(ql_psql "SELECT last_seen FROM devices WHERE device_id = '$id_b'")
before=$(state)
enroll_bg b &
pid=$!
QL_CHILD_PIDS+=("$pid")
wait_until 20 reserved || fail "the second enrollment of b never reached the token"
api POST "/api/v1/projects/p1/devices/$id_b/disable" '{}'
assert_status 200 "disable b while its key enrolls again"
wait_until 30 answered b || fail "the second enrollment of b did not answer"
wait "$pid"
assert_eq 403 "$(cat "$T/b.status")" "EST after the device was disabled during signing"
assert_eq "device is disabled" "$(jq -r .detail "$T/b.out")" "its reason"
assert_eq "${before% *} 0" "$(state)" "devices, certificates, token uses and reservations after the refusal"
assert_eq "$seen disabled" "$(ql_psql "SELECT last_seen || ' ' || status FROM devices WHERE device_id = '$id_b'")" \
    "b's last_seen and status after the refusal"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
