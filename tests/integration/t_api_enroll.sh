#!/bin/bash
# Enrollment tokens and the allowlist over the admin API: a token created
# by the API (secret shown once, listed without it) enrolls a device over
# EST, and once revoked no longer does; tokens are per project; allowlist
# bulk add as a JSON array, {"device_ids": [...]} and CSV (header, CRLF),
# all or nothing (one bad ID in 1000 writes nothing), one audit row per
# batch; an allowlisted device enrolls without a token; remove.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl psql base32 base64

ql_pki_start
ql_admin_ok create-project p1 token
ql_admin_ok create-project p2 token
ql_admin_ok create-project p3 allowlist

# new_token ROLE PROJECT: an API token row ("" = every project); prints the secret.
new_token() {
    local s
    s=$(openssl rand -hex 24)
    ql_psql "INSERT INTO api_tokens (name, token_hash, role, project_id) VALUES ('t $1',
        sha256(convert_to('$s', 'UTF8')), '$1', (SELECT id FROM projects WHERE name = '$2'))" ||
        hard_error "cannot insert a token"
    printf '%s\n' "$s"
}
ADM=$(new_token admin "")
OP1=$(new_token operator p1)
VW1=$(new_token viewer p1)

# as_token SECRET METHOD PATH [BODY [CONTENT-TYPE]]: a request with a bearer token.
as_token() {
    local t=$1 m=$2 p=$3
    shift 3
    local -a a=(-X "$m" -H "Authorization: Bearer $t")
    [ $# -ge 1 ] && a+=(-H "Content-Type: ${2:-application/json}" --data-binary "$1")
    ql_curl "${a[@]}" "$(admin_url "$p")"
}
jqb() { jq -r "$1" "$BODY"; }
# new_ids N: N fresh random device IDs, one a line.
new_ids() {
    head -c $(( $1 * 20 )) /dev/urandom | base32 -w 0 | tr -d = | tr '[:upper:]' '[:lower:]' | fold -w 32
}
allow_rows() { ql_psql "SELECT count(*) FROM allowlist WHERE project_id = (SELECT id FROM projects WHERE name = '$1')"; }
audit_rows() { ql_psql "SELECT count(*) FROM audit_log WHERE action = '$1' AND result = 'ok'"; }

T1=/api/v1/projects/p1/enrollment-tokens

# ---- create: 201, the secret once, stored as its SHA-256 only.
as_token "$OP1" POST "$T1" '{"name":"batch 1","max_uses":5,"valid_days":7}'
assert_status 201 "create an enrollment token"
tok=$(jqb .token)
tid=$(jqb .id)
assert_match '^[A-Za-z0-9_-]{43}$' "$tok" "secret is 43 base64url characters"
assert_eq "batch 1|5|0|null" "$(jqb '[.name, .max_uses, .uses, .revoked_at] | map(tostring) | join("|")')" "fields"
assert_eq "$T1/$tid" "$(ql_header Location)" "Location"
assert_eq no-store "$(ql_header Cache-Control)" "the secret is not cached"
exp=$(date -d "$(jqb .expires_at)" +%s) || fail "expires_at is not a date"
now=$(date +%s)
hours=$(( (exp - now) / 3600 ))
{ [ "$hours" -ge 167 ] && [ "$hours" -le 168 ]; } ||
    fail "expires_at is not 7 days away: $(jqb .expires_at)"
assert_eq "5|batch 1" "$(ql_psql "SELECT max_uses, name FROM enrollment_tokens WHERE id = $tid
    AND token_hash = sha256(convert_to('$tok', 'UTF8'))")" "stored by hash"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'enrollment_token.create'
    AND object = '$tid' AND actor LIKE 'token:%' AND project_id = (SELECT id FROM projects WHERE name = 'p1')")" \
    "creation audited with the project"

as_token "$OP1" POST "$T1" '{}'
assert_status 201 "all fields optional"
assert_eq "null|1000" "$(jqb '[.name, .max_uses] | map(tostring) | join("|")')" "defaults: no name, 1000 uses"
exp=$(date -d "$(jqb .expires_at)" +%s)
[ $(( (exp - now) / 86400 )) -ge 29 ] || fail "default validity is not 30 days: $(jqb .expires_at)"

as_token "$OP1" POST "$T1" '{"max_uses":0}'
assert_status 422 "max_uses 0"
as_token "$OP1" POST "$T1" '{"max_uses":100000001}'
assert_status 422 "max_uses above 100000000"
as_token "$OP1" POST "$T1" '{"valid_days":3651}'
assert_status 422 "valid_days above 3650"
as_token "$OP1" POST "$T1" '{"name":5}'
assert_status 400 "name must be a string"
as_token "$OP1" POST "$T1" '{"uses":5}'
assert_status 400 "unknown field"
as_token "$OP1" POST "$T1" '{}' text/plain
assert_status 415 "JSON only"
as_token "$VW1" POST "$T1" '{}'
assert_status 403 "a viewer may not create tokens"

# ---- list: no secret, no hash; keyset pagination by id.
as_token "$VW1" GET "$T1"
assert_status 200 "a viewer lists tokens"
assert_eq 2 "$(jqb '.items | length')" "two tokens"
assert_eq "created_at,expires_at,id,max_uses,name,revoked_at,uses" "$(jqb '.items[0] | keys | join(",")')" \
    "list items carry no secret or hash"
assert_no_match "$tok" "$(cat "$BODY")" "the secret is not listed"
as_token "$VW1" GET "$T1?limit=1"
assert_eq "$tid" "$(jqb .next)" "cursor after a full page"
as_token "$VW1" GET "$T1?limit=1&after=$tid"
assert_eq 1 "$(jqb '.items | length')" "second page"
[ "$(jqb '.items[0].id')" -gt "$tid" ] || fail "second page is after the cursor"
as_token "$VW1" GET "$T1?after=zz"
assert_status 400 "bad cursor"
as_token "$ADM" GET /api/v1/projects/p2/enrollment-tokens
assert_eq 0 "$(jqb '.items | length')" "p2 has none of p1's tokens"
as_token "$OP1" GET /api/v1/projects/p2/enrollment-tokens
assert_status 404 "a p1 token does not see p2"

# ---- the API's token enrolls over EST, and counts.
est_enroll_ok p1 dev1 -u "dev1:$tok"
as_token "$VW1" GET "$T1"
assert_eq 1 "$(jq -r --argjson id "$tid" '.items[] | select(.id == $id) | .uses' "$BODY")" "one use listed"
est_key dev1b
est_csr dev1b dev1b
est_body "$T/dev1b.der" "$T/dev1b.b64"
est_post p2 simpleenroll "$T/dev1b.b64" -u "dev1b:$tok"
assert_est_problem 401 'invalid enrollment token'

# ---- revoke: 204, then EST refuses it; 409 twice; 404 elsewhere.
as_token "$ADM" DELETE "/api/v1/projects/p2/enrollment-tokens/$tid"
assert_status 404 "p1's token is unknown under p2"
as_token "$VW1" DELETE "$T1/$tid"
assert_status 403 "a viewer may not revoke"
as_token "$OP1" DELETE "$T1/$tid"
assert_status 204 "revoke"
as_token "$OP1" DELETE "$T1/$tid"
assert_status 409 "revoked twice"
as_token "$OP1" DELETE "$T1/987654"
assert_status 404 "unknown id"
as_token "$OP1" DELETE "$T1/abc"
assert_status 404 "not an id"
as_token "$VW1" GET "$T1"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$(jq -r --argjson id "$tid" '.items[] | select(.id == $id) | .revoked_at' "$BODY")" \
    "revoked_at listed"
est_key dev2
est_csr dev2 dev2
est_body "$T/dev2.der" "$T/dev2.b64"
est_post p1 simpleenroll "$T/dev2.b64" -u "dev2:$tok"
assert_est_problem 401 'revoked'
assert_eq 0 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$(device_id_of "$T/dev2.csr")'")" \
    "no device row for the refused enrollment"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'enrollment_token.revoke' AND object = '$tid'")" \
    "revocation audited once"

# ---- allowlist: JSON array, object, CSV.
A=/api/v1/projects/p3/allowlist
mapfile -t ids < <(new_ids 3)
as_token "$ADM" POST "$A" "$(printf '%s\n' "${ids[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')"
assert_status 200 "bulk add a JSON array"
assert_eq "3|0" "$(jqb '"\(.added)|\(.already_present)"')" "3 added"
new=$(new_ids 1)
as_token "$ADM" POST "$A" "{\"device_ids\":[\"${ids[0]}\",\"$new\",\"$new\"]}"
assert_status 200 "bulk add {device_ids: [...]}"
assert_eq "1|2" "$(jqb '"\(.added)|\(.already_present)"')" "duplicates are fine"
assert_eq 4 "$(allow_rows p3)" "four entries"

before_audit=$(audit_rows allowlist.add)
new_ids 1000 >"$T/ids.txt"
{ printf 'device_id\r\n'; sed 's/$/\r/' "$T/ids.txt"; } >"$T/ids.csv"
as_token "$ADM" POST "$A" "@$T/ids.csv" text/csv
assert_status 200 "CSV with a header and CRLF"
assert_eq "1000|0" "$(jqb '"\(.added)|\(.already_present)"')" "1000 added"
assert_eq 1004 "$(allow_rows p3)" "1004 entries"
assert_eq $((before_audit + 1)) "$(audit_rows allowlist.add)" "one audit row for the batch"
assert_eq "1000 sent, 1000 added, 0 already present" \
    "$(ql_psql "SELECT detail FROM audit_log WHERE action = 'allowlist.add' ORDER BY id DESC LIMIT 1")" \
    "the audit row counts"
as_token "$ADM" POST "$A" "@$T/ids.txt" 'text/csv; charset=utf-8'
assert_status 200 "CSV again, no header, LF"
assert_eq "0|1000" "$(jqb '"\(.added)|\(.already_present)"')" "all already present"

# One bad ID among 1000 (CSV and JSON): 422 naming it, nothing written.
before_audit=$(audit_rows allowlist.add)
new_ids 1000 >"$T/ids2.txt"
sed -i '500s/^./A/' "$T/ids2.txt"
as_token "$ADM" POST "$A" "@$T/ids2.txt" text/csv
assert_status 422 "a bad ID in a CSV batch"
assert_match 'line 500 ' "$(jqb .detail)" "names the line"
jq -Rcs 'split("\n") | map(select(. != ""))' "$T/ids2.txt" >"$T/ids2.json"
as_token "$ADM" POST "$A" "@$T/ids2.json"
assert_status 422 "a bad ID in a JSON batch"
assert_match 'index 499 ' "$(jqb .detail)" "names the index"
sed -i '500s/^A/a/; 700s/.$//' "$T/ids2.txt"
as_token "$ADM" POST "$A" "@$T/ids2.txt" text/csv
assert_status 422 "a 31-character ID"
assert_eq 1004 "$(allow_rows p3)" "no row written by a refused batch"
assert_eq "$before_audit" "$(audit_rows allowlist.add)" "no change audited"

as_token "$ADM" POST "$A" '[]'
assert_status 422 "empty batch"
as_token "$ADM" POST "$A" '[1]'
assert_status 400 "a number is not an ID"
as_token "$ADM" POST "$A" '{"ids":[]}'
assert_status 400 "unknown field"
as_token "$ADM" POST "$A" '"x"'
assert_status 400 "neither array nor object"
as_token "$ADM" POST "$A" 'a,b' text/plain
assert_status 415 "JSON or CSV only"
new_ids 10001 >"$T/big.txt"
as_token "$ADM" POST "$A" "@$T/big.txt" text/csv
assert_status 413 "more than 10000 IDs"
assert_eq 1004 "$(allow_rows p3)" "still nothing written"
as_token "$VW1" POST /api/v1/projects/p1/allowlist '["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]'
assert_status 403 "a viewer may not add"

# ---- list: keyset by device ID.
as_token "$ADM" GET "$A?limit=1000"
assert_status 200 "list the allowlist"
assert_eq 1000 "$(jqb '.items | length')" "a full page"
assert_eq "$(jqb '.items[999].device_id')" "$(jqb .next)" "cursor = last device ID"
assert_eq "$(jqb '[.items[].device_id] | sort | join(",")')" "$(jqb '[.items[].device_id] | join(",")')" "sorted"
as_token "$ADM" GET "$A?limit=1000&after=$(jqb .next)"
assert_eq 4 "$(jqb '.items | length')" "the rest"
assert_eq null "$(jqb .next)" "last page"
assert_eq "created_at,device_id" "$(jqb '.items[0] | keys | join(",")')" "item fields"

# ---- an allowlisted device enrolls in p3 without a token; removal.
est_key dev3
est_csr dev3 dev3
est_body "$T/dev3.der" "$T/dev3.b64"
d3=$(device_id_of "$T/dev3.csr")
est_post p3 simpleenroll "$T/dev3.b64"
[ "$HTTP_STATUS" = 200 ] && fail "enrolled before being on the allowlist"
as_token "$ADM" POST "$A" "[\"$d3\"]"
assert_status 200 "allow dev3"
est_post p3 simpleenroll "$T/dev3.b64"
assert_status 200 "an allowlisted device enrolls"
as_token "$ADM" DELETE "$A/$d3"
assert_status 204 "remove"
as_token "$ADM" DELETE "$A/$d3"
assert_status 404 "removed twice"
as_token "$ADM" DELETE "$A/not-a-device"
assert_status 404 "not a device ID"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'allowlist.remove' AND object = '$d3'")" \
    "removal audited"
est_key dev4
est_csr dev4 dev4
est_body "$T/dev4.der" "$T/dev4.b64"
as_token "$ADM" POST "$A" "[\"$(device_id_of "$T/dev4.csr")\"]"
as_token "$ADM" DELETE "$A/$(device_id_of "$T/dev4.csr")"
assert_status 204 "allow then remove dev4"
est_post p3 simpleenroll "$T/dev4.b64"
[ "$HTTP_STATUS" = 200 ] && fail "a removed device enrolled"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
