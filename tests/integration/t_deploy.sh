#!/bin/bash
# Deployments and the device update API, driven by stock clients: devices
# enrolled through EST poll GET /device/v1/update with curl and their own
# certificates, download with curl (resume with -r, Range/If-Range/416),
# verify the image signature and the manifest with openssl cms -verify,
# report states; a staged rollout in two groups (group 2 starts when group 1
# passes its success threshold), an automatic pause past the error
# threshold with the reason, manual pause/resume/cancel, If-None-Match 304,
# disabled and revoked devices refused, a second project's device that can
# neither see nor download the first project's image, a report for another
# device's deployment refused, a deployed image that cannot be deleted, a
# slow reader never cut off by the request timeout, last_seen coalesced.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=deploy_lib.sh
. "$(dirname "$0")/deploy_lib.sh"
ql_require curl openssl base64 psql jq sha256sum head cmp python3

ql_pki_start server.request_timeout=2
api_admin_session alice
deploy_images_init
pki_fetch_ca root "$T/root.pem"
P=/api/v1/projects/p1

# ---- devices: four tagged "edge" in p1, one untagged, one in p2.
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 20
tok=$ADMIN_OUT
for n in 1 2 3 4 5; do
    est_enroll_ok p1 "dev$n" -u "dev-$n:$tok"
    eval "id$n=\$DEVICE_ID serial$n=\$SERIAL"
done
for n in 1 2 3 4; do
    eval "api PUT $P/devices/\$id$n/tags '{\"tags\":[\"edge\"]}'"
    assert_status 200 "tag dev$n"
done
ql_admin_ok create-project p2 token
ql_admin_ok create-token p2 5
est_enroll_ok p2 other -u "other:$ADMIN_OUT"
id_other=$DEVICE_ID
head -c $((16 * 1024 * 1024 + 12345)) /dev/urandom >"$T/os.img"
img=$(make_image p1 os 1.2.0 "$T/os.img" signed)
head -c 1000 /dev/urandom >"$T/raw.img"
unsigned=$(make_image p1 raw 1.0 "$T/raw.img" uploaded)
[ -n "$img" ] && [ -n "$unsigned" ] || hard_error "test images not created"

# dev NAME [CURL ARGS] PATH: a device request with NAME's certificate.
dev() {
    local n=$1
    shift
    local path=${*: -1}
    ql_curl --cert "$T/$n.crt" --key "$T/$n.key" "${@:1:$#-1}" "$(device_url "$path")"
}
poll() { dev "$1" "${@:2}" /device/v1/update; }
report() { dev "$1" -H 'Content-Type: application/json' --data "$2" /device/v1/status; }
polls_200() { poll "$1"; [ "$HTTP_STATUS" = 200 ]; }
polls_204() { poll "$1"; [ "$HTTP_STATUS" = 204 ]; }

# ---- nothing deployed: 204, with an ETag that 304s.
poll dev1
assert_status 204 "no deployment: nothing to do"
etag=$(ql_header ETag)
[ -n "$etag" ] || fail "a 204 poll carries an ETag"
poll dev1 -H "If-None-Match: $etag"
assert_status 304 "idle poll with If-None-Match"

# ---- refusals of create: nothing is made.
api POST $P/deployments "{\"image\":$unsigned}"
assert_status 409 "an unsigned image cannot be deployed"
assert_match 'not signed' "$(api_detail "$BODY")" "409 says why"
api POST $P/deployments '{"image":999999}'
assert_status 404 "no such image"
for bad in '{}' '{"image":"x"}' "{\"image\":$img,\"groups\":[]}" \
    "{\"image\":$img,\"groups\":[{\"count\":0}]}" "{\"image\":$img,\"groups\":[{\"percent\":101}]}" \
    "{\"image\":$img,\"groups\":[{\"count\":1,\"percent\":5}]}" \
    "{\"image\":$img,\"target\":\"some\"}" "{\"image\":$img,\"target\":{\"tag\":\"a b\"}}" \
    "{\"image\":$img,\"success_threshold\":0}" "{\"image\":$img,\"error_threshold\":101}" \
    "{\"image\":$img,\"bogus\":1}"; do
    api POST $P/deployments "$bad"
    case $HTTP_STATUS in
        400 | 422) assert_problem "$HTTP_STATUS" ;;
        *) fail "bad create body $bad: HTTP $HTTP_STATUS, expected 400 or 422" ;;
    esac
done
api POST $P/deployments "{\"image\":$img,\"target\":{\"tag\":\"nobody\"}}"
assert_status 409 "a tag no device has"
assert_eq 0 "$(ql_psql 'SELECT count(*) FROM deployments')" "no deployment was made by refusals"

# ---- a two-group rollout to tag edge: 1 device, then the other 3.
api POST $P/deployments "{\"image\":$img,\"target\":{\"tag\":\"edge\"},
    \"groups\":[{\"count\":1},{\"percent\":100}],\"success_threshold\":100,\"error_threshold\":50}"
assert_status 201 "create deployment"
dep=$(jq -r .id "$BODY")
assert_eq "1 3" "$(jq -r '[.groups[].size] | join(" ")' "$BODY")" "group sizes 1 and 3"
assert_eq "active 1 4" "$(jq -r '"\(.status) \(.current_group) \(.counts.total)"' "$BODY")" \
    "active, group 1 started, 4 devices"
assert_match "/deployments/$dep\$" "$(ql_header Location)" "Location of the new deployment"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'deployment.create'
    AND object = '$dep' AND actor = 'user:alice'")" "create is audited"

api GET "$P/deployments/$dep/devices?limit=2"
assert_status 200 "per-device states, paged"
assert_eq 2 "$(jq '.items | length' "$BODY")" "a page of 2"
next=$(jq -r .next "$BODY")
api GET "$P/deployments/$dep/devices?limit=2&after=$next"
assert_eq 2 "$(jq '.items | length' "$BODY")" "the second page"
api GET "$P/deployments/$dep/devices?state=pending"
first=""
for n in 1 2 3 4; do
    eval "i=\$id$n"
    g=$(jq -r --arg i "$i" '.items[] | select(.device_id == $i) | .group' "$BODY")
    [ "$g" = 1 ] && first=dev$n
done
[ -n "$first" ] || fail "one device is in group 1"
others=""
for n in 1 2 3 4; do [ "dev$n" = "$first" ] || others="$others dev$n"; done
read -r g2a g2b g2c <<<"$others"
api GET "$P/deployments/$dep/devices?state=bogus"
assert_status 400 "unknown state filter"

# ---- the group-1 device is told; the others, and dev5 (untagged), not yet.
poll "$first"
assert_status 200 "group 1 device gets the update"
cp "$BODY" "$T/doc.json"
assert_eq "$dep $img os 1.2.0 false" "$(jq -r '"\(.deployment) \(.image.id) \(.image.name) \(.image.version) \(.image.encrypted)"' "$T/doc.json")" \
    "the update document"
assert_eq "$(sha256sum "$T/os.img" | cut -d' ' -f1)" "$(jq -r .image.sha256 "$T/doc.json")" "sha256 in the document"
assert_eq "/device/v1/images/$img" "$(jq -r .image_url "$T/doc.json")" "image_url"
etag=$(ql_header ETag)
poll "$first" -H "If-None-Match: $etag"
assert_status 304 "unchanged document: 304"
poll "$first" -H 'If-None-Match: "other"'
assert_status 200 "another tag: the document again"
poll "$g2a"
assert_status 204 "group 2 waits"
poll dev5
assert_status 204 "an untagged device is not a target"

# ---- the manifest verifies with openssl cms against the root.
jq -r .manifest "$T/doc.json" | base64 -d >"$T/manifest.der"
openssl cms -verify -inform DER -in "$T/manifest.der" -CAfile "$T/root.pem" -purpose any \
    -out "$T/manifest.json" 2>"$T/verify.err" || fail "manifest does not verify: $(cat "$T/verify.err")"
assert_eq 1.2.0 "$(jq -r .version "$T/manifest.json")" "manifest JSON inside the CMS"

# ---- download, verify, resume with curl -r, Range edge cases.
dev "$first" "/device/v1/images/$img"
assert_status 200 "download the image"
cmp -s "$BODY" "$T/os.img" || fail "downloaded bytes differ from the image"
cp "$BODY" "$T/got.img"
img_etag=$(ql_header ETag)
assert_eq "\"$(sha256sum "$T/os.img" | cut -d' ' -f1)\"" "$img_etag" "the image's ETag is its sha256"
dev "$first" "/device/v1/images/$img/signature"
assert_status 200 "the signature"
openssl cms -verify -binary -inform DER -in "$BODY" -content "$T/got.img" -CAfile "$T/root.pem" \
    -purpose any -out /dev/null 2>"$T/verify.err" || fail "signature does not verify: $(cat "$T/verify.err")"
head -c 5000000 "$T/os.img" >"$T/part.img"
dev "$first" -r 5000000- "/device/v1/images/$img"
assert_status 206 "resume with curl -r"
assert_eq "bytes 5000000-$(( $(stat -c %s "$T/os.img") - 1 ))/$(stat -c %s "$T/os.img")" \
    "$(ql_header Content-Range)" "Content-Range"
cat "$T/part.img" "$BODY" >"$T/joined.img"
cmp -s "$T/joined.img" "$T/os.img" || fail "head + resumed tail differ from the image"
dev "$first" -r 1048570-1048580 "/device/v1/images/$img"
assert_status 206 "a range across a chunk row boundary"
dd if="$T/os.img" of="$T/want" bs=1 skip=1048570 count=11 status=none
cmp -s "$T/want" "$BODY" || fail "range bytes across rows differ"
dev "$first" -r -100 "/device/v1/images/$img"
assert_status 206 "a suffix range"
tail -c 100 "$T/os.img" >"$T/want"
cmp -s "$T/want" "$BODY" || fail "suffix range bytes differ"
dev "$first" -r 99999999- "/device/v1/images/$img"
assert_status 416 "a range past the end"
assert_eq "bytes */$(stat -c %s "$T/os.img")" "$(ql_header Content-Range)" "416 says the size"
dev "$first" -r 0-9 -H 'If-Range: "stale"' "/device/v1/images/$img"
assert_status 200 "If-Range that does not match: the whole image"
dev "$first" -r 0-9 -H "If-Range: $img_etag" "/device/v1/images/$img"
assert_status 206 "If-Range that matches: the range"
# A slow reader: the request timeout (2 s) is an idle bound, not a total one.
dev "$first" --max-time 60 --limit-rate 3M "/device/v1/images/$img"
assert_status 200 "a slow download completes"
cmp -s "$BODY" "$T/os.img" || fail "a slow download was cut short or corrupted"
dev "$g2a" "/device/v1/images/$img"
assert_status 404 "a device whose group has not started cannot download"
dev "$g2a" "/device/v1/images/$img/signature"
assert_status 404 "nor fetch the signature"

# ---- reports and transitions.
report "$first" "{\"deployment\":$dep,\"state\":\"downloading\",\"progress\":40}"
assert_status 204 "downloading 40%"
for bad in '{}' "{\"deployment\":$dep}" "{\"deployment\":$dep,\"state\":\"pending\"}" \
    "{\"deployment\":$dep,\"state\":\"installed\",\"progress\":101}" \
    "{\"deployment\":$dep,\"state\":\"installed\",\"version\":\"1.x\"}" \
    "{\"deployment\":$dep,\"state\":\"installed\",\"who\":1}" '[1]' 'not json'; do
    report "$first" "$bad"
    case $HTTP_STATUS in
        400 | 415 | 422) ;;
        *) fail "bad report $bad: HTTP $HTTP_STATUS, expected 400/415/422" ;;
    esac
done
report "$first" '{"deployment":999999,"state":"downloading"}'
assert_status 404 "a deployment that does not exist"
report "$g2a" "{\"deployment\":$dep,\"state\":\"downloading\"}"
assert_status 409 "a device whose group waits cannot start"
assert_match 'not started' "$(api_detail "$BODY")" "409 says why"
report other "{\"deployment\":$dep,\"state\":\"installed\"}"
assert_status 404 "another project's device reports on this deployment"
report "$first" "{\"deployment\":$dep,\"state\":\"installing\",\"progress\":90}"
assert_status 204 "installing"
report "$first" "{\"deployment\":$dep,\"state\":\"downloading\"}"
assert_status 409 "installing -> downloading is refused"
report "$first" "{\"deployment\":$dep,\"state\":\"installed\",\"version\":\"1.2.0\"}"
assert_status 204 "installed"
report "$first" "{\"deployment\":$dep,\"state\":\"downloading\"}"
assert_status 409 "installed -> downloading is refused"
assert_match 'not a legal transition' "$(api_detail "$BODY")" "409 names the transition"
eval "fid=\$id${first#dev}"
assert_eq 1.2.0 "$(ql_psql "SELECT installed_version FROM devices WHERE device_id = '$fid'")" \
    "the reported version is recorded"
# The final report is audited by the device, once; its update history shows it.
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'deployment.installed'
    AND object = '$dep' AND actor = 'device:$fid' AND detail = 'os 1.2.0'")" "the install report is audited"
report "$first" "{\"deployment\":$dep,\"state\":\"installed\",\"version\":\"1.2.0\"}"
assert_status 204 "a repeated final report"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'deployment.installed'
    AND object = '$dep'")" "a repeated final report is not audited again"
api GET "$P/devices/$fid/deployments"
assert_status 200 "the device's update history"
assert_eq "$dep os 1.2.0 edge active installed 100" \
    "$(jq -r '.items[] | "\(.deployment) \(.image.name) \(.image.version) \(.target.tag) \(.deployment_status) \(.state) \(.progress)"' "$BODY")" \
    "the history lists the deployment with the device's state"
assert_eq null "$(jq -r .next "$BODY")" "one deployment, no next page"
api GET "$P/devices/$id5/deployments"
assert_eq '{"items":[],"next":null}' "$(jq -c . "$BODY")" "an untargeted device has no history"
api GET "$P/devices/$id_other/deployments"
assert_status 404 "another project's device"
api GET "$P/devices/$fid/deployments?after=x"
assert_status 400 "a bad cursor"
poll "$first"
assert_status 204 "an installed device has nothing to do"

# ---- group 1 passed its threshold (1 of 1): group 2 starts.
wait_until 10 polls_200 "$g2a" || fail "group 2 device not told after group 1 installed"
api GET "$P/deployments/$dep"
assert_eq "2 1" "$(jq -r '"\(.current_group) \(.groups[0].counts.installed)"' "$BODY")" \
    "current group 2; group 1 counts 1 installed"
assert_ne null "$(jq -r '.groups[1].started_at' "$BODY")" "group 2 has a start time"

# ---- one device in another deployment at a time.
api POST $P/deployments "{\"image\":$img}"
assert_status 409 "a second deployment to busy devices"
assert_match "deployment $dep" "$(api_detail "$BODY")" "409 names the deployment"

# ---- failures past the error threshold (50% of 3): automatic pause.
report "$g2a" "{\"deployment\":$dep,\"state\":\"failed\",\"detail\":\"disk full\"}"
assert_status 204 "first failure"
api GET "$P/deployments/$dep"
assert_eq active "$(jq -r .status "$BODY")" "1 of 3 failed: below the threshold"
report "$g2b" "{\"deployment\":$dep,\"state\":\"downloading\"}"
report "$g2b" "{\"deployment\":$dep,\"state\":\"failed\",\"detail\":\"bad flash\"}"
assert_status 204 "second failure"
api GET "$P/deployments/$dep"
assert_eq paused "$(jq -r .status "$BODY")" "2 of 3 failed: paused"
assert_match 'group 2: 2 of 3 devices failed, over the error threshold of 50%' \
    "$(jq -r .pause_reason "$BODY")" "the reason is recorded"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'deployment.pause'
    AND object = '$dep' AND actor = 'system'")" "the automatic pause is audited"
api GET "$P/deployments/$dep/devices?state=failed"
assert_eq "disk full" "$(jq -r --arg i "$(eval "echo \$id${g2a#dev}")" '.items[] | select(.device_id == $i) | .detail' "$BODY")" \
    "failure detail kept"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'deployment.failed'
    AND object = '$dep' AND actor = 'device:$(eval "echo \$id${g2a#dev}")' AND detail = 'os 1.2.0: disk full'")" \
    "a failure report is audited with its detail"
wait_until 10 polls_204 "$g2c" || fail "a pending device of a paused deployment is told nothing"
report "$g2c" "{\"deployment\":$dep,\"state\":\"downloading\"}"
assert_status 409 "a pending device cannot start while paused"

# ---- manual pause / resume / cancel.
api POST "$P/deployments/$dep/pause"
assert_status 409 "pause a paused deployment"
api POST "$P/deployments/$dep/resume"
assert_status 200 "resume"
assert_eq active "$(jq -r .status "$BODY")" "active again (the failures so far are acknowledged)"
wait_until 10 polls_200 "$g2c" || fail "resumed: the pending device is told"
api POST "$P/deployments/$dep/pause"
assert_status 200 "pause by hand"
assert_eq "paused by user:alice" "$(jq -r .pause_reason "$BODY")" "who paused it"
wait_until 10 polls_204 "$g2c" || fail "paused by hand: nothing to do"
api POST "$P/deployments/$dep/resume"
assert_status 200 "resume again"
report "$g2c" "{\"deployment\":$dep,\"state\":\"downloading\",\"progress\":5}"
assert_status 204 "downloading after the resume"
api POST "$P/deployments/$dep/cancel"
assert_status 200 "cancel"
assert_eq "cancelled 1" "$(jq -r '"\(.status) \(.counts.cancelled)"' "$BODY")" "cancelled, with the unfinished device"
wait_until 10 polls_204 "$g2c" || fail "cancelled: nothing to do"
report "$g2c" "{\"deployment\":$dep,\"state\":\"installed\"}"
assert_status 409 "a report on a cancelled deployment"
assert_match 'cancelled' "$(api_detail "$BODY")" "409 says it was cancelled"
for a in pause resume cancel; do
    api POST "$P/deployments/$dep/$a"
    assert_status 409 "$a a cancelled deployment"
done
api POST "$P/deployments/999999/cancel"
assert_status 404 "cancel what does not exist"
api GET "$P/deployments"
assert_status 200 "list"
assert_eq "$dep" "$(jq -r '.items[].id' "$BODY")" "the list holds the deployment"
api GET "/api/v1/projects/p2/deployments/$dep"
assert_status 404 "another project's deployment is not visible there"

# ---- a deployed image cannot be deleted; after it ends it can.
api POST $P/deployments "{\"image\":$img,\"target\":{\"tag\":\"edge\"}}"
assert_status 201 "a new deployment once the first is cancelled"
dep2=$(jq -r .id "$BODY")
if ql_psql "DELETE FROM images WHERE id = $img" >/dev/null 2>"$T/del.err"; then
    fail "a deployed image was deleted"
fi
assert_file_match 'is deployed' "$T/del.err" "deleting a deployed image is refused with the reason"

# ---- a second project's device sees and downloads nothing of p1.
poll other
assert_status 204 "p2's device: nothing to do"
dev other "/device/v1/images/$img"
assert_status 404 "p2's device cannot download p1's image"
dev other "/device/v1/images/$img/signature"
assert_status 404 "nor its signature"

# ---- an encrypted image (encrypted by the signing step): the encrypted
# form (variant 1) is served, the document carries the content key wrapped
# for this device's certificate, and a decoder that is not quarklink's
# recovers the upload with the key openssl cms -decrypt takes out of it.
head -c 3000000 /dev/urandom >"$T/plain.img"
encimg=$(make_image p2 secure 2.0 "$T/plain.img" signed true)
img_variant_out "$encimg" 1 "$T/enc.img"
api POST /api/v1/projects/p2/deployments "{\"image\":$encimg}"
assert_status 201 "deploy the encrypted image in p2"
wait_until 10 polls_200 other || fail "p2's device is told about the encrypted image"
cp "$BODY" "$T/encdoc.json"
assert_eq "true $(stat -c %s "$T/enc.img")" "$(jq -r '"\(.image.encrypted) \(.image.encrypted_size)"' "$T/encdoc.json")" \
    "encrypted, with the encrypted size"
jq -r .key "$T/encdoc.json" | base64 -d >"$T/key.cms"
openssl cms -decrypt -inform DER -in "$T/key.cms" -inkey "$T/other.key" -recip "$T/other.crt" \
    -out "$T/content.key" 2>"$T/decrypt.err" || fail "openssl cms -decrypt of the document's key: $(cat "$T/decrypt.err")"
assert_eq 32 "$(stat -c %s "$T/content.key")" "a 256-bit content key"
if openssl cms -decrypt -inform DER -in "$T/key.cms" -inkey "$T/dev1.key" -recip "$T/dev1.crt" \
    -out /dev/null 2>/dev/null; then
    fail "another device's key opens the wrapped content key"
fi
dev other "/device/v1/images/$encimg"
assert_status 200 "download the encrypted image"
cmp -s "$BODY" "$T/enc.img" || fail "the encrypted form is not what was served"
assert_match 'enc"$' "$(ql_header ETag)" "the encrypted form has its own ETag"
python3 "$top_srcdir/tests/integration/stream_decode.py" "$T/content.key" "$BODY" "$T/dec.img" 2>"$T/dec.err" ||
    fail "the independent decoder refuses the download: $(cat "$T/dec.err")"
cmp -s "$T/dec.img" "$T/plain.img" || fail "the decrypted download is not the upload"

# ---- disabled and revoked devices are refused.
wait_until 10 polls_200 dev1 || fail "dev1 is in the new deployment"
api POST "$P/devices/$id1/disable"
assert_status 200 "disable dev1"
wait_until 10 eval 'poll dev1; [ "$HTTP_STATUS" = 403 ]' || fail "a disabled device is refused"
assert_match 'disabled' "$(api_detail "$BODY")" "403 says disabled"
dev dev1 "/device/v1/images/$img"
assert_status 403 "a disabled device cannot download"
api POST "$P/certificates/$serial2/revoke" '{"reason":"keyCompromise"}'
[ "$HTTP_STATUS" = 200 ] || [ "$HTTP_STATUS" = 204 ] || fail "revoke dev2: HTTP $HTTP_STATUS $(cat "$BODY")"
revoked_refused() { poll dev2; [ "$HTTP_STATUS" = 403 ] || [ "$HTTP_STATUS" = 000 ]; }
wait_until 10 revoked_refused || fail "a revoked device is refused (got $HTTP_STATUS)"

# ---- last_seen is written, coalesced, within a flush interval.
wait_until 15 eval "[ \"\$(ql_psql \"SELECT last_seen > now() - interval '1 minute' FROM devices WHERE device_id = '$id3'\")\" = t ]" ||
    fail "last_seen of a polling device is not updated"

api GET "$P/deployments/$dep2"
assert_status 200 "get the second deployment"
api POST "$P/deployments/$dep2/cancel"
assert_status 200 "cancel it"
ql_psql "DELETE FROM images WHERE id = $img" >/dev/null || fail "an image no live deployment uses can be deleted"
api GET "$P/deployments/$dep2"
assert_eq null "$(jq -r .image.id "$BODY")" "the ended deployment keeps the image name, not the id"
assert_eq os "$(jq -r .image.name "$BODY")" "and its name"

ql_stop
