#!/bin/bash
# Authorization matrix of the admin API: every /api/v1/ route the daemon lists
# (parsed from --list-routes at run time, so new routes are covered) x every
# kind of caller, with the expected outcome of each cell:
#   no credentials, expired token, revoked token, device certificate -> 401
#   (the admin listener does not ask for client certificates);
#   a role below the route's minimum -> 403 "the ROLE role may not do this";
#   a caller scoped to another project on a /projects/{project}/ route -> 404
#   with the same status and body as for a project that does not exist;
#   otherwise allowed: not 401, not 403, not the scope 404.  A 501 from a
#   handler not built yet counts as allowed but is reported.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

# ---- fixtures: projects pa and pb, a real device certificate of pa (the
# device also keeps pa non-empty, so DELETE /projects/pa cannot succeed).
ql_admin_ok create-project pa token
ql_admin_ok create-project pb token
ql_admin_ok create-token pa 10
enroll_tok=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
est_enroll_ok pa dev1 -u "dev1:$enroll_tok"

ql_admin_ok create-admin alice
ALICE_PW=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
[ -n "$ALICE_PW" ] || hard_error "create-admin printed no password"
api_user_new vera viewer pa alice
api_user_new otto operator pa alice
api_user_new bella viewer pb alice

COLS=(none devcert expired revoked tok_viewer tok_operator tok_admin
    tokB_viewer tokB_operator tokB_admin ses_viewer ses_operator ses_admin sesB_viewer)
declare -A LABEL=(
    [none]=anon [devcert]=dcert [expired]=exp [revoked]=rev
    [tok_viewer]=tV [tok_operator]=tO [tok_admin]=tA
    [tokB_viewer]=bV [tokB_operator]=bO [tokB_admin]=bA
    [ses_viewer]=sV [ses_operator]=sO [ses_admin]=sA [sesB_viewer]=sBV
)
# Role level of each caller (0: not authenticated) and whether it is scoped
# to project pb only (so pa is "another project" to it).
declare -A LEVEL=(
    [none]=0 [devcert]=0 [expired]=0 [revoked]=0
    [tok_viewer]=1 [tok_operator]=2 [tok_admin]=3
    [tokB_viewer]=1 [tokB_operator]=2 [tokB_admin]=3
    [ses_viewer]=1 [ses_operator]=2 [ses_admin]=3 [sesB_viewer]=1
)
declare -A IS_OTHER=([tokB_viewer]=1 [tokB_operator]=1 [tokB_admin]=1 [sesB_viewer]=1)
# Callers limited to some projects: refused on routes marked "global".
declare -A IS_SCOPED=([tok_viewer]=1 [tok_operator]=1 [tokB_viewer]=1 [tokB_operator]=1
    [tokB_admin]=1 [ses_viewer]=1 [ses_operator]=1 [sesB_viewer]=1)
declare -A SECRET COOKIE CSRF
declare -A SES_USER=([ses_viewer]=vera [ses_operator]=otto [ses_admin]=alice [sesB_viewer]=bella)

SECRET[tok_viewer]=$(api_token_new viewer pa)
SECRET[tok_operator]=$(api_token_new operator pa)
SECRET[tok_admin]=$(api_token_new admin "")
SECRET[tokB_viewer]=$(api_token_new viewer pb)
SECRET[tokB_operator]=$(api_token_new operator pb)
SECRET[tokB_admin]=$(api_token_new admin pb)
SECRET[expired]=$(api_token_new admin "" "now() - interval '1 hour'")
SECRET[revoked]=$(api_token_new admin "" NULL "now() - interval '1 minute'")

authz_login() {
    api_login "${SES_USER[$1]}" "$ALICE_PW" ||
        hard_error "login as ${SES_USER[$1]} failed: HTTP $HTTP_STATUS $(head -c 300 "$BODY")"
    COOKIE[$1]=$API_COOKIE
    CSRF[$1]=$API_CSRF
}
for c in ses_viewer ses_operator ses_admin sesB_viewer; do authz_login "$c"; done

# Path parameters: objects that do not exist (the matrix is about who may
# ask, and nothing real must be deleted or changed by it).
FAKE_DEVICE=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
FAKE_SERIAL=0123456789abcdef0123456789abcdef
authz_path() { # PATTERN PROJECT
    local p=$1
    p=${p//\{project\}/$2}
    p=${p//\{device\}/$FAKE_DEVICE}
    p=${p//\{serial\}/$FAKE_SERIAL}
    p=${p//\{id\}/999999}
    p=${p//\{user\}/authz-nobody}
    # any parameter added later
    while [[ $p =~ ^(.*)\{[a-z_]+\}(.*)$ ]]; do
        p="${BASH_REMATCH[1]}authz-x${BASH_REMATCH[2]}"
    done
    printf '%s' "$p"
}

# A minimal body that gets the handler past parsing, harmless if it runs.
LOGIN_BODY=$(jq -cn --arg p "$ALICE_PW" '{username: "alice", password: $p}')
PASSWORD_BODY=$(jq -cn --arg p "$ALICE_PW" '{current: $p, new: $p}')
N=0
authz_body() { # METHOD PATTERN (N: a number unique to the request)
    case "$1 $2" in
    "POST /api/v1/login") printf '%s' "$LOGIN_BODY" ;;
    "PUT /api/v1/session/password") printf '%s' "$PASSWORD_BODY" ;;
    "POST /api/v1/projects") printf '{"name":"authz-%d"}' "$N" ;;
    "PATCH /api/v1/projects/{project}") printf '{"policy":{"token":true}}' ;;
    "PUT "*/tags) printf '{"tags":["authz"]}' ;;
    "POST "*/revoke) printf '{"reason":"superseded"}' ;;
    "POST "*/enrollment-tokens) printf '{"name":"authz-%d","max_uses":1}' "$N" ;;
    "POST "*/allowlist) printf '["%s"]' "$FAKE_DEVICE" ;;
    "POST /api/v1/users")
        printf '{"name":"authz-%d","role":"viewer","password":"authz-password-%d"}' "$N" "$N" ;;
    "PATCH /api/v1/users/{user}") printf '{"role":"viewer"}' ;;
    "POST /api/v1/api-tokens") printf '{"name":"authz-%d","role":"viewer","project":"pa"}' "$N" ;;
    POST*|PUT*|PATCH*) printf '{}' ;;
    *) ;;
    esac
}

# authz_request COL METHOD PATTERN PROJECT: one request as caller COL.
authz_request() {
    local col=$1 method=$2 pattern=$3 project=$4 body
    local -a a=()
    case $col in
    none) ;;
    devcert) a+=(--cert "$T/dev1.crt" --key "$T/dev1.key") ;;
    ses_*|sesB_*)
        a+=(-H "Cookie: ql_session=${COOKIE[$col]}")
        [ "$method" = GET ] || [ "$method" = HEAD ] || a+=(-H "X-CSRF-Token: ${CSRF[$col]}") ;;
    *) a+=(-H "Authorization: Bearer ${SECRET[$col]}") ;;
    esac
    case $method in
    GET) ;;
    HEAD) a+=(--head) ;;
    *) a+=(-X "$method") ;;
    esac
    N=$((N + 1))
    body=$(authz_body "$method" "$pattern")
    [ -z "$body" ] || a+=(-H 'Content-Type: application/json' --data-binary "$body")
    ql_curl "${a[@]}" "$(admin_url "$(authz_path "$pattern" "$project")")"
}

# ---- reference: what a project that does not exist looks like.
declare -A NOPROJ
while read -r method pattern role _scope <&3; do
    [[ $pattern == /api/v1/projects/\{project\}* ]] || continue
    [ "$method" = HEAD ] && continue
    authz_request tok_admin "$method" "$pattern" ql-no-such-project
    [ "$HTTP_STATUS" = 404 ] ||
        fail "$method $pattern on a missing project: expected 404, got $HTTP_STATUS $(head -c 300 "$BODY")"
    assert_problem 404
    NOPROJ["$method $pattern"]=$(api_problem_summary "$BODY")
    [[ ${NOPROJ["$method $pattern"]} == "about:blank|Not Found|404|no such project|"* ]] ||
        fail "$method $pattern on a missing project: ${NOPROJ["$method $pattern"]}"
done 3< <(api_routes)

# ---- the matrix.
declare -A GOT GET_STATUS
ROWS=()
FAILS=()
UNIMPL=()
nroutes=0 ncells=0

while read -r method pattern role scope <&3; do
    nroutes=$((nroutes + 1))
    row="$method $pattern"
    ROWS+=("$row")
    case $role in
    public) need=0 ;; viewer) need=1 ;; operator) need=2 ;; admin) need=3 ;;
    *) fail "route $row: unknown role '$role' in --list-routes" ;;
    esac
    is_project_route=0
    [[ $pattern == /api/v1/projects/\{project\}* ]] && is_project_route=1
    for col in "${COLS[@]}"; do
        ncells=$((ncells + 1))
        authz_request "$col" "$method" "$pattern" pa
        st=$HTTP_STATUS
        # Bodies are parsed only where the outcome depends on them.
        detail='' summary=''
        case $st in
        403|404|5??) [ "$method" = HEAD ] || detail=$(api_detail "$BODY") ;;
        esac
        [ "$st" = 404 ] && [ "$method" != HEAD ] && summary=$(api_problem_summary "$BODY")
        # expected outcome
        if [ "$need" = 0 ]; then
            want=allowed
        elif [ "${LEVEL[$col]}" = 0 ]; then
            want=401
        elif [ "$is_project_route" = 1 ] && [ -n "${IS_OTHER[$col]:-}" ]; then
            want=scope404
        elif [ "${LEVEL[$col]}" -lt "$need" ]; then
            want=403
        elif [ "$scope" = global ] && [ -n "${IS_SCOPED[$col]:-}" ]; then
            want=403global
        else
            want=allowed
        fi
        ok=1 why=''
        case $want in
        401)
            [ "$st" = 401 ] || { ok=0; why="expected 401"; } ;;
        403)
            if [ "$st" != 403 ]; then ok=0; why="expected 403 (role)"
            elif [ "$method" != HEAD ] && [[ $detail != *"role may not do this"* ]]; then
                ok=0; why="403 but not the role refusal: $detail"
            fi ;;
        403global)
            if [ "$st" != 403 ]; then ok=0; why="expected 403 (global route)"
            elif [ "$method" != HEAD ] && [[ $detail != *"access to every project"* ]]; then
                ok=0; why="403 but not the scope refusal: $detail"
            fi ;;
        scope404)
            if [ "$st" != 404 ]; then ok=0; why="expected 404 as for a missing project"
            elif [ "$method" != HEAD ] && [ "$summary" != "${NOPROJ[$row]}" ]; then
                ok=0; why="404 body differs from a missing project's: '$summary' vs '${NOPROJ[$row]}'"
            fi ;;
        allowed)
            if [ "$st" = 401 ] || [ "$st" = 403 ] || [ "$st" = 000 ]; then
                ok=0; why="expected to be allowed"
            elif [ "$st" = 404 ] && [ "$detail" = "no such project" ]; then
                ok=0; why="allowed caller got the scope 404"
            elif [ "$method" = HEAD ] && [ -n "${GET_STATUS["$pattern $col"]:-}" ] &&
                    [ "$st" != "${GET_STATUS["$pattern $col"]}" ]; then
                ok=0; why="HEAD $st but GET ${GET_STATUS["$pattern $col"]}"
            elif [ "$st" = 501 ]; then
                UNIMPL+=("$row as $col")
            elif [ "$st" -ge 500 ]; then
                ok=0; why="allowed, but the handler failed: $detail"
            fi ;;
        esac
        [ "$method" = GET ] && GET_STATUS["$pattern $col"]=$st
        cell=$st
        [ "$st" = 501 ] && cell="$st~"
        if [ "$ok" = 0 ]; then
            cell="$st!"
            FAILS+=("$row | ${col} | want $want | got $st | $why | $(printf '%s' "$detail" | head -c 120)")
        fi
        GOT["$row|$col"]=$cell
        # A write (logout) may have ended a session: log in again.
        case $col in
        ses_*|sesB_*)
            if [ "$method" != GET ] && [ "$method" != HEAD ]; then
                ql_curl -H "Cookie: ql_session=${COOKIE[$col]}" "$(admin_url /api/v1/session)"
                [ "$HTTP_STATUS" = 200 ] || authz_login "$col"
            fi ;;
        esac
    done
done 3< <(api_routes)

[ "$nroutes" -ge 30 ] || fail "only $nroutes API route/method pairs listed by --list-routes"

authz_print_matrix() {
    local row col line
    printf '# authorization matrix (! = wrong auth outcome, ~ = 501 not implemented)\n'
    line=$(printf '%-62s' "#")
    for col in "${COLS[@]}"; do line+=$(printf ' %-5s' "${LABEL[$col]}"); done
    printf '%s\n' "$line"
    for row in "${ROWS[@]}"; do
        line=$(printf '# %-60s' "$row")
        for col in "${COLS[@]}"; do line+=$(printf ' %-5s' "${GOT["$row|$col"]}"); done
        printf '%s\n' "$line"
    done
}

# The fixtures the matrix must not have touched.
assert_eq 1 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'pa'")" "project pa still exists"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM devices d JOIN projects p ON p.id = d.project_id
    WHERE p.name = 'pa' AND d.status NOT IN ('disabled', 'rejected')")" "pa's device untouched"
api_alive || fail "daemon does not answer /healthz after the matrix"

ql_log "$nroutes route/method pairs x ${#COLS[@]} callers = $ncells cells," \
    "${#FAILS[@]} wrong, ${#UNIMPL[@]} answered 501"
if [ "${#FAILS[@]}" -gt 0 ] || [ "${#UNIMPL[@]}" -gt 0 ]; then
    authz_print_matrix
fi
if [ "${#UNIMPL[@]}" -gt 0 ]; then
    printf '# not implemented yet (501, counted as allowed): %d cells on these routes:\n' "${#UNIMPL[@]}"
    printf '%s\n' "${UNIMPL[@]}" | sed -E 's/ as [a-zA-Z_]+$//' | sort -u | sed 's/^/#   /'
fi
if [ "${#FAILS[@]}" -gt 0 ]; then
    printf '# route | caller | expected | got | why | detail\n'
    printf '#   %s\n' "${FAILS[@]}"
    fail "${#FAILS[@]} of $ncells authorization cells have the wrong outcome"
fi

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
