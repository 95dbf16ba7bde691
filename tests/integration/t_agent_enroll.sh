#!/bin/bash
# ql-agent against the real daemon: enrollment with a token (the printed
# ID is the one the API lists), idempotence, the file key store's mode
# check, manual approval (approved and rejected while the agent waits),
# renewal over simplereenroll (new certificate, same device), a revoked
# device, a server that is not trusted, a refused token, no network, and
# a bad configuration: each with its documented exit code and one line.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require curl openssl jq psql

[ -x "$QL_AGENT" ] || skip "ql-agent not built: $QL_AGENT"
# ---- the option table, the man page and the sample configuration agree
opts=$(sed -nE 's/^\t\{ "([a-z0-9_]+)", C_.*/\1/p' "$top_srcdir/contrib/agent/agent_conf.c")
[ "$(printf '%s\n' "$opts" | wc -l)" -ge 10 ] || fail "cannot read the option table of agent_conf.c"
for o in $opts; do
    grep -Eq "^\.B $o\$" "$top_srcdir/man/ql-agent.8" || fail "option $o is not documented in ql-agent.8"
    grep -Eq "^#?$o = " "$top_srcdir/etc/ql-agent.conf" || fail "option $o is not in etc/ql-agent.conf"
done
for o in $(sed -nE 's/^#?([a-z0-9_]+) = .*/\1/p' "$top_srcdir/etc/ql-agent.conf"); do
    printf '%s\n' "$opts" | grep -qx "$o" || fail "etc/ql-agent.conf sets $o, which ql-agent does not know"
done
# The sample parses (with its files missing, the first error is not a syntax one).
out=$("$QL_AGENT" -c "$top_srcdir/etc/ql-agent.conf" status 2>&1)
assert_no_match 'unknown key|expected key|set twice|must be' "$out" "the sample configuration parses"

agent_pki_start
api_admin_session alice
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
certs() { ql_psql "SELECT count(*) FROM certificates WHERE kind IS DISTINCT FROM 'tls'"; }

# ---- enrollment with a token
agent_conf d1
printf '%s\n' "$tok" >"$T/token"
agent d1 enroll --token-file "$T/token"
assert_agent_rc 0 "enroll with a token"
assert_match '^[a-z2-7]{32}$' "$AGENT_OUT" "enroll prints the device ID"
assert_eq 1 "$(printf '%s\n' "$AGENT_OUT" | wc -l)" "the device ID on its own line"
id1=$AGENT_OUT
api GET /api/v1/projects/p1/devices
assert_status 200 "list devices"
assert_eq "$id1" "$(jq -r '.items[].device_id' "$BODY")" "the API lists the printed ID"
assert_eq 600 "$(stat -c %a "$T/d1/key.pem")" "key.pem mode"
assert_eq "subject=CN=$id1,O=p1" "$(openssl x509 -in "$T/d1/cert.pem" -noout -subject -nameopt RFC2253)" \
    "stored certificate subject"
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/d1/chain.pem" "$T/d1/cert.pem" 2>&1) ||
    fail "stored certificate does not chain to the root: $out"
assert_eq "$(openssl pkey -in "$T/d1/key.pem" -pubout)" "$(openssl x509 -in "$T/d1/cert.pem" -noout -pubkey)" \
    "certificate carries the device key"

# ---- idempotent: same ID, nothing issued, nothing rewritten
n0=$(certs)
sum0=$(sha256sum "$T/d1/cert.pem" "$T/d1/key.pem")
agent d1 enroll --token "$tok"
assert_agent_rc 0 "second enroll"
assert_eq "$id1" "$AGENT_OUT" "second enroll prints the same ID"
assert_eq "$n0" "$(certs)" "second enroll issued no certificate"
assert_eq "$sum0" "$(sha256sum "$T/d1/cert.pem" "$T/d1/key.pem")" "second enroll changed no file"

# ---- status
agent d1 status --json
assert_agent_rc 0 "status --json"
printf '%s\n' "$AGENT_OUT" >"$T/status.json"
assert_json "$T/status.json" device_id "$id1" "status device_id"
assert_json "$T/status.json" subject "CN=$id1,O=p1" "status subject"
assert_json "$T/status.json" installed_version null "nothing installed yet"
assert_eq "$(date -u -d "$(openssl x509 -in "$T/d1/cert.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)" \
    "$(jq -r .expires "$T/status.json")" "status expires"
agent d1 status
assert_agent_rc 0 "status"
assert_match "^device_id: $id1\$" "$AGENT_OUT" "status text"

# ---- the key must not be readable by others
chmod 644 "$T/d1/key.pem"
agent d1 status
assert_agent_rc 1 "status with a world-readable key"
assert_match 'chmod 600' "$AGENT_ERR" "the refusal names the fix"
chmod 600 "$T/d1/key.pem"

# ---- renewal: not due at 0.66 of a year; forced or at a tiny fraction it is
agent d1 renew
assert_agent_rc 0 "renew when not due"
assert_match 'not due' "$AGENT_ERR" "renew says it is not due"
assert_eq "$n0" "$(certs)" "no renewal before it is due"
serial0=$(cert_serial "$T/d1/cert.pem")
agent_conf d1 renew_fraction=0.000000001
agent d1 renew
assert_agent_rc 0 "renew when due"
serial1=$(cert_serial "$T/d1/cert.pem")
assert_ne "$serial0" "$serial1" "renewal stored a new certificate"
assert_eq "subject=CN=$id1,O=p1" "$(openssl x509 -in "$T/d1/cert.pem" -noout -subject -nameopt RFC2253)" \
    "renewed certificate keeps the device ID"
assert_eq "$id1" "$(ql_psql "SELECT d.device_id FROM certificates c JOIN devices d ON d.id = c.device
                            WHERE c.serial = '$serial1'")" "renewed certificate recorded for the same device"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$id1'")" "still one device"
out=$(openssl verify -CAfile "$T/root.pem" -untrusted "$T/d1/chain.pem" "$T/d1/cert.pem" 2>&1) ||
    fail "renewed certificate does not verify: $out"

# ---- revoked: the server refuses the device at the handshake
ql_admin_ok revoke "$serial1" 1
wait_until 10 grep -Eq " info pki: certificate $serial1 revoked\$" "$QL_LOG" ||
    fail "the daemon did not log the revocation"
n1=$(certs)
agent d1 renew --force
assert_agent_rc 8 "renewal of a revoked device"
assert_one_line_error 'refused'
assert_eq "$serial1" "$(cert_serial "$T/d1/cert.pem")" "the refused renewal kept the stored certificate"
assert_eq "$n1" "$(certs)" "nothing issued to the revoked device"

# ---- a refused token
agent_conf d2
agent d2 enroll --token "not-the-token"
assert_agent_rc 5 "enroll with a wrong token"
assert_one_line_error 'token refused'
[ -e "$T/d2/cert.pem" ] && fail "a refused enrollment stored a certificate"
agent d2 status
assert_agent_rc 12 "status of a device that is not enrolled"
assert_match '^device_id: \(not enrolled\)$' "$AGENT_OUT" "status says not enrolled"
agent d2 run --once
assert_agent_rc 12 "run before enrollment"
assert_one_line_error 'not enrolled'

# ---- server not trusted: the agent pins another root
agent_conf d3 root_ca="$T/rogue-ca.crt"
agent d3 enroll --token "$tok"
assert_agent_rc 4 "enroll against a server outside the pinned root"
assert_one_line_error 'not trusted'
# The system store is not consulted either: the test CA that issued
# nothing on the device listener is not enough.
agent_conf d3 root_ca="$T/ca.crt"
agent d3 enroll --token "$tok"
assert_agent_rc 4 "enroll pinning an unrelated CA"

# ---- no network: nothing listens there
port=$(( 20000 + RANDOM % 20000 ))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
agent_conf d4 est_url="https://127.0.0.1:$port/.well-known/est"
agent d4 enroll --token "$tok"
assert_agent_rc 3 "enroll with the server unreachable"
assert_one_line_error 'unreachable'

# ---- configuration errors: file:line, exit 2
agent_conf d5 bogus_key=1
agent d5 enroll --token "$tok"
assert_agent_rc 2 "unknown configuration key"
assert_match "d5\.conf:[0-9]+: unknown key 'bogus_key'" "$AGENT_ERR" "file:line of the bad key"
agent_conf d5 est_url=http://127.0.0.1:1/x
agent d5 enroll
assert_agent_rc 2 "a plain http URL"

# ---- manual approval: the agent waits, an admin approves through the API
ql_admin_ok create-project pa approval
agent_conf a1 project=pa enroll_wait=60 label=sensor-a1
"$QL_AGENT" -c "$T/a1.conf" enroll >"$T/a1.out" 2>"$T/a1.err" &
apid=$!
pending() { [ "$(ql_psql "SELECT count(*) FROM devices d JOIN projects p ON p.id = d.project_id
                          WHERE p.name = 'pa' AND d.status = 'pending'")" = 1 ]; }
wait_until 20 pending || fail "the waiting agent did not show up as a pending device"
ida=$(ql_psql "SELECT device_id FROM devices WHERE status = 'pending'")
wait_until 10 grep -q 'waiting for approval' "$T/a1.err" || fail "the agent did not say it waits"
api POST "/api/v1/projects/pa/devices/$ida/approve"
assert_status 200 "approve through the API"
wait_until 20 ql__exited "$apid" || fail "the agent did not finish after the approval"
wait "$apid"
assert_eq 0 "$?" "enroll after approval exits 0"
assert_eq "$ida" "$(cat "$T/a1.out")" "the approved agent prints the pending device's ID"
assert_eq active "$(ql_psql "SELECT status FROM devices WHERE device_id = '$ida'")" "device active"

# ---- manual approval rejected
agent_conf a2 project=pa enroll_wait=60
"$QL_AGENT" -c "$T/a2.conf" enroll >"$T/a2.out" 2>"$T/a2.err" &
apid=$!
wait_until 20 pending || fail "the second agent did not show up as pending"
idr=$(ql_psql "SELECT device_id FROM devices WHERE status = 'pending'")
api POST "/api/v1/projects/pa/devices/$idr/reject"
assert_status 200 "reject through the API"
wait_until 20 ql__exited "$apid" || fail "the agent did not finish after the rejection"
wait "$apid"
assert_eq 6 "$?" "a rejected device exits 6"
assert_eq 1 "$(grep -c '^ql-agent: error: .*rejected' "$T/a2.err")" "one line says rejected"
[ -s "$T/a2.out" ] && fail "a rejected enrollment printed an ID"

# ---- approval that does not come within enroll_wait
agent_conf a3 project=pa enroll_wait=2
agent a3 enroll
assert_agent_rc 7 "still pending at the end of the wait"
assert_one_line_error 'waiting for approval'

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
