#!/bin/bash
# The audit log over the admin API: newest first with keyset pagination,
# filters (actor, action prefix, since, project), project scope (a caller
# of project A sees only A's rows, no rows without a project), and
# a refusal naming a project the caller cannot see stays out of that
# project's log, and GET /api/v1/audit/verify: ok on an intact chain, the
# first broken id after a row is changed in the database, and after a
# middle row is deleted.
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

# new_token ROLE PROJECT: an API token row ("" = every project); prints the secret.
new_token() {
    local s
    s=$(openssl rand -hex 24)
    ql_psql "INSERT INTO api_tokens (name, token_hash, role, project_id) VALUES ('t $1',
        sha256(convert_to('$s', 'UTF8')), '$1', (SELECT id FROM projects WHERE name = '$2'))" ||
        hard_error "cannot insert a token"
    printf '%s\n' "$s"
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

ADM=$(new_token admin "")
OPA=$(new_token operator pa)
VWA=$(new_token viewer pa)
adm_actor="token:$(ql_psql "SELECT id FROM api_tokens WHERE name = 't admin'")"

# Some history: tokens in pa and pb, an allowlist batch in pb, a user.
as_token "$OPA" POST /api/v1/projects/pa/enrollment-tokens '{"name":"a1"}'
assert_status 201 "token in pa"
as_token "$ADM" POST /api/v1/projects/pb/enrollment-tokens '{"name":"b1"}'
assert_status 201 "token in pb"
as_token "$ADM" POST /api/v1/projects/pb/allowlist '["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]'
assert_status 200 "allowlist in pb"
as_token "$ADM" POST /api/v1/users '{"name":"bob","password":"correct horse battery","role":"viewer"}'
assert_status 201 "a user (no project)"
as_token "$OPA" POST /api/v1/projects/pa/enrollment-tokens '{"max_uses":-1}'
assert_status 422 "a refused change"
denied() { [ "$(ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied'")" = 1 ]; }
wait_until 5 denied || fail "the refused change was not audited"
total=$(ql_psql "SELECT count(*) FROM audit_log")

# ---- list: newest first, every field.
as_token "$ADM" GET /api/v1/audit
assert_status 200 "list"
assert_eq "$total" "$(jqb '.items | length')" "all rows on one page"
assert_eq "$(ql_psql "SELECT max(id) FROM audit_log")" "$(jqb '.items[0].id')" "newest first"
assert_eq true "$(jqb '[.items[].id] | . == (sort | reverse)')" "ids descending"
assert_eq "action,actor,at,detail,id,object,project,result" "$(jqb '.items[0] | keys | join(",")')" "item fields"
assert_eq "POST /api/v1/projects/{project}/enrollment-tokens|denied|HTTP 422|pa" \
    "$(jqb '.items[0] | [.action, .result, .detail, .project] | join("|")')" "the refused change, newest"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jqb '.items[0].at')" "ISO 8601 UTC"
assert_eq "user.create|bob|null" "$(jqb '.items[1] | [.action, .object, (.project | tostring)] | join("|")')" \
    "a row without a project"

# ---- pagination.
as_token "$ADM" GET '/api/v1/audit?limit=3'
assert_eq 3 "$(jqb '.items | length')" "page of 3"
cur=$(jqb .next)
assert_eq "$(jqb '.items[2].id')" "$cur" "cursor = last id"
as_token "$ADM" GET "/api/v1/audit?limit=3&after=$cur"
assert_eq "$((cur - 1))" "$(jqb '.items[0].id')" "next page continues below the cursor"
as_token "$ADM" GET '/api/v1/audit?after=-5'
assert_status 400 "bad cursor"
as_token "$ADM" GET '/api/v1/audit?limit=0'
assert_status 400 "bad limit"

# ---- filters.
as_token "$ADM" GET '/api/v1/audit?action=enrollment_token.'
assert_eq "enrollment_token.create,enrollment_token.create" "$(jqb '[.items[].action] | join(",")')" \
    "action is a prefix"
as_token "$ADM" GET '/api/v1/audit?action=enrollment_token%25'
assert_eq 0 "$(jqb '.items | length')" "% is not a wildcard"
as_token "$ADM" GET '/api/v1/audit?actor=cli'
assert_eq "cli" "$(jqb '[.items[].actor] | unique | join(",")')" "actor filter"
assert_eq 2 "$(jqb '[.items[] | select(.action == "project.create")] | length')" "the CLI created two projects"
as_token "$ADM" GET "/api/v1/audit?actor=$adm_actor&project=pb"
assert_eq "allowlist.add,enrollment_token.create" "$(jqb '[.items[].action] | join(",")')" "actor and project"
assert_eq "1 sent, 1 added, 0 already present" "$(jqb '.items[0].detail')" "detail"
as_token "$ADM" GET '/api/v1/audit?project=nope'
assert_eq 0 "$(jqb '.items | length')" "unknown project: nothing"
as_token "$ADM" GET "/api/v1/audit?since=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
assert_eq 0 "$(jqb '.items | length')" "nothing since an hour from now"
as_token "$ADM" GET "/api/v1/audit?since=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
assert_eq "$total" "$(jqb '.items | length')" "everything since an hour ago"
as_token "$ADM" GET '/api/v1/audit?since=yesterday-ish'
assert_status 400 "since must be a timestamp"
assert_match 'since' "$(jqb .detail)" "names the parameter"

# ---- scope: pa's callers see pa's rows only.
for t in "$VWA" "$OPA"; do
    as_token "$t" GET /api/v1/audit
    assert_status 200 "a pa caller lists the audit log"
    assert_eq pa "$(jqb '[.items[].project] | unique | map(tostring) | join(",")')" "only pa rows, none without a project"
    assert_eq "$(ql_psql "SELECT count(*) FROM audit_log WHERE project_id = (SELECT id FROM projects WHERE name = 'pa')")" \
        "$(jqb '.items | length')" "every pa row"
done
as_token "$VWA" GET '/api/v1/audit?project=pb'
assert_eq 0 "$(jqb '.items | length')" "pb's rows stay hidden when asked for"
as_token "$VWA" GET /api/v1/audit/verify
assert_status 403 "verify is for admins"

# ---- a refusal naming a project the caller cannot see is not written
# into that project's log (pa's token cannot add rows to pb's), but into
# the installation's, once.
pb_log() { ql_psql "SELECT count(*) || ':' || coalesce(max(id), 0) FROM audit_log
                    WHERE project_id = (SELECT id FROM projects WHERE name = 'pb')"; }
pb_before=$(pb_log)
n_denied=$(ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied'")
opa_actor="token:$(ql_psql "SELECT id FROM api_tokens WHERE name = 't operator'")"
as_token "$OPA" POST /api/v1/projects/pb/enrollment-tokens '{"name":"intruder"}'
assert_status 404 "pb is invisible to pa's token"
as_token "$OPA" DELETE /api/v1/projects/pb/allowlist/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
assert_status 404 "pb is invisible to pa's token (delete)"
two_more() { [ "$(ql_psql "SELECT count(*) FROM audit_log WHERE result = 'denied'")" = $((n_denied + 2)) ]; }
wait_until 5 two_more || fail "the refusals were not audited"
assert_eq "$pb_before" "$(pb_log)" "pb's log is unchanged"
assert_eq "$opa_actor||$opa_actor|" "$(ql_psql "SELECT string_agg(actor || '|' || coalesce(project_id::text, ''), '|' ORDER BY id)
    FROM audit_log WHERE result = 'denied' AND actor = '$opa_actor' AND object LIKE '/api/v1/projects/pb/%'")" \
    "each refusal once, installation-level"
as_token "$OPA" POST /api/v1/projects/pa/enrollment-tokens '{"max_uses":-1}'
assert_status 422 "a refusal in the caller's own project"
pa_refusal() { [ "$(ql_psql "SELECT p.name FROM audit_log a JOIN projects p ON p.id = a.project_id
    WHERE a.result = 'denied' ORDER BY a.id DESC LIMIT 1")" = pa ]; }
wait_until 5 pa_refusal || fail "a refusal in pa is not in pa's log"
total=$(ql_psql "SELECT count(*) FROM audit_log")

# ---- verify: intact, a changed row, restored, a deleted middle row.
as_token "$ADM" GET /api/v1/audit/verify
assert_status 200 "verify"
assert_eq "$total|true|null" "$(jqb '[.rows, .ok, .first_broken_id] | map(tostring) | join("|")')" "intact chain"
mid=$(ql_psql "SELECT id FROM audit_log WHERE action = 'enrollment_token.create' AND object IS NOT NULL ORDER BY id LIMIT 1")
orig=$(ql_psql "SELECT detail FROM audit_log WHERE id = $mid")
ql_psql "UPDATE audit_log SET detail = 'x' WHERE id = $mid"
as_token "$ADM" GET /api/v1/audit/verify
assert_status 200 "verify a tampered log"
assert_eq "$total|false|$mid" "$(jqb '[.rows, .ok, .first_broken_id] | map(tostring) | join("|")')" \
    "a changed detail is reported at its row"
ql_psql "UPDATE audit_log SET detail = '$orig' WHERE id = $mid"
ql_psql "UPDATE audit_log SET actor = 'user:mallory' WHERE id = $((mid + 1))"
as_token "$ADM" GET /api/v1/audit/verify
assert_eq "false|$((mid + 1))" "$(jqb '[.ok, .first_broken_id] | map(tostring) | join("|")')" "a changed actor too"
ql_psql "UPDATE audit_log SET actor = '$adm_actor' WHERE id = $((mid + 1))"
as_token "$ADM" GET /api/v1/audit/verify
assert_eq "true" "$(jqb .ok)" "restored rows verify again"
# New rows keep chaining while verify reads (the verify itself writes none).
as_token "$ADM" POST /api/v1/projects/pa/enrollment-tokens '{}'
assert_status 201 "one more change"
gone=$(ql_psql "SELECT id FROM audit_log WHERE id > $mid ORDER BY id OFFSET 1 LIMIT 1")
after_gone=$(ql_psql "SELECT min(id) FROM audit_log WHERE id > $gone")
ql_psql "DELETE FROM audit_log WHERE id = $gone"
as_token "$ADM" GET /api/v1/audit/verify
assert_eq "$total|false|$after_gone" "$(jqb '[.rows, .ok, .first_broken_id] | map(tostring) | join("|")')" \
    "a deleted middle row breaks the link of the row after it"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
