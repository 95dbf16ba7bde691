#!/bin/bash
# tus 1.0 uploads driven by curl: OPTIONS, creation, HEAD, PATCH in chunks,
# termination, and every refusal (412 Tus-Resumable, 413 over Tus-Max-Size
# and over the max chunk, 409 offset mismatch and not-newer version, 404
# for another project's credentials, 410 after completion, 404 after
# deletion, 400 bad metadata, 415, 503 when every upload slot is busy);
# SIGKILL of quarklinkd during a PATCH, then HEAD resumes at the committed
# offset and the image completes with the right SHA-256, never listed half;
# the images API (list, get, content, delete) and the expiry of abandoned
# uploads.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl psql jq sha256sum base64 head

CONF=(images.max_chunk_size=4M images.max_size=64M images.max_uploads=1)
ql_pki_start "${CONF[@]}"
ql_admin_ok create-project p1 token
ql_admin_ok create-project p2 token
TOK=$(api_token_new operator p1)
TOK2=$(api_token_new operator p2)
VIEW=$(api_token_new viewer p1)
U=/api/v1/uploads/

b64() { printf '%s' "$1" | base64 -w0; }
meta() { # name version [extra "key value" pairs...]
    local m
    m="project $(b64 "${P:-p1}"),name $(b64 "$1"),version $(b64 "$2")"
    shift 2
    for kv in "$@"; do m="$m,${kv%% *} $(b64 "${kv#* }")"; done
    printf '%s' "$m"
}
# data N FILE: N deterministic pseudo-random bytes.
data() {
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
        -iv "$(printf '%032x' "$RANDOM")" </dev/zero 2>/dev/null | head -c "$1" >"$2"
}
# tus_post TOKEN LENGTH METADATA [CURL ARGS]: creation; LOC on 201.
tus_post() {
    local t=$1 len=$2 m=$3
    shift 3
    ql_curl -X POST -H "Authorization: Bearer $t" -H 'Tus-Resumable: 1.0.0' \
        -H "Upload-Length: $len" -H "Upload-Metadata: $m" "$@" "$(admin_url $U)"
    LOC=$(ql_header Location || true)
}
# tus_patch TOKEN PATH OFFSET FILE [CURL ARGS]
tus_patch() {
    local t=$1 p=$2 off=$3 f=$4
    shift 4
    ql_curl -X PATCH -H "Authorization: Bearer $t" -H 'Tus-Resumable: 1.0.0' \
        -H "Content-Type: ${CT:-application/offset+octet-stream}" -H "Upload-Offset: $off" \
        --data-binary "@$f" "$@" "$(admin_url "$p")"
}
tus_head() {
    ql_curl -I -H "Authorization: Bearer $1" -H 'Tus-Resumable: 1.0.0' "$(admin_url "$2")"
}
tus_delete() {
    ql_curl -X DELETE -H "Authorization: Bearer $1" -H 'Tus-Resumable: 1.0.0' "$(admin_url "$2")"
}
# upload_all TOKEN PATH FILE CHUNK: PATCH the file from 0 in CHUNK-byte pieces.
upload_all() {
    local t=$1 p=$2 f=$3 chunk=$4 size off=0 i=0
    size=$(stat -c %s "$f")
    while [ "$off" -lt "$size" ]; do
        dd if="$f" of="$T/piece" bs="$chunk" skip="$i" count=1 status=none
        tus_patch "$t" "$p" "$off" "$T/piece"
        assert_status 204 "PATCH at $off"
        assert_eq "$((off + $(stat -c %s "$T/piece")))" "$(ql_header Upload-Offset)" "new offset"
        off=$((off + $(stat -c %s "$T/piece")))
        i=$((i + 1))
    done
}
images() { api_bearer "$TOK" GET "/api/v1/projects/p1/images$1"; }

# ---- OPTIONS: what the server speaks, no Tus-Resumable needed.
ql_curl -X OPTIONS -H "Authorization: Bearer $TOK" "$(admin_url $U)"
assert_status 204 "OPTIONS"
assert_eq 1.0.0 "$(ql_header Tus-Version)" "Tus-Version"
assert_eq creation,termination "$(ql_header Tus-Extension)" "Tus-Extension"
assert_eq $((64 << 20)) "$(ql_header Tus-Max-Size)" "Tus-Max-Size"
assert_eq $((4 << 20)) "$(ql_header Quarklink-Max-Chunk-Size)" "max chunk"

# ---- Tus-Resumable missing or wrong: 412 with the version spoken.
ql_curl -X POST -H "Authorization: Bearer $TOK" -H 'Upload-Length: 10' \
    -H "Upload-Metadata: $(meta fw 1.0)" "$(admin_url $U)"
assert_status 412 "POST without Tus-Resumable"
assert_problem 412
assert_eq 1.0.0 "$(ql_header Tus-Version)" "412 names the version"
ql_curl -X POST -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 0.2.2' \
    -H 'Upload-Length: 10' -H "Upload-Metadata: $(meta fw 1.0)" "$(admin_url $U)"
assert_status 412 "POST with Tus-Resumable 0.2.2"

# ---- creation refusals: nothing is stored.
before=$(api_table_counts)
tus_post "$TOK" $((64 << 20 + 1)) "$(meta fw 1.0)"
assert_status 413 "over Tus-Max-Size"
assert_problem 413
for m in "$(b64 p1)" "project $(b64 p1),name $(b64 fw)" \
    "project $(b64 p1),name $(b64 fw),version $(b64 1.x)" \
    "project $(b64 p1),name $(b64 fw),version $(b64 1.2.3.4.5)" \
    "project $(b64 p1),name $(b64 '../fw'),version $(b64 1)" \
    "project $(b64 p1),name $(b64 fw),version $(b64 1),colour $(b64 red)" \
    "project $(b64 p1),name $(b64 fw),version $(b64 1),version $(b64 2)" \
    "project $(b64 p1),name @@@,version $(b64 1)" \
    "$(meta fw 1 'encrypt yes')" "$(meta fw 1 'sha256 abcd')" \
    "$(meta fw 1 'hardware a,,b')" "$(meta fw 1 'hardware a b')"; do
    tus_post "$TOK" 10 "$m"
    assert_status 400 "bad metadata '$m'"
    assert_problem 400
done
tus_post "$TOK" 0 "$(meta fw 1)"
assert_status 400 "Upload-Length 0"
ql_curl -X POST -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Length: ten' -H "Upload-Metadata: $(meta fw 1)" "$(admin_url $U)"
assert_status 400 "Upload-Length not a number"
P=nope tus_post "$TOK" 10 "$(P=nope meta fw 1)"
assert_status 404 "unknown project"
P=p2 tus_post "$TOK" 10 "$(P=p2 meta fw 1)"
assert_status 404 "another project's upload with p1's token"
tus_post "$VIEW" 10 "$(meta fw 1)"
assert_status 403 "a viewer may not upload"
assert_eq "$before" "$(api_table_counts)" "refused creations changed nothing"

# ---- a 3.5 MiB image in 1 MiB PATCHes, with refusals along the way.
data $((3 << 20 | 1 << 19)) "$T/img1"
SHA1=$(sha256sum "$T/img1" | cut -d' ' -f1)
tus_post "$TOK" "$(stat -c %s "$T/img1")" "$(meta fw 1.0 'hardware board-a,board-b' \
    'filename fw-1.0.bin' "sha256 $SHA1")"
assert_status 201 "creation"
assert_match "^/api/v1/uploads/[a-z2-7]{26}$" "$LOC" "Location"
assert_eq 1.0.0 "$(ql_header Tus-Resumable)" "Tus-Resumable in replies"
A=$LOC
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'upload.create'
    AND object = '${A##*/}'")" "creation audited"
tus_head "$TOK" "$A"
assert_status 200 "HEAD"
assert_eq 0 "$(ql_header Upload-Offset)" "offset at start"
assert_eq "$(stat -c %s "$T/img1")" "$(ql_header Upload-Length)" "length"
assert_eq no-store "$(ql_header Cache-Control)" "HEAD not cached"
ql_curl -I -H "Authorization: Bearer $TOK" "$(admin_url "$A")"
assert_status 412 "HEAD without Tus-Resumable"

dd if="$T/img1" of="$T/first" bs=1M count=1 status=none
tus_patch "$TOK" "$A" 1 "$T/first"
assert_status 409 "offset mismatch"
assert_problem 409
CT=application/octet-stream tus_patch "$TOK" "$A" 0 "$T/first"
assert_status 415 "wrong Content-Type"
tus_patch "$TOK" "$A" 0 "$T/first" -H 'Upload-Offset: 0'
assert_status 400 "Upload-Offset twice"
tus_patch "$TOK2" "$A" 0 "$T/first"
assert_status 404 "PATCH with another project's credentials"
assert_problem 404
tus_head "$TOK2" "$A"
assert_status 404 "HEAD with another project's credentials"
tus_delete "$TOK2" "$A"
assert_status 404 "DELETE with another project's credentials"
data $((4 << 20 | 1)) "$T/big"
tus_patch "$TOK" "$A" 0 "$T/big"
assert_status 413 "PATCH over the max chunk"
assert_problem 413
assert_match "at most 4194304 bytes" "$(api_detail "$BODY")" "413 names the limit"
tus_patch "$TOK" "$A" 0 "$T/big" -H 'Transfer-Encoding: chunked'
assert_status 413 "chunked PATCH over the max chunk"
ql_curl -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' --data-binary "@$T/first" \
    "$(admin_url "$A")"
assert_status 401 "PATCH without credentials"
# A JSON route refuses a chunk-sized body before buffering it.
ql_curl -X POST -H "Content-Type: application/json" --data-binary "@$T/big" \
    -H "Authorization: Bearer $TOK" "$(admin_url /api/v1/projects)"
assert_status 413 "a large body on a JSON route"
assert_match "server.max_body_size" "$(api_detail "$BODY")" "names max_body_size"
tus_head "$TOK" "$A"
assert_eq 0 "$(ql_header Upload-Offset)" "refusals wrote nothing"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM image_chunks")" "no chunk rows"

tus_patch "$TOK" "$A" 0 "$T/first"
assert_status 204 "first PATCH"
assert_eq $((1 << 20)) "$(ql_header Upload-Offset)" "offset after the first PATCH"
images ""
assert_status 200 "list"
assert_eq 0 "$(jq '.items | length' "$BODY")" "an incomplete upload is not an image"

# ---- every upload slot busy (max_uploads = 1): 503 with Retry-After.
data $((3 << 20)) "$T/slow"
# Only this PATCH's lines count: earlier PATCHes logged "body" too.
mark=$(wc -l <"$QL_LOG")
curl -sS --cacert "$T/ca.crt" --limit-rate 512K -o /dev/null -X PATCH \
    -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' \
    --data-binary "@$T/slow" "$(admin_url "$A")" 2>/dev/null &
slow=$!
body_state() { tail -n "+$((mark + 1))" "$QL_LOG" | grep -Eq 'admin: connection fd=[0-9]+ body$'; }
wait_until 10 body_state || fail "the slow PATCH did not start its body"
head -c $((2 << 20)) "$T/slow" >"$T/two"
tus_patch "$TOK" "$A" $((1 << 20)) "$T/two"
assert_status 503 "a second large PATCH while the slot is held"
[ -n "$(ql_header Retry-After)" ] || fail "503 without Retry-After"
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
slot_free() {
    dd if="$T/img1" of="$T/second" bs=1M skip=1 count=1 status=none
    tus_patch "$TOK" "$A" $((1 << 20)) "$T/second"
    [ "$HTTP_STATUS" != 503 ]
}
wait_until 10 slot_free || fail "the slot was not released when its client left"
assert_status 204 "second PATCH once the slot is free"

# ---- SIGKILL while a PATCH body is arriving: the committed offset stays.
dd if="$T/img1" of="$T/third" bs=1M skip=2 count=1 status=none
curl -sS --cacert "$T/ca.crt" --limit-rate 256K -o /dev/null -X PATCH \
    -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Offset: $((2 << 20))" -H 'Content-Type: application/offset+octet-stream' \
    --data-binary "@$T/third" "$(admin_url "$A")" 2>/dev/null &
slow=$!
QL_LOG_START=$(wc -l <"$QL_LOG")
wait_until 10 body_state || fail "the PATCH did not start its body"
kill -KILL "$QL_PID"
wait "$QL_PID" 2>/dev/null
QL_PID=
wait "$slow" 2>/dev/null
ql_start
tus_head "$TOK" "$A"
assert_status 200 "HEAD after the restart"
assert_eq $((2 << 20)) "$(ql_header Upload-Offset)" "offset after SIGKILL: the last committed PATCH"
assert_eq $((2 << 20)) "$(ql_psql "SELECT coalesce(sum(length(data)), 0) FROM image_chunks
    WHERE upload_id = '${A##*/}'")" "chunk rows hold exactly the committed bytes"
images ""
assert_eq 0 "$(jq '.items | length' "$BODY")" "no half image listed after the restart"
dd if="$T/img1" of="$T/rest" bs=1M skip=2 status=none
tus_patch "$TOK" "$A" $((2 << 20)) "$T/rest"
assert_status 204 "the last PATCH"
ID=$(ql_header Quarklink-Image-Id) || fail "no Quarklink-Image-Id on completion"
assert_eq "$(stat -c %s "$T/img1")" "$(ql_header Upload-Offset)" "complete"
assert_eq "0 4" "$(ql_psql "SELECT count(*) FILTER (WHERE length(data) > 1048576) || ' ' ||
    count(*) FROM image_chunks WHERE upload_id = '${A##*/}'")" "four rows of at most 1 MiB"
assert_eq "$(stat -c %s "$T/img1")" "$(ql_psql "SELECT sum(length(data)) FROM image_chunks
    WHERE upload_id = '${A##*/}' AND off + length(data) <= (SELECT upload_length FROM uploads
    WHERE id = '${A##*/}')")" "contiguous rows cover the image"

# ---- the image: get, list, content; what the upload became.
api_bearer "$VIEW" GET "/api/v1/projects/p1/images/$ID"
assert_status 200 "GET image"
assert_json "$BODY" sha256 "$SHA1" "SHA-256 computed across the restart"
assert_json "$BODY" size "$(stat -c %s "$T/img1")"
assert_json "$BODY" name fw
assert_json "$BODY" version 1.0
assert_json "$BODY" status uploaded
assert_json "$BODY" encrypt false
assert_json "$BODY" uploaded_by "token:$(ql_psql "SELECT id FROM api_tokens WHERE
    token_hash = sha256(convert_to('$TOK', 'UTF8'))")"
assert_eq '["board-a","board-b"]' "$(jq -c .hardware "$BODY")" "hardware"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'image.upload'
    AND object = '$ID'")" "completion audited"
images "?name=fw"
assert_eq "$ID" "$(jq '.items[0].id' "$BODY")" "listed by name"
images "?name=other"
assert_eq 0 "$(jq '.items | length' "$BODY")" "name filter"
HTTP_STATUS=$(curl -sS --cacert "$T/ca.crt" -H "Authorization: Bearer $TOK" -D "$HEADERS" \
    -o "$T/down" -w '%{http_code}' "$(admin_url "/api/v1/projects/p1/images/$ID/content")")
assert_status 200 "content"
assert_eq "$(stat -c %s "$T/img1")" "$(ql_header Content-Length)" "Content-Length"
assert_eq "$SHA1" "$(sha256sum "$T/down" | cut -d' ' -f1)" "downloaded bytes"
api_bearer "$TOK2" GET "/api/v1/projects/p1/images/$ID"
assert_status 404 "another project's image"
tus_patch "$TOK" "$A" "$(stat -c %s "$T/img1")" "$T/first"
assert_status 410 "PATCH on a finished upload"
tus_head "$TOK" "$A"
assert_eq "$(stat -c %s "$T/img1")" "$(ql_header Upload-Offset)" "HEAD on a finished upload"
tus_delete "$TOK" "$A"
assert_status 410 "DELETE on a finished upload"

# ---- versions only increase, at creation and again at completion.
for v in 1.0 1 1.0.0 0.9 0.99.9; do
    tus_post "$TOK" 10 "$(meta fw "$v")"
    assert_status 409 "version $v is not newer than 1.0"
done
data 10 "$T/small"
tus_post "$TOK" 10 "$(meta fw 2.0)"
assert_status 201 "version 2.0"
B=$LOC
tus_post "$TOK" 10 "$(meta fw 2.0.0)"
assert_status 201 "the same version again while neither is complete"
C=$LOC
tus_patch "$TOK" "$B" 0 "$T/small"
assert_status 204 "2.0 completes"
tus_patch "$TOK" "$C" 0 "$T/small"
assert_status 409 "2.0.0 at completion: not newer any more"
tus_head "$TOK" "$C"
assert_eq 0 "$(ql_header Upload-Offset)" "the refused completion stored nothing"
tus_post "$TOK" 10 "$(meta fw 2.1 "sha256 $SHA1")"
D=$LOC
tus_patch "$TOK" "$D" 0 "$T/small"
assert_status 422 "bytes that do not match the announced sha256"
tus_head "$TOK" "$D"
assert_eq 0 "$(ql_header Upload-Offset)" "nothing stored of a mismatching PATCH"
images "?name=fw"
assert_eq "1.0 2.0" "$(jq -r '[.items[].version] | join(" ")' "$BODY")" "two images"

# ---- termination: 204, chunks gone, then 404.
tus_post "$TOK" 100 "$(meta other 1)"
E=$LOC
tus_patch "$TOK" "$E" 0 "$T/small"
assert_status 204 "a PATCH before termination"
tus_delete "$TOK" "$E"
assert_status 204 "DELETE"
gone() { [ "$(ql_psql "SELECT count(*) FROM image_chunks WHERE upload_id = '$1'")" = 0 ]; }
wait_until 20 gone "${E##*/}" || fail "the deleted upload's chunks were not removed"
tus_patch "$TOK" "$E" 10 "$T/small"
assert_status 404 "PATCH on a deleted upload"
tus_head "$TOK" "$E"
assert_status 404 "HEAD on a deleted upload"
tus_delete "$TOK" "$E"
assert_status 404 "DELETE twice"

# ---- image deletion: bytes gone, audited.
api_bearer "$VIEW" DELETE "/api/v1/projects/p1/images/$ID"
assert_status 403 "a viewer may not delete"
api_bearer "$TOK2" DELETE "/api/v1/projects/p1/images/$ID"
assert_status 404 "another project's image is not there"
api_bearer "$TOK" DELETE "/api/v1/projects/p1/images/$ID"
assert_status 204 "image deleted"
api_bearer "$TOK" GET "/api/v1/projects/p1/images/$ID"
assert_status 404 "deleted image"
wait_until 20 gone "${A##*/}" || fail "the deleted image's bytes were not removed"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'image.delete'
    AND object = '$ID'")" "deletion audited"

# ---- expiry: an abandoned upload is gone at once, its rows soon after.
tus_post "$TOK" 100 "$(meta old 1)"
F=$LOC
tus_patch "$TOK" "$F" 0 "$T/small"
ql_psql "UPDATE uploads SET expires_at = now() - interval '1 second'
         WHERE id = '${F##*/}'" >/dev/null
tus_head "$TOK" "$F"
assert_status 404 "an expired upload"
tus_patch "$TOK" "$F" 10 "$T/small"
assert_status 404 "PATCH on an expired upload"
ql_stop
ql_start
expired() { [ "$(ql_psql "SELECT count(*) FROM uploads WHERE id = '${F##*/}'")" = 0 ]; }
wait_until 15 expired || fail "the expired upload was not removed"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM image_chunks WHERE upload_id = '${F##*/}'")" \
    "its chunks removed"
assert_eq 1 "$(ql_psql "SELECT count(*) FROM audit_log WHERE action = 'upload.expire'
    AND object = '${F##*/}'")" "expiry audited"
ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd did not exit cleanly"
