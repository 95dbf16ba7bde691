#!/bin/bash
# Creating one project name several times at once (issue 9, finding 6):
# exactly one request creates it, every other one gets 409, and the token
# holds exactly the winner's keys; deleting the project removes its keys.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl psql jq pkcs11-tool

ql_pki_start
api_admin_session admin

# keys PREFIX: private and public key objects on the token labelled PREFIX*.
keys() {
    SOFTHSM2_CONF="$T/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
        --token-label quarklink --login --pin "$(cat "$T/pin")" --list-objects \
        >"$T/objects.txt" 2>&1 || fail "pkcs11-tool --list-objects: $(cat "$T/objects.txt")"
    grep -cE "^ *label: *$1" "$T/objects.txt"
}

PAR=8
for name in race1 race2 race3; do
    pids=()
    for i in $(seq "$PAR"); do
        curl -sS --max-time 30 --cacert "$T/ca.crt" -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
            -H 'Content-Type: application/json' --data "{\"name\":\"$name\"}" \
            -o "$T/$name.$i.body" -w '%{http_code}\n' "$(admin_url /api/v1/projects)" \
            >"$T/$name.$i.code" 2>"$T/$name.$i.err" &
        pids+=($!)
    done
    wait "${pids[@]}"   # not a bare wait: the daemon is a child too
    codes=$(cat "$T/$name".*.code | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
    assert_eq "201:1 409:$((PAR - 1)) " "$codes" "$PAR parallel creations of $name"
    for i in $(seq "$PAR"); do
        if [ "$(cat "$T/$name.$i.code")" = 409 ]; then
            assert_eq 'project already exists' "$(jq -r .detail "$T/$name.$i.body")" "409 detail"
        fi
    done
    # Two key pairs (issuing CA, code signing): four objects, no orphans.
    assert_eq 4 "$(keys "ql-$name-")" "token objects of $name"
    assert_eq 2 "$(ql_psql "SELECT count(*) FROM cas c JOIN projects p ON p.id = c.project_id
                             WHERE p.name = '$name'")" "CAs of $name"
done
labels=$(ql_psql "SELECT string_agg(key_label, ' ' ORDER BY key_label) FROM cas c
                  JOIN projects p ON p.id = c.project_id WHERE p.name = 'race1'")

destroyed() {
    ql_curl "$(admin_url /metrics)"
    sed -nE 's/^quarklink_token_keys_destroyed_total ([0-9]+)$/\1/p' "$BODY"
}
d0=$(destroyed)
[ -n "$d0" ] || fail "/metrics has no quarklink_token_keys_destroyed_total"
api DELETE /api/v1/projects/race1
assert_status 204 "delete race1"
assert_eq 0 "$(keys "ql-race1-")" "deleting race1 removed its token keys"
for l in $labels; do
    assert_file_match "token key $l destroyed" "$QL_LOG" "key destruction is logged"
done
assert_eq 4 "$(keys "ql-race2-")" "race2's keys stay"
assert_eq $((d0 + 2)) "$(destroyed)" "/metrics counts the two destroyed key pairs"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
