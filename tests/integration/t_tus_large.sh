#!/bin/bash
# A 2.5 GiB image end to end: uploaded with curl in 32 MiB tus PATCHes from
# a deterministic stream (never stored whole on disk here), downloaded back
# and compared by SHA-256; the daemon's memory stays bounded by the chunk,
# and the database holds the image about once (no compression, no copies).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl psql jq sha256sum dd du
# Under AddressSanitizer every freed block waits in a quarantine (256 MB by
# default) and would count as RSS: keep it small, so the bound measures
# live memory (as t_slow_clients does). Other builds ignore ASAN_OPTIONS.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
export ASAN_OPTIONS

SIZE=$((5 << 29))	# 2.5 GiB
CHUNK=$((32 << 20))
ql_pki_start
ql_admin_ok create-project p1 token
TOK=$(api_token_new operator p1)
b64() { printf '%s' "$1" | base64 -w0; }
# (head ends openssl with SIGPIPE: not a failure here)
stream() {
    (
        set +o pipefail
        openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff \
            -iv 0102030405060708090a0b0c0d0e0f10 </dev/zero 2>/dev/null | head -c "$SIZE"
    )
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$QL_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$QL_PID/status"; }

ql_curl -X POST -H "Authorization: Bearer $TOK" -H 'Tus-Resumable: 1.0.0' \
    -H "Upload-Length: $SIZE" \
    -H "Upload-Metadata: project $(b64 p1),name $(b64 big),version $(b64 1)" \
    "$(admin_url /api/v1/uploads/)"
assert_status 201 "creation"
LOC=$(ql_header Location)
rss0=$(rss_kb)

# One piece at a time from the stream; its SHA-256 on the side.
stream | tee >(sha256sum | cut -d' ' -f1 >"$T/sha.want") | {
    off=0
    while [ "$off" -lt "$SIZE" ]; do
        dd of="$T/piece" bs="$CHUNK" count=1 iflag=fullblock status=none
        ql_curl --max-time 120 -X PATCH -H "Authorization: Bearer $TOK" \
            -H 'Tus-Resumable: 1.0.0' -H 'Content-Type: application/offset+octet-stream' \
            -H "Upload-Offset: $off" --data-binary "@$T/piece" "$(admin_url "$LOC")"
        [ "$HTTP_STATUS" = 204 ] || { cat "$BODY"; fail "PATCH at $off: $HTTP_STATUS"; }
        off=$((off + $(stat -c %s "$T/piece")))
        [ "$(ql_header Upload-Offset)" = "$off" ] || fail "offset after PATCH: $(ql_header Upload-Offset)"
    done
    ID=$(ql_header Quarklink-Image-Id) || fail "the last PATCH did not complete the image"
    echo "$ID" >"$T/id"
} || exit 1
rm -f "$T/piece"
wait_until 30 test -s "$T/sha.want" || fail "no SHA-256 of the stream"
ID=$(cat "$T/id")
api_bearer "$TOK" GET "/api/v1/projects/p1/images/$ID"
assert_json "$BODY" size "$SIZE"
assert_json "$BODY" sha256 "$(cat "$T/sha.want")" "SHA-256 computed by the daemon"

# Down again, streamed, hashed on the fly.
curl -sS --max-time 600 --cacert "$T/ca.crt" -H "Authorization: Bearer $TOK" \
    -D "$T/down.headers" "$(admin_url "/api/v1/projects/p1/images/$ID/content")" |
    sha256sum | cut -d' ' -f1 >"$T/sha.got"
assert_eq "$(cat "$T/sha.want")" "$(cat "$T/sha.got")" "downloaded bytes"
assert_match "^Content-Length: $SIZE" "$(tr -d '\r' <"$T/down.headers")" "Content-Length"

# Memory: bounded by a chunk or so, not by 2.5 GiB. Disk: the image once
# in its table (no compression tried, no copies), plus bounded WAL.
hwm=$(hwm_kb)
ql_log "RSS at creation ${rss0} KiB, peak ${hwm} KiB"
[ $((hwm - rss0)) -lt $((256 * 1024)) ] || fail "peak RSS grew by $((hwm - rss0)) KiB"
bytes=$(ql_psql "SELECT pg_total_relation_size('image_chunks')")
ql_log "image_chunks holds $bytes bytes for $SIZE"
[ "$bytes" -lt $((SIZE + SIZE / 10)) ] || fail "image_chunks uses $bytes bytes for $SIZE"
[ "$bytes" -ge "$SIZE" ] || fail "image_chunks smaller than the image: compressed?"
du=$(du -sk "$T/pg/data" | cut -f1)
ql_log "PostgreSQL data directory: $du KiB"
[ "$du" -lt $(((SIZE + (2 << 30)) / 1024)) ] || fail "data directory $du KiB"
api_bearer "$TOK" DELETE "/api/v1/projects/p1/images/$ID"
assert_status 204 "delete: at once, the bytes follow in batches"
gone() { [ "$(ql_psql "SELECT count(*) FROM uploads")" = 0 ]; }
wait_until 300 gone || fail "the image's 2.5 GiB were not removed"
assert_eq 0 "$(ql_psql "SELECT count(*) FROM image_chunks")" "no chunk rows left"
ql_stop || fail "quarklinkd did not exit cleanly"
