#!/bin/bash
# Image signing: POST .../images/ID/sign makes a CMS detached signature that
# openssl cms -verify accepts for the image against the root (and refuses
# for changed bytes), and a signed manifest whose JSON names the project,
# image, size, SHA-256, RFC 3339 times and hardware; it is signed by the
# project's own code-signing certificate, not another project's. Refusals
# change nothing: viewer 403, missing or other project's image 404, bad
# bodies 400, signing twice (also racing) 409. Every signing is audited.
# Images are uploaded through the tus API with curl.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=img.sh
. "$(dirname "$0")/img.sh"
ql_require curl openssl psql jq python3 sha256sum base64

ql_pki_start
api_admin_session alice
ql_admin_ok create-project p1
ql_admin_ok create-project p2

# ---- images uploaded through the tus API with curl (the empty one, which
# tus does not make, is put in place with SQL as a completed upload)
op1=$(api_token_new operator p1)
op2=$(api_token_new operator p2)
viewer=$(api_token_new viewer p1)
head -c 3500000 /dev/urandom >"$T/a.img"
img_tus_upload "$op1" p1 firmware 1.2.3 "$T/a.img" false board-a,board-b 1500000
ida=$IMG_ID
head -c 100 /dev/urandom >"$T/b.img"
img_tus_upload "$op1" p1 firmware 1.2.4 "$T/b.img" false board-a
idb=$IMG_ID
head -c 5000 /dev/urandom >"$T/c.img"
img_tus_upload "$op2" p2 app 7 "$T/c.img"
idc=$IMG_ID
: >"$T/empty.img"
img_sql_insert p1 empty 1 "$T/empty.img"
ide=$IMG_ID
S=/api/v1/projects/p1/images

status_of() { ql_psql "SELECT status FROM images WHERE id = $1"; }

# ---- not signed yet: no signature, no manifest
api GET "$S/$ida/signature"
assert_status 404 "signature of an unsigned image"
assert_problem 404
api GET "$S/$ida/manifest"
assert_status 404 "manifest of an unsigned image"

# ---- refusals change nothing
images_digest() { ql_psql "SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM images i"; }
before="$(api_table_counts) $(images_digest)"
api_bearer "$viewer" POST "$S/$ida/sign" '{}'
assert_status 403 "a viewer cannot sign"
assert_problem 403
for body in '{"expires_in_days":0}' '{"expires_in_days":3651}'; do
    img_sign p1 "$ida" "$body"
    assert_status 422 "out of range: $body"
    assert_problem 422
done
for body in '{"expires_in_days":"30"}' \
    '{"expires_in_days":1.5}' '{"hardware":"board-a"}' '{"hardware":["bad name"]}' '{"hardware":["a/b"]}' \
    '{"hardware":[""]}' '{"hardware":[1]}' '{"hardware":["a","a"]}' '{"colour":"red"}' \
    '{"expires_in_days":' '[]' '"x"'; do
    img_sign p1 "$ida" "$body"
    assert_status 400 "bad body $body"
    assert_problem 400
done
ql_curl -X POST -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" -H 'Content-Type: text/plain' \
    --data 'x' "$(admin_url "$S/$ida/sign")"
assert_status 415 "a body that is not JSON"
img_sign p1 999999 '{}'
assert_status 404 "no such image"
assert_problem 404
img_sign p1 abc '{}'
assert_status 404 "an id that is not a number"
img_sign p2 "$ida" '{}'
assert_status 404 "p1's image through p2"
img_sign p1 "$idc" '{}'
assert_status 404 "p2's image through p1"
api_bearer "$op2" POST "$S/$ida/sign" '{}'
assert_status 404 "p2's operator does not see p1"
assert_eq "$before" "$(api_table_counts) $(images_digest)" "refusals changed no table and no image"
assert_eq uploaded "$(status_of "$ida")" "still unsigned"

# ---- sign with an operator token of p1, 30 days
api_bearer "$op1" POST "$S/$ida/sign" '{"expires_in_days":30}'
assert_status 200 "operator signs"
assert_json "$BODY" status signed
assert_json "$BODY" id "$ida"
assert_json "$BODY" sha256 "$(sha256sum "$T/a.img" | cut -c1-64)"
assert_json "$BODY" size 3500000
assert_json "$BODY" encrypted false
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(json_get "$BODY" signed_at)" "signed_at RFC 3339 UTC"
signed_by=$(json_get "$BODY" signed_by)
assert_ne "" "$signed_by" "signed_by names the caller"
assert_eq signed "$(status_of "$ida")" "the row says signed"

api GET "$S/$ida"
assert_status 200 "the images API shows it"
assert_json "$BODY" status signed
img_sign p1 "$ida" '{}'
assert_status 409 "signing twice"
assert_problem 409
api_bearer "$op1" POST "$S/$ida/sign"
assert_status 409 "signing twice, empty body"

# ---- the detached signature verifies against the root, for these bytes only
api GET "$S/$ida/signature"
assert_status 200 "get the signature"
assert_eq application/pkcs7-signature "$(ql_header Content-Type)" "signature content type"
cp "$BODY" "$T/a.sig"
openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" \
    -CAfile "$T/root.pem" -purpose any -out /dev/null 2>"$T/verify.err" ||
    fail "openssl cms -verify refused the detached signature: $(cat "$T/verify.err")"
assert_file_match 'Verification successful' "$T/verify.err"
cp "$T/a.img" "$T/a-bad.img"
printf 'X' | dd of="$T/a-bad.img" bs=1 seek=2000000 conv=notrunc status=none
if openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a-bad.img" \
    -CAfile "$T/root.pem" -purpose any -out /dev/null 2>/dev/null; then
    fail "the signature verified for a changed image"
fi
head -c 3499999 "$T/a.img" >"$T/a-short.img"
if openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a-short.img" \
    -CAfile "$T/root.pem" -purpose any -out /dev/null 2>/dev/null; then
    fail "the signature verified for a truncated image"
fi
# A trust store without the installation root does not accept it.
if openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" \
    -CAfile "$T/ca.crt" -purpose any -out /dev/null 2>/dev/null; then
    fail "the signature verified against an unrelated CA"
fi

# ---- signed by p1's code-signing certificate, which says codeSigning
codesign_pem() {
    ql_psql "SELECT encode(c.cert_der, 'hex') FROM cas c JOIN projects p ON p.id = c.project_id
             WHERE p.name = '$1' AND c.kind = 'codesign'" |
        python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' |
        openssl x509 -inform DER -out "$2"
}
codesign_pem p1 "$T/cs1.pem"
codesign_pem p2 "$T/cs2.pem"
openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" -CAfile "$T/root.pem" \
    -purpose any -signer "$T/a-signer.pem" -out /dev/null 2>/dev/null || fail "verify with -signer"
assert_eq "$(openssl x509 -in "$T/cs1.pem" -outform DER | sha256sum)" \
    "$(openssl x509 -in "$T/a-signer.pem" -outform DER | sha256sum)" "the signer is p1's code-signing certificate"
assert_match 'Code Signing' "$(openssl x509 -in "$T/a-signer.pem" -noout -ext extendedKeyUsage)" \
    "the signer certificate is for code signing"
# With p2's code-signing certificate as the only signer allowed, p1's
# signature does not verify.
if openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" -CAfile "$T/root.pem" \
    -purpose any -nointern -certfile "$T/cs2.pem" -out /dev/null 2>/dev/null; then
    fail "p1's signature verified as p2's"
fi
openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" -CAfile "$T/root.pem" \
    -purpose any -nointern -certfile "$T/cs1.pem" -out /dev/null 2>/dev/null ||
    fail "p1's signature does not verify with p1's certificate alone"
# The signed attributes carry the stored digest and the signing time.
openssl cms -cmsout -print -inform DER -in "$T/a.sig" >"$T/a.sig.txt"
assert_file_match 'messageDigest' "$T/a.sig.txt"
assert_file_match 'signingTime' "$T/a.sig.txt"
assert_file_match 'eContent: <ABSENT>' "$T/a.sig.txt"

# ---- the manifest: verified, then its JSON checked field by field
api GET "$S/$ida/manifest"
assert_status 200 "get the manifest"
assert_eq application/pkcs7-mime "$(ql_header Content-Type)" "manifest content type"
cp "$BODY" "$T/a.man"
openssl cms -verify -inform DER -in "$T/a.man" -CAfile "$T/root.pem" -purpose any \
    -out "$T/a.json" 2>"$T/verify.err" || fail "manifest does not verify: $(cat "$T/verify.err")"
json_valid "$T/a.json" || fail "manifest content is not JSON: $(head -c 300 "$T/a.json")"
assert_json "$T/a.json" format 1
assert_json "$T/a.json" project p1
assert_json "$T/a.json" image_id "$ida"
assert_json "$T/a.json" name firmware
assert_json "$T/a.json" version 1.2.3
assert_json "$T/a.json" size 3500000
assert_json "$T/a.json" sha256 "$(sha256sum "$T/a.img" | cut -c1-64)"
assert_json "$T/a.json" encrypted false
assert_eq '["board-a","board-b"]' "$(jq -c .hardware "$T/a.json")" "manifest hardware from the image"
assert_eq null "$(jq -c .encrypted_size "$T/a.json")" "no encrypted_size for a plain image"
created=$(json_get "$T/a.json" created)
expires=$(json_get "$T/a.json" expires)
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$created" "created RFC 3339 UTC"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$expires" "expires RFC 3339 UTC"
assert_eq $((30 * 86400)) $(($(date -d "$expires" +%s) - $(date -d "$created" +%s))) "expires 30 days after created"
now=$(date +%s)
[ $((now - $(date -d "$created" +%s))) -lt 120 ] || fail "created is not now: $created"
assert_eq "$created" "$(ql_psql "SELECT to_char(signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM images WHERE id = $ida")" \
    "signed_at is the manifest's created"
openssl cms -verify -inform DER -in "$T/a.man" -CAfile "$T/root.pem" -purpose any -nointern \
    -certfile "$T/cs2.pem" -out /dev/null 2>/dev/null && fail "p1's manifest verified as p2's"

# ---- the audit log has the signing, with its actor
n=$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'image.sign' AND object = '$ida'
             AND result = 'ok' AND actor = '$signed_by'
             AND project_id = (SELECT id FROM projects WHERE name = 'p1')")
assert_eq 1 "$n" "one audit row for the signing"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'image.sign' AND object <> '$ida'")" \
    "refusals signed nothing"
assert_eq "" "$(ql_psql "SELECT broken_id FROM ql_audit_verify()")" "audit chain intact"

# ---- defaults and the hardware override
img_sign p1 "$idb" '{"hardware":["board-c","rev.2_x"]}'
assert_status 200 "sign b with a hardware override"
assert_eq '["board-c","rev.2_x"]' "$(jq -c .hardware "$BODY")" "the reply shows the override"
api GET "$S/$idb/manifest"
openssl cms -verify -inform DER -in "$BODY" -CAfile "$T/root.pem" -purpose any -out "$T/b.json" \
    2>/dev/null || fail "b's manifest does not verify"
assert_eq '["board-c","rev.2_x"]' "$(jq -c .hardware "$T/b.json")" "manifest carries the override"
assert_eq $((365 * 86400)) $(($(date -d "$(json_get "$T/b.json" expires)" +%s) - \
    $(date -d "$(json_get "$T/b.json" created)" +%s))) "default lifetime 365 days"
assert_eq '{board-c,rev.2_x}' "$(ql_psql "SELECT hardware FROM images WHERE id = $idb")" "row hardware follows"

# ---- an empty image signs too (its signature is over zero bytes)
img_sign p1 "$ide" ''
assert_status 200 "sign the empty image with no body"
api GET "$S/$ide/signature"
cp "$BODY" "$T/e.sig"
openssl cms -verify -binary -inform DER -in "$T/e.sig" -content "$T/empty.img" -CAfile "$T/root.pem" \
    -purpose any -out /dev/null 2>/dev/null || fail "the empty image's signature does not verify"

# ---- p2's image: its manifest names p2 and its signer is p2's certificate
api POST "/api/v1/projects/p2/images/$idc/sign" '{"expires_in_days":1}'
assert_status 200 "sign p2's image"
api GET "/api/v1/projects/p2/images/$idc/manifest"
cp "$BODY" "$T/c.man"
openssl cms -verify -inform DER -in "$T/c.man" -CAfile "$T/root.pem" -purpose any -nointern \
    -certfile "$T/cs2.pem" -out "$T/c.json" 2>/dev/null || fail "p2's manifest does not verify with p2's certificate"
assert_json "$T/c.json" project p2
openssl cms -verify -inform DER -in "$T/c.man" -CAfile "$T/root.pem" -purpose any -nointern \
    -certfile "$T/cs1.pem" -out /dev/null 2>/dev/null && fail "p2's manifest verified as p1's"
api GET "/api/v1/projects/p1/images/$idc/manifest"
assert_status 404 "p2's manifest through p1"
api GET "/api/v1/projects/p1/images/$idc/signature"
assert_status 404 "p2's signature through p1"

# ---- two signings racing: exactly one wins, the other is 409
head -c 200000 /dev/urandom >"$T/r.img"
img_tus_upload "$op1" p1 race 1 "$T/r.img"
idr=$IMG_ID
pids=()
for i in 1 2 3; do
    curl -sS --max-time 10 --cacert "$T/ca.crt" -o /dev/null -w '%{http_code}\n' \
        -H "Authorization: Bearer $op1" -X POST "$(admin_url "$S/$idr/sign")" >>"$T/race.out" &
    pids+=($!)
done
wait "${pids[@]}"
assert_eq "200 409 409" "$(sort "$T/race.out" | tr '\n' ' ' | sed 's/ $//')" "one signing wins the race"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'image.sign' AND object = '$idr'")" \
    "one audit row for the race"

# Images for the slow token below, uploaded while the daemon is as it was.
slow_ids=()
for i in 1 2 3 4; do
    head -c 20000 /dev/urandom >"$T/s$i.img"
    img_tus_upload "$op1" p1 slow "$i" "$T/s$i.img"
    slow_ids+=("$IMG_ID")
done

# ---- the daemon kept going
api_alive || fail "daemon not answering"
ql_stop || fail "quarklinkd exited with $?"

# ---- a slow token (tests/p11slow: every C_Sign waits, as a network HSM's
# round trip would) with one worker and a queue of one: signing runs on the
# token worker, and the signings beyond the queue are refused with 503 +
# Retry-After, leaving the image as it was, to be signed on a retry.
SLOW=$top_builddir/tests/p11slow/p11slow.so
[ -r "$SLOW" ] || hard_error "$SLOW not built (make check builds it)"
DELAY_MS=300
export P11SLOW_MODULE=/usr/lib/softhsm/libsofthsm2.so P11SLOW_DELAY_MS=$DELAY_MS
ql_config pkcs11.module="$SLOW" pkcs11.workers=1 pkcs11.queue_max=1
ql_start
start=$(date +%s%N)
api_bearer "$op1" POST "$S/${slow_ids[0]}/sign" '{}'
took=$(( ($(date +%s%N) - start) / 1000000 ))
assert_status 200 "sign through the slow token"
[ "$took" -ge "$DELAY_MS" ] || fail "a signing took $took ms: the slow module is not in use"
api_bearer "$op1" GET "$S/${slow_ids[0]}/signature"
cp "$BODY" "$T/s1.sig"
openssl cms -verify -binary -inform DER -in "$T/s1.sig" -content "$T/s1.img" -CAfile "$T/root.pem" \
    -purpose any -out /dev/null 2>/dev/null || fail "the slow token's signature does not verify"

# sign_one I: POST .../sign for slow image I; status in $T/s$I.status.
sign_one() {
    curl -sS --max-time 30 --cacert "$T/ca.crt" -H "Authorization: Bearer $op1" -X POST \
        -o "$T/s$1.out" -D "$T/s$1.hdr" -w '%{http_code}' \
        "$(admin_url "$S/${slow_ids[$1]}/sign")" >"$T/s$1.status" 2>"$T/s$1.err"
}
pids=()
for i in 1 2 3; do sign_one "$i" & pids+=($!); done
wait "${pids[@]}"
ok=0 busy=0
for i in 1 2 3; do
    id=${slow_ids[$i]}
    case $(cat "$T/s$i.status") in
        200) ok=$((ok + 1)) ;;
        503)
            busy=$((busy + 1))
            assert_eq "Retry-After: 1" "$(tr -d '\r' <"$T/s$i.hdr" | grep -i '^retry-after:')" \
                "503 for slow image $i carries Retry-After"
            assert_match 'token busy' "$(cat "$T/s$i.out")" "503 for slow image $i says the token is busy"
            assert_eq "uploaded|t|0" \
                "$(ql_psql "SELECT status, sign_claim IS NULL, (SELECT count(*) FROM audit_log
                            WHERE action = 'image.sign' AND object = '$id') FROM images WHERE id = $id")" \
                "a refused signing leaves slow image $i unsigned, unclaimed and unaudited"
            api_bearer "$op1" POST "$S/$id/sign" '{}'
            assert_status 200 "slow image $i signs on a retry" ;;
        *) fail "slow image $i: HTTP $(cat "$T/s$i.status") $(head -c 300 "$T/s$i.out") $(cat "$T/s$i.err")" ;;
    esac
done
[ "$ok" -ge 1 ] || fail "three signings through a queue of one: none served"
[ "$busy" -ge 1 ] || fail "three signings through a queue of one: none refused"
ql_log "queue of one: $ok signed at once, $busy refused with 503 and signed on a retry"
assert_eq 4 "$(ql_psql "SELECT count(*) FROM images WHERE id IN ($(IFS=,; echo "${slow_ids[*]}"))
                        AND status = 'signed'")" "every slow image is signed in the end"
ql_alive || fail "the daemon died with the slow token"
ql_stop || fail "quarklinkd exited with $? after the slow token"
