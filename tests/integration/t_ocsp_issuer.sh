#!/bin/bash
# OCSP status and its response cache are keyed by issuer and serial: a
# request naming the wrong issuer (the root, another project's CA) for a
# serial answers "unknown" from that issuer only and never changes what the
# real issuer answers, in either order, with and without a nonce; every
# answer is signed by the issuer the request named; and for every
# certificate of the test the CRL (openssl verify -crl_check) and OCSP agree.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql

ql_pki_start
declare -A tok
for p in demo other; do
    ql_admin_ok create-project "$p" token
    ql_admin_ok create-token "$p" 10
    tok[$p]=$ADMIN_OUT
    pki_fetch_ca "$p" "$T/$p.pem"
done
est_enroll_ok demo rev1 -u "rev1:${tok[demo]}"; s_rev1=$SERIAL
est_enroll_ok demo good1 -u "good1:${tok[demo]}"; s_good1=$SERIAL
est_enroll_ok demo rev2 -u "rev2:${tok[demo]}"; s_rev2=$SERIAL
est_enroll_ok other o1 -u "o1:${tok[other]}"

# ask ISSUER NAME [ARGS...]: status word for the serial of $T/NAME.crt
# asked of ISSUER ($T/ISSUER.pem, whichever CA really issued it); OpenSSL
# accepts only a response signed by the CA the request named.
ask() {
    local issuer=$1 name=$2
    shift 2
    ocsp_status "$T/$issuer.pem" "0x$(cert_serial "$T/$name.crt")" -VAfile "$T/$issuer.pem" "$@"
}
# expect WANT ISSUER NAME [ARGS...]
expect() {
    local want=$1 got
    shift
    got=$(ask "$@") || fail "OCSP ${*}: request failed or did not verify: $got"
    assert_eq "$want" "$got" "OCSP status from $1 for $2 (${*:3})"
}

# revoke SERIAL REASON: admin revoke, then wait for this node to have taken
# the NOTIFY (it logs it), so the questions below run after it.
revoke() {
    ql_admin_ok revoke "$1" "$2"
    wait_until 10 grep -q "pki: certificate $1 revoked" "$QL_LOG" ||
        fail "the revocation NOTIFY for $1 was not taken"
}

# ---- wrong issuer first: the root (which never issued rev1) is asked,
# without a nonce so its answer is cached, before the real issuer.
revoke "$s_rev1" 1
expect unknown root rev1 -no_nonce
expect unknown other rev1 -no_nonce
expect revoked demo rev1
expect revoked demo rev1 -no_nonce
expect revoked demo rev1 -no_nonce
assert_file_match 'Reason: keyCompromise' "$T/ocsp.out" "revocation reason from the real issuer"
expect unknown root rev1 -no_nonce
expect unknown root rev1

# ---- real issuer first (its answer cached), then the wrong ones: no
# "good" or "revoked" from a CA that never issued the serial, with or
# without a nonce.
expect good demo good1 -no_nonce
expect unknown root good1
expect unknown root good1 -no_nonce
expect unknown other good1 -no_nonce
expect good demo good1 -no_nonce
expect good demo good1

revoke "$s_rev2" 4
expect revoked demo rev2 -no_nonce
expect unknown root rev2 -no_nonce
expect unknown other rev2
expect revoked demo rev2 -no_nonce
assert_file_match 'Reason: superseded' "$T/ocsp.out" "reason of rev2"

# ---- a status change after the wrong issuer was asked: good1 was cached
# good (and unknown under root); revoking it reaches the real issuer's answer.
revoke "$s_good1" 5
expect unknown root good1 -no_nonce
expect revoked demo good1 -no_nonce
expect revoked demo good1

# ---- the other project's certificate is unaffected by all of the above.
expect unknown demo o1 -no_nonce
expect good other o1 -no_nonce

# ---- CRL and OCSP agree for every certificate of the test.
for p in demo other; do
    ql_curl "$(pki_url "/pki/crl/$p.crl")"
    assert_status 200 "CRL of $p"
    openssl crl -inform DER -in "$BODY" -out "$T/$p.crl.pem" 2>"$T/openssl.err" ||
        fail "CRL of $p does not parse: $(cat "$T/openssl.err")"
done
for c in demo:rev1 demo:good1 demo:rev2 other:o1; do
    p=${c%%:*} n=${c#*:}
    st=$(ask "$p" "$n") || fail "OCSP for $n failed"
    if out=$(openssl verify -crl_check -CAfile "$T/root.pem" -untrusted "$T/$p.pem" \
        -CRLfile "$T/$p.crl.pem" "$T/$n.crt" 2>&1); then
        crl=good
    elif printf '%s' "$out" | grep -q 'certificate revoked'; then
        crl=revoked
    else
        fail "verify -crl_check of $n: $out"
    fi
    assert_eq "$crl" "$st" "CRL and OCSP agree on $n"
done
assert_eq revoked "$(ask demo rev1)" "rev1 ends revoked"
assert_eq good "$(ask other o1)" "o1 ends good"

# ---- a negative serial is not the certificate with its absolute value.
st=$(ocsp_status "$T/demo.pem" "-0x$s_rev1" -VAfile "$T/demo.pem") ||
    fail "OCSP for a negative serial failed"
assert_eq unknown "$st" "a negative serial is unknown"

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
