#!/bin/bash
# Readiness for systemd's Type=notify (sd_notify protocol, no libsystemd):
# with NOTIFY_SOCKET set, quarklinkd sends READY=1 once every listener
# accepts connections, RELOADING=1 then READY=1 around SIGHUP, and
# STOPPING=1 on SIGTERM; an abstract "@name" socket works too, and an
# unreachable socket does not stop the daemon from serving.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl python3

# notify_receiver SOCKET OUT: a datagram socket bound to SOCKET (a path, or
# @name for the abstract namespace) that appends each message to OUT, every
# line as "LINE<TAB>listeners=N/M": of the M listeners the daemon has logged
# by then, N accepted a TCP connection at the moment the message arrived.
# Exits after 120 s at the latest; prints its pid.
notify_receiver() {
    python3 - "$1" "$2" "$QL_LOG" <<'EOF' >/dev/null 2>"$2.err" &
import re, socket, sys, time
path, out, log = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
open(out + ".bound", "w").close()
deadline = time.monotonic() + 120
while True:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        data = s.recv(4096)
    except socket.timeout:
        break
    try:
        text = open(log, errors="replace").read()
    except OSError:
        text = ""
    ports = re.findall(r" info listening [a-z]+ \S*:([0-9]+)$", text, re.M)
    up = 0
    for p in ports:
        try:
            socket.create_connection(("127.0.0.1", int(p)), timeout=2).close()
            up += 1
        except OSError:
            pass
    with open(out, "a") as f:
        for line in data.decode(errors="replace").split("\n"):
            f.write("%s\tlisteners=%d/%d\n" % (line, up, len(ports)))
EOF
    echo $!
}

# received OUT N: OUT holds at least N lines.
received() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

pg_start
hsm_init
tls_make_certs
ql_config

# 1. A socket path: READY=1 when serving, RELOADING=1/READY=1 on SIGHUP,
#    STOPPING=1 on SIGTERM, in that order and nothing else.
out=$T/notify.out
rpid=$(notify_receiver "$T/notify.sock" "$out")
wait_until 10 test -e "$out.bound" || fail "notify receiver did not bind: $(cat "$out.err")"
NOTIFY_SOCKET=$T/notify.sock ql_start
wait_until 10 received "$out" 1 || fail "no notification after 'info ready'"
assert_eq "$(printf 'READY=1\tlisteners=3/3')" "$(head -n 1 "$out")" \
    "first notification: READY=1 with all three listeners accepting"

kill -HUP "$QL_PID" || fail "could not signal quarklinkd"
wait_until 10 received "$out" 4 || fail "no RELOADING=1/READY=1 after SIGHUP: $(cat "$out")"
assert_match '^RELOADING=1	' "$(sed -n 2p "$out")" "SIGHUP: RELOADING=1 first"
assert_match '^MONOTONIC_USEC=[0-9]+	' "$(sed -n 3p "$out")" "RELOADING=1 carries MONOTONIC_USEC"
assert_match '^READY=1	listeners=3/3$' "$(sed -n 4p "$out")" "SIGHUP: READY=1 once reloaded"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
wait_until 10 received "$out" 5 || fail "no STOPPING=1 after SIGTERM: $(cat "$out")"
assert_match '^STOPPING=1	' "$(sed -n 5p "$out")" "SIGTERM: STOPPING=1"
assert_eq 5 "$(wc -l <"$out")" "notifications of one start, reload and stop"
kill "$rpid" 2>/dev/null

# 2. The abstract namespace (NOTIFY_SOCKET=@name), as systemd may use;
#    a new log, so that the receiver sees this start's listeners only.
ql_config server.log_file="$T/quarklinkd-2.log"
out=$T/abstract.out
name="@quarklink-test-$$-$RANDOM"
rpid=$(notify_receiver "$name" "$out")
wait_until 10 test -e "$out.bound" || fail "abstract receiver did not bind: $(cat "$out.err")"
NOTIFY_SOCKET=$name ql_start
wait_until 10 received "$out" 1 || fail "no READY=1 on abstract socket $name"
assert_eq "$(printf 'READY=1\tlisteners=3/3')" "$(head -n 1 "$out")" "READY=1 on $name"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
wait_until 10 received "$out" 2 || fail "no STOPPING=1 on $name"
assert_match '^STOPPING=1	' "$(sed -n 2p "$out")" "STOPPING=1 on $name"
kill "$rpid" 2>/dev/null

# 3. Nobody listening: the daemon warns in its log and serves anyway.
NOTIFY_SOCKET=$T/nobody.sock ql_start
ql_curl "$(admin_url /healthz)"
assert_status 200 "serving although NOTIFY_SOCKET is unreachable"
assert_file_match " warn notify $(ere_quote "$T/nobody.sock"): " "$QL_LOG" "unreachable NOTIFY_SOCKET logged"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
