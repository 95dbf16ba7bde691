#!/bin/bash
# SIGHUP reopens log_file (log rotation) and reloads the TLS certificates,
# in the same process.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl ss

pg_start
hsm_init
tls_make_certs
ql_config
ql_start
# The process as it started: its pid and its start time (field 22 of
# /proc/PID/stat), which a new process with a reused pid would not share.
pid=$QL_PID
proc_start() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null; }
# listener_pids PORT: the pids that hold the listening socket on PORT.
listener_pids() {
    ss -Htlnp "( sport = :$1 )" | grep -oE 'pid=[0-9]+' | cut -d= -f2 | sort -u | tr '\n' ' '
}
started=$(proc_start "$pid")
[ -n "$started" ] || hard_error "cannot read /proc/$pid/stat"
assert_eq "$pid " "$(listener_pids "$ADMIN_PORT")" "the admin listener's owner before SIGHUP"

ql_curl "$(admin_url /healthz)"
assert_status 200
old_id=$(ql_header X-Request-Id) || fail "no X-Request-Id"
wait_until 5 ql_request_logged "$old_id" GET /healthz 200 admin || fail "request $old_id not logged"

# Rotate the log: move it away, SIGHUP, and new lines go to a new log_file.
mv "$QL_LOG" "$QL_LOG.1"
kill -HUP "$QL_PID" || fail "could not signal quarklinkd"
logged_in_new_file() {
    ql_curl "$(admin_url /healthz)" && [ "$HTTP_STATUS" = 200 ] || return 1
    new_id=$(ql_header X-Request-Id) || return 1
    [ -f "$QL_LOG" ] && ql_request_logged "$new_id" GET /healthz 200 admin
}
wait_until 10 logged_in_new_file || fail "after SIGHUP, requests are not logged to a new $QL_LOG"
assert_file_match " info request id=$old_id " "$QL_LOG.1" "the old log keeps the old lines"
if grep -q " info request id=$old_id " "$QL_LOG"; then fail "old lines in the new log"; fi

# served_serial PORT: serial number of the certificate the listener serves.
served_serial() {
    openssl s_client -connect "127.0.0.1:$1" -CAfile "$T/ca.crt" -verify_return_error \
        </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}
old_serial=$(openssl x509 -in "$T/server.crt" -noout -serial | sed 's/^serial=//')
assert_eq "$old_serial" "$(served_serial "$ADMIN_PORT")" "admin serves the original certificate"

# Replace the certificate and key (atomically, as a deployment would), SIGHUP.
tls_issue server2 ca server localhost
cp "$T/pki-work/server2.key" "$T/server.key.new" && mv "$T/server.key.new" "$T/server.key"
cp "$T/pki-work/server2.crt" "$T/server.crt.new" && mv "$T/server.crt.new" "$T/server.crt"
new_serial=$(openssl x509 -in "$T/server.crt" -noout -serial | sed 's/^serial=//')
assert_ne "$old_serial" "$new_serial" "the new certificate has a new serial"
kill -HUP "$QL_PID" || fail "could not signal quarklinkd"

serves_new() { [ "$(served_serial "$1")" = "$new_serial" ]; }
wait_until 10 serves_new "$ADMIN_PORT" || fail "admin still serves serial $(served_serial "$ADMIN_PORT") after SIGHUP"
wait_until 10 serves_new "$DEVICE_PORT" || fail "device still serves serial $(served_serial "$DEVICE_PORT") after SIGHUP"

ql_curl "$(admin_url /healthz)"
assert_status 200 "healthz with the reloaded certificate"
ql_alive || fail "quarklinkd is not running after SIGHUP"
assert_eq "$started" "$(proc_start "$pid")" "start time of process $pid (a new process?)"
for port in "$ADMIN_PORT" "$DEVICE_PORT" "$PKI_PORT"; do
    assert_eq "$pid " "$(listener_pids "$port")" "the owner of listener port $port after SIGHUP"
done
assert_eq 1 "$(cat "$QL_LOG.1" "$QL_LOG" | grep -c ' info ready$')" "started once (SIGHUP is not a restart)"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
