#!/bin/bash
# A release end to end through the web UI with the real agent:
# tests/browser/e2e.mjs drives Debian's chromium (headless, playwright-core,
# axe-core) against this quarklinkd with its PostgreSQL and SoftHSM. The
# browser logs in, creates project e2e and an enrollment token; here
# ql-agent (key_store file) enrolls with that token and the browser sees
# the device appear without a reload; it tags the device, uploads a 50 MiB
# image through a proxy (tests/browser/cutproxy.mjs, which presents
# $T/server.crt and checks the server's against $T/ca.crt) that cuts the
# connection on the wire past half (the upload resumes from the server's
# offset), uploads it again as 2.1 with the page reloaded mid-PATCH (it
# resumes), signs 2.0, deploys it to the tag; here `ql-agent run
# --once` installs it through its hook, and the browser sees the install in
# the deployment and in the device's update history, revokes the device's
# certificate and finds every step in the audit log. Screenshots of each
# main page in tests/browser/out/e2e/. The npm packages are required.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require curl openssl jq sha256sum cmp

ui_www_setup

# PATCHes of 8 MiB: the 50 MiB upload is seven of them, the cuts fall in
# the fifth (at 32 MiB) and the resumed part is more than one; the server
# stores a PATCH in pieces of up to 4 MiB, so one of 8 MiB is two.
agent_pki_start admin.www_dir="$W" images.max_chunk_size=8M
pw=$("$QUARKLINKD" -c "$T/quarklinkd.conf" --create-admin admin 2>"$T/create-admin.err") ||
    hard_error "--create-admin failed: $(cat "$T/create-admin.err")"

# The image, and the agent's install hook (it records what it installed).
head -c $((50 * 1024 * 1024)) /dev/urandom >"$T/os.img"
cat >"$T/hook.sh" <<'EOS'
#!/bin/bash
set -eu
printf '%s %s %s\n' "$QL_VERSION" "$QL_SHA256" "$(sha256sum <"$1" | cut -d' ' -f1)" >>"$T/hook.log"
EOS
chmod 755 "$T/hook.sh"
export T
agent_conf d1 project=e2e timeout=120

UI="$T/ui"
OUT="$top_builddir/tests/browser/out/e2e"
mkdir -p "$UI" "$OUT"
rm -f "$OUT"/*.png
QL_URL=$(admin_url "") QL_UI_DIR=$UI QL_UI_OUT=$OUT QL_NODE_MODULES=$NM QL_IMAGE=$T/os.img \
QL_USER=admin QL_PASSWORD=$pw QL_TLS_CERT=$T/server.crt QL_TLS_KEY=$T/server.key QL_TLS_CA=$T/ca.crt \
    node "$top_srcdir/tests/browser/e2e.mjs" >"$T/e2e.out" 2>&1 &
node_pid=$!
QL_CHILD_PIDS+=("$node_pid")

# browser_gives FILE SECONDS WHAT: wait for the browser's hand-over file.
browser_gives() {
    local ready="[ -s '$UI/$1' ] || ! kill -0 $node_pid 2>/dev/null"
    if ! wait_until "$2" eval "$ready" || [ ! -s "$UI/$1" ]; then
        kill "$node_pid" 2>/dev/null
        wait "$node_pid"
        cat "$T/e2e.out"
        ql__fail_at 1 "the browser did not $3"
    fi
}
# hand_over FILE TEXT: atomically, for the browser.
hand_over() { printf '%s\n' "$2" >"$UI/$1.tmp" && mv "$UI/$1.tmp" "$UI/$1"; }

# ---- the token the browser created enrolls the real agent
browser_gives token 300 "create an enrollment token"
# with the URLs of the configuration the page showed (the device listener
# as bound, from GET /api/v1/installation), not the test's own
shown() { sed -nE "s|^$1 = (.*)$|\1|p" "$UI/agent.conf"; }
assert_eq "https://127.0.0.1:$DEVICE_PORT" "$(shown device_url)" "device_url the page shows"
assert_eq "https://127.0.0.1:$DEVICE_PORT/.well-known/est" "$(shown est_url)" "est_url the page shows"
assert_eq e2e "$(shown project)" "project the page shows"
agent_conf d1 project=e2e timeout=120 est_url="$(shown est_url)" device_url="$(shown device_url)"
agent d1 enroll --token "$(cat "$UI/token")"
assert_agent_rc 0 "ql-agent enroll with the token made in the browser"
device=$AGENT_OUT
assert_match '^[a-z2-7]{32}$' "$device" "enroll prints the device ID"
serial=$(cert_serial "$T/d1/cert.pem")
hand_over serial "$serial"
hand_over device "$device"

# ---- the browser deployed: the agent installs it
browser_gives deployed 900 "upload, sign and deploy the image"
dep=$(cat "$UI/deployed")
agent d1 run --once
assert_agent_rc 0 "ql-agent run --once installs the deployed image"
sha=$(sha256sum <"$T/os.img" | cut -d' ' -f1)
assert_eq "2.0 $sha $sha" "$(cat "$T/hook.log")" "the hook installed the uploaded bytes once"
hand_over installed ok

wait "$node_pid"
rc=$?
cat "$T/e2e.out"
[ "$rc" = 0 ] || fail "the browser test failed (exit $rc); screenshots in $OUT"
[ -s "$UI/done" ] || fail "e2e.mjs exited 0 without finishing"

# What the browser did is real.
assert_eq "installed|" "$(ql_psql "SELECT state || '|' || coalesce(detail, '') FROM device_deployments
    WHERE deployment_id = $dep")" "the server has the device installed"
assert_eq 1 "$(ql_psql "SELECT revocation_reason FROM certificates WHERE serial = '$serial' AND revoked_at IS NOT NULL")" \
    "the certificate revoked in the browser (CRLReason keyCompromise = 1)"
assert_eq "edge" "$(ql_psql "SELECT array_to_string(tags, ',') FROM devices WHERE device_id = '$device'")" \
    "the tag set in the browser"
assert_eq "2 2" "$(ql_psql "SELECT count(*) || ' ' || count(completed_at) FROM uploads")" \
    "two uploads (2.0 cut twice, 2.1 across a reload), each resumed rather than started again"
pki_fetch_ca root "$T/root.pem"
openssl x509 -inform DER -in "$UI/root-ui.crt" -out "$T/root-ui.pem" ||
    fail "the UI's root.crt link did not give a DER certificate"
cmp -s "$T/root.pem" "$T/root-ui.pem" || fail "the UI's root.crt is not the installation's root"
for s in login projects enrollment devices sign-dialog images deployments deployment device certificates audit; do
    [ -s "$OUT/$s.png" ] || fail "no screenshot $OUT/$s.png"
done
ql_log "upload: $(jq -r '.upload | join(", ")' "$UI/done")"
