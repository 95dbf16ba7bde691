#!/bin/bash
# quarklinkd -t checks a configuration: "configuration OK" and exit 0 for a
# good file; exit 1 and "FILE:LINE: reason" on stderr for each kind of mistake.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -x "$QUARKLINKD" ] || hard_error "quarklinkd not built: $QUARKLINKD"
hsm_init
tls_make_certs

# The good configuration lives in its own directory and uses paths relative
# to it; -t is run from / to show they resolve against the file, not the cwd.
D="$T/conf"
mkdir -p "$D"
cp "$T/server.crt" "$T/server.key" "$T/ca.crt" "$T/softhsm2.conf" "$D/"
cp -p "$T/pin" "$D/pin"
good=(
    "# quarklinkd -t test configuration"
    "[server]"
    "log_level = info"
    "debug_endpoints = no"
    "max_body_size = 64K"
    "; a semicolon comment"
    ""
    "[database]"
    "conninfo = host=$T/nowhere port=5432 user=ql dbname=quarklink"
    "pool_size = 4"
    ""
    "[pkcs11]"
    "module = /usr/lib/softhsm/libsofthsm2.so"
    "token_label = quarklink"
    "pin_file = pin"
    "softhsm2_conf = softhsm2.conf"
    ""
    "[admin]"
    "listen = 127.0.0.1:0"
    "tls_cert = server.crt"
    "tls_key = server.key"
    ""
    "[device]"
    "listen = 127.0.0.1:0"
    "tls_cert = server.crt"
    "tls_key = server.key"
    "client_ca = ca.crt"
    ""
    "[pki]"
    "enabled = yes"
    "listen = 127.0.0.1:0"
)

# line_of TEXT: 1-based line number of TEXT in the good configuration.
line_of() {
    local i
    for i in "${!good[@]}"; do
        [ "${good[$i]}" = "$1" ] && { echo $((i + 1)); return 0; }
    done
    hard_error "line '$1' not in the good configuration"
}

# variant NAME LINE_TEXT NEW_TEXT: write $D/NAME.conf, the good configuration
# with LINE_TEXT replaced by NEW_TEXT ("+" prefix: insert NEW_TEXT after it).
variant() {
    local name=$1 at=$2 new=$3 l
    for l in "${good[@]}"; do
        if [ "$l" = "$at" ]; then
            if [[ $new == +* ]]; then printf '%s\n%s\n' "$l" "${new#+}"; else printf '%s\n' "$new"; fi
        else
            printf '%s\n' "$l"
        fi
    done >"$D/$name.conf"
}

# check_t FILE: run quarklinkd -t from /; sets RC, OUT, ERR.
check_t() {
    (cd / && "$QUARKLINKD" -t -c "$1") >"$T/t.out" 2>"$T/t.err" </dev/null
    RC=$?
    OUT=$(cat "$T/t.out")
    ERR=$(cat "$T/t.err")
}

expect_ok() {   # expect_ok NAME
    check_t "$D/$1.conf"
    [ "$RC" = 0 ] || { printf '%s\n' "stderr: $ERR"; ql__fail_at 1 "$1: -t exited $RC, expected 0"; }
    assert_match '^configuration OK$' "$OUT" "$1: stdout"
}

# expect_error NAME LINE REASON_ERE: exit 1 and stderr "NAME.conf:LINE: reason".
expect_error() {
    check_t "$D/$1.conf"
    [ "$RC" = 1 ] || { printf '%s\n' "stdout: $OUT" "stderr: $ERR"; ql__fail_at 1 "$1: -t exited $RC, expected 1"; }
    printf '%s\n' "$ERR" | grep -Eq "(^|/)$1\\.conf:$2: " ||
        { printf '%s\n' "stderr: $ERR"; ql__fail_at 1 "$1: stderr does not name $1.conf:$2"; }
    printf '%s\n' "$ERR" | grep -Eiq "$1\\.conf:$2: .*($3)" ||
        { printf '%s\n' "stderr: $ERR"; ql__fail_at 1 "$1: reason does not match /$3/"; }
    assert_no_match 'configuration OK' "$OUT" "$1: stdout"
}

printf '%s\n' "${good[@]}" >"$D/good.conf"
expect_ok good

# Boundaries that must be accepted.
variant pool1 "pool_size = 4" "pool_size = 1";   expect_ok pool1
variant pool64 "pool_size = 4" "pool_size = 64"; expect_ok pool64
variant boolon "debug_endpoints = no" "debug_endpoints = on"; expect_ok boolon

# Mistakes, each reported with file and line.
variant unknown-key "[server]" "+bogus_key = 1"
expect_error unknown-key "$(( $(line_of "[server]") + 1 ))" 'bogus_key|unknown'

variant unknown-section "[pki]" "+[bogus]"
expect_error unknown-section "$(( $(line_of "[pki]") + 1 ))" 'bogus|unknown'

variant bad-bool "debug_endpoints = no" "debug_endpoints = maybe"
expect_error bad-bool "$(line_of "debug_endpoints = no")" 'debug_endpoints|yes|bool'

variant pool0 "pool_size = 4" "pool_size = 0"
expect_error pool0 "$(line_of "pool_size = 4")" 'pool_size|small|range'

variant pool65 "pool_size = 4" "pool_size = 65"
expect_error pool65 "$(line_of "pool_size = 4")" 'pool_size|large|range'

variant no-equals "log_level = info" "log_level info"
expect_error no-equals "$(line_of "log_level = info")" '=|expected|key'

variant duplicate "log_level = info" "+log_level = debug"
expect_error duplicate "$(( $(line_of "log_level = info") + 1 ))" 'log_level|twice|duplicate'

variant bad-size "max_body_size = 64K" "max_body_size = 64X"
expect_error bad-size "$(line_of "max_body_size = 64K")" 'max_body_size|size'

variant bad-level "log_level = info" "log_level = loud"
expect_error bad-level "$(line_of "log_level = info")" 'log_level|debug'

# A PIN file readable by group/other is refused, naming the file.
for mode in 0644 0640 0604; do
    cp -p "$D/pin" "$D/pin-$mode"
    chmod "$mode" "$D/pin-$mode"
    variant "pin-$mode" "pin_file = pin" "pin_file = pin-$mode"
    check_t "$D/pin-$mode.conf"
    assert_eq 1 "$RC" "pin file mode $mode: exit status"
    assert_match "pin-$mode" "$ERR" "pin file mode $mode: message names the file"
    assert_no_match 'configuration OK' "$OUT" "pin file mode $mode: stdout"
done
# ... while 0400 is fine.
cp -p "$D/pin" "$D/pin-0400"
chmod 0400 "$D/pin-0400"
variant pin-0400 "pin_file = pin" "pin_file = pin-0400"
expect_ok pin-0400

# -t logs in to the token: a wrong PIN or an absent token label fails.
(umask 077 && echo 00000000 >"$D/pin-wrong")
variant pin-wrong "pin_file = pin" "pin_file = pin-wrong"
check_t "$D/pin-wrong.conf"
assert_eq 1 "$RC" "wrong PIN: exit status"
assert_no_match 'configuration OK' "$OUT" "wrong PIN: stdout"
variant no-token "token_label = quarklink" "token_label = no-such-token"
check_t "$D/no-token.conf"
assert_eq 1 "$RC" "absent token label: exit status"
assert_match 'no-such-token' "$ERR" "absent token label: message names the label"

# A missing TLS certificate is refused, naming the file.
variant no-cert "tls_cert = server.crt" "tls_cert = missing-cert.pem"
check_t "$D/no-cert.conf"
assert_eq 1 "$RC" "missing TLS certificate: exit status"
assert_match 'missing-cert\.pem' "$ERR" "missing TLS certificate: message names the file"
assert_no_match 'configuration OK' "$OUT" "missing TLS certificate: stdout"

# A configuration file that does not exist.
check_t "$D/does-not-exist.conf"
assert_eq 1 "$RC" "missing configuration file: exit status"
assert_match 'does-not-exist\.conf' "$ERR" "missing configuration file: message names it"

# --version, --help, and an unknown option.
out=$("$QUARKLINKD" --version </dev/null 2>&1); rc=$?
assert_eq 0 "$rc" "--version exit status"
assert_match '^quarklinkd [0-9]+\.[0-9]+' "$out" "--version output"
out=$("$QUARKLINKD" --help </dev/null 2>&1); rc=$?
assert_eq 0 "$rc" "--help exit status"
assert_match 'quarklinkd' "$out" "--help output"
assert_match '(^|[^a-z-])-c' "$out" "--help mentions -c"
"$QUARKLINKD" --no-such-option </dev/null >/dev/null 2>&1
assert_ne 0 "$?" "an unknown option must not exit 0"
exit 0
