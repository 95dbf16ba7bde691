#!/bin/bash
# Hostile input to the admin API is refused cleanly and changes nothing:
# SQL metacharacters in every path parameter and every string field of every
# JSON request body (fields read from the served OpenAPI document, routes
# from --list-routes), oversized, deeply nested, non-UTF-8 and NUL-bearing
# JSON, the wrong Content-Type, wrong field types, unknown fields, an array
# for an object and an empty body.  Refusals are 4xx problem+json and leave
# every table's row count as it was; anything accepted is stored verbatim;
# the daemon answers /healthz afterwards.  A 501 (handler not built) is a
# failure like any other wrong answer: a check that is not made does not
# pass.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl

MAX_BODY=16384
pg_start
hsm_init
tls_make_certs
ql_config server.max_body_size=16K
ql_start

ql_admin_ok create-project pa token
ql_admin_ok create-token pa 10
est_enroll_ok pa dev1 -u "dev1:$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)"
ql_admin_ok create-admin alice
api_user_new victim viewer pa alice   # the user PATCH /users/{user} may change
TOK=$(api_token_new admin "")
AUTH=(-H "Authorization: Bearer $TOK")
# The own-password route wants a browser session.
api_login alice "$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)" || hard_error "login as alice failed"
SESSION=(-H "Cookie: ql_session=$API_COOKIE" -H "X-CSRF-Token: $API_CSRF")

HOSTILE=("'; DROP TABLE projects; --" "%27" '"' "' OR '1'='1" "x\\'")
# Path parameters also as percent-encoded bytes: NUL, a quote, "../../".
RAW=("%00" "%27%3B%20DROP%20TABLE%20projects%3B--" "%2e%2e%2f%2e%2e%2f" "%ff%fe")
FAILS=()
# input_bad MSG: a wrong refusal (collected, so one run reports them all).
input_bad() { FAILS+=("$*"); }
N=0

# Valid path values, and a base body per route with every required field.
input_path() { # PATTERN [PARAM HOSTILE_ENCODED]
    local p=$1 name val
    while [[ $p =~ ^(.*)\{([a-z_]+)\}(.*)$ ]]; do
        name=${BASH_REMATCH[2]}
        if [ "$name" = "${2:-}" ]; then
            val=$3
        else
            case $name in
            project) val=pa ;; device) val=$DEVICE_ID ;; serial) val=$SERIAL ;;
            user) val=victim ;; id) val=1 ;; *) val=x ;;
            esac
        fi
        p="${BASH_REMATCH[1]}$val${BASH_REMATCH[3]}"
    done
    printf '%s' "$p"
}
input_body() { # METHOD PATTERN
    case "$1 $2" in
    "POST /api/v1/login") printf '{"username":"alice","password":"not-the-password"}' ;;
    # a wrong current password: nothing may change
    "PUT /api/v1/session/password") printf '{"current":"x","new":"y-long-enough-123"}' ;;
    "POST /api/v1/projects") printf '{"name":"in-%d"}' "$N" ;;
    "PATCH /api/v1/projects/{project}") printf '{"cert_validity_days":30}' ;;
    "PUT "*/tags) printf '{"tags":["t%d"]}' "$N" ;;
    "POST "*/revoke) printf '{"reason":"superseded"}' ;;
    "POST "*/enrollment-tokens) printf '{"name":"in-%d","max_uses":1}' "$N" ;;
    "POST "*/allowlist) printf '["%s"]' aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ;;
    "POST /api/v1/users")
        printf '{"name":"in-%d","role":"viewer","password":"input-password-%d"}' "$N" "$N" ;;
    "PATCH /api/v1/users/{user}") printf '{"role":"admin"}' ;;
    "POST /api/v1/api-tokens") printf '{"name":"in-%d","role":"viewer","project":"pa"}' "$N" ;;
    *) printf '{}' ;;
    esac
}

# input_send METHOD URLPATH BODY [CURL ARGS...]: as the admin token.
input_send() {
    local method=$1 path=$2 body=$3
    shift 3
    local -a a=("${AUTH[@]}")
    [ "$path" = /api/v1/session/password ] && a=("${SESSION[@]}")
    [ "$method" = GET ] || a+=(-X "$method")
    [ -z "$body" ] || a+=(-H 'Content-Type: application/json' --data-binary "$body")
    ql_curl "${a[@]}" "$@" "$(admin_url "$path")"
}

# input_refused WHAT COUNTS_BEFORE [STATUS_ERE [DETAIL_ERE]]: the last
# response is a 4xx problem (matching STATUS_ERE) and no table changed.
# A 501 is noted as a failure and returns 1: the route's remaining checks
# would only repeat it.
input_refused() {
    local what=$1 before=$2 want=${3:-4[0-9][0-9]} dre=${4:-} detail
    if [ "$HTTP_STATUS" = 501 ]; then
        input_bad "$what: answered 501 (not implemented), so nothing was checked"
        return 1
    fi
    ql_alive || ql__fail_at 1 "$what: the daemon died"
    if ! [[ $HTTP_STATUS =~ ^($want)$ ]]; then
        input_bad "$what: expected HTTP $want, got $HTTP_STATUS: $(head -c 200 "$BODY")"
    elif [ "$HTTP_STATUS" != 413 ]; then
        detail=$(api_detail "$BODY")
        if ! json_valid "$BODY" || [[ $(ql_header Content-Type) != application/problem+json* ]]; then
            input_bad "$what: HTTP $HTTP_STATUS is not problem+json: $(head -c 200 "$BODY")"
        elif [ -z "$detail" ]; then
            input_bad "$what: refusal without a detail"
        elif [ -n "$dre" ] && ! printf '%s\n' "$detail" | grep -Eiq -- "$dre"; then
            input_bad "$what: detail '$detail' does not match /$dre/"
        fi
    fi
    if [ "$before" != - ]; then
        local after
        after=$(api_table_counts)
        [ "$before" = "$after" ] || ql__fail_at 1 "$what: tables changed: '$before' -> '$after'"
    fi
    return 0
}

# input_unchanged SECTION BEFORE: no table changed during a whole section
# in which nothing may change (cheaper than counting around each request).
input_unchanged() {
    local after
    after=$(api_table_counts)
    [ "$1" = "$after" ] || ql__fail_at 1 "$2: tables changed: '$1' -> '$after'"
}

input_routes_with_body() { # METHOD PATTERN lines of JSON write routes
    api_routes | awk '$1 == "POST" || $1 == "PUT" || $1 == "PATCH" { print $1, $2 }'
}

# ---- SQL metacharacters in every path parameter.
declare -A ENC
for v in "${HOSTILE[@]}"; do ENC[$v]=$(jq -rn --arg v "$v" '$v | @uri'); done
for v in "${RAW[@]}"; do ENC[$v]=$v; done   # already percent-encoded: decoded by the server
section=$(api_table_counts)
nparam=0
while read -r method pattern role <&3; do
    [[ $pattern == *\{* ]] || continue
    [ "$method" = HEAD ] && continue
    params=$(printf '%s' "$pattern" | grep -oE '\{[a-z_]+\}' | tr -d '{}')
    for param in $params; do
        for v in "${HOSTILE[@]}" "${RAW[@]}"; do
            N=$((N + 1))
            body=''
            case $method in POST|PUT|PATCH) body=$(input_body "$method" "$pattern") ;; esac
            input_send "$method" "$(input_path "$pattern" "$param" "${ENC[$v]}")" "$body"
            input_refused "$method $pattern with {$param} = $v" - '400|404|422' || continue
            nparam=$((nparam + 1))
        done
    done
done 3< <(api_routes)
input_unchanged "$section" "hostile path parameters"
ql_log "$nparam hostile path parameters refused"
[ "$nparam" -gt 0 ] || fail "no path parameter was tested"

# ---- the request body fields of every JSON write route, from OpenAPI.
ql_curl "$(admin_url /api/v1/openapi.json)"
assert_status 200 "GET /api/v1/openapi.json"
cp "$BODY" "$T/openapi.json"
# "METHOD PATH FIELD TYPE ITEMTYPE" per top-level body member ("[]" for an
# array body).
jq -r '
    . as $doc
    | def deref: if type == "object" and has("$ref")
                 then $doc.components.schemas[(.["$ref"] | split("/") | last)] else . end;
      def t: deref | if has("oneOf") then (.oneOf | map(deref | .type) | if index("string") then "string" else .[0] end)
                     else (.type // "object") end
             | if type == "array" then map(select(. != "null"))[0] else . end;
    .paths | to_entries[] | .key as $p | .value | to_entries[]
    | select(.key == "post" or .key == "put" or .key == "patch")
    | (.key | ascii_upcase) as $m
    | (.value.requestBody.content["application/json"].schema // empty | deref) as $s
    | if ($s | t) == "array" then "\($m) \($p) [] array \($s.items | t)"
      else ($s.properties // {}) | to_entries[]
           | "\($m) \($p) \(.key) \(.value | t) \(if (.value | t) == "array" then (.value | deref | .items | t) else "-" end)"
      end' "$T/openapi.json" >"$T/fields" || fail "cannot read request schemas from openapi.json"
[ -s "$T/fields" ] || fail "openapi.json describes no JSON request bodies"
served=$(api_routes | awk '{ print $1, $2 }')

nfield=0 naccepted=0
while read -r method pattern field type itype <&3; do
    printf '%s\n' "$served" | grep -qxF "$method $pattern" || continue
    path=$(input_path "$pattern")
    # Wrong type: 400 naming the field.
    case $type in
    string) wrong=true ;; integer|number) wrong='"12"' ;; boolean) wrong='"true"' ;;
    array) wrong='"x"' ;; *) wrong='"x"' ;;
    esac
    if [ "$field" != "[]" ]; then
        N=$((N + 1))
        body=$(input_body "$method" "$pattern" | jq -c --arg f "$field" --argjson w "$wrong" '.[$f] = $w')
        before=$(api_table_counts)
        input_send "$method" "$path" "$body"
        input_refused "$method $pattern: $field of the wrong type" "$before" 400 "$field" || true
        if [ "$type" = object ]; then
            # a member of the object with a wrong type: 400 as well
            N=$((N + 1))
            body=$(input_body "$method" "$pattern" | jq -c --arg f "$field" '.[$f] = {"zz-unknown": 1}')
            before=$(api_table_counts)
            input_send "$method" "$path" "$body"
            input_refused "$method $pattern: unknown member of $field" "$before" 400 "zz-unknown" || true
        fi
    fi
    # SQL metacharacters in string fields (and arrays of strings).
    [ "$type" = string ] || { [ "$type" = array ] && [ "$itype" = string ]; } || continue
    for v in "${HOSTILE[@]}"; do
        N=$((N + 1))
        if [ "$field" = "[]" ]; then
            body=$(jq -cn --arg v "$v" '[$v]')
        elif [ "$type" = array ]; then
            body=$(input_body "$method" "$pattern" | jq -c --arg f "$field" --arg v "$v" '.[$f] = [$v]')
        else
            body=$(input_body "$method" "$pattern" | jq -c --arg f "$field" --arg v "$v" '.[$f] = $v')
        fi
        before=$(api_table_counts)
        input_send "$method" "$path" "$body"
        what="$method $pattern: $field = $v"
        case $HTTP_STATUS in
        2??)
            # Accepted: stored as given, and nothing else touched.
            naccepted=$((naccepted + 1))
            after=$(api_table_counts)
            for t in projects users api_tokens devices certificates; do
                [[ " $after " == *" $t="* ]] || fail "$what: table $t is gone"
            done
            assert_eq "$(printf '%s\n' "$before" | grep -oE 'projects=[0-9]+')" \
                "$(printf '%s\n' "$after" | grep -oE 'projects=[0-9]+')" "$what: projects count"
            case $field in
            password|current|new) ;;
            *) jq -e --arg v "$v" '[.. | strings | select(. == $v)] | length > 0' "$BODY" >/dev/null ||
                   fail "$what: HTTP $HTTP_STATUS but the value is not returned verbatim: $(head -c 300 "$BODY")" ;;
            esac ;;
        *) input_refused "$what" "$before" || continue ;;
        esac
        nfield=$((nfield + 1))
    done
done 3<"$T/fields"
ql_log "$nfield hostile string fields handled ($naccepted accepted and stored verbatim)"
[ "$nfield" -gt 0 ] || fail "no body field was tested"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'pa'")" "project pa unchanged"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM users WHERE name = 'alice' AND role = 'admin'
    AND disabled_at IS NULL")" "alice unchanged"

# ---- malformed bodies, on every JSON write route.
deep=$(printf '{"name":%s1%s}' "$(printf '[%.0s' $(seq 1 100))" "$(printf ']%.0s' $(seq 1 100))")
printf '{"name":"bad-\xff\xfe-utf8"}' >"$T/nonutf8.json"
printf '{"name":"\xc0\xaf"}' >"$T/overlong.json"
head -c $((MAX_BODY + 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
printf '{"name":"big"}' >>"$T/big.json"

section=$(api_table_counts)
b=-
while read -r method pattern <&3; do
    [ "$pattern" = /api/v1/login ] && [ "$method" = POST ] && continue   # checked below
    path=$(input_path "$pattern")
    r="$method $pattern"
    # only routes that take a JSON body (a body-less action ignores one)
    grep -q "^$method $pattern " "$T/fields" || continue
    is_array_body=0
    [[ $(input_body "$method" "$pattern") == \[* ]] && is_array_body=1

    input_send "$method" "$path" "" --data-binary "@$T/big.json" \
        -H 'Content-Type: application/json'
    input_refused "$r: body over max_body_size" "$b" 413 || continue
    input_send "$method" "$path" "$deep"
    input_refused "$r: 100 levels of nesting" "$b" 400 'depth|nest' || continue
    input_send "$method" "$path" "" --data-binary "@$T/nonutf8.json" \
        -H 'Content-Type: application/json'
    input_refused "$r: non-UTF-8 JSON" "$b" 400 || continue
    input_send "$method" "$path" "" --data-binary "@$T/overlong.json" \
        -H 'Content-Type: application/json'
    input_refused "$r: overlong UTF-8 encoding" "$b" 400 || continue
    input_send "$method" "$path" '{"name":"nul\u0000byte","tags":["a\u0000"]}'
    input_refused "$r: \\u0000 in a string" "$b" 400 'NUL|\\u0000' || continue
    input_send "$method" "$path" "" -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "$(input_body "$method" "$pattern")"
    input_refused "$r: form Content-Type" "$b" 415 || continue
    input_send "$method" "$path" "" -H 'Content-Type: application/jsonx' \
        --data-binary "$(input_body "$method" "$pattern")"
    input_refused "$r: Content-Type application/jsonx" "$b" 415 || continue
    input_send "$method" "$path" "" -H 'Content-Type: application/json' \
        --data-binary ''
    input_refused "$r: empty body" "$b" 400 || continue
    input_send "$method" "$path" '{"name":'
    input_refused "$r: truncated JSON" "$b" 400 || continue
    input_send "$method" "$path" "$(input_body "$method" "$pattern") {}"
    input_refused "$r: trailing garbage" "$b" 400 || continue
    if [ "$is_array_body" = 0 ]; then
        input_send "$method" "$path" "[$(input_body "$method" "$pattern")]"
        input_refused "$r: array instead of object" "$b" 400 'object' || continue
        input_send "$method" "$path" '"just a string"'
        input_refused "$r: string instead of object" "$b" 400 || continue
        N=$((N + 1))
        input_send "$method" "$path" "$(input_body "$method" "$pattern" | jq -c '.["zz-unknown"] = 1')"
        input_refused "$r: unknown field" "$b" 400 'zz-unknown' || continue
        # Every member given twice: yajl keeps both, so the API must refuse.
        inner=$(input_body "$method" "$pattern" | jq -c .)
        inner=${inner#\{}
        inner=${inner%\}}
        if [ -n "$inner" ]; then
            input_send "$method" "$path" "{$inner,$inner}"
            input_refused "$r: a member given twice" "$b" 400 'twice' || continue
        fi
    else
        input_send "$method" "$path" '{"devices":[]}'
        input_refused "$r: object instead of array" "$b" 400 || continue
    fi
done 3< <(input_routes_with_body)
input_unchanged "$section" "malformed bodies"

# The login route takes the same checks without counting as failed logins.
b=$(api_table_counts)
ql_curl -H 'Content-Type: application/json' --data-binary "$deep" "$(admin_url /api/v1/login)"
input_refused "login: 100 levels of nesting" "$b" 400 'depth|nest'
ql_curl -H 'Content-Type: text/plain' --data-binary '{"username":"a","password":"b"}' \
    "$(admin_url /api/v1/login)"
input_refused "login: text/plain" "$b" 415
ql_curl -H 'Content-Type: application/json' --data-binary '{"username":["alice"],"password":"b"}' \
    "$(admin_url /api/v1/login)"
input_refused "login: username of the wrong type" "$b" 400 username
ql_curl -H 'Content-Type: application/json' --data-binary \
    '{"username":"alice","password":"b","admin":true}' "$(admin_url /api/v1/login)"
input_refused "login: unknown field" "$b" 400 admin

# Numbers out of range and of the wrong kind on the finished projects resource.
for body in '{"name":"num-1","cert_validity_days":1e400}' '{"name":"num-2","cert_validity_days":99999999999999999999999}' \
        '{"name":"num-3","cert_validity_days":1.5}' '{"name":"num-4","cert_validity_days":-1}' \
        '{"name":"num-5","cert_validity_days":0}' '{"name":"num-6","cert_validity_days":null}'; do
    input_send POST /api/v1/projects "$body"
    input_refused "POST /api/v1/projects $body" "$b" '400|422'
done

# Query parameters.
for q in "limit=0" "limit=1001" "limit=-1" "limit=abc" "limit=1%27" "limit=99999999999999999999" \
        "after=%ff%fe"; do
    b=$(api_table_counts)
    ql_curl "${AUTH[@]}" "$(admin_url "/api/v1/projects?$q")"
    input_refused "GET /api/v1/projects?$q" "$b" 400
done
ql_curl "${AUTH[@]}" "$(admin_url "/api/v1/projects?after=%27%3B%20DROP%20TABLE%20projects%3B%20--")"
assert_status 200 "a hostile cursor is only a string to compare"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'pa'")" "projects survive"

# Still up and serving.
api_alive || fail "daemon does not answer /healthz after the hostile input"
ql_curl "${AUTH[@]}" "$(admin_url /api/v1/projects/pa)"
assert_status 200 "the API still works"

if [ "${#FAILS[@]}" -gt 0 ]; then
    printf '#   %s\n' "${FAILS[@]}"
    fail "${#FAILS[@]} hostile inputs were not refused as expected"
fi
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
