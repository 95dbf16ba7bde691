#!/bin/bash
# Browser sessions of the admin API: the login cookie's attributes and CSRF
# token, CSRF on cookie-authenticated writes, logout ending the session, one
# answer for unknown users and wrong passwords, per-user and per-address
# login throttling, and the audit rows of logins.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

ql_admin_ok create-admin alice
PW=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
[ -n "$PW" ] || hard_error "create-admin printed no password"
api_user_new otto operator "" alice    # same password as alice

login_rows() { # ACTOR RESULT
    ql_psql "SELECT count(*) FROM audit_log WHERE action = 'login' AND actor = '$1' AND result = '$2'"
}
login_rows_are() { [ "$(login_rows "$1" "$2")" = "$3" ]; }
projects() { ql_psql "SELECT count(*) FROM projects"; }
login_body() { jq -cn --arg u "$1" --arg p "$2" '{username: $u, password: $p}'; }
post_login() { # USER PASSWORD [CURL ARGS...]
    local u=$1 p=$2
    shift 2
    ql_curl -H 'Content-Type: application/json' --data-binary "$(login_body "$u" "$p")" "$@" \
        "$(admin_url /api/v1/login)"
}

# ---- test_login_sets_secure_cookie_and_csrf_token
ok_before=$(login_rows user:alice ok)
api_login alice "$PW" || fail "login as alice: HTTP $HTTP_STATUS $(head -c 300 "$BODY")"
set_cookie=$(ql_header Set-Cookie) || fail "login sets no cookie"
assert_match '^ql_session=[A-Za-z0-9_-]{40,};' "$set_cookie" "session cookie value"
for attr in HttpOnly Secure SameSite=Strict 'Path=/'; do
    assert_match "; *$(ere_quote "$attr")(;|\$)" "$set_cookie" "cookie attribute $attr"
done
assert_match '^[A-Za-z0-9_-]{40,}$' "$API_CSRF" "csrf_token in the login body"
assert_json "$BODY" user alice
assert_json "$BODY" role admin
[ "$API_CSRF" != "$API_COOKIE" ] || fail "the CSRF token is the session secret"
assert_eq "$((ok_before + 1))" "$(login_rows user:alice ok)" "a successful login leaves one audit row"
COOKIE=$API_COOKIE CSRF=$API_CSRF

# ---- test_session_get_with_cookie
ql_curl -H "Cookie: ql_session=$COOKIE" "$(admin_url /api/v1/session)"
assert_status 200 "GET /api/v1/session with the cookie"
assert_json "$BODY" actor user:alice
assert_json "$BODY" role admin
assert_json "$BODY" csrf_token "$CSRF"
# Other cookies around ours do not confuse the parser.
ql_curl -H "Cookie: theme=dark; ql_session=$COOKIE; lang=en" "$(admin_url /api/v1/session)"
assert_status 200 "session cookie among others"

# ---- test_cookie_post_without_csrf_refused
# A second session of the same user: its CSRF token must not work for the first.
api_login alice "$PW" || fail "second login as alice: HTTP $HTTP_STATUS"
OTHER_CSRF=$API_CSRF
[ "$OTHER_CSRF" != "$CSRF" ] || fail "two sessions share a CSRF token"
n0=$(projects)
new_project() { # [CURL ARGS...]
    ql_curl -H "Cookie: ql_session=$COOKIE" -H 'Content-Type: application/json' \
        --data-binary '{"name":"csrf-test"}' "$@" "$(admin_url /api/v1/projects)"
}
new_project
assert_status 403 "cookie POST without X-CSRF-Token"
assert_problem 403
assert_match 'X-CSRF-Token' "$(api_detail "$BODY")" "the refusal names the header"
for bad in "" wrong "${CSRF}x" "${CSRF%?}" "$OTHER_CSRF" "$(printf '%s' "$CSRF" | tr '[:lower:]' '[:upper:]')"; do
    [ "$bad" = "$CSRF" ] && continue
    new_project -H "X-CSRF-Token: $bad"
    assert_status 403 "cookie POST with a wrong X-CSRF-Token '$bad'"
done
assert_eq "$n0" "$(projects)" "no project created without the right CSRF token"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'csrf-test'")" "csrf-test not created"
# Refused writes are audited as denied.
assert_match '^[1-9]' "$(ql_psql "SELECT count(*) FROM audit_log WHERE actor = 'user:alice'
    AND action = 'POST /api/v1/projects' AND result = 'denied'")" "CSRF refusals audited"
# Bearer callers need no CSRF token; a cookie's CSRF token cannot stand in for
# the cookie either.
ql_curl -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
    --data-binary '{"name":"csrf-test"}' "$(admin_url /api/v1/projects)"
assert_status 401 "CSRF token without the cookie"
new_project -H "X-CSRF-Token: $CSRF"
assert_status 201 "cookie POST with the right X-CSRF-Token"
assert_eq "$((n0 + 1))" "$(projects)" "the project was created"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'csrf-test'")" "csrf-test created"
# GETs need no CSRF token.
ql_curl -H "Cookie: ql_session=$COOKIE" "$(admin_url /api/v1/projects/csrf-test)"
assert_status 200 "cookie GET without a CSRF token"

# ---- test_logout_invalidates_cookie
sessions_of_alice() {
    ql_psql "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'alice'"
}
s0=$(sessions_of_alice)
ql_curl -X POST -H "Cookie: ql_session=$COOKIE" "$(admin_url /api/v1/logout)"
assert_status 403 "logout without the CSRF token"
assert_eq "$s0" "$(sessions_of_alice)" "refused logout kept the session"
ql_curl -X POST -H "Cookie: ql_session=$COOKIE" -H "X-CSRF-Token: $CSRF" "$(admin_url /api/v1/logout)"
assert_status 204 "logout"
assert_match '^ql_session=;.*Max-Age=0' "$(ql_header Set-Cookie)" "logout clears the cookie"
assert_eq "$((s0 - 1))" "$(sessions_of_alice)" "logout deleted the session row"
ql_curl -H "Cookie: ql_session=$COOKIE" "$(admin_url /api/v1/session)"
assert_status 401 "the logged-out cookie on GET /api/v1/session"
assert_problem 401
ql_curl -H "Cookie: ql_session=$COOKIE" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
    --data-binary '{"name":"after-logout"}' "$(admin_url /api/v1/projects)"
assert_status 401 "the logged-out cookie on a write"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'after-logout'")" \
    "nothing created with a logged-out cookie"

# A session that expired in the database is refused as well.
api_login alice "$PW" || fail "login as alice: HTTP $HTTP_STATUS"
ql_psql "UPDATE sessions SET expires_at = now() - interval '1 second'
    WHERE id_hash = sha256(convert_to('$API_COOKIE', 'UTF8'))" >/dev/null
ql_curl -H "Cookie: ql_session=$API_COOKIE" "$(admin_url /api/v1/session)"
assert_status 401 "an expired session"
# A disabled user's session is refused.
api_login otto "$PW" || fail "login as otto: HTTP $HTTP_STATUS"
ql_psql "UPDATE users SET disabled_at = now() WHERE name = 'otto'" >/dev/null
ql_curl -H "Cookie: ql_session=$API_COOKIE" "$(admin_url /api/v1/session)"
assert_status 401 "the session of a disabled user"
post_login otto "$PW"
assert_status 401 "a disabled user cannot log in"
ql_psql "UPDATE users SET disabled_at = NULL WHERE name = 'otto'" >/dev/null
# Enabled again, otto logs in (which also clears otto's failure count).
api_login otto "$PW" || fail "otto after re-enabling: HTTP $HTTP_STATUS"

# ---- test_login_failure_same_answer_for_unknown_user_and_wrong_password
bad_before=$(login_rows user:alice denied)
post_login alice "wrong-password-$RANDOM"
assert_status 401 "wrong password"
assert_problem 401
wrong_pw=$(api_problem_summary "$BODY")
[ -z "$(ql_header Set-Cookie)" ] || fail "a failed login set a cookie"
post_login nobody-here "wrong-password-$RANDOM"
assert_status 401 "unknown user"
unknown=$(api_problem_summary "$BODY")
assert_eq "$wrong_pw" "$unknown" "unknown user and wrong password answer alike"
wait_until 5 login_rows_are user:alice denied "$((bad_before + 1))" ||
    fail "a failed login leaves one denied audit row (have $(login_rows user:alice denied))"
wait_until 5 login_rows_are user:nobody-here denied 1 ||
    fail "a failed login of an unknown user leaves a denied audit row"
# The password is in no audit row.
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE detail LIKE '%wrong-password%'
    OR object LIKE '%wrong-password%'")" "passwords are not audited"

# ---- test_login_throttled_per_user_after_5_failures
for i in 1 2 3 4 5; do
    post_login otto "wrong-password-$i"
    assert_status 401 "failed login $i of otto"
done
post_login otto "wrong-password-6"
assert_status 429 "sixth failed login of otto"
assert_problem 429
retry=$(ql_header Retry-After) || fail "429 without Retry-After"
assert_match '^[0-9]+$' "$retry" "Retry-After is seconds"
if [ "$retry" -lt 1 ] || [ "$retry" -gt 900 ]; then fail "Retry-After $retry not in 1-900"; fi
sessions_of_otto() {
    ql_psql "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'otto'"
}
s_otto=$(sessions_of_otto)
post_login otto "$PW"
assert_status 429 "the right password is refused while otto is throttled"
[ -z "$(ql_header Set-Cookie)" ] || fail "a throttled login set a cookie"
assert_eq "$s_otto" "$(sessions_of_otto)" "no new session for a throttled user"
# Per user: alice, from the same address, still logs in.
api_login alice "$PW" || fail "alice is throttled by otto's failures: HTTP $HTTP_STATUS"

# ---- test_login_throttled_per_address_after_20_failures
# From 127.0.0.2 (still loopback), many user names fail; then that address
# is refused for a good login too, while 127.0.0.1 is not.
if curl -sS --max-time 5 --interface 127.0.0.2 --cacert "$T/ca.crt" -o /dev/null \
        "$(admin_url /healthz)" 2>/dev/null; then
    for i in $(seq 1 20); do
        post_login "spray$i" "wrong-password" --interface 127.0.0.2
        assert_status 401 "password spray attempt $i"
    done
    post_login alice "$PW" --interface 127.0.0.2
    assert_status 429 "a good login from an address with 20 failures"
    [ -n "$(ql_header Retry-After)" ] || fail "per-address 429 without Retry-After"
    api_login alice "$PW" || fail "127.0.0.1 is throttled by 127.0.0.2's failures: HTTP $HTTP_STATUS"
else
    ql_log "cannot bind 127.0.0.2; per-address throttling not tested"
fi

# ---- malformed logins are 400, not a login attempt
ql_curl -H 'Content-Type: application/json' --data-binary '{"username":"alice"}' \
    "$(admin_url /api/v1/login)"
assert_status 400 "login without a password"
assert_match 'password' "$(api_detail "$BODY")" "the 400 names the field"

api_alive || fail "daemon does not answer /healthz"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
