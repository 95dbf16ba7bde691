#!/bin/bash
# A query string is never half read (issue 10, finding 1): one that does not
# parse, an unknown parameter name and a repeated one are each a 400 that
# names the problem, on every route of every listener (routes and their
# declared parameters from --list-routes), and nothing changes.  Before,
# "?revoked=true&x" made libevent's parser fail and every filter read as
# absent: the revoked filter returned every certificate.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl

ql_pki_start

ql_admin_ok create-project pa token
ql_admin_ok create-token pa 10
secret=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
for d in dev1 dev2 dev3; do est_enroll_ok pa "$d" -u "$d:$secret"; done
AUTH=(-H "Authorization: Bearer $(api_token_new admin "")")
C=/api/v1/projects/pa/certificates
ql_curl "${AUTH[@]}" -H 'Content-Type: application/json' --data-binary '{"reason":"superseded"}' \
    "$(admin_url "$C/$SERIAL/revoke")"
assert_status 200 "revoking dev3's certificate"

# q_get PATH_AND_QUERY: GET as the admin token.
q_get() { ql_curl "${AUTH[@]}" "$(admin_url "$1")"; }
# q_items: number of items in the last list response.
q_items() { jq -r '.items | length' "$BODY"; }
# q_refused STATUS DETAIL_ERE WHAT: the last response is that problem.
q_refused() {
    [ "$HTTP_STATUS" = "$1" ] ||
        ql__fail_at 1 "$3: expected HTTP $1, got $HTTP_STATUS: $(head -c 300 "$BODY")"
    [[ $(ql_header Content-Type) == application/problem+json* ]] ||
        ql__fail_at 1 "$3: not problem+json: $(head -c 300 "$BODY")"
    local detail
    detail=$(api_detail "$BODY")
    printf '%s\n' "$detail" | grep -Eq -- "$2" ||
        ql__fail_at 1 "$3: detail '$detail' does not match /$2/"
}

# ---- the filters work
q_get "$C"
assert_status 200
assert_eq 3 "$(q_items)" "certificates without a filter"
q_get "$C?revoked=true"
assert_status 200
assert_eq 1 "$(q_items)" "revoked certificates"
assert_eq "$SERIAL" "$(jq -r '.items[0].serial' "$BODY")" "the revoked one"

# ---- a query string that does not parse
q_get "$C?revoked=true&x"
q_refused 400 'malformed.*"x".*=' "?revoked=true&x (the issue's case)"
q_get "$C?x&revoked=true"
q_refused 400 'malformed.*"x"' "?x&revoked=true"
q_get "$C?revoked"
q_refused 400 'malformed.*"revoked"' "?revoked"
for q in 'revoked=true&' '&revoked=true' 'revoked=true&&limit=1' '=true'; do
    q_get "$C?$q"
    q_refused 400 'malformed.*no name' "?$q"
done
q_get "$C?revoked=true%00x"
q_refused 400 '"revoked".*NUL' "?revoked=true%00x"

# ---- unknown and repeated names
q_get "$C?revokd=true"
q_refused 400 'unknown query parameter "revokd"; allowed: limit, after, valid, expiring_within, revoked, device$' \
    "?revokd=true"
q_get "$C?Revoked=true"
q_refused 400 'unknown query parameter "Revoked"' "names are case-sensitive"
q_get "$C?revok%65d=true"
q_refused 400 'unknown query parameter "revok%65d"' "names are not percent-decoded"
q_get "$C?revoked=true&revoked=false"
q_refused 400 '"revoked" is given more than once' "?revoked twice"
q_get "$C?limit=1&revoked=true&limit=2"
q_refused 400 '"limit" is given more than once' "?limit twice"

# ---- a value too long for its buffer is refused, not taken for absent
q_get "$C?revoked=true&device=$(head -c 5000 /dev/zero | tr '\0' a)"
q_refused 400 'device' "a 5000-byte device filter"
q_get "$C?limit=$(head -c 40 /dev/zero | tr '\0' 0)1"
q_refused 400 'limit' "a 41-digit limit"
q_get "/api/v1/audit?after=$(head -c 40 /dev/zero | tr '\0' 1)"
q_refused 400 'after' "a 40-digit audit cursor"

# ---- every route, on every listener: unknown, malformed and repeated
q_path() { # PATTERN: a real value for each path parameter
    local p=$1 name val
    while [[ $p =~ ^(.*)\{([a-z_]+)\}(.*)$ ]]; do
        name=${BASH_REMATCH[2]}
        case $name in
        project) val=pa ;; device) val=$DEVICE_ID ;; serial) val=$SERIAL ;;
        user) val=alice ;; file) val=root.crt ;; *) val=1 ;;
        esac
        p="${BASH_REMATCH[1]}$val${BASH_REMATCH[3]}"
    done
    printf '%s' "${p/%\*/x}"
}
q_url() { # LISTENER PATH
    case $1 in admin) admin_url "$2" ;; device) device_url "$2" ;; pki) pki_url "$2" ;; esac
}
ql_admin_ok create-admin alice
"$QUARKLINKD" --list-routes >"$T/routes" || fail "quarklinkd --list-routes failed"
before=$(api_table_counts)
nroutes=0 nrepeat=0
while IFS=$'\t' read -r listener methods pattern _role _scope query <&3; do
    [ -n "$query" ] || fail "--list-routes gives no query column for $pattern"
    path=$(q_path "$pattern")
    method=${methods%%,*}
    args=("${AUTH[@]}")
    [ "$method" = GET ] || args+=(-X "$method" -H 'Content-Type: application/json' --data-binary '{}')
    what="$listener $method $pattern"
    ql_curl "${args[@]}" "$(q_url "$listener" "$path?zz_unknown=1")"
    q_refused 400 'unknown query parameter "zz_unknown"' "$what?zz_unknown=1"
    ql_curl "${args[@]}" "$(q_url "$listener" "$path?zz")"
    q_refused 400 'malformed.*"zz"' "$what?zz"
    if [ "$query" != - ]; then
        IFS=, read -r -a names <<<"$query"
        for n in "${names[@]}"; do
            ql_curl "${args[@]}" "$(q_url "$listener" "$path?$n=1&$n=2")"
            q_refused 400 "\"$n\" is given more than once" "$what?$n twice"
            nrepeat=$((nrepeat + 1))
        done
    fi
    nroutes=$((nroutes + 1))
done 3<"$T/routes"
[ "$nroutes" -ge 40 ] || fail "only $nroutes routes were checked: $(cat "$T/routes")"
[ "$nrepeat" -ge 20 ] || fail "only $nrepeat declared parameters were checked"
assert_eq "$before" "$(api_table_counts)" "tables after the refused queries"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL")" \
    "revoked certificates after the refused queries"
ql_log "$nroutes routes refuse unknown and malformed queries; $nrepeat declared parameters refuse repeats"

# ---- and a declared parameter still works everywhere after all that
q_get "$C?revoked=false&limit=1"
assert_status 200
assert_eq 1 "$(q_items)" "?revoked=false&limit=1"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
