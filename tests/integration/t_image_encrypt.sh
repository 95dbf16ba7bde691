#!/bin/bash
# Encrypted images (uploaded through the tus API with curl): signing an
# image that asks for encryption writes its
# STREAM form (man/quarklink-image.5) as contiguous variant 1 rows of at
# most 1 MiB; the manifest says encrypted, encrypted_size, segment_size. A
# decoder that is not quarklink's (tests/integration/stream_decode.py,
# python3-cryptography) recovers the upload exactly with the content key
# that openssl cms -decrypt takes out of the device's EnvelopedData (made by
# imgsign_key_wrap for an EST-enrolled device certificate); another
# device's key cannot open it. One changed byte, a dropped or cut last
# segment, swapped segments or a changed header make the decoder fail. The
# content key is nowhere in the database in clear. The daemon killed in
# the middle of the encryption leaves the image unsigned; once the dead
# attempt's lease has run out it signs again, from scratch.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=img.sh
. "$(dirname "$0")/img.sh"
ql_require curl openssl psql jq python3 sha256sum pg_dump base64
python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null ||
    skip "python3-cryptography is not installed"
WRAP="$top_builddir/tests/unit/imgkey_wrap"
DECODE="$top_srcdir/tests/integration/stream_decode.py"
[ -x "$WRAP" ] || hard_error "$WRAP not built (make check builds it)"

ql_pki_start
api_admin_session alice
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 10
tok=$ADMIN_OUT
est_enroll_ok p1 dev1 -u "dev1:$tok"
est_enroll_ok p1 dev2 -u "dev2:$tok"
op=$(api_token_new operator p1)
S=/api/v1/projects/p1/images
SEG=65536 CSEG=65552

# ---- 3 MiB + 12345 bytes uploaded with tus in 700000-byte PATCHes: 50
# segments, the last one short.
size=$((3 * 1048576 + 12345))
head -c "$size" /dev/urandom >"$T/a.img"
img_tus_upload "$op" p1 firmware 2.0 "$T/a.img" true board-a 700000
ida=$IMG_ID
nseg=$(((size + SEG - 1) / SEG))
encsize=$((24 + size + 16 * nseg))

img_sign p1 "$ida" '{"expires_in_days":7}'
assert_status 200 "sign the encrypted image"
assert_json "$BODY" status signed
assert_json "$BODY" encrypted true
assert_json "$BODY" encrypted_size "$encsize"

# ---- the manifest says how it is encrypted
api GET "$S/$ida/manifest"
assert_status 200 "manifest"
openssl cms -verify -inform DER -in "$BODY" -CAfile "$T/root.pem" -purpose any -out "$T/a.json" \
    2>"$T/verify.err" || fail "manifest does not verify: $(cat "$T/verify.err")"
assert_json "$T/a.json" encrypted true
assert_json "$T/a.json" encrypted_size "$encsize"
assert_json "$T/a.json" segment_size 65536
assert_json "$T/a.json" size "$size"
assert_json "$T/a.json" sha256 "$(sha256sum "$T/a.img" | cut -c1-64)"
# The detached signature is over the plain image.
api GET "$S/$ida/signature"
cp "$BODY" "$T/a.sig"
openssl cms -verify -binary -inform DER -in "$T/a.sig" -content "$T/a.img" -CAfile "$T/root.pem" \
    -purpose any -out /dev/null 2>/dev/null || fail "signature over the plain image does not verify"

# ---- the encrypted form: contiguous rows of at most 1 MiB, full but the last
rows=$(ql_psql "SELECT count(*), max(length(data)), sum(length(data)),
                bool_and(off = coalesce(prev, 0)), bool_and(length(data) = 1048576 OR last)
         FROM (SELECT c.off, c.data, lag(c.off + length(c.data)) OVER w AS prev,
                      lead(c.off) OVER w IS NULL AS last
               FROM image_chunks c JOIN images i ON i.upload_id = c.upload_id
               WHERE i.id = $ida AND c.variant = 1 WINDOW w AS (ORDER BY c.off)) r")
assert_eq "$(((encsize + 1048575) / 1048576))|1048576|$encsize|t|t" "$rows" "variant 1 rows"
assert_eq "$encsize|65536" "$(ql_psql "SELECT enc_size, enc_segment_size FROM images WHERE id = $ida")" \
    "stored encrypted size and segment size"
img_variant_out "$ida" 1 "$T/a.enc"
assert_eq "$encsize" "$(stat -c %s "$T/a.enc")" "encrypted form length"
assert_eq "QLSTREAM" "$(head -c 8 "$T/a.enc")" "header magic"
assert_eq "01 01 00 01 00 00" "$(od -An -tx1 -j 8 -N 6 "$T/a.enc" | sed 's/^ //')" \
    "version, algorithm, segment size"
assert_eq "$(ql_psql "SELECT encode(enc_nonce_prefix, 'hex') FROM images WHERE id = $ida")" \
    "$(od -An -tx1 -j 14 -N 7 "$T/a.enc" | tr -d ' \n')" "header carries the stored nonce prefix"
cmp -s "$T/a.enc" "$T/a.img" && fail "the encrypted form is the plain image"

# ---- the device's content key: EnvelopedData (ECDH key agreement) that
# openssl opens with the device key
"$WRAP" "$T/quarklinkd.conf" "$ida" "$T/dev1.crt" >"$T/dev1.cms" 2>"$T/wrap.err" ||
    fail "imgkey_wrap: $(cat "$T/wrap.err")"
openssl cms -cmsout -print -inform DER -in "$T/dev1.cms" >"$T/dev1.cms.txt" ||
    fail "the key is not a CMS structure"
assert_file_match 'envelopedData' "$T/dev1.cms.txt"
assert_file_match 'kari|originatorKey' "$T/dev1.cms.txt"
assert_file_match 'dhSinglePass-stdDH-sha256kdf-scheme' "$T/dev1.cms.txt"
assert_file_match 'id-aes256-wrap' "$T/dev1.cms.txt"
openssl cms -decrypt -inform DER -in "$T/dev1.cms" -inkey "$T/dev1.key" -recip "$T/dev1.crt" \
    -out "$T/key.bin" 2>"$T/decrypt.err" || fail "openssl cms -decrypt: $(cat "$T/decrypt.err")"
assert_eq 32 "$(stat -c %s "$T/key.bin")" "a 256-bit content key"
if openssl cms -decrypt -inform DER -in "$T/dev1.cms" -inkey "$T/dev2.key" -recip "$T/dev2.crt" \
    -out "$T/key2.bin" 2>/dev/null && cmp -s "$T/key.bin" "$T/key2.bin"; then
    fail "another device's key opened dev1's envelope"
fi
"$WRAP" "$T/quarklinkd.conf" "$ida" "$T/dev2.crt" >"$T/dev2.cms" 2>"$T/wrap.err" ||
    fail "imgkey_wrap dev2: $(cat "$T/wrap.err")"
openssl cms -decrypt -inform DER -in "$T/dev2.cms" -inkey "$T/dev2.key" -recip "$T/dev2.crt" \
    -out "$T/key2.bin" 2>/dev/null || fail "dev2 cannot open its own envelope"
cmp -s "$T/key.bin" "$T/key2.bin" || fail "dev1 and dev2 got different content keys"

# ---- an independent decoder gets the upload back exactly
python3 "$DECODE" "$T/key.bin" "$T/a.enc" "$T/a.out" 2>"$T/decode.err" ||
    fail "decoder refused the encrypted image: $(cat "$T/decode.err")"
cmp "$T/a.img" "$T/a.out" || fail "decrypted image differs from the upload"

# ---- and refuses every kind of damage
damaged() { # NAME: the decoder must fail on $T/$1.enc and leave no output
    if python3 "$DECODE" "$T/key.bin" "$T/$1.enc" "$T/$1.out" 2>/dev/null; then
        fail "decoder accepted $1"
    fi
    [ ! -e "$T/$1.out" ] || fail "decoder left output for $1"
}
cp "$T/a.enc" "$T/flip.enc"
printf '\x55' | dd of="$T/flip.enc" bs=1 seek=$((24 + 3 * CSEG + 100)) conv=notrunc status=none
damaged flip
cp "$T/a.enc" "$T/tag.enc"
printf '\x00' | dd of="$T/tag.enc" bs=1 seek=$((encsize - 1)) conv=notrunc status=none
cmp -s "$T/tag.enc" "$T/a.enc" && printf '\x01' | dd of="$T/tag.enc" bs=1 seek=$((encsize - 1)) conv=notrunc status=none
damaged tag
head -c $((24 + (nseg - 1) * CSEG)) "$T/a.enc" >"$T/droplast.enc"
damaged droplast
head -c $((encsize - 100)) "$T/a.enc" >"$T/cutlast.enc"
damaged cutlast
head -c $((24 + 10 * CSEG)) "$T/a.enc" >"$T/cut10.enc"
damaged cut10
{ head -c 24 "$T/a.enc"; tail -c +$((24 + CSEG + 1)) "$T/a.enc" | head -c "$CSEG"
  tail -c +25 "$T/a.enc" | head -c "$CSEG"; tail -c +$((24 + 2 * CSEG + 1)) "$T/a.enc"; } >"$T/swap.enc"
assert_eq "$encsize" "$(stat -c %s "$T/swap.enc")" "swapped copy has the same length"
damaged swap
cp "$T/a.enc" "$T/hdr.enc"
printf '\x01' | dd of="$T/hdr.enc" bs=1 seek=22 conv=notrunc status=none
damaged hdr

# ---- the content key is not in the database in clear, nor in the log
keyhex=$(od -An -tx1 "$T/key.bin" | tr -d ' \n')
pg_dump -d "$PG_CONNINFO" >"$T/dump.sql" || hard_error "pg_dump failed"
grep -qi "$keyhex" "$T/dump.sql" && fail "the content key is stored in clear"
grep -qi "$keyhex" "$QL_LOG" && fail "the content key is in the log"
assert_eq 60 "$(ql_psql "SELECT length(enc_key_wrapped) FROM images WHERE id = $ida")" "wrapped key stored"
kek=$(ql_psql "SELECT enc_kek_label FROM images WHERE id = $ida")
assert_eq "$kek" "$(ql_psql "SELECT key_label FROM token_secrets WHERE purpose = 'image-kek'")" \
    "the image names the installation's KEK"
SOFTHSM2_CONF="$T/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
    --token-label quarklink --login --pin "$HSM_PIN" --list-objects --type secrkey >"$T/objs.txt" 2>&1 ||
    fail "pkcs11-tool: $(cat "$T/objs.txt")"
assert_file_match "label: +$kek" "$T/objs.txt"
assert_file_match 'never extractable' "$T/objs.txt"
# a plain image has no key to hand out
head -c 1000 /dev/urandom >"$T/p.img"
img_tus_upload "$op" p1 plain 1 "$T/p.img"
img_sign p1 "$IMG_ID" ''
assert_status 200 "sign a plain image"
"$WRAP" "$T/quarklinkd.conf" "$IMG_ID" "$T/dev1.crt" >/dev/null 2>"$T/wrap.err" &&
    fail "imgkey_wrap gave a key for a plain image"
assert_file_match 'not signed and encrypted' "$T/wrap.err"

# ---- killed mid-way: the second chunk row's insert is held back by a
# transaction of ours that inserted the same key first, so the daemon is
# certainly between rows when it dies.
size2=$((3 * 1048576))
head -c "$size2" /dev/urandom >"$T/k.img"
img_tus_upload "$op" p1 firmware 2.1 "$T/k.img" true
idk=$IMG_ID
uid=$(ql_psql "SELECT upload_id FROM images WHERE id = $idk")
mkfifo "$T/hold"
psql -X -q -v ON_ERROR_STOP=1 -d "$PG_CONNINFO" <"$T/hold" >"$T/hold.out" 2>&1 &
holder=$!
exec 7>"$T/hold"
printf "BEGIN; INSERT INTO image_chunks VALUES ('%s', 1, 1048576, '\\\\x00'); SELECT 'held';\n" "$uid" >&7
wait_until 10 grep -q held "$T/hold.out" || fail "the holding transaction did not start"
curl -sS --max-time 30 --cacert "$T/ca.crt" -o /dev/null -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
    -X POST "$(admin_url "$S/$idk/sign")" 2>/dev/null &
signer=$!
one_row() { [ "$(ql_psql "SELECT count(*) FROM image_chunks WHERE upload_id = '$uid' AND variant = 1")" = 1 ]; }
wait_until 15 one_row || fail "the daemon did not write the first encrypted row"
kill -KILL "$QL_PID"
wait "$QL_PID" 2>/dev/null
QL_PID=
printf 'ROLLBACK;\n' >&7
exec 7>&-
wait "$holder" 2>/dev/null
wait "$signer" 2>/dev/null
assert_eq "uploaded" "$(ql_psql "SELECT status FROM images WHERE id = $idk")" "still unsigned after the crash"
assert_eq "t|t" "$(ql_psql "SELECT signature_der IS NULL, manifest_der IS NULL FROM images WHERE id = $idk")" \
    "nothing of the dead attempt stored"
ql_start
api GET "$S/$idk/signature"
assert_status 404 "no signature after the crash"
img_sign p1 "$idk" ''
assert_status 409 "the dead attempt's lease still holds"
assert_match 'being signed' "$(api_detail "$BODY")" "409 says why"
# Let the lease run out (it would within IMGSIGN_LEASE_S), then sign again.
ql_psql "UPDATE images SET sign_lease_until = now() - interval '1 second' WHERE id = $idk" >/dev/null
img_sign p1 "$idk" ''
assert_status 200 "signable again once the lease has run out"
nseg2=$((size2 / SEG))
enc2=$((24 + size2 + 16 * nseg2))
assert_json "$BODY" encrypted_size "$enc2"
assert_eq "$(((enc2 + 1048575) / 1048576))|$enc2" \
    "$(ql_psql "SELECT count(*), sum(length(data)) FROM image_chunks WHERE upload_id = '$uid' AND variant = 1")" \
    "the encrypted form is complete, nothing of the dead attempt left"
img_variant_out "$idk" 1 "$T/k.enc"
"$WRAP" "$T/quarklinkd.conf" "$idk" "$T/dev1.crt" >"$T/k.cms" 2>"$T/wrap.err" ||
    fail "imgkey_wrap: $(cat "$T/wrap.err")"
openssl cms -decrypt -inform DER -in "$T/k.cms" -inkey "$T/dev1.key" -recip "$T/dev1.crt" \
    -out "$T/k.key" 2>/dev/null || fail "cannot open the re-signed image's key"
python3 "$DECODE" "$T/k.key" "$T/k.enc" "$T/k.out" 2>"$T/decode.err" ||
    fail "decoder refused the re-signed image: $(cat "$T/decode.err")"
cmp "$T/k.img" "$T/k.out" || fail "re-signed image decrypts to something else"
cmp -s "$T/key.bin" "$T/k.key" && fail "two images share a content key"

# ---- deleted while it is being encrypted: the signing fails (503), the
# image and every chunk of it are gone, nothing is left behind.
head -c "$size2" /dev/urandom >"$T/d.img"
img_tus_upload "$op" p1 firmware 3.0 "$T/d.img" true
idd=$IMG_ID
uid=$(ql_psql "SELECT upload_id FROM images WHERE id = $idd")
rm -f "$T/hold" "$T/hold.out"
mkfifo "$T/hold"
psql -X -q -v ON_ERROR_STOP=1 -d "$PG_CONNINFO" <"$T/hold" >"$T/hold.out" 2>&1 &
holder=$!
exec 7>"$T/hold"
printf "BEGIN; INSERT INTO image_chunks VALUES ('%s', 1, 1048576, '\\\\x00'); SELECT 'held';\n" "$uid" >&7
wait_until 10 grep -q held "$T/hold.out" || fail "the holding transaction did not start"
curl -sS --max-time 30 --cacert "$T/ca.crt" -o "$T/d.body" -w '%{http_code}' -b "$T/cookies" \
    -H "X-CSRF-Token: $API_CSRF" -X POST "$(admin_url "$S/$idd/sign")" >"$T/d.status" 2>/dev/null &
signer=$!
wait_until 15 one_row || fail "the daemon did not write the first encrypted row of d"
# Our held row locks the upload against deletion too, so the DELETE waits
# for it like the daemon's next write does; both go on at the ROLLBACK.
curl -sS --max-time 30 --cacert "$T/ca.crt" -o /dev/null -w '%{http_code}' -b "$T/cookies" \
    -H "X-CSRF-Token: $API_CSRF" -X DELETE "$(admin_url "$S/$idd")" >"$T/del.status" 2>/dev/null &
deleter=$!
deleting() { [ "$(ql_psql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                           AND query LIKE '%ql_image_delete%'")" = 1 ]; }
wait_until 15 deleting || fail "the DELETE does not wait for the upload's lock"
printf 'ROLLBACK;\n' >&7
exec 7>&-
wait "$holder" 2>/dev/null
wait "$signer" 2>/dev/null
wait "$deleter" 2>/dev/null
assert_eq 204 "$(cat "$T/del.status")" "delete the image being signed"
assert_eq 503 "$(cat "$T/d.status")" "the signing of a deleted image fails"
assert_eq "0|0" "$(ql_psql "SELECT (SELECT count(*) FROM images WHERE id = $idd),
    (SELECT count(*) FROM image_chunks WHERE upload_id = '$uid')")" "nothing of it left"
img_sign p1 "$idd" ''
assert_status 404 "a deleted image cannot be signed"

api_alive || fail "daemon not answering"
ql_stop
