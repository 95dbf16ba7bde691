#!/bin/bash
# Admin API devices: list with every filter and keyset pagination, get,
# approve/reject/disable/enable and their 409s, tags and their validation,
# delete (which revokes the certificates: OCSP says so), SQL metacharacters
# in filters, malformed bodies, and an audit row for every change.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 base32 psql jq

ql_pki_start

# ---- an admin session (cookie jar + CSRF token) for api().
api_admin_session alice
D=/api/v1/projects/p1/devices
audit_count() {
    ql_psql "SELECT count(*) FROM audit_log WHERE actor = 'user:alice' AND action = '$1'
             AND object = '$2' AND result = 'ok'"
}

# ---- devices: three active (token), two pending (approval), one elsewhere.
ql_admin_ok create-project p1 token approval
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
pki_fetch_ca p1 "$T/p1.pem"
est_enroll_ok p1 dev1 -u "dev-one:$tok"
id1=$DEVICE_ID s1=$SERIAL
est_enroll_ok p1 dev2 -u "Dev-Two:$tok"
id2=$DEVICE_ID s2=$SERIAL
est_enroll_ok p1 dev3 -u "dev-three:$tok"
id3=$DEVICE_ID
for n in 4 5; do
    est_key "dev$n"
    est_csr "dev$n" "dev$n"
    est_body "$T/dev$n.der" "$T/dev$n.b64"
    est_post p1 simpleenroll "$T/dev$n.b64" -u "pending-$n:"
    assert_status 202 "dev$n waits for approval"
done
id4=$(device_id_of "$T/dev4.csr")
id5=$(device_id_of "$T/dev5.csr")
ql_admin_ok create-project p2 token
ql_admin_ok create-token p2 10
est_enroll_ok p2 other -u "other:$ADMIN_OUT"
id_other=$DEVICE_ID
all=$(printf '%s\n' "$id1" "$id2" "$id3" "$id4" "$id5" | LC_ALL=C sort)

# ---- list: every device of the project once, in device_id order.
api GET "$D"
assert_status 200 "list devices"
assert_eq "$all" "$(jq -r '.items[].device_id' "$BODY")" "list = the project's devices, sorted"
assert_eq null "$(jq -r .next "$BODY")" "a short page has no next cursor"
assert_eq active "$(jq -r --arg i "$id1" '.items[] | select(.device_id == $i) | .status' "$BODY")" \
    "dev1 is active"

# ---- status filter
api GET "$D?status=pending"
assert_status 200
assert_eq "$(printf '%s\n' "$id4" "$id5" | LC_ALL=C sort)" "$(jq -r '.items[].device_id' "$BODY")" \
    "status=pending"
api GET "$D?status=active"
assert_eq 3 "$(jq '.items | length' "$BODY")" "status=active"
api GET "$D?status=rejected"
assert_eq 0 "$(jq '.items | length' "$BODY")" "status=rejected: none yet"
api GET "$D?status=bogus"
assert_status 400 "unknown status"
assert_problem 400

# ---- pagination: limit=2 walks every device exactly once.
seen="" after="" pages=0
while :; do
    api GET "$D?limit=2${after:+&after=$after}"
    assert_status 200 "page $pages"
    n=$(jq '.items | length' "$BODY")
    [ "$n" -le 2 ] || fail "page of limit 2 holds $n items"
    seen="$seen$(jq -r '.items[].device_id' "$BODY")"$'\n'
    after=$(jq -r '.next // empty' "$BODY")
    pages=$((pages + 1))
    [ -n "$after" ] || break
    [ "$pages" -lt 10 ] || fail "pagination does not end"
done
assert_eq "$all" "$(printf '%s' "$seen" | grep .)" "pages walk every device once, in order"
api GET "$D?limit=0"
assert_status 400 "limit=0"

# ---- q: prefix of device_id or label, case-insensitive.
api GET "$D?q=${id1:0:6}"
assert_status 200
assert_eq "$id1" "$(jq -r '.items[].device_id' "$BODY")" "q = device ID prefix"
up=$(printf '%s' "${id1:0:6}" | tr '[:lower:]' '[:upper:]')
api GET "$D?q=$up"
assert_eq "$id1" "$(jq -r '.items[].device_id' "$BODY")" "q is case-insensitive"
api GET "$D?q=dev-t"
assert_eq "$(printf '%s\n' "$id2" "$id3" | LC_ALL=C sort)" "$(jq -r '.items[].device_id' "$BODY")" \
    "q = label prefix (Dev-Two, dev-three)"
api GET "$D?q=pending-4"
assert_eq "$id4" "$(jq -r '.items[].device_id' "$BODY")" "q = full label"
api GET "$D?q=ev-"
assert_eq 0 "$(jq '.items | length' "$BODY")" "q is a prefix, not a substring"
api GET "$D?q=$(printf 'a%.0s' $(seq 65))"
assert_status 400 "q longer than 64"
for evil in "%27%20OR%201%3D1%20--" "%25" "_" "dev%25" "%5C" "%27" "%22"; do
    api GET "$D?q=$evil"
    assert_status 200 "q=$evil"
    assert_eq 0 "$(jq '.items | length' "$BODY")" "q=$evil matches nothing"
    api GET "$D?tag=$evil"
    assert_status 200 "tag=$evil"
    assert_eq 0 "$(jq '.items | length' "$BODY")" "tag=$evil matches nothing"
done

# ---- get
api GET "$D/$id1"
assert_status 200 "get dev1"
assert_json "$BODY" device_id "$id1"
assert_json "$BODY" label dev-one
assert_json "$BODY" status active
assert_eq '[]' "$(jq -c .tags "$BODY")" "no tags yet"
assert_eq null "$(jq -r .installed_version "$BODY")" "no installed version"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jq -r .created_at "$BODY")" \
    "created_at is ISO 8601 UTC"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(jq -r .last_seen "$BODY")" \
    "last_seen is ISO 8601 UTC"
assert_eq "$s1" "$(jq -r .certificate.serial "$BODY")" "current certificate"
na=$(date -u -d "$(openssl x509 -in "$T/dev1.crt" -noout -enddate | sed 's/^notAfter=//')" +%Y-%m-%dT%H:%M:%SZ)
assert_eq "$na" "$(jq -r .certificate.not_after "$BODY")" "current certificate's expiry"
api GET "$D/$id4"
assert_json "$BODY" status pending
assert_eq null "$(jq -r .certificate "$BODY")" "a pending device has no certificate"
api GET "$D/$id_other"
assert_status 404 "a device of another project"
assert_problem 404
api GET "/api/v1/projects/p2/devices/$id1"
assert_status 404 "dev1 through project p2"
api GET "$D/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
assert_status 404 "unknown device"
api GET "$D/not-a-device-id"
assert_status 404 "malformed device ID"
api GET "/api/v1/projects/nosuch/devices"
assert_status 404 "unknown project"

# ---- state transitions and their conflicts
transition() { # ACTION ID EXPECTED_STATUS [EXPECTED_DEVICE_STATUS]
    api POST "$D/$2/$1"
    assert_status "$3" "$1 $2"
    if [ "$3" = 200 ]; then
        assert_json "$BODY" status "$4" "$1 result"
        assert_eq 1 "$(audit_count "device.$1" "$2")" "$1 of $2 left one audit row"
    else
        assert_problem "$3"
    fi
}
transition approve "$id4" 200 approved
transition approve "$id4" 409
transition reject "$id4" 409
transition reject "$id5" 200 rejected
transition reject "$id5" 409
transition approve "$id5" 409
transition disable "$id5" 409
transition enable "$id5" 409
transition approve "$id1" 409
transition enable "$id1" 409
transition disable "$id1" 200 disabled
api POST "$D/$id1/disable"
assert_status 409 "disabling a disabled device"
assert_eq disabled "$(ql_psql "SELECT status FROM devices WHERE device_id = '$id1'")" "row disabled"
# A disabled device is refused by EST.
est_body "$T/dev1.der" "$T/dev1.b64"
est_post p1 simpleenroll "$T/dev1.b64" -u "dev-one:$tok"
assert_status 403 "EST refuses a disabled device"
api POST "$D/$id1/enable"
assert_status 200 "enable dev1"
assert_json "$BODY" status active "enable with a valid certificate -> active"
api POST "$D/$id4/disable"
assert_status 200 "disable approved dev4"
api POST "$D/$id4/enable"
assert_status 200 "enable dev4"
assert_json "$BODY" status approved "enable without a certificate -> approved"
assert_eq 2 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'device.enable' AND object IN ('$id1', '$id4')")" \
    "one audit row per enable"
api POST "$D/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/approve"
assert_status 404 "approve an unknown device"
api POST "$D/$id_other/disable"
assert_status 404 "disable a device of another project"
assert_eq active "$(ql_psql "SELECT status FROM devices WHERE device_id = '$id_other'")" \
    "the other project's device is untouched"
api GET "$D?status=rejected"
assert_eq "$id5" "$(jq -r '.items[].device_id' "$BODY")" "status=rejected"

# ---- tags
api PUT "$D/$id1/tags" '{"tags":["floor:3","blue","blue","Site-A.b_c"]}'
assert_status 200 "set tags"
assert_eq '["Site-A.b_c","blue","floor:3"]' "$(jq -c .tags "$BODY")" "tags are a sorted set"
assert_json "$BODY" device_id "$id1" "PUT tags answers with the device"
assert_eq 1 "$(audit_count device.tags "$id1")" "tags audit row"
api PUT "$D/$id2/tags" '{"tags":["blue"]}'
assert_status 200
api GET "$D?tag=blue"
assert_eq "$(printf '%s\n' "$id1" "$id2" | LC_ALL=C sort)" "$(jq -r '.items[].device_id' "$BODY")" "tag=blue"
api GET "$D?tag=floor:3"
assert_eq "$id1" "$(jq -r '.items[].device_id' "$BODY")" "tag=floor:3"
api GET "$D?tag=blue&status=active&q=${id2:0:4}"
assert_eq "$id2" "$(jq -r '.items[].device_id' "$BODY")" "tag + status + q"
api GET "$D?tag=Blue"
assert_eq 0 "$(jq '.items | length' "$BODY")" "tags are case-sensitive"
api PUT "$D/$id2/tags" '{"tags":[]}'
assert_status 200 "clear tags"
assert_eq '[]' "$(jq -c .tags "$BODY")" "tags cleared"
api GET "$D?tag=blue"
assert_eq "$id1" "$(jq -r '.items[].device_id' "$BODY")" "tags replace the set"

tags_bad() { # BODY STATUS DETAIL_ERE
    api PUT "$D/$id3/tags" "$1"
    assert_status "$2" "tags body $1"
    assert_problem "$2"
    assert_match "$3" "$(jq -r .detail "$BODY")" "detail of $1"
}
tags_bad '{"tags":"blue"}' 400 '"tags"'
tags_bad '{"tags":[1]}' 400 '"tags"'
tags_bad '{"tags":[null]}' 400 '"tags"'
tags_bad '{}' 400 '"tags" is required'
tags_bad '{"tags":[],"colour":"x"}' 400 '"colour"'
tags_bad '{"tags":["a b"]}' 422 '"tags"'
tags_bad '{"tags":[""]}' 422 '"tags"'
tags_bad '{"tags":["a,b"]}' 422 '"tags"'
tags_bad "{\"tags\":[\"$(printf 'x%.0s' $(seq 65))\"]}" 422 '"tags"'
tags_bad "$(jq -cn '{tags: [range(33) | "t\(.)"]}')" 422 'more than 32'
tags_bad '{"tags":["a"' 400 '.'
tags_bad '["a"]' 400 'object'
api PUT "$D/$id3/tags" "$(jq -cn '{tags: [range(32) | "t\(.)"]}')"
assert_status 200 "32 tags are fine"
assert_eq 32 "$(jq '.tags | length' "$BODY")" "32 tags stored"
ql_curl -X PUT -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" -H 'Content-Type: text/plain' \
    --data '{"tags":[]}' "$(admin_url "$D/$id3/tags")"
assert_status 415 "tags without application/json"
ql_curl -X PUT -b "$T/cookies" -H 'Content-Type: application/json' \
    --data '{"tags":[]}' "$(admin_url "$D/$id3/tags")"
assert_status 403 "tags without the CSRF token"
api PUT "$D/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/tags" '{"tags":["x"]}'
assert_status 404 "tags of an unknown device"

# ---- delete: the certificates are revoked (cessationOfOperation) first,
# OCSP says so at once, the device row goes.
assert_eq good "$(ocsp_status "$T/p1.pem" "$T/dev2.crt")" "dev2 good before delete"
api DELETE "$D/$id2"
assert_status 204 "delete dev2"
api GET "$D/$id2"
assert_status 404 "deleted device is gone"
assert_eq "5|t" "$(ql_psql "SELECT revocation_reason, revoked_at IS NOT NULL FROM certificates WHERE serial = '$s2'")" \
    "dev2's certificate revoked with cessationOfOperation"
wait_until 10 ocsp_says revoked "$T/p1.pem" "$T/dev2.crt" ||
    fail "OCSP does not say revoked after delete: $(cat "$T/ocsp.out")"
assert_file_match 'Reason: cessationOfOperation' "$T/ocsp.out" "OCSP reason after delete"
assert_eq 1 "$(audit_count device.delete "$id2")" "delete audit row"
assert_eq 1 "$(audit_count certificate.revoke "$s2")" "revocation audit row"
api DELETE "$D/$id2"
assert_status 404 "deleting twice"
api DELETE "$D/$id_other"
assert_status 404 "deleting a device of another project"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM devices WHERE device_id = '$id_other'")" \
    "the other project's device stays"
api GET "$D"
assert_eq 4 "$(jq '.items | length' "$BODY")" "four devices left"

# ---- the audit chain still verifies.
assert_eq "" "$(ql_psql "SELECT broken_id FROM ql_audit_verify()")" "audit chain intact"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
