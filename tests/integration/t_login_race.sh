#!/bin/bash
# The login throttle cannot be outrun (issue 10, finding 2): 60 wrong
# passwords for one user arriving at once get at most 5 answers of 401 (the
# limit); the rest are 429, or 503 with Retry-After when the Argon2 queue is
# full.  A login that finds the queue full is 503 with Retry-After and does
# not count as a failure.  After the throttle window the right password
# works again.  The logins are made to arrive together by holding the
# daemon with SIGSTOP until every connection is queued in the kernel.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq ss

WINDOW=10
pg_start
hsm_init
tls_make_certs
ql_config admin.login_window=$WINDOW
ql_start
ql_admin_ok create-admin alice
PW=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)

# conns_queued N: N client connections to the admin port are established
# (the kernel accepts them while the daemon is stopped).
conns_queued() {
    [ "$(ss -Htn state established "( dport = :$ADMIN_PORT )" | wc -l)" -ge "$1" ]
}

# burst OUT BODYFILE...: one POST /api/v1/login per body file, all sent
# while the daemon is stopped and released together; "STATUS RETRY-AFTER"
# per response in OUT.
burst() {
    local out=$1 f
    shift
    local -a args=()
    # --next starts a transfer with its own options, so each repeats them.
    for f in "$@"; do
        args+=(--max-time 60 --cacert "$T/ca.crt" -H 'Content-Type: application/json'
            -w '%{http_code} %header{retry-after}\n' --data-binary "@$f" -o /dev/null
            "$(admin_url /api/v1/login)" --next)
    done
    unset 'args[${#args[@]}-1]'
    kill -STOP "$QL_PID" || hard_error "cannot stop the daemon"
    curl -sS --parallel --parallel-immediate --parallel-max 100 "${args[@]}" \
        >"$out" 2>"$T/burst.err" &
    local cpid=$!
    if ! wait_until 20 conns_queued $#; then
        kill -CONT "$QL_PID"
        wait "$cpid"
        hard_error "only $(ss -Htn state established "( dport = :$ADMIN_PORT )" | wc -l) of $# connections queued"
    fi
    kill -CONT "$QL_PID"
    wait "$cpid"
    [ "$(wc -l <"$out")" = $# ] || fail "$# logins, $(wc -l <"$out") answers: $(cat "$T/burst.err")"
}
count() { grep -c "^$1 " "$2"; }

# ---- 60 wrong passwords at once
for i in $(seq 1 60); do
    jq -cn --arg p "wrong-password-$i" '{username: "alice", password: $p}' >"$T/wrong.$i"
done
denied_rows() { ql_psql "SELECT count(*) FROM audit_log WHERE action = 'login' AND result = 'denied'"; }
denied_are() { [ "$(denied_rows)" = "$1" ]; }
denied_before=$(denied_rows)
burst "$T/race1" "$T"/wrong.*
n401=$(count 401 "$T/race1") n429=$(count 429 "$T/race1") n503=$(count 503 "$T/race1")
ql_log "60 parallel wrong logins: $n401 x 401, $n429 x 429, $n503 x 503"
[ "$n401" -le 5 ] || fail "$n401 wrong passwords were checked, the limit is 5"
[ "$n401" -ge 1 ] || fail "no password was checked at all"
assert_eq 60 "$((n401 + n429 + n503))" "answers other than 401, 429 and 503: $(sort "$T/race1" | uniq -c)"
[ "$n429" -ge 1 ] || fail "no 429 among 60 wrong logins"
assert_no_match '^(429|503) $' "$(cat "$T/race1")" "a 429 or 503 without Retry-After"
wait_until 5 denied_are "$((denied_before + n401))" ||
    fail "$(denied_rows) denied login audit rows, expected $((denied_before + n401)): one per 401"

# ---- throttled now, even with the right password; after the window it works
api_login alice "$PW" && fail "the right password is accepted while alice is throttled"
assert_status 429 "the right password during the window"
retry=$(ql_header Retry-After) || fail "429 without Retry-After"
if [ "$retry" -lt 1 ] || [ "$retry" -gt "$WINDOW" ]; then fail "Retry-After $retry not in 1-$WINDOW"; fi
# Polled once a second: each poll is a real login attempt.
NEXT_TRY=0
login_again() {
    [ "$SECONDS" -ge "$NEXT_TRY" ] || return 1
    NEXT_TRY=$((SECONDS + 1))
    api_login alice "$PW" && return 0
    [ "$HTTP_STATUS" = 429 ] || fail "login during the window: HTTP $HTTP_STATUS, expected 429"
    return 1
}
wait_until $((WINDOW + 5)) login_again || fail "the right password still fails after the window"
ql_log "the right password works again after the $WINDOW s window"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- a full hashing queue is 503 + Retry-After, not a failed login
ql_config admin.login_window=$WINDOW admin.hash_queue_max=1
ql_start
for i in 1 2 3 4 5 6 7 8; do
    api_user_new "u$i" viewer "" alice
    jq -cn --arg u "u$i" --arg p "$PW" '{username: $u, password: $p}' >"$T/right.$i"
done
burst "$T/race2" "$T"/right.*
n200=$(count 200 "$T/race2") n503=$(count 503 "$T/race2")
ql_log "8 parallel right logins, hash queue of 1: $n200 x 200, $n503 x 503"
assert_eq 8 "$((n200 + n503))" "answers other than 200 and 503: $(sort "$T/race2" | uniq -c)"
[ "$n503" -ge 1 ] || fail "no 503 with a hash queue of 1 and 8 logins at once"
[ "$n200" -ge 1 ] || fail "no login succeeded"
assert_no_match '^503 $' "$(cat "$T/race2")" "a 503 without Retry-After"
# A 503 is not a wrong password: every user logs in now, and no refused
# login was audited.
for i in 1 2 3 4 5 6 7 8; do
    api_login "u$i" "$PW" || fail "u$i after the 503s: HTTP $HTTP_STATUS $(head -c 200 "$BODY")"
done
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'login'
    AND result = 'denied' AND actor LIKE 'user:u_'")" "denied logins of u1-u8"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
