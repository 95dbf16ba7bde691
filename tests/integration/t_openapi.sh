#!/bin/bash
# The OpenAPI document served at /api/v1/openapi.json is doc/openapi.json, it
# describes exactly the routes the admin listener serves (every route is in
# the document, every operation in the document is served, with the same
# minimum role), every error is problem+json, it is valid OpenAPI 3.1
# according to a standard validator from the npm registry, and real responses
# of every operation (status, Content-Type, body) match what it documents.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq
# The validator runs on node; CI installs nodejs and npm, so only a machine
# without them skips.
ql_require node npm

# Pinned: a new version is a deliberate change, made here.
OAV_PKG=@seriousme/openapi-schema-validator
OAV_VERSION=2.11.0

# oav_install: the validator in a cache inside the build tree (installed once,
# under flock so parallel tests do not race); sets OAV_BIN to its CLI and
# OAV_MODULES to its node_modules.
oav_install() {
    local prefix="$top_builddir/tests"
    mkdir -p "$prefix/node_modules" 2>/dev/null && [ -w "$prefix/node_modules" ] ||
        prefix="$T/npm"
    local stamp="$prefix/node_modules/.ql-oav-$OAV_VERSION"
    local bin="$prefix/node_modules/$OAV_PKG/bin/validate-api-cli.js"
    mkdir -p "$prefix/node_modules"
    (
        flock 9 || exit 1
        [ -f "$stamp" ] && [ -f "$bin" ] && exit 0
        # --no-save/--no-package-lock: only node_modules appears in $prefix.
        npm install --prefix "$prefix" --no-save --no-package-lock --no-audit \
            --no-fund --loglevel=error "$OAV_PKG@$OAV_VERSION" >"$T/npm.log" 2>&1 ||
            { cat "$T/npm.log"; exit 1; }
        [ -f "$bin" ] || { echo "no $bin after npm install"; exit 1; }
        touch "$stamp"
    ) 9>"$prefix/node_modules/.ql-oav.lock" ||
        hard_error "npm install $OAV_PKG@$OAV_VERSION into $prefix failed"
    OAV_BIN=$bin
    OAV_MODULES=$prefix/node_modules
}

pg_start
hsm_init
tls_make_certs
ql_config
ql_start

# ---- served document = shipped document
ql_curl "$(admin_url /api/v1/openapi.json)" ||
    fail "GET /api/v1/openapi.json failed: $(cat "$T/curl.err")"
assert_status 200
assert_match '^application/json' "$(ql_header Content-Type)" "openapi.json Content-Type"
json_valid "$BODY" || fail "openapi.json is not JSON: $(head -c 300 "$BODY")"
cmp -s "$BODY" "$top_srcdir/doc/openapi.json" ||
    fail "served /api/v1/openapi.json differs from doc/openapi.json (rebuild?)"
cp "$BODY" "$T/openapi.json"
DOC="$T/openapi.json"
assert_json "$DOC" openapi 3.1.0

# ---- routes == operations, both ways
# --list-routes: listener TAB methods TAB path TAB minimum role.
"$QUARKLINKD" --list-routes >"$T/routes.all" 2>"$T/routes.err" ||
    fail "quarklinkd --list-routes failed: $(cat "$T/routes.err")"
awk -F'\t' '$1 == "admin" && ($3 ~ /^\/api\/v1\// || $3 == "/healthz" || $3 == "/readyz") {
        n = split($2, m, /, */)
        for (i = 1; i <= n; i++)
            if (m[i] != "HEAD")
                print m[i] "\t" $3 "\t" $4
    }' "$T/routes.all" | LC_ALL=C sort >"$T/routes"
nroutes=$(wc -l <"$T/routes")
[ "$nroutes" -ge 30 ] || fail "only $nroutes admin API routes listed: $(cat "$T/routes.all")"
grep -q $'^GET\t/debug/sleep\t' "$T/routes" && fail "the route filter let /debug/sleep through"

jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[]
        | select(.key | IN("get", "put", "post", "delete", "patch", "head", "options", "trace"))
        | "\(.key | ascii_upcase)\t\($p)\t\(.value["x-quarklink-role"] // "MISSING")"' \
    "$DOC" | LC_ALL=C sort >"$T/documented" || fail "cannot list the document's operations"

LC_ALL=C comm -23 "$T/routes" "$T/documented" >"$T/undocumented"
LC_ALL=C comm -13 "$T/routes" "$T/documented" >"$T/unserved"
if [ -s "$T/undocumented" ] || [ -s "$T/unserved" ]; then
    printf '%s\n' "---- served but not documented (method, path, role):"
    cat "$T/undocumented"
    printf '%s\n' "---- documented but not served (or another role):"
    cat "$T/unserved"
    fail "doc/openapi.json and the router disagree"
fi
# ---- query parameters: the ones each route declares (--list-routes, last
# column, "-" for none) are the ones documented, both ways, and every
# operation documents the 400 that any other query string gets.
awk -F'\t' '$1 == "admin" && ($3 ~ /^\/api\/v1\// || $3 == "/healthz" || $3 == "/readyz") {
        q = $6 == "-" ? "" : $6
        nq = split(q, names, ","); q = ""
        # sorted, so the order of the declaration does not matter
        for (i = 1; i <= nq; i++) for (j = i + 1; j <= nq; j++)
            if (names[j] < names[i]) { t = names[i]; names[i] = names[j]; names[j] = t }
        for (i = 1; i <= nq; i++) q = q (i > 1 ? "," : "") names[i]
        n = split($2, m, /, */)
        for (i = 1; i <= n; i++)
            if (m[i] != "HEAD")
                print m[i] "\t" $3 "\t" q
    }' "$T/routes.all" | LC_ALL=C sort >"$T/routes.query"
[ "$(wc -l <"$T/routes.query")" = "$nroutes" ] || fail "--list-routes has no query column"
jq -r '. as $d | .paths | to_entries[] | .key as $p | .value | to_entries[]
        | select(.key | IN("get", "put", "post", "delete", "patch", "head", "options", "trace"))
        | [.value.parameters[]?
           | if ."$ref" then $d.components.parameters[."$ref" | sub("^#/components/parameters/"; "")]
             else . end
           | select(.in == "query") | .name] as $q
        | "\(.key | ascii_upcase)\t\($p)\t\($q | sort | join(","))"' \
    "$DOC" | LC_ALL=C sort >"$T/documented.query" || fail "cannot list the documented query parameters"
if ! diff "$T/routes.query" "$T/documented.query" >"$T/query.diff"; then
    printf '%s\n' "---- < declared by the route, > documented (method, path, parameters):"
    cat "$T/query.diff"
    fail "doc/openapi.json and the routes disagree on query parameters"
fi
bad=$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[]
        | select(.key | IN("get", "put", "post", "delete", "patch"))
        | select(.value.responses | has("400") | not) | "\(.key) \($p)"' "$DOC")
assert_eq "" "$bad" "operations that do not document 400 for a bad query string"
ql_log "query parameters of $nroutes operations match the routes"

jq -e '.paths | has("/debug/sleep") | not' "$DOC" >/dev/null ||
    fail "the test-only /debug/sleep is in the document"
ql_log "$nroutes operations match the router"

# ---- every operation states its role, public ones need no credentials
bad=$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] | .key as $m | .value
        | ."x-quarklink-role" as $role
        | select((.description // "" | test(if $role == "public" then "Public: "
                else "Minimum role: \($role)\\." end) | not)
            or (($role == "public") != (.security == [])))
        | "\($m) \($p)"' "$DOC") || fail "jq failed on the role check"
assert_eq "" "$bad" "operations whose description/security do not match x-quarklink-role"

# ---- every error response is problem+json with the shared schema
# (/readyz's 503 is its readiness report, as JSON).
bad=$(jq -r '. as $d | .paths | to_entries[] | .key as $p | .value | to_entries[] | .key as $m
        | .value.responses | to_entries[]
        | select(.key == "default" or (.key | tonumber? // 0) >= 400)
        | select(($p + " " + .key) != "/readyz 503")
        | .key as $code
        | (if .value."$ref" then $d.components.responses[.value."$ref" | sub("^#/components/responses/"; "")]
           else .value end) as $r
        | select(($r.content | keys) != ["application/problem+json"]
            or $r.content."application/problem+json".schema."$ref" != "#/components/schemas/ProblemDetails")
        | "\($m) \($p) \($code)"' "$DOC") || fail "jq failed on the error response check"
assert_eq "" "$bad" "error responses that are not problem+json ProblemDetails"

# A real error body has exactly the documented ProblemDetails members.
ql_curl "$(admin_url /api/v1/projects)"
assert_status 401
assert_problem 401
want=$(jq -c '.components.schemas.ProblemDetails.required | sort' "$DOC")
got=$(jq -c 'keys' "$BODY")
assert_eq "$want" "$got" "members of a problem response"

# ---- standard validator
oav_install
node "$OAV_BIN" "$DOC" >"$T/oav.out" 2>&1
rc=$?
if [ $rc -ne 0 ] || ! jq -e '.valid == true' "$T/oav.out" >/dev/null 2>&1; then
    head -c 4000 "$T/oav.out"
    fail "$OAV_PKG $OAV_VERSION: doc/openapi.json is not valid OpenAPI (exit $rc)"
fi
ql_log "$OAV_PKG $OAV_VERSION: valid"

# ---- real responses match the document
# oa_call METHOD TEMPLATE PATH [CURL ARGS...]: the request, recorded with its
# status, Content-Type and body for the schema check below.
NCALLS=0
oa_call() {
    local method=$1 template=$2 path=$3
    shift 3
    ql_curl -X "$method" "$@" "$(admin_url "$path")"
    NCALLS=$((NCALLS + 1))
    cp "$BODY" "$T/resp.$NCALLS"
    printf '%s\t%s\t%s\t%s\t%s\n' "$method" "$template" "$HTTP_STATUS" \
        "$(ql_header Content-Type || true)" "$T/resp.$NCALLS" >>"$T/calls"
}
# oa_json METHOD TEMPLATE PATH JSON [CURL ARGS...]
oa_json() {
    local method=$1 template=$2 path=$3 json=$4
    shift 4
    oa_call "$method" "$template" "$path" -H 'Content-Type: application/json' \
        --data-binary "$json" "$@"
}

ql_admin_ok create-admin alice
alice_pw=$(printf '%s\n' "$ADMIN_OUT" | tail -n 1)
ADM=(-H "Authorization: Bearer $(api_token_new admin "")")
P='/api/v1/projects/{project}'

oa_call GET /healthz /healthz
oa_call GET /readyz /readyz
oa_json POST /api/v1/login /api/v1/login \
    "$(jq -cn --arg p "$alice_pw" '{username: "alice", password: $p}')"
assert_status 200
oa_json POST /api/v1/login /api/v1/login '{"username": "alice", "password": "wrong"}'
oa_call GET /api/v1/session /api/v1/session "${ADM[@]}"
oa_call GET /api/v1/installation /api/v1/installation "${ADM[@]}"
oa_call GET /api/v1/installation /api/v1/installation
oa_json POST /api/v1/projects /api/v1/projects '{"name": "acme", "policy": {"token": true}}' "${ADM[@]}"
assert_status 201
oa_json POST /api/v1/projects /api/v1/projects '{"name": "acme"}' "${ADM[@]}"
oa_json POST /api/v1/projects /api/v1/projects '{"name": 1}' "${ADM[@]}"
oa_call POST /api/v1/projects /api/v1/projects -d 'x' "${ADM[@]}"
oa_call GET /api/v1/projects '/api/v1/projects?limit=1' "${ADM[@]}"
oa_call GET /api/v1/projects '/api/v1/projects?limit=1&x' "${ADM[@]}"
assert_status 400 "a query string that does not parse"
oa_call GET "$P" /api/v1/projects/acme "${ADM[@]}"
oa_call GET "$P" /api/v1/projects/nope "${ADM[@]}"
oa_json PATCH "$P" /api/v1/projects/acme '{"cert_validity_days": 30}' "${ADM[@]}"
oa_json POST "$P/enrollment-tokens" /api/v1/projects/acme/enrollment-tokens \
    '{"name": "line 1", "max_uses": 5}' "${ADM[@]}"
assert_status 201
enroll_tok=$(json_get "$BODY" token)
oa_call GET "$P/enrollment-tokens" /api/v1/projects/acme/enrollment-tokens "${ADM[@]}"
oa_json POST "$P/enrollment-tokens" /api/v1/projects/acme/enrollment-tokens '{}' "${ADM[@]}"
oa_call DELETE "$P/enrollment-tokens/{id}" \
    "/api/v1/projects/acme/enrollment-tokens/$(json_get "$BODY" id)" "${ADM[@]}"
oa_json POST "$P/allowlist" /api/v1/projects/acme/allowlist \
    '["mfrggzdfmztwq2lknnwg23tpobyxe43u"]' "${ADM[@]}"
oa_call POST "$P/allowlist" /api/v1/projects/acme/allowlist -H 'Content-Type: text/csv' \
    --data-binary $'device_id\nmfrggzdfmztwq2lknnwg23tpobyxe43u\nnbswy3dpo5xxe3debjzgk4lfon2hk3lu\n' \
    "${ADM[@]}"
oa_call GET "$P/allowlist" /api/v1/projects/acme/allowlist "${ADM[@]}"
oa_call DELETE "$P/allowlist/{device}" \
    /api/v1/projects/acme/allowlist/nbswy3dpo5xxe3debjzgk4lfon2hk3lu "${ADM[@]}"
oa_json POST /api/v1/users /api/v1/users '{"name": "vera", "role": "viewer",
    "projects": ["acme"], "password": "correct horse battery staple 42"}' "${ADM[@]}"
oa_call GET /api/v1/users /api/v1/users "${ADM[@]}"
oa_json PATCH '/api/v1/users/{user}' /api/v1/users/vera '{"disabled": true}' "${ADM[@]}"
oa_json POST /api/v1/api-tokens /api/v1/api-tokens \
    '{"name": "ci", "role": "operator", "project": "acme", "expires_in_days": 1}' "${ADM[@]}"
oa_call GET /api/v1/api-tokens /api/v1/api-tokens "${ADM[@]}"
oa_call DELETE '/api/v1/api-tokens/{id}' /api/v1/api-tokens/999999 "${ADM[@]}"

# Devices and certificates: one enrolled device.
est_enroll_ok acme dev1 -u "dev1:$enroll_tok"
D="/api/v1/projects/acme/devices/$DEVICE_ID"
oa_call GET "$P/devices" '/api/v1/projects/acme/devices?limit=10' "${ADM[@]}"
oa_call GET "$P/devices/{device}" "$D" "${ADM[@]}"
oa_json PUT "$P/devices/{device}/tags" "$D/tags" '{"tags": ["a"]}' "${ADM[@]}"
oa_call POST "$P/devices/{device}/approve" "$D/approve" "${ADM[@]}"
oa_call GET "$P/devices/{device}/certificates" "$D/certificates" "${ADM[@]}"
oa_call GET "$P/certificates" /api/v1/projects/acme/certificates "${ADM[@]}"
oa_call GET "$P/certificates/{serial}" "/api/v1/projects/acme/certificates/$SERIAL" "${ADM[@]}"
oa_json POST "$P/certificates/{serial}/revoke" \
    "/api/v1/projects/acme/certificates/$SERIAL/revoke" '{"reason": "keyCompromise"}' "${ADM[@]}"
oa_call GET "$P/devices/{device}/deployments" "$D/deployments?limit=5" "${ADM[@]}"
assert_eq '{"items":[],"next":null}' "$(jq -c . "$BODY")" "a device never deployed to has no history"
oa_call GET "$P/devices/{device}/deployments" /api/v1/projects/acme/devices/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/deployments "${ADM[@]}"
assert_status 404 "the history of a device the project does not have"
oa_call POST "$P/devices/{device}/attestation/accept" "$D/attestation/accept" "${ADM[@]}"
assert_status 409 "accept on a device that is not tampered"
oa_call POST "$P/devices/{device}/disable" "$D/disable" "${ADM[@]}"
oa_call POST "$P/devices/{device}/enable" "$D/enable" "${ADM[@]}"
oa_call DELETE "$P/devices/{device}" "$D" "${ADM[@]}"

# TPM manufacturer CAs: one added, listed, a duplicate, deleted.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=oa-tpm-ca -addext basicConstraints=critical,CA:TRUE \
    -keyout "$T/tpmca.key" -out "$T/tpmca.pem" >/dev/null 2>&1 ||
    hard_error "openssl req failed"
oa_call POST "$P/tpm-cas" /api/v1/projects/acme/tpm-cas -H 'Content-Type: application/x-pem-file' \
    --data-binary @"$T/tpmca.pem" "${ADM[@]}"
assert_status 201
tpmca_id=$(json_get "$BODY" id)
oa_call POST "$P/tpm-cas" /api/v1/projects/acme/tpm-cas -H 'Content-Type: application/x-pem-file' \
    --data-binary @"$T/tpmca.pem" "${ADM[@]}"
assert_status 409
oa_call POST "$P/tpm-cas" /api/v1/projects/acme/tpm-cas -H 'Content-Type: application/x-pem-file' \
    --data-binary 'not a certificate' "${ADM[@]}"
oa_call GET "$P/tpm-cas" /api/v1/projects/acme/tpm-cas "${ADM[@]}"
oa_call DELETE "$P/tpm-cas/{id}" "/api/v1/projects/acme/tpm-cas/$tpmca_id" "${ADM[@]}"
assert_status 204
oa_call GET /api/v1/audit '/api/v1/audit?limit=5&action=project.' "${ADM[@]}"
oa_call GET /api/v1/audit/verify /api/v1/audit/verify "${ADM[@]}"
oa_call POST /api/v1/audit/checkpoints /api/v1/audit/checkpoints "${ADM[@]}"
assert_status 201
oa_call GET /api/v1/audit/checkpoints/latest /api/v1/audit/checkpoints/latest "${ADM[@]}"
oa_call GET /api/v1/openapi.json /api/v1/openapi.json
oa_call GET /api/v1/pki/root.crt /api/v1/pki/root.crt
assert_status 200 "the root certificate on the admin listener"
pki_fetch_ca root "$T/root.pem"
openssl x509 -inform DER -in "$T/resp.$NCALLS" -out "$T/root-admin.pem" ||
    fail "/api/v1/pki/root.crt is not a DER certificate"
cmp -s "$T/root.pem" "$T/root-admin.pem" || fail "/api/v1/pki/root.crt is not the pki listener's root.crt"

# Each response: its status is documented for the operation (errors may
# fall to "default"), its Content-Type is the documented one, its body
# validates against the documented schema (with ajv, the JSON Schema
# 2020-12 validator that the OpenAPI validator itself uses).
cat >"$T/conform.cjs" <<'JS'
const fs = require("fs");
const { createRequire } = require("module");
const [, , modules, docFile, callsFile] = process.argv;
const req = createRequire(modules);
const Ajv2020 = req("ajv/dist/2020").default;
const addFormats = req("ajv-formats").default;
const doc = JSON.parse(fs.readFileSync(docFile, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(doc, "doc");
const deref = (o) => (o && o.$ref ? deref(o.$ref.split("/").slice(1).reduce(
    (a, k) => a[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc)) : o);
let bad = 0, checked = 0;
for (const line of fs.readFileSync(callsFile, "utf8").split("\n")) {
    if (!line) continue;
    const [method, path, status, ctype, file] = line.split("\t");
    const what = `${method} ${path} -> ${status}`;
    const op = (doc.paths[path] || {})[method.toLowerCase()];
    if (!op) { console.log(`${what}: not in the document`); bad++; continue; }
    if (status === "501") {
        console.log(`${what}: not implemented (501)`); bad++; continue;
    }
    if (!op.responses[status] && Number(status) < 400) {
        console.log(`${what}: status not documented`); bad++; continue;
    }
    const resp = deref(op.responses[status] || op.responses.default);
    const body = fs.readFileSync(file, "utf8");
    const media = Object.keys(resp.content || {});
    const mt = (ctype || "").split(";")[0].trim();
    checked++;
    if (media.length === 0) {
        if (body.length !== 0) { console.log(`${what}: documented without a body`); bad++; }
        continue;
    }
    if (!media.includes(mt)) {
        console.log(`${what}: Content-Type "${mt}", documented ${media}`); bad++; continue;
    }
    // A binary body (a DER certificate) has its media type checked only.
    if (!/json$/.test(mt)) continue;
    const schema = resp.content[mt].schema;
    let data;
    try { data = JSON.parse(body); } catch (e) { console.log(`${what}: not JSON`); bad++; continue; }
    const v = schema.$ref ? ajv.getSchema("doc" + schema.$ref) : ajv.compile(schema);
    if (!v(data)) {
        console.log(`${what}: body does not match ${schema.$ref || "the schema"}: ` +
            JSON.stringify(v.errors.slice(0, 5)) + "\n    " + body.slice(0, 600));
        bad++;
    }
}
console.log(`# ${checked} responses checked, ${bad} bad`);
process.exit(bad ? 1 : 0);
JS
node "$T/conform.cjs" "$OAV_MODULES/" "$DOC" "$T/calls" >"$T/conform.out" 2>&1
rc=$?
grep '^#' "$T/conform.out"
if [ $rc -ne 0 ]; then
    grep -v '^#' "$T/conform.out"
    fail "responses of the daemon do not match doc/openapi.json"
fi

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
