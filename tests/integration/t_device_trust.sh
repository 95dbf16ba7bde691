#!/bin/bash
# The device listener trusts a client certificate only as long as it should:
# a disabled device (API or plain SQL, as another node would) and a revoked
# certificate are refused on /device/v1/ on fresh and on resumed TLS
# sessions (openssl s_client -sess_out/-sess_in, TLS 1.2 and 1.3); the
# revoked set is keyed by issuer and serial, so a client_ca certificate that
# shares a revoked serial is not refused; SIGHUP replaces the client trust
# store (a CA removed from client_ca is no longer trusted) and keeps the
# project CAs, also one created after the reload.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

pg_start
hsm_init
tls_make_certs
cp "$T/ca.crt" "$T/clientca.pem"
ql_config "device.client_ca=$T/clientca.pem"
ql_start
pki_fetch_ca root "$T/root.pem"
api_admin_session alice

ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 20
tok=$ADMIN_OUT
declare -A serial id
for d in dev1 dev2 dev3 dev4; do
    est_enroll_ok p1 "$d" -u "$d:$tok"
    serial[$d]=$SERIAL id[$d]=$DEVICE_ID
done

# whoami NAME [CURL ARGS]: GET /device/v1/whoami with $T/NAME.crt.
whoami() {
    local n=$1
    shift
    ql_curl --cert "$T/$n.crt" --key "$T/$n.key" "$@" "$(device_url /device/v1/whoami)"
}
# handshake_refused NAME: the TLS handshake with $T/NAME.crt fails.
handshake_refused() { whoami "$1"; [ "$HTTP_STATUS" = 000 ] && [ "$CURL_RC" != 0 ]; }
# revoke SERIAL: admin revoke, and wait until this node took the NOTIFY.
revoke() {
    ql_admin_ok revoke "$1" 1
    wait_until 10 grep -q "pki: certificate $1 revoked" "$QL_LOG" ||
        fail "the revocation NOTIFY for $1 was not taken"
}

for d in dev1 dev2 dev3 dev4; do
    whoami "$d"
    assert_status 200 "$d accepted before any change"
done

# ---- disabled through the API: refused at once, enabled: accepted again.
api POST "/api/v1/projects/p1/devices/${id[dev1]}/disable"
assert_status 200 "disable dev1"
whoami dev1
assert_status 403 "a disabled device's certificate on /device/v1/whoami"
assert_problem 403
assert_match 'disabled' "$(json_get "$BODY" detail)" "the refusal says why"
api POST "/api/v1/projects/p1/devices/${id[dev1]}/enable"
assert_status 200 "enable dev1"
whoami dev1
assert_status 200 "dev1 accepted again once enabled"

# ---- disabled by plain SQL (as another node's change arrives): no
# notification, no cache, refused on the very next request.
ql_psql "UPDATE devices SET status = 'disabled' WHERE device_id = '${id[dev4]}'" >/dev/null ||
    hard_error "SQL UPDATE failed"
whoami dev4
assert_status 403 "a device disabled in SQL, next request"

# ---- resumed sessions. sclient NAME VERSION [ARGS]: one whoami request
# over openssl s_client; output in $T/sclient.out, HTTP status printed.
sclient() {
    local n=$1 v=$2
    shift 2
    printf 'GET /device/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
        openssl s_client -connect "127.0.0.1:$DEVICE_PORT" "-$v" -CAfile "$T/ca.crt" \
            -cert "$T/$n.crt" -key "$T/$n.key" -ign_eof "$@" >"$T/sclient.out" 2>&1
    # TLS 1.3 session tickets may be printed in the middle of the reply.
    grep -oE 'HTTP/1\.1 [0-9]{3} ' "$T/sclient.out" | head -n 1 | cut -d' ' -f2
}
for v in tls1_2 tls1_3; do
    rm -f "$T/sess.$v.dev2" "$T/sess.$v.dev3"
    st=$(sclient dev2 "$v" -sess_out "$T/sess.$v.dev2")
    assert_eq 200 "$st" "dev2 full handshake ($v)"
    assert_file_match '^New, ' "$T/sclient.out" "a new session ($v)"
    st=$(sclient dev2 "$v" -sess_in "$T/sess.$v.dev2")
    assert_eq 200 "$st" "dev2 resumed before revocation ($v)"
    assert_file_match '^Reused, ' "$T/sclient.out" "the session is resumed ($v)"
    st=$(sclient dev3 "$v" -sess_out "$T/sess.$v.dev3")
    assert_eq 200 "$st" "dev3 full handshake ($v)"
done
revoke "${serial[dev2]}"
handshake_refused dev2 || fail "full handshake with the revoked dev2: HTTP $HTTP_STATUS"
ql_psql "UPDATE devices SET status = 'disabled' WHERE device_id = '${id[dev3]}'" >/dev/null ||
    hard_error "SQL UPDATE failed"
for v in tls1_2 tls1_3; do
    st=$(sclient dev2 "$v" -sess_in "$T/sess.$v.dev2")
    assert_file_match '^Reused, ' "$T/sclient.out" "the revoked dev2's session is resumed ($v)"
    assert_eq 403 "$st" "revoked dev2 on a resumed session ($v)"
    st=$(sclient dev3 "$v" -sess_in "$T/sess.$v.dev3")
    assert_file_match '^Reused, ' "$T/sclient.out" "the disabled dev3's session is resumed ($v)"
    assert_eq 403 "$st" "disabled dev3 on a resumed session ($v)"
done

# ---- issuer and serial together: a client_ca certificate with the
# revoked dev2's serial is another certificate, not revoked.
d="$T/pki-work"
ql__run "twin key" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/twin.key"
ql__run "twin csr" openssl req -new -key "$T/twin.key" -subj "/CN=twin" -out "$d/twin.csr"
ql__run "twin cert" openssl x509 -req -in "$d/twin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -days 2 -extfile "$d/client.ext" -set_serial "0x${serial[dev2]}" -out "$T/twin.crt"
assert_eq "${serial[dev2]}" "$(cert_serial "$T/twin.crt")" "the twin has dev2's serial"
whoami twin
assert_status 200 "a client_ca certificate sharing a revoked serial of another issuer"
whoami client
assert_status 200 "the client_ca certificate before the reload"

# ---- SIGHUP replaces the trust store: the test CA leaves client_ca, the
# rogue CA joins it; the project CAs stay.
cp "$T/rogue-ca.crt" "$T/clientca.pem.new" && mv "$T/clientca.pem.new" "$T/clientca.pem"
kill -HUP "$QL_PID" || fail "could not signal quarklinkd"
wait_until 10 handshake_refused client ||
    fail "after SIGHUP the removed client CA is still trusted: HTTP $HTTP_STATUS"
handshake_refused twin || fail "the twin of the removed CA after SIGHUP: HTTP $HTTP_STATUS"
whoami rogue
assert_status 200 "a CA added to client_ca is trusted after SIGHUP"
whoami dev1
assert_status 200 "project CA still trusted after SIGHUP"
handshake_refused dev2 || fail "revoked dev2 after SIGHUP: HTTP $HTTP_STATUS"
ql_admin_ok create-project p2 token
ql_admin_ok create-token p2 5
est_enroll_ok p2 late -u "late:$ADMIN_OUT"
wait_until 10 whoami late -f || fail "a project created after the reload: HTTP $HTTP_STATUS"
assert_status 200 "a certificate of a project created after SIGHUP"

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
