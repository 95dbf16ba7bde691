#!/bin/bash
# Without -f, quarklinkd forks, detaches, writes pid_file, and serves; the
# starting process exits 0.  SIGTERM to the pid in pid_file stops it with
# exit status 0 (as logged: the starter is gone, so the log is where the
# daemon's status shows) and removes pid_file (issue 10, finding 5).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config server.pid_file="$T/quarklinkd.pid"
[ -x "$QUARKLINKD" ] || hard_error "quarklinkd not built: $QUARKLINKD"

# shellcheck disable=SC2086  # QL_WRAPPER is a command prefix
$QL_WRAPPER "$QUARKLINKD" -c "$T/quarklinkd.conf" >"$T/quarklinkd.stdout" 2>"$T/quarklinkd.stderr" </dev/null &
starter=$!
wait_until 15 ql__exited "$starter" || fail "the starting process did not exit (did it fork?)"
wait "$starter"
assert_eq 0 "$?" "exit status of the starting process"

ready() { grep -Eq ' info ready$' "$QL_LOG" 2>/dev/null; }
wait_until 15 ready || fail "the daemon did not log 'info ready'"
[ -s "$T/quarklinkd.pid" ] || fail "pid_file $T/quarklinkd.pid not written"
pid=$(tr -d ' \n' <"$T/quarklinkd.pid")
assert_match '^[0-9]+$' "$pid" "pid_file content"
assert_ne "$starter" "$pid" "the daemon is a forked process"
QL_PID=$pid     # lib.sh's cleanup stops it if the test fails
ql_alive || fail "process $pid from pid_file is not running"

ADMIN_PORT=$(sed -nE 's/.* info listening admin [^ ]*:([0-9]+)$/\1/p' "$QL_LOG" | tail -n 1)
ql_curl "$(admin_url /healthz)"
assert_status 200 "healthz of the daemonized server"
ql_curl "$(admin_url /readyz)"
assert_status 200 "readyz of the daemonized server"

kill -TERM "$pid" || fail "could not signal $pid"
wait_until 20 ql__exited "$pid" || fail "daemon $pid did not exit after SIGTERM"
QL_PID=
assert_file_match ' info exit 0$' "$QL_LOG" "the daemon logged a clean exit"
assert_eq 1 "$(grep -Ec ' info exit [0-9]+$' "$QL_LOG")" "exit lines in the log"
[ ! -e "$T/quarklinkd.pid" ] || fail "pid_file $T/quarklinkd.pid left behind after a clean stop"

# A failed start (no database) exits 1, says so, and leaves no pid_file.
pg_stop
: >"$QL_LOG"
# shellcheck disable=SC2086  # QL_WRAPPER is a command prefix
$QL_WRAPPER "$QUARKLINKD" -c "$T/quarklinkd.conf" >>"$T/quarklinkd.stdout" 2>>"$T/quarklinkd.stderr" </dev/null
assert_ne 0 "$?" "exit status of a start without a database"
exited() { grep -Eq ' info exit [0-9]+$' "$QL_LOG" 2>/dev/null; }
wait_until 30 exited || fail "the daemon without a database did not log its exit"
assert_no_match ' info exit 0$' "$(cat "$QL_LOG")" "a failed start logged exit 0"
[ ! -e "$T/quarklinkd.pid" ] || fail "pid_file left behind after a failed start"
