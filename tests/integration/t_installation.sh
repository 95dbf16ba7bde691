#!/bin/bash
# GET /api/v1/installation tells what an agent's configuration needs: the
# device listener's URL as bound, or device.url (a trailing slash removed),
# or null when this node serves no device listener and no url says where it
# is; the EST URL under it; pki.url. Any signed-in role of any project scope
# may read it, nobody else. The agent enrolls with the URLs it answers.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require curl jq

agent_pki_start
api_admin_session admin

# ---- defaults: the listeners as bound (127.0.0.1 here)
api GET /api/v1/installation
assert_status 200 "installation as admin"
assert_json "$BODY" device_url "https://127.0.0.1:$DEVICE_PORT"
assert_json "$BODY" est_url "https://127.0.0.1:$DEVICE_PORT/.well-known/est"
assert_json "$BODY" pki_url "http://127.0.0.1:$PKI_PORT"
assert_json "$BODY" root_ca_url /api/v1/pki/root.crt
keys=$(jq -c 'keys' "$BODY")
assert_eq '["device_url","est_url","pki_url","root_ca_url"]' "$keys" "members of the installation"
cp "$BODY" "$T/install.json"

# The root it points at is the root devices pin.
ql_curl "$(admin_url "$(jq -r .root_ca_url "$T/install.json")")"
assert_status 200 "GET root_ca_url"
openssl x509 -inform DER -in "$BODY" -out "$T/root-admin.pem" 2>"$T/openssl.err" ||
    fail "root_ca_url is not a DER certificate: $(cat "$T/openssl.err")"
assert_eq "$(openssl x509 -in "$T/root.pem" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$T/root-admin.pem" -noout -fingerprint -sha256)" \
    "root_ca_url serves the root of the pki listener"

# ---- who may read it: a viewer limited to one project, not an anonymous caller
ql_admin_ok create-project p1 token
viewer=$(api_token_new viewer p1)
api_bearer "$viewer" GET /api/v1/installation
assert_status 200 "installation as a viewer of one project"
assert_json "$BODY" device_url "https://127.0.0.1:$DEVICE_PORT"
ql_curl "$(admin_url /api/v1/installation)"
assert_status 401 "installation without credentials"
assert_problem 401
revoked=$(api_token_new admin "" "now() + interval '1 hour'" "now()")
api_bearer "$revoked" GET /api/v1/installation
assert_status 401 "installation with a revoked token"
api POST /api/v1/installation '{}'
assert_status 405 "POST installation"
api GET '/api/v1/installation?x=1'
assert_status 400 "installation with an unknown query parameter"
ql_curl --cacert "$T/root.pem" "$(device_url /api/v1/installation)"
assert_status 404 "installation on the device listener"

# ---- the agent enrolls with what it answers
api POST /api/v1/projects/p1/enrollment-tokens '{"max_uses": 1, "valid_days": 1}'
assert_status 201 "enrollment token"
token=$(json_get "$BODY" token)
agent_conf d1 est_url="$(jq -r .est_url "$T/install.json")" \
    device_url="$(jq -r .device_url "$T/install.json")"
agent d1 enroll --token "$token"
assert_agent_rc 0 "ql-agent enroll with the installation's URLs"
assert_match '^[a-z2-7]{32}$' "$AGENT_OUT" "enroll prints the device ID"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- device.url and pki.url as configured, a trailing slash removed; the
# device listener is off on this node
ql_config device.enabled=no device.url=https://devices.example.com:9444/ \
    pki.url=https://pki.example.com/ql/
ql_start
api_bearer "$(api_token_new viewer "")" GET /api/v1/installation
assert_status 200 "installation with device.url"
assert_json "$BODY" device_url https://devices.example.com:9444
assert_json "$BODY" est_url https://devices.example.com:9444/.well-known/est
assert_json "$BODY" pki_url https://pki.example.com/ql
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- no device listener and no device.url: null, not a made-up address
ql_config device.enabled=no
ql_start
api_bearer "$(api_token_new viewer "")" GET /api/v1/installation
assert_status 200 "installation without a device listener"
assert_eq "null null" "$(jq -r '"\(.device_url) \(.est_url)"' "$BODY")" \
    "device_url and est_url without a device listener or device.url"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- a device.url that is not an https URL stops the daemon at start
ql_config device.url=http://devices.example.com:8444
"$QUARKLINKD" -t -c "$T/quarklinkd.conf" >"$T/t.out" 2>"$T/t.err" &&
    fail "quarklinkd -t accepted an http:// device.url"
assert_match 'url: expected an https:// URL' "$(cat "$T/t.err")" "-t names the bad device.url"
