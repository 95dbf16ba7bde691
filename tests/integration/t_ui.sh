#!/bin/bash
# The web UI in a real browser: tests/browser/ui.mjs drives Debian's
# chromium (headless, through playwright-core; axe-core for accessibility)
# against this quarklinkd with its PostgreSQL and SoftHSM: log in, create a
# project and an enrollment token, see a device enrolled here with curl
# (EST) appear without a reload, revoke its certificate, find that in the
# audit log, TPM attestation settings (tpm as the only policy, PCRs,
# refuse_tampered), a project's TPM manufacturer CAs added and deleted, a
# device made tampered here in the database accepted in the browser, every
# main page checked by axe and saved as a screenshot (tests/browser/out/),
# and the first page of 100,000 devices rendered in under a second. The
# npm packages are required: missing ones fail the test
# (contrib/quickstart.sh installs them).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl jq

ui_www_setup

pg_start
hsm_init
tls_make_certs
ql_config admin.www_dir="$W"
ql_start
pw=$("$QUARKLINKD" -c "$T/quarklinkd.conf" --create-admin admin 2>"$T/create-admin.err") ||
    hard_error "--create-admin failed: $(cat "$T/create-admin.err")"
# An operator of every project, with the admin's password (the last step
# logs in as it: settings are the admins').
api_user_new oper operator "" admin

# Project "big" with 100,000 devices, inserted by SQL (IDs in [a-z2-7]).
ql_admin_ok create-project big token
ql_psql "INSERT INTO devices (project_id, device_id, label, status, created_at, last_seen, tags, installed_version)
         SELECT p.id, translate(md5('dev' || i), '0189', 'abcd'), 'dev-' || i,
                CASE WHEN i % 10 = 0 THEN 'pending' WHEN i % 20 = 5 THEN 'disabled' ELSE 'active' END,
                now() - (i % 700) * interval '1 day',
                CASE WHEN i % 10 <> 0 THEN now() - (i % 86400) * interval '1 second' END,
                ARRAY['fleet-' || (i % 10)], '1.' || (i % 5) || '.0'
         FROM projects p, generate_series(1, 100000) i WHERE p.name = 'big'" >/dev/null ||
    hard_error "inserting 100000 devices"
ql_psql "ANALYZE devices" >/dev/null
assert_eq 100000 "$(ql_psql "SELECT count(*) FROM devices d JOIN projects p ON p.id = d.project_id WHERE p.name = 'big'")"

# Which parts of the API this server has (images, deployments).
ql_curl "$(admin_url /api/v1/openapi.json)"
assert_status 200 "GET /api/v1/openapi.json"
has_path() { jq -e --arg p "$1" '.paths | has($p)' "$BODY" >/dev/null && echo 1 || echo 0; }
QL_HAS_IMAGES=$(has_path '/api/v1/projects/{project}/images')
QL_HAS_DEPLOY=$(has_path '/api/v1/projects/{project}/deployments')

# TPM manufacturer CAs for the settings page: a CA certificate (added from
# a file) and one that is not a CA's (pasted, refused by the server).
printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]' '[ca]' \
    'basicConstraints = critical,CA:TRUE' 'keyUsage = critical,keyCertSign,cRLSign' \
    '[leaf]' 'basicConstraints = critical,CA:FALSE' >"$T/tpmca.cnf"
for x in ca leaf; do
    openssl req -x509 -config "$T/tpmca.cnf" -extensions "$x" -newkey ec \
        -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tpm$x.key" -out "$T/tpm$x.pem" \
        -subj "/O=UI Test TPM Maker/CN=UI Test EK $x" -days 30 2>"$T/tpm$x.err" ||
        hard_error "making the TPM $x certificate: $(cat "$T/tpm$x.err")"
done

UI="$T/ui"
OUT="$top_builddir/tests/browser/out"
mkdir -p "$UI" "$OUT"
rm -f "$OUT"/*.png
QL_URL=$(admin_url "") QL_UI_DIR=$UI QL_UI_OUT=$OUT QL_NODE_MODULES=$NM \
QL_USER=admin QL_PASSWORD=$pw QL_HAS_IMAGES=$QL_HAS_IMAGES QL_HAS_DEPLOY=$QL_HAS_DEPLOY \
QL_TPM_CA=$T/tpmca.pem QL_TPM_NOT_CA=$T/tpmleaf.pem \
    node "$top_srcdir/tests/browser/ui.mjs" >"$T/ui.out" 2>&1 &
node_pid=$!
QL_CHILD_PIDS+=("$node_pid")

# The browser hands over the enrollment token it created; enroll with it.
token_or_gone() { [ -s "$UI/token" ] || ! kill -0 "$node_pid" 2>/dev/null; }
if ! wait_until 120 token_or_gone || [ ! -s "$UI/token" ]; then
    kill "$node_pid" 2>/dev/null; wait "$node_pid"; cat "$T/ui.out"
    fail "the browser did not create an enrollment token"
fi
est_enroll_ok ui dev1 -u "dev1:$(cat "$UI/token")"
# What an attestation and a differing quote (PCR 7) would have left, so
# the browser finds the device tampered; its EK hash is handed over.
ql_psql "UPDATE devices d SET att_state = 'tampered', ek_sha256 = sha256('ui ek'::bytea),
             ak_name = '\\x000b'::bytea || sha256('ui ak'::bytea),
             attested_at = now() - interval '1 hour', last_quote_at = now(),
             pcr_reference = jsonb_build_object('0', repeat('a', 64), '7', repeat('b', 64)),
             pcr_last = jsonb_build_object('0', repeat('a', 64), '7', repeat('c', 64)),
             pcr_differ = '{7}'
         FROM projects p WHERE p.id = d.project_id AND p.name = 'ui' AND d.device_id = '$DEVICE_ID'" >/dev/null ||
    hard_error "making device $DEVICE_ID tampered"
ql_psql "SELECT encode(sha256('ui ek'::bytea), 'hex')" >"$UI/ek.tmp" && mv "$UI/ek.tmp" "$UI/ek"
printf '%s\n' "$SERIAL" >"$UI/serial.tmp" && mv "$UI/serial.tmp" "$UI/serial"
printf '%s\n' "$DEVICE_ID" >"$UI/device.tmp" && mv "$UI/device.tmp" "$UI/device"

wait "$node_pid"
rc=$?
cat "$T/ui.out"
[ "$rc" = 0 ] || fail "the browser test failed (exit $rc); screenshots in $OUT"
[ -f "$UI/done" ] || fail "ui.mjs exited 0 without finishing"

# What the browser did is real: the certificate is revoked for
# keyCompromise in the database and the audit log names who did it.
assert_eq 1 \
    "$(ql_psql "SELECT revocation_reason FROM certificates WHERE serial = '$SERIAL' AND revoked_at IS NOT NULL")" \
    "the certificate revoked in the browser (CRLReason keyCompromise = 1)"
n=$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke' AND actor = 'user:admin'")
assert_ne 0 "$n" "audit rows of the revocation by user:admin"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'ui'")" "project ui created in the browser"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM enrollment_tokens WHERE name = 'factory line 1'")" "token created in the browser"
assert_eq 2 "$(ql_psql "SELECT count(*) FROM allowlist a JOIN projects p ON p.id = a.project_id WHERE p.name = 'ui'")" "allowlist entries pasted in the browser"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM api_tokens WHERE name = 'ci-token'")" "API token created in the browser"
# The attestation steps are real: the measurements accepted (the last
# quote became the reference), the CA added and deleted, the settings
# restored to what the enrollment above needed, each change audited.
assert_eq "trusted|t|{}" \
    "$(ql_psql "SELECT att_state, pcr_reference = pcr_last, pcr_differ FROM devices WHERE device_id = '$DEVICE_ID'")" \
    "device accepted in the browser: trusted, reference = last quote, no differing PCRs"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.attestation_accepted' AND actor = 'user:admin'")" \
    "audit row of the accept"
assert_eq "1|1|0" "$(ql_psql "SELECT (SELECT count(*) FROM audit_log WHERE action = 'tpm_ca.add' AND actor = 'user:admin'),
    (SELECT count(*) FROM audit_log WHERE action = 'tpm_ca.delete' AND actor = 'user:admin'),
    (SELECT count(*) FROM tpm_cas)")" "TPM CA added once and deleted in the browser"
assert_eq "t|f|f|f|255|t" "$(ql_psql "SELECT policy_token, policy_allowlist, policy_approval, policy_tpm, attest_pcrs, attest_refuse_tampered FROM projects WHERE name = 'ui'")" \
    "project ui's policy and attestation restored in the browser"
for s in login projects devices device device-tampered accept-dialog settings-attestation settings-tpm-cas certificates certificate audit users overview images deployments enrollment settings devices-100k devices-narrow login-expired settings-operator; do
    [ -s "$OUT/$s.png" ] || fail "no screenshot $OUT/$s.png"
done
ql_log "first page of 100000 devices in the browser: $(cat "$UI/render-ms") ms"
