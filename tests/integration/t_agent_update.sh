#!/bin/bash
# ql-agent run against the real device update API: a full update ending
# installed (the hook saw the verified bytes; the server shows installed),
# then the refusals, each leaving the installed version and the slot alone
# and reported as failed: a tampered image byte, a manifest signed by
# another project's key, an older version, an expired manifest, a wrong
# hardware; a download cut half way and resumed with Range; a SIGKILL
# during the install, then the recovery.  Images are stored as the upload
# and signing steps leave them (chunks, manifest and detached signature
# made with the project's code-signing key on the token).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require curl openssl jq psql sha256sum
routes=$("$QUARKLINKD" --list-routes 2>/dev/null)
printf '%s\n' "$routes" | grep -q '/device/v1/update' ||
    skip "this quarklinkd has no device update API (GET /device/v1/update)"

agent_pki_start
api_admin_session alice
agent_images_init
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
ql_admin_ok create-project p2 token

cat >"$T/hook.sh" <<'EOS'
#!/bin/bash
# Test install hook: records what it was given, then "installs" into a slot.
set -eu
printf '%s %s %s %s\n' "$2" "$QL_VERSION" "$QL_SHA256" "$(sha256sum <"$1" | cut -d' ' -f1)" >>"$T/hook.log"
if [ -n "${HOOK_BLOCK:-}" ]; then
    echo "$$" >"$T/hook.started"
    read -r _ <"$HOOK_BLOCK"
fi
printf '%s\n' "$QL_VERSION" >"$T/slot.tmp"
mv "$T/slot.tmp" "$T/slot"
EOS
chmod 755 "$T/hook.sh"
echo none >"$T/slot"

agent_conf d1
agent d1 enroll --token "$tok"
assert_agent_rc 0 "enroll"
installed() { jq -r 'if (.installed_version // "") == "" then "none" else .installed_version end' "$T/d1/state.json" 2>/dev/null || echo none; }

# ---- nothing deployed: 204, exit 0
agent d1 run --once
assert_agent_rc 0 "poll with nothing deployed"
assert_eq "no update" "$(jq -r .last_result "$T/d1/state.json")" "last result"

# ---- a full update
img=$(image_new os 2.0 2600)
dep=$(deploy_new "$img")
agent d1 run --once
assert_agent_rc 0 "update to 2.0"
assert_eq 2.0 "$(cat "$T/slot")" "the hook installed 2.0"
sha=$(sha256sum <"$T/os.bin" | cut -d' ' -f1)
assert_eq "2.0 2.0 $sha $sha" "$(tail -n 1 "$T/hook.log")" "the hook got the verified image and its fields"
assert_eq 2.0 "$(installed)" "state.json records 2.0"
assert_eq "installed|" "$(dd_state "$dep")" "the server shows the device installed"
agent d1 status --json
assert_eq 2.0 "$(printf '%s\n' "$AGENT_OUT" | jq -r .installed_version)" "status shows 2.0"
[ -z "$(find "$T/d1" -name 'dl-*' -o -name 'img-*')" ] || fail "downloads left after the install"
# The next poll has nothing to do.
agent d1 run --once
assert_agent_rc 0 "poll after the install"
assert_eq 1 "$(wc -l <"$T/hook.log")" "the hook ran once"

# refused NAME ERE [image_new options]: deploy a refused image; the agent
# exits 10, reports failed with a reason matching ERE, installs nothing.
refused() {
    local name=$1 re=$2 id d
    shift 2
    id=$(image_new "$name" "$@")
    d=$(deploy_new "$id")
    local hooks
    hooks=$(wc -l <"$T/hook.log")
    agent d1 run --once
    assert_agent_rc 10 "$name: refused update"
    assert_one_line_error "$re"
    assert_match "^failed\|.*$re" "$(dd_state "$d")" "$name: reported failed with the reason"
    assert_eq 2.0 "$(installed)" "$name: installed version unchanged"
    assert_eq 2.0 "$(cat "$T/slot")" "$name: slot unchanged"
    assert_eq "$hooks" "$(wc -l <"$T/hook.log")" "$name: the hook did not run"
}

refused older 'not newer' 1.9 64
refused same 'not newer' 2.0.0.0 64
refused expired 'expired' 3.0 64 expires=2020-01-01T00:00:00Z
refused wronghw 'hardware' 3.1 64 'hardware=["hw-z"]'
refused otherkey 'another project' 3.2 64 signer=p2
refused otherproject 'project p2' 3.3 64 project=p2

# A tampered byte in the stored image after signing.
id=$(image_new tampered 3.4 1100)
ql_psql "UPDATE image_chunks SET data = overlay(data placing '\\x00'::bytea from 1000 for 1)
         WHERE upload_id = (SELECT upload_id FROM images WHERE id = $id) AND off = 1048576" >/dev/null
d=$(deploy_new "$id")
agent d1 run --once
assert_agent_rc 10 "tampered image"
assert_one_line_error 'SHA-256'
assert_match '^failed\|.*SHA-256' "$(dd_state "$d")" "tampered: reported failed"
assert_eq 2.0 "$(installed)" "tampered: installed version unchanged"
assert_eq 2.0 "$(cat "$T/slot")" "tampered: slot unchanged"

# ---- a download cut half way: the first half (and its ETag) is there
id=$(image_new resumed 4.0 3000)
d=$(deploy_new "$id")
curl -sS --max-time 20 --cacert "$T/root.pem" --cert "$T/d1/cert.pem" --key "$T/d1/key.pem" \
    -D "$T/dl.headers" -o "$T/full.bin" "$(device_url "/device/v1/images/$id")" ||
    fail "cannot fetch the image with the device certificate"
cmp -s "$T/full.bin" "$T/resumed.bin" || fail "the served image differs from the stored one"
etag=$(tr -d '\r' <"$T/dl.headers" | sed -nE 's/^[Ee][Tt][Aa][Gg]: (.*)$/\1/p')
[ -n "$etag" ] || fail "the image has no ETag"
half=$(( $(stat -c %s "$T/resumed.bin") / 2 ))
head -c "$half" "$T/resumed.bin" >"$T/d1/dl-$id"
printf '%s' "$etag" >"$T/d1/etag-$id"
agent d1 run --once
assert_agent_rc 0 "resumed update to 4.0"
assert_match "resuming the download of image $id at byte $half" "$AGENT_ERR" "resumed at the half"
assert_eq 4.0 "$(cat "$T/slot")" "resumed image installed"
sha=$(sha256sum <"$T/resumed.bin" | cut -d' ' -f1)
assert_eq "4.0 4.0 $sha $sha" "$(tail -n 1 "$T/hook.log")" "the hook got the whole image"
assert_eq "installed|" "$(dd_state "$d")" "resumed: installed"

# A partial file with a stale ETag starts over (If-Range) and still ends right.
id=$(image_new restarted 4.1 1500)
d=$(deploy_new "$id")
head -c 4096 /dev/urandom >"$T/d1/dl-$id"
printf '%s' '"stale"' >"$T/d1/etag-$id"
agent d1 run --once
assert_agent_rc 0 "update after a stale partial download"
assert_eq 4.1 "$(cat "$T/slot")" "stale partial replaced"

# ---- SIGKILL during the install, then recovery
id=$(image_new killed 5.0 700)
d=$(deploy_new "$id")
mkfifo "$T/block"
rm -f "$T/hook.started"
HOOK_BLOCK=$T/block "$QL_AGENT" -c "$T/d1.conf" run --once >"$T/kill.out" 2>"$T/kill.err" &
apid=$!
wait_until 30 test -s "$T/hook.started" || fail "the install hook did not start"
hpid=$(cat "$T/hook.started")
kill -KILL "$apid" "$hpid"
wait "$apid" 2>/dev/null
assert_eq 4.1 "$(installed)" "killed during install: the previous version stays recorded"
assert_eq 4.1 "$(cat "$T/slot")" "killed during install: slot unchanged"
agent d1 status --json
assert_eq 4.1 "$(printf '%s\n' "$AGENT_OUT" | jq -r .installed_version)" "status after the kill"
assert_match '^installing\|' "$(dd_state "$d")" "the server saw the install start"
agent d1 run --once
assert_agent_rc 0 "recovery after the kill"
assert_eq 5.0 "$(installed)" "recovered: 5.0 recorded"
assert_eq 5.0 "$(cat "$T/slot")" "recovered: 5.0 installed"
assert_eq "installed|" "$(dd_state "$d")" "recovered: the server shows installed"

# ---- killed after the install was recorded but before the report: the
# next cycle reports installed without installing again.
id=$(image_new recorded 6.0 64)
d=$(deploy_new "$id")
agent d1 run --once
assert_agent_rc 0 "update to 6.0"
ql_psql "UPDATE device_deployments SET state = 'installing', finished_at = NULL
         WHERE deployment_id = $d" >/dev/null
hooks=$(wc -l <"$T/hook.log")
agent d1 run --once
assert_agent_rc 0 "re-offered after the install"
assert_eq "$hooks" "$(wc -l <"$T/hook.log")" "an installed image is not installed twice"

# ---- renewal inside a cycle: due at once with a tiny fraction
serial0=$(cert_serial "$T/d1/cert.pem")
agent_conf d1 renew_fraction=0.000000001
agent d1 run --once
assert_agent_rc 0 "a cycle with the renewal due"
assert_ne "$serial0" "$(cert_serial "$T/d1/cert.pem")" "the cycle renewed the certificate"
assert_match 'renewed the certificate' "$AGENT_ERR" "the cycle says it renewed"
assert_eq "no update" "$(jq -r .last_result "$T/d1/state.json")" "and polled with the new certificate"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
