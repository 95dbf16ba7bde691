#!/bin/bash
# Session tickets on the device listener (openssl s_client -sess_out /
# -sess_in, TLS 1.2 and 1.3): a second connection resumes ("Reused") and
# still sees the device certificate; once that certificate is revoked
# through the API, a resumed connection's request is refused (403); a
# ticket is accepted under the previous key after one rotation and not
# after two (full handshake); a device ticket does not resume on the admin
# listener, nor after SIGHUP reloads the trust settings.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 jq

pg_start
hsm_init
tls_make_certs
ql_config server.tls_ticket_key_interval=60
ql_start
api_admin_session alice

ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
est_enroll_ok p1 dev1 -u "dev1:$tok"
serial1=$SERIAL
est_enroll_ok p1 dev2 -u "dev2:$tok"

# sclient NAME VERSION PORT [ARGS]: one whoami request over s_client with
# $T/NAME.crt; output in $T/sclient.out, the HTTP status printed.
sclient() {
    local n=$1 v=$2 port=$3
    shift 3
    printf 'GET /device/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
        openssl s_client -connect "127.0.0.1:$port" "-$v" -CAfile "$T/ca.crt" \
            -cert "$T/$n.crt" -key "$T/$n.key" -ign_eof "$@" >"$T/sclient.out" 2>&1
    grep -oE 'HTTP/1\.1 [0-9]{3} ' "$T/sclient.out" | head -n 1 | cut -d' ' -f2
}
# The serial whoami reports, as cert_serial prints one.
whoami_serial() {
    grep -oE '"serial":"[0-9A-F]+"' "$T/sclient.out" | cut -d'"' -f4 | tr 'A-F' 'a-f' |
        sed 's/^0*//'
}
rotations() { grep -c ' info tls: session ticket key [0-9]* in use' "$QL_LOG"; }

# ---- resumption keeps the device's identity.
for v in tls1_2 tls1_3; do
    rm -f "$T/sess.$v"
    st=$(sclient dev1 "$v" "$DEVICE_PORT" -sess_out "$T/sess.$v")
    assert_eq 200 "$st" "dev1 full handshake ($v)"
    assert_file_match '^New, ' "$T/sclient.out" "a new session ($v)"
    [ -s "$T/sess.$v" ] || fail "no session ticket saved ($v)"
    st=$(sclient dev1 "$v" "$DEVICE_PORT" -sess_in "$T/sess.$v")
    assert_file_match '^Reused, ' "$T/sclient.out" "the second connection resumes ($v)"
    assert_eq 200 "$st" "dev1 on a resumed session ($v)"
    assert_eq "${serial1#"${serial1%%[!0]*}"}" "$(whoami_serial)" \
        "the resumed session still has dev1's certificate ($v)"
    st=$(sclient dev1 "$v" "$ADMIN_PORT" -sess_in "$T/sess.$v")
    assert_file_match '^New, ' "$T/sclient.out" "a device ticket on the admin listener ($v)"
done

# ---- revoked through the API: the resumed session is refused per request.
api POST "/api/v1/projects/p1/certificates/$serial1/revoke" '{"reason":"keyCompromise"}'
assert_status 200 "revoke dev1's certificate"
for v in tls1_2 tls1_3; do
    st=$(sclient dev1 "$v" "$DEVICE_PORT" -sess_in "$T/sess.$v")
    assert_file_match '^Reused, ' "$T/sclient.out" "the revoked dev1's session still resumes ($v)"
    assert_eq 403 "$st" "revoked dev1 on a resumed session ($v)"
done

# ---- SIGHUP: tickets from before the reload make a full handshake.
st=$(sclient dev2 tls1_3 "$DEVICE_PORT" -sess_out "$T/sess.hup")
assert_eq 200 "$st" "dev2 before SIGHUP"
n=$(grep -c 'device: TLS certificate reloaded' "$QL_LOG")
kill -HUP "$QL_PID" || fail "could not signal quarklinkd"
reloaded() { [ "$(grep -c 'device: TLS certificate reloaded' "$QL_LOG")" -gt "$n" ]; }
wait_until 10 reloaded || fail "no TLS reload after SIGHUP"
st=$(sclient dev2 tls1_3 "$DEVICE_PORT" -sess_in "$T/sess.hup")
assert_file_match '^New, ' "$T/sclient.out" "a ticket from before SIGHUP"
assert_eq 200 "$st" "dev2 after SIGHUP, full handshake"

# ---- rotation: accepted under the previous key, not after two rotations.
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
ql_config server.tls_ticket_key_interval=4
ql_start
# Both tickets under one key: no rotation while they are issued.
for try in 1 2 3 4 5; do
    r0=$(rotations)
    for v in tls1_2 tls1_3; do
        rm -f "$T/rot.$v"
        st=$(sclient dev2 "$v" "$DEVICE_PORT" -sess_out "$T/rot.$v")
        assert_eq 200 "$st" "dev2 full handshake for the rotation check ($v)"
    done
    [ "$(rotations)" = "$r0" ] && break
    [ "$try" = 5 ] && hard_error "a key rotation during every attempt to issue the tickets"
done
rotated() { [ "$(rotations)" -ge "$1" ]; }
wait_until 30 rotated $((r0 + 1)) || fail "no ticket key rotation within 30 s"
for v in tls1_2 tls1_3; do
    st=$(sclient dev2 "$v" "$DEVICE_PORT" -sess_in "$T/rot.$v")
    assert_file_match '^Reused, ' "$T/sclient.out" "a ticket under the previous key ($v)"
    assert_eq 200 "$st" "dev2 resumed under the previous key ($v)"
done
wait_until 30 rotated $((r0 + 2)) || fail "no second ticket key rotation within 30 s"
for v in tls1_2 tls1_3; do
    st=$(sclient dev2 "$v" "$DEVICE_PORT" -sess_in "$T/rot.$v")
    assert_file_match '^New, ' "$T/sclient.out" "a ticket from before two rotations ($v)"
    assert_eq 200 "$st" "dev2 after a full handshake ($v)"
done

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
