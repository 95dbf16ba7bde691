#!/bin/bash
# TLS listeners accept TLS 1.2 (AEAD suites only) and TLS 1.3, and refuse
# TLS 1.0/1.1 and non-AEAD TLS 1.2 suites with a server alert.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require openssl

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

# s_client PORT ARGS...: one handshake; output in $T/s_client.out, returns its status.
s_client() {
    local port=$1; shift
    openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -CAfile "$T/ca.crt" -verify_return_error "$@" </dev/null >"$T/s_client.out" 2>&1
}

show() { printf '%s\n' "---- openssl s_client $*:"; cat "$T/s_client.out"; printf '%s\n' "----"; }

# refused PORT ALERT_ERE WHAT ARGS...: the handshake fails, and the client's
# error is the server's alert (not a client-side configuration error).
refused() {
    local port=$1 alert=$2 what=$3; shift 3
    if s_client "$port" "$@"; then
        show "$@"; ql__fail_at 1 "port $port: $what: handshake succeeded, expected a refusal"
    fi
    if ! grep -Eq "$alert" "$T/s_client.out"; then
        show "$@"; ql__fail_at 1 "port $port: $what: failed, but not with the server's alert /$alert/"
    fi
}

# accepted PORT PROTOCOL CIPHER_ERE WHAT ARGS...: the handshake succeeds with
# that protocol and cipher, and the certificate verifies against the test CA.
accepted() {
    local port=$1 proto=$2 cipher=$3 what=$4; shift 4
    if ! s_client "$port" -verify_ip 127.0.0.1 "$@"; then
        show "$@"; ql__fail_at 1 "port $port: $what: handshake failed"
    fi
    # "New, PROTOCOL, Cipher is CIPHER" is printed for every completed
    # handshake (the SSL-Session block is not: in TLS 1.3 it waits for a ticket).
    grep -Eq "^New, $proto, Cipher is $cipher\$" "$T/s_client.out" ||
        { show "$@"; ql__fail_at 1 "port $port: $what: not $proto with cipher /$cipher/"; }
    grep -Eq 'Verify return code: 0 \(ok\)' "$T/s_client.out" ||
        { show "$@"; ql__fail_at 1 "port $port: $what: server certificate did not verify"; }
}

# Old protocols: the client must be allowed to offer them (security level 0),
# so that the failure we see is the server's protocol_version alert (70).
old='DEFAULT:@SECLEVEL=0'
for port in "$ADMIN_PORT" "$DEVICE_PORT"; do
    refused "$port" 'alert protocol version|alert number 70' "TLS 1.1" -tls1_1 -cipher "$old"
    refused "$port" 'alert protocol version|alert number 70' "TLS 1.0" -tls1 -cipher "$old"

    # TLS 1.2 with only CBC (non-AEAD) suites offered -> handshake_failure (40).
    refused "$port" 'alert handshake failure|alert number 40' "TLS 1.2 AES128-SHA256" \
        -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256
    refused "$port" 'alert handshake failure|alert number 40' "TLS 1.2 AES256-SHA384" \
        -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384
    refused "$port" 'alert handshake failure|alert number 40' "TLS 1.2 AES128-SHA" \
        -tls1_2 -cipher "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"

    # TLS 1.2 AEAD suites and TLS 1.3.
    for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 \
             ECDHE-ECDSA-CHACHA20-POLY1305; do
        accepted "$port" TLSv1.2 "$c" "TLS 1.2 $c" -tls1_2 -cipher "$c"
    done
    accepted "$port" TLSv1.3 'TLS_[A-Z0-9_]+' "TLS 1.3" -tls1_3
done

ql_alive || fail "quarklinkd died during the handshake tests"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
