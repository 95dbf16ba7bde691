#!/bin/bash
# Signed checkpoints of the audit log (a transparency log's signed tree
# head): made at start, periodically when the log grew and on demand; each
# one verifies with stock openssl against the served public key; the key is
# on the token, never extractable; GET /api/v1/audit/verify reports a log
# cut (newest rows deleted by the database superuser) or rewritten (a row
# changed and its hash recomputed, so the chain alone still checks out)
# relative to the latest checkpoint, and a checkpoint row changed in the
# database; and the signer refuses to sign a log that does not extend its
# latest checkpoint, periodically or on demand (409).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl jq openssl psql pkcs11-tool

pg_start
hsm_init
tls_make_certs
ql_config ca.audit_checkpoint_interval=1
ql_start
ql_admin_ok create-project pa token

api_admin_session root
jqb() { jq -r "$1" "$BODY"; }
rows() { ql_psql "SELECT count(*) FROM audit_log"; }
latest_rows() { ql_psql "SELECT rows FROM audit_checkpoints ORDER BY id DESC LIMIT 1"; }

# ---- the key: on the token, sensitive, never extractable, sign only.
label=$(ql_psql "SELECT key_label FROM audit_checkpoint_key")
assert_match '^ql-audit-[0-9a-f]{8}$' "$label" "checkpoint key label"
SOFTHSM2_CONF="$T/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label quarklink --login \
    --pin "$(cat "$T/pin")" --list-objects --type privkey >"$T/objects" 2>&1 ||
    hard_error "pkcs11-tool: $(cat "$T/objects")"
grep -A8 "label: *$label" "$T/objects" >"$T/key.txt"
assert_file_match 'never extractable' "$T/key.txt" "checkpoint key never extractable"
assert_file_match 'Access: .*sensitive' "$T/key.txt" "checkpoint key sensitive"

# ---- periodic: the log grows, a checkpoint follows without being asked.
api POST /api/v1/projects/pa/enrollment-tokens '{"name":"t1"}'
assert_status 201 "a change"
n=$(rows)
covered() { [ "$(latest_rows)" = "$n" ]; }
wait_until 10 covered || fail "no periodic checkpoint covers the $n rows"

# ---- on demand, and verifiable with stock openssl.
api POST /api/v1/projects/pa/enrollment-tokens '{"name":"t2"}'
assert_status 201 "another change"
api POST /api/v1/audit/checkpoints
assert_status 201 "checkpoint on demand"
cp=$(jqb .id)
assert_eq "$(rows)" "$(jqb .rows)" "covers every row"
assert_eq "$(ql_psql "SELECT max(id) FROM audit_log")" "$(jqb .last_id)" "last id"
assert_eq "$(ql_psql "SELECT encode(hash, 'hex') FROM audit_log ORDER BY id DESC LIMIT 1")" \
    "$(jqb .head)" "head is the newest row's hash"
assert_eq ecdsa-with-SHA256 "$(jqb .algorithm)" "algorithm"
jq -j .public_key "$BODY" >"$T/cp.pub"
jq -j .signed_data "$BODY" >"$T/cp.msg"
jqb .signature | base64 -d >"$T/cp.sig"
printf 'quarklink audit checkpoint v1\nrows %s\nlast_id %s\nhead %s\ntime %s\n' \
    "$(jqb .rows)" "$(jqb .last_id)" "$(jqb .head)" "$(jqb .at)" >"$T/cp.rebuilt"
cmp -s "$T/cp.msg" "$T/cp.rebuilt" || fail "signed_data is not the documented text of the fields"
assert_match '^Verified OK' "$(openssl dgst -sha256 -verify "$T/cp.pub" -signature "$T/cp.sig" "$T/cp.msg" 2>&1)" \
    "openssl dgst verifies the checkpoint"
printf 'quarklink audit checkpoint v1\nrows %s\nlast_id %s\nhead %s\ntime %s\n' \
    "$(($(jqb .rows) - 1))" "$(jqb .last_id)" "$(jqb .head)" "$(jqb .at)" >"$T/cp.other"
assert_no_match '^Verified OK' "$(openssl dgst -sha256 -verify "$T/cp.pub" -signature "$T/cp.sig" "$T/cp.other" 2>&1)" \
    "the signature does not cover other counts"
openssl dgst -sha256 -binary "$T/cp.msg" >"$T/cp.dgst"
assert_match 'Signature Verified Successfully' \
    "$(openssl pkeyutl -verify -pubin -inkey "$T/cp.pub" -in "$T/cp.dgst" -sigfile "$T/cp.sig" 2>&1)" \
    "openssl pkeyutl verifies the checkpoint"
ql_curl -H 'Content-Type: application/json' "$(admin_url /api/v1/audit/checkpoints/latest)"
assert_status 401 "latest needs a caller"
api GET /api/v1/audit/checkpoints/latest
assert_status 200 "latest"
assert_eq "$cp" "$(jqb .id)" "latest is the one just made"
api GET /api/v1/audit/verify
assert_eq "true|ok|$cp" "$(jqb '[.ok, .checkpoint, .checkpoint_id] | map(tostring) | join("|")')" "intact log"

# ---- cut: the newest rows deleted by the database superuser.
ql_psql "CREATE TABLE saved AS SELECT * FROM audit_log ORDER BY id DESC LIMIT 3"
ql_psql "DELETE FROM audit_log WHERE id IN (SELECT id FROM saved)"
api GET /api/v1/audit/verify
assert_status 200 "verify a cut log"
assert_eq "false|short|null" "$(jqb '[.ok, .checkpoint, .first_broken_id] | map(tostring) | join("|")')" \
    "a cut log is shorter than its checkpoint, though its chain is intact"
# The periodic signer sees the log changed and must not sign over the cut.
refused() { grep -q "audit: the audit log does not extend checkpoint $cp (short)" "$QL_LOG"; }
wait_until 10 refused || fail "the periodic signer did not refuse the cut log"
api POST /api/v1/audit/checkpoints
assert_status 409 "no checkpoint on demand either"
assert_match 'does not extend checkpoint' "$(api_detail "$BODY")" "says why"
api GET /api/v1/audit/verify
assert_eq "false|short|$cp" "$(jqb '[.ok, .checkpoint, .checkpoint_id] | map(tostring) | join("|")')" \
    "still anchored to the same checkpoint"

# ---- restored: the rows are back; what was appended since is removed.
ql_psql "DELETE FROM audit_log WHERE id > (SELECT max(id) FROM saved)"
ql_psql "INSERT INTO audit_log SELECT * FROM saved"
api GET /api/v1/audit/verify
assert_eq "true|ok" "$(jqb '[.ok, .checkpoint] | join("|")')" "restored log verifies"

# ---- rewritten: a row changed and the chain recomputed from it on, so
# the chain alone checks out; the checkpoint does not.
ql_psql "DELETE FROM audit_log WHERE id > (SELECT max(id) FROM saved)"
last=$(ql_psql "SELECT max(id) FROM audit_log")
ql_psql "UPDATE audit_log SET detail = 'rewritten',
    hash = ql_audit_hash(prev_hash, id, at, actor, action, object, result, 'rewritten', project_id)
    WHERE id = $last"
api GET /api/v1/audit/verify
assert_eq "false|differs|null" "$(jqb '[.ok, .checkpoint, .first_broken_id] | map(tostring) | join("|")')" \
    "a rewritten log differs from its checkpoint"
api POST /api/v1/audit/checkpoints
assert_status 409 "no checkpoint over a rewritten log"
ql_psql "DELETE FROM audit_log WHERE id > $last"
ql_psql "UPDATE audit_log SET detail = s.detail, hash = s.hash FROM saved s
    WHERE audit_log.id = s.id AND s.id = $last"

# ---- a checkpoint row changed to fit a cut log, or one made up.
api GET /api/v1/audit/verify
assert_eq "true|ok" "$(jqb '[.ok, .checkpoint] | join("|")')" "restored again"
ql_psql "UPDATE audit_checkpoints SET rows = rows - 3 WHERE id = $cp"
api GET /api/v1/audit/verify
assert_eq "false|forged" "$(jqb '[.ok, .checkpoint] | join("|")')" "changed columns are not what was signed"
ql_psql "UPDATE audit_checkpoints SET rows = rows + 3 WHERE id = $cp"
ql_psql "INSERT INTO audit_checkpoints (rows, last_id, head, at, signed_data, signature)
    SELECT rows, last_id, head, at, signed_data, '\\x3006020101020101' FROM audit_checkpoints WHERE id = $cp"
api GET /api/v1/audit/verify
assert_eq "false|forged" "$(jqb '[.ok, .checkpoint] | join("|")')" "a checkpoint with a wrong signature"
ql_psql "DELETE FROM audit_checkpoints WHERE id > $cp"
api GET /api/v1/audit/verify
assert_eq "true|ok|$cp" "$(jqb '[.ok, .checkpoint, .checkpoint_id] | map(tostring) | join("|")')" "back to the real one"

# ---- only admins of every project make checkpoints.
OPA=$(api_token_new operator pa)
api_bearer "$OPA" POST /api/v1/audit/checkpoints
assert_status 403 "an operator makes no checkpoint"

# ---- a restart keeps the key (and the session): old checkpoints still verify.
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
ql_start
api GET /api/v1/audit/verify
assert_eq "true|ok" "$(jqb '[.ok, .checkpoint] | join("|")')" "verifies after a restart"
assert_eq "$label" "$(ql_psql "SELECT key_label FROM audit_checkpoint_key")" "same key"
api GET /api/v1/audit/checkpoints/latest
jq -j .public_key "$BODY" >"$T/cp2.pub"
cmp -s "$T/cp.pub" "$T/cp2.pub" || fail "the public key changed across a restart"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
