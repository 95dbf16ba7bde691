#!/bin/bash
# Users and API tokens over the admin API: create, list, log in, change role
# and projects, disable (the user's open session stops working at once),
# admin password reset, password rules, no self-demotion; API tokens shown
# once, working as Bearer, revoked/expired -> 401, project scope -> 404,
# and a caller limited to projects grants no more than it has.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl psql

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

ql_admin_ok create-project pa token
ql_admin_ok create-project pb token
ql_admin_ok create-admin alice
ALICE_PW=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)

# login NAME PASSWORD: 200 leaves the cookie in $T/NAME.jar and the CSRF
# token in $T/NAME.csrf; returns 1 otherwise.
login() {
    rm -f "$T/$1.jar" "$T/$1.csrf"
    ql_curl -c "$T/$1.jar" -H 'Content-Type: application/json' \
        --data-binary "$(jq -cn --arg u "$1" --arg p "$2" '{username: $u, password: $p}')" \
        "$(admin_url /api/v1/login)"
    [ "$HTTP_STATUS" = 200 ] || return 1
    jq -r .csrf_token "$BODY" >"$T/$1.csrf"
}
# as_user NAME METHOD PATH [JSON]: a request in NAME's session.
as_user() {
    local u=$1 m=$2 p=$3
    shift 3
    local -a a=(-X "$m" -b "$T/$u.jar" -H "X-CSRF-Token: $(cat "$T/$u.csrf" 2>/dev/null)")
    [ $# -ge 1 ] && a+=(-H 'Content-Type: application/json' --data-binary "$1")
    ql_curl "${a[@]}" "$(admin_url "$p")"
}
# as_token SECRET METHOD PATH [JSON]: a request with a bearer token.
as_token() {
    local t=$1 m=$2 p=$3
    shift 3
    local -a a=(-X "$m" -H "Authorization: Bearer $t")
    [ $# -ge 1 ] && a+=(-H 'Content-Type: application/json' --data-binary "$1")
    ql_curl "${a[@]}" "$(admin_url "$p")"
}
jqb() { jq -r "$1" "$BODY"; }
audit_count() { ql_psql "SELECT count(*) FROM audit_log WHERE action = '$1' AND object = '$2' AND result = 'ok'"; }

login alice "$ALICE_PW" || fail "alice cannot log in: HTTP $HTTP_STATUS $(cat "$BODY")"

# ---- an admin API token from alice's session: 201, the secret once.
as_user alice POST /api/v1/api-tokens '{"name":"root","role":"admin"}'
assert_status 201 "create an admin API token"
ADM=$(jqb .token)
assert_match '^[A-Za-z0-9_-]{43}$' "$ADM" "token secret is 43 base64url characters"
assert_eq "root|admin|null|null|null" "$(jqb '[.name, .role, .project, .expires_at, .revoked_at] | map(tostring) | join("|")')" \
    "created token fields"
root_id=$(jqb .id)
assert_eq "/api/v1/api-tokens/$root_id" "$(ql_header Location)" "Location of the token"
assert_eq no-store "$(ql_header Cache-Control)" "the secret is not cached"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM api_tokens WHERE id = $root_id AND
    token_hash = sha256(convert_to('$ADM', 'UTF8')) AND created_by = (SELECT id FROM users WHERE name = 'alice')")" \
    "stored as SHA-256 only, created by alice"
as_token "$ADM" GET /api/v1/api-tokens
assert_status 200 "the new token works as Bearer"
assert_eq root "$(jqb '.items[0].name')" "listed"
assert_eq "created_at,expires_at,id,last_used,name,project,revoked_at,role" \
    "$(jqb '.items[0] | keys | join(",")')" "token list items carry no secret or hash"

# ---- users: list and create.
as_token "$ADM" GET /api/v1/users
assert_status 200 "list users"
assert_eq "alice|admin|null|false" "$(jqb '.items[0] | [.name, .role, (.projects | tostring), (.disabled | tostring)] | join("|")')" \
    "alice is an admin of every project"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jqb '.items[0].created_at')" "ISO 8601 UTC"
assert_eq null "$(jqb .next)" "one page"

BOB_PW='correct horse battery'
as_token "$ADM" POST /api/v1/users '{"name":"bob","password":"short","role":"operator"}'
assert_status 422 "password shorter than 12 characters"
assert_match '12 characters' "$(jqb .detail)" "says the rule"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"root\"}"
assert_status 422 "unknown role"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob smith\",\"password\":\"$BOB_PW\",\"role\":\"viewer\"}"
assert_status 422 "user name with a space"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"viewer\",\"email\":\"x\"}"
assert_status 400 "unknown field"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"viewer\",\"projects\":[\"nope\"]}"
assert_status 422 "unknown project"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"viewer\",\"projects\":\"pa\"}"
assert_status 400 "projects must be an array"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":123,\"role\":\"viewer\"}"
assert_status 400 "password must be a string"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM users WHERE name = 'bob'")" "no refused create wrote a row"

as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"operator\",\"projects\":[\"pa\"]}"
assert_status 201 "create bob, operator of pa"
assert_eq "bob|operator|[\"pa\"]|false" "$(jqb '[.name, .role, (.projects | tojson), (.disabled | tostring)] | join("|")')" "bob as created"
assert_eq /api/v1/users/bob "$(ql_header Location)" "Location of the user"
assert_match '^[$]argon2id[$]' "$(ql_psql "SELECT password_hash FROM users WHERE name = 'bob'")" "Argon2id hash stored"
assert_eq 1 "$(audit_count user.create bob)" "user.create audited"
as_token "$ADM" POST /api/v1/users "{\"name\":\"bob\",\"password\":\"$BOB_PW\",\"role\":\"viewer\"}"
assert_status 409 "a second bob"

login bob "$BOB_PW" || fail "bob cannot log in: HTTP $HTTP_STATUS"
as_user bob GET /api/v1/projects/pa
assert_status 200 "bob sees pa"
as_user bob GET /api/v1/projects/pb
assert_status 404 "bob does not see pb"
as_user bob GET /api/v1/users
assert_status 403 "an operator may not list users"
as_user bob POST /api/v1/projects/pa/enrollment-tokens '{}'
assert_status 201 "bob, operator, creates an enrollment token in pa"

# ---- role and projects change at once in bob's open session.
as_token "$ADM" PATCH /api/v1/users/bob '{"role":"viewer"}'
assert_status 200 "demote bob to viewer"
assert_eq viewer "$(jqb .role)" "role in the reply"
as_user bob POST /api/v1/projects/pa/enrollment-tokens '{}'
assert_status 403 "bob, now viewer, may not create tokens"
as_token "$ADM" PATCH /api/v1/users/bob '{"projects":null}'
assert_status 200 "bob to every project"
assert_eq null "$(jqb .projects)" "projects null = every project"
as_user bob GET /api/v1/projects/pb
assert_status 200 "bob now sees pb"
as_token "$ADM" PATCH /api/v1/users/bob '{"projects":["pb","pa"]}'
assert_status 200 "bob to pa and pb"
assert_eq '["pa","pb"]' "$(jqb '.projects | tojson')" "projects by name, sorted"
as_token "$ADM" PATCH /api/v1/users/bob '{}'
assert_status 400 "nothing to change"
as_token "$ADM" PATCH /api/v1/users/bob '{"disabled":"yes"}'
assert_status 400 "disabled must be a boolean"
as_token "$ADM" PATCH /api/v1/users/nobody '{"role":"viewer"}'
assert_status 404 "unknown user"

# ---- disable: bob's session stops working, and he cannot log in.
as_user bob GET /api/v1/session
assert_status 200 "bob's session works before"
as_token "$ADM" PATCH /api/v1/users/bob '{"disabled":true}'
assert_status 200 "disable bob"
assert_eq true "$(jqb .disabled)" "disabled in the reply"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'bob'")" \
    "bob's sessions are gone"
as_user bob GET /api/v1/session
assert_status 401 "bob's open session no longer works"
login bob "$BOB_PW" && fail "a disabled user logged in"
assert_status 401 "disabled bob cannot log in"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'user.update' AND object = 'bob' AND detail = 'disabled'")" \
    "the disable is audited"
as_token "$ADM" PATCH /api/v1/users/bob '{"disabled":false}'
assert_status 200 "enable bob"
login bob "$BOB_PW" || fail "enabled bob cannot log in: HTTP $HTTP_STATUS"

# ---- admin password reset: rules apply; the old password stops working.
as_token "$ADM" PATCH /api/v1/users/bob '{"password":"tooshort"}'
assert_status 422 "a reset follows the password rules"
as_token "$ADM" PATCH /api/v1/users/bob '{"password":"a much better passphrase"}'
assert_status 200 "reset bob's password"
as_user bob GET /api/v1/session
assert_status 401 "a reset by an admin ends bob's sessions"
login bob "$BOB_PW" && fail "the old password still works"
login bob "a much better passphrase" || fail "the new password does not work: HTTP $HTTP_STATUS"
assert_no_match 'much better' "$(cat "$QL_LOG")" "no password in the log"

# ---- no self-demotion or self-disable, by session or by own token.
as_user alice PATCH /api/v1/users/alice '{"role":"operator"}'
assert_status 409 "alice cannot demote herself"
as_user alice PATCH /api/v1/users/alice '{"disabled":true}'
assert_status 409 "alice cannot disable herself"
as_token "$ADM" PATCH /api/v1/users/alice '{"role":"viewer"}'
assert_status 409 "nor through a token she created"
as_user alice PATCH /api/v1/users/alice '{"projects":["pa"]}'
assert_status 409 "nor limit the last admin of every project to one"
assert_eq "admin|" "$(ql_psql "SELECT role, disabled_at FROM users WHERE name = 'alice'")" "alice unchanged"
as_user alice PATCH /api/v1/users/bob '{"role":"admin"}'
assert_status 200 "a session with CSRF may change another user"
as_user alice PATCH /api/v1/users/alice '{"role":"admin"}'
assert_status 200 "keeping one's own admin role is fine"

# ---- API tokens: scope, role, revocation, expiry.
as_token "$ADM" POST /api/v1/api-tokens '{"name":"ci pa","role":"operator","project":"pa","expires_in_days":30}'
assert_status 201 "an operator token of pa"
TPA=$(jqb .token)
tpa_id=$(jqb .id)
assert_eq pa "$(jqb .project)" "project by name"
assert_match '^[0-9]{4}-' "$(jqb .expires_at)" "expires_at set"
as_token "$TPA" GET /api/v1/projects/pa
assert_status 200 "pa token sees pa"
as_token "$TPA" GET /api/v1/projects/pb
assert_status 404 "pa token: project pb does not exist for it"
as_token "$TPA" GET /api/v1/projects/pb/enrollment-tokens
assert_status 404 "pa token: nothing under pb"
as_token "$TPA" POST /api/v1/projects/pa/enrollment-tokens '{}'
assert_status 201 "operator token creates in pa"
as_token "$TPA" GET /api/v1/users
assert_status 403 "operator token may not list users"

as_token "$ADM" POST /api/v1/api-tokens '{"name":"x","role":"superuser"}'
assert_status 422 "unknown role"
as_token "$ADM" POST /api/v1/api-tokens '{"name":"x","role":"viewer","project":"nope"}'
assert_status 422 "unknown project"
as_token "$ADM" POST /api/v1/api-tokens '{"role":"viewer"}'
assert_status 400 "name is required"
as_token "$ADM" POST /api/v1/api-tokens '{"name":"x","role":"viewer","expires_in_days":0}'
assert_status 422 "expires_in_days 1-3650"

as_token "$ADM" POST /api/v1/api-tokens '{"name":"all viewer","role":"viewer"}'
assert_status 201 "a viewer token of every project"
TV=$(jqb .token)
as_token "$TV" GET /api/v1/projects/pb
assert_status 200 "all-project viewer sees pb"
as_token "$TV" POST /api/v1/projects/pb/enrollment-tokens '{}'
assert_status 403 "viewer may not create"

as_token "$ADM" DELETE "/api/v1/api-tokens/$tpa_id"
assert_status 204 "revoke the pa token"
as_token "$TPA" GET /api/v1/projects/pa
assert_status 401 "revoked token -> 401"
as_token "$ADM" DELETE "/api/v1/api-tokens/$tpa_id"
assert_status 409 "revoked twice"
as_token "$ADM" DELETE /api/v1/api-tokens/999999
assert_status 404 "unknown token id"
as_token "$ADM" DELETE /api/v1/api-tokens/abc
assert_status 404 "not a token id"
as_token "$ADM" GET /api/v1/api-tokens
assert_match '^[0-9]{4}-' "$(jq -r --argjson id "$tpa_id" '.items[] | select(.id == $id) | .revoked_at' "$BODY")" \
    "revoked_at listed"
assert_eq 1 "$(audit_count api_token.revoke "$tpa_id")" "revocation audited"

as_token "$ADM" POST /api/v1/api-tokens '{"name":"soon","role":"viewer","expires_in_days":1}'
assert_status 201 "a token for one day"
TE=$(jqb .token)
te_id=$(jqb .id)
as_token "$TE" GET /api/v1/projects
assert_status 200 "works before expiry"
ql_psql "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $te_id"
as_token "$TE" GET /api/v1/projects
assert_status 401 "expired token -> 401"

# Keyset pagination of tokens.
as_token "$ADM" GET '/api/v1/api-tokens?limit=2'
assert_eq 2 "$(jqb '.items | length')" "page of 2"
nxt=$(jqb .next)
assert_eq "$(jqb '.items[1].id')" "$nxt" "cursor = last id"
as_token "$ADM" GET "/api/v1/api-tokens?limit=2&after=$nxt"
assert_status 200 "second page"
[ "$(jqb '.items[0].id')" -gt "$nxt" ] || fail "second page starts after the cursor"
as_token "$ADM" GET '/api/v1/api-tokens?after=x'
assert_status 400 "bad cursor"

# ---- a caller limited to pa grants no more than pa.
as_token "$ADM" POST /api/v1/users "{\"name\":\"dave\",\"password\":\"$BOB_PW\",\"role\":\"admin\",\"projects\":[\"pa\"]}"
assert_status 201 "dave, admin of pa"
login dave "$BOB_PW" || fail "dave cannot log in"
as_user dave POST /api/v1/api-tokens '{"name":"d","role":"admin"}'
assert_status 422 "dave may not make an all-project token"
assert_match 'only for projects you can see' "$(jqb .detail)" "says why"
as_user dave POST /api/v1/api-tokens '{"name":"d","role":"admin","project":"pb"}'
assert_status 422 "pb does not exist for dave"
as_user dave POST /api/v1/api-tokens '{"name":"d","role":"operator","project":"pa"}'
assert_status 201 "dave makes a pa token"
TD=$(jqb .token)
as_user dave POST /api/v1/users "{\"name\":\"erin\",\"password\":\"$BOB_PW\",\"role\":\"viewer\"}"
assert_status 422 "dave may not make an all-project user"
assert_match 'only projects you can see' "$(jqb .detail)" "says why"
as_user dave POST /api/v1/users "{\"name\":\"erin\",\"password\":\"$BOB_PW\",\"role\":\"viewer\",\"projects\":[\"pa\"]}"
assert_status 201 "dave makes a pa user"
as_user dave GET /api/v1/users
assert_eq "dave,erin" "$(jqb '[.items[].name] | join(",")')" "dave lists only users inside pa"
as_user dave PATCH /api/v1/users/alice '{"disabled":true}'
assert_status 404 "alice is outside dave's scope"
as_user dave GET /api/v1/api-tokens
assert_eq pa "$(jqb '[.items[].project] | unique | join(",")')" "dave lists only pa tokens"
as_user dave DELETE "/api/v1/api-tokens/$root_id"
assert_status 404 "dave cannot revoke an all-project token"

# A disabled creator's tokens stop working.
as_token "$TD" GET /api/v1/projects/pa
assert_status 200 "dave's token works"
as_token "$ADM" PATCH /api/v1/users/dave '{"disabled":true}'
assert_status 200 "disable dave"
as_token "$TD" GET /api/v1/projects/pa
assert_status 401 "a disabled user's token no longer works"

# Refused changes leave an audit row of their own (api.c), no change row.
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'user.update' AND object = 'alice' AND result = 'ok' AND detail IS NOT NULL")" \
    "no self-demotion was recorded as a change"
assert_match '^[1-9]' "$(ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied' AND action = 'PATCH /api/v1/users/{user}'")" \
    "refused changes are audited"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
