#!/bin/bash
# An API token never carries more than its creator's current rights: its
# role is the lesser of its own and its creator's, its projects the
# intersection of its own and its creator's, computed at every request.
# Demoting an admin stops the admin's token from creating projects (it
# keeps operator rights); restricting the creator to project pa narrows an
# all-projects token to pa and revokes a token of pb; disabling the creator
# revokes all of them; restoring the creator restores the tokens.
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

api_admin_session root
jqb() { jq -r "$1" "$BODY"; }

# alice, a second admin of every project, makes two tokens in her session.
pw="alice's long passphrase 42"
api POST /api/v1/users "$(jq -cn --arg p "$pw" '{name: "alice", password: $p, role: "admin"}')"
assert_status 201 "alice created"
ROOT_CSRF=$API_CSRF
api_login alice "$pw" -c "$T/alice.cookies" || fail "alice logs in: HTTP $HTTP_STATUS"
ALICE_CSRF=$API_CSRF API_CSRF=$ROOT_CSRF
alice() {
    ql_curl -X POST -b "$T/alice.cookies" -H "X-CSRF-Token: $ALICE_CSRF" \
        -H 'Content-Type: application/json' --data "$1" "$(admin_url /api/v1/api-tokens)"
}
alice '{"name":"all","role":"admin"}'
assert_status 201 "alice's admin token"
ALL=$(jqb .token)
alice '{"name":"pb","role":"operator","project":"pb"}'
assert_status 201 "alice's operator token of pb"
PB=$(jqb .token)

api_bearer "$ALL" POST /api/v1/projects '{"name":"p1"}'
assert_status 201 "an admin's token creates a project"

# ---- demoted: the token keeps only what alice now has.
api PATCH /api/v1/users/alice '{"role":"operator"}'
assert_status 200 "alice demoted to operator"
api_bearer "$ALL" POST /api/v1/projects '{"name":"p2"}'
assert_status 403 "the demoted admin's token can no longer create projects"
assert_match 'operator' "$(api_detail "$BODY")" "refused as an operator"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'p2'")" "no project p2"
api_bearer "$ALL" POST /api/v1/api-tokens '{"name":"x","role":"admin"}'
assert_status 403 "nor make tokens"
api_bearer "$ALL" POST /api/v1/projects/pa/enrollment-tokens '{"name":"e1"}'
assert_status 201 "operator rights remain"
api_bearer "$PB" POST /api/v1/projects/pb/enrollment-tokens '{"name":"e2"}'
assert_status 201 "a token below its creator's role is unchanged"

# ---- restricted to pa: the all-projects token sees pa only; pb's is void.
api PATCH /api/v1/users/alice '{"projects":["pa"]}'
assert_status 200 "alice restricted to pa"
api_bearer "$ALL" GET /api/v1/projects
assert_status 200 "list projects"
assert_eq pa "$(jqb '[.items[].name] | join(",")')" "the all-projects token now sees pa only"
api_bearer "$ALL" GET /api/v1/projects/pb/devices
assert_status 404 "pb is out of scope"
api_bearer "$ALL" GET /api/v1/audit/verify
assert_status 403 "no longer a caller of every project"
api_bearer "$PB" GET /api/v1/projects/pb/devices
assert_status 401 "the token of pb is void: alice may not see pb"

# ---- disabled: every token of alice stops.
api PATCH /api/v1/users/alice '{"disabled":true}'
assert_status 200 "alice disabled"
api_bearer "$ALL" GET /api/v1/projects/pa/devices
assert_status 401 "a disabled creator's token is refused"

# ---- restored: rights come back with the creator's, no token was changed.
api PATCH /api/v1/users/alice '{"disabled":false,"role":"admin","projects":null}'
assert_status 200 "alice restored"
api_bearer "$PB" GET /api/v1/projects/pb/devices
assert_status 200 "the token of pb works again"
api_bearer "$ALL" POST /api/v1/projects '{"name":"p3"}'
assert_status 201 "the admin token creates projects again"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
