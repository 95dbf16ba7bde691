#!/bin/bash
# ql-agent against a hostile device API (hostile_server.py: HTTPS with a
# certificate under the pinned root, answers no honest server gives): a
# redirect to another host, an oversized document, malformed JSON,
# duplicate keys, an embedded NUL, an image URL on another host or
# climbing out of the API, a download cut half way (then resumed with
# Range), and a server outside the pinned root.  Each is one clear line
# and a distinct exit code; the installed version never changes until the
# genuine update is installed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=agent_lib.sh
. "$(dirname "$0")/agent_lib.sh"
ql_require openssl python3 jq base64 sha256sum
[ -x "$QL_AGENT" ] || skip "ql-agent not built: $QL_AGENT"
tls_make_certs
H="$T/hostile"
mkdir -p "$H" "$T/h"
chmod 700 "$T/h"

# A project CA and a device under the test CA, and a code-signing
# certificate of the same project (O=hostile).
w="$T/pki-work"
cat >"$w/pca.ext" <<'EOF2'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
EOF2
cat >"$w/cs.ext" <<'EOF2'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
EOF2
issue() { # NAME ISSUER EXT SUBJECT
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/$1.key" 2>/dev/null &&
    openssl req -new -key "$w/$1.key" -subj "$4" -out "$w/$1.csr" &&
    openssl x509 -req -in "$w/$1.csr" -CA "$w/$2.crt" -CAkey "$w/$2.key" -days 2 \
        -extfile "$w/$3.ext" -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
        -out "$w/$1.crt" 2>/dev/null
}
issue pca ca pca "/CN=hostile CA/O=hostile" || hard_error "project CA"
issue dev pca client "/CN=hostiledevice/O=hostile" || hard_error "device certificate"
issue cs ca cs "/CN=hostile code signing/O=hostile" || hard_error "code-signing certificate"
cp "$w/dev.key" "$T/h/key.pem" && chmod 600 "$T/h/key.pem"
cp "$w/dev.crt" "$T/h/cert.pem"
cp "$w/pca.crt" "$T/h/chain.pem"

# The genuine update: image, manifest and detached signature.
head -c $((512 * 1024)) /dev/urandom >"$H/image.bin"
size=$(stat -c %s "$H/image.bin")
sha=$(sha256sum "$H/image.bin" | cut -d' ' -f1)
jq -cn --argjson s "$size" --arg h "$sha" --arg e "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" \
    '{format: 1, project: "hostile", image_id: 1, name: "os", version: "2.0", size: $s,
      sha256: $h, created: "2026-01-01T00:00:00Z", expires: $e, hardware: ["hw-a"],
      encrypted: false}' >"$H/manifest.json"
openssl cms -sign -binary -nodetach -md sha256 -in "$H/manifest.json" -signer "$w/cs.crt" \
    -inkey "$w/cs.key" -outform DER -out "$H/manifest.der" || hard_error "manifest signature"
openssl cms -sign -binary -md sha256 -in "$H/image.bin" -signer "$w/cs.crt" -inkey "$w/cs.key" \
    -outform DER -out "$H/image.sig" || hard_error "image signature"
doc() { # IMAGE_URL
    jq -cn --argjson s "$size" --arg h "$sha" --arg m "$(base64 -w0 "$H/manifest.der")" --arg u "$1" \
        '{deployment: 1, image: {id: 1, name: "os", version: "2.0", size: $s, sha256: $h,
          encrypted: false}, manifest: $m, image_url: $u,
          signature_url: "/device/v1/images/1/signature"}'
}
doc /device/v1/images/1 >"$H/update-good.json"
cp "$H/update-good.json" "$H/update-truncate.json"
doc https://evil.example/device/v1/images/1 >"$H/update-evilurl.json"
doc /device/v1/images/../../../etc/passwd >"$H/update-climb.json"

cp "$H/image.bin" "$H/image.served"
echo good >"$H/MODE"
python3 "$QL_LIBDIR/hostile_server.py" "$T/server.crt" "$T/server.key" "$H" >"$H/port" 2>"$H/server.err" &
spid=$!
trap 'rc=$?; kill "$spid" 2>/dev/null; (exit $rc); ql__cleanup' EXIT
wait_until 10 test -s "$H/port" || hard_error "hostile server did not start: $(cat "$H/server.err")"
DEVICE_PORT=$(cat "$H/port")

cat >"$T/hook.sh" <<'EOS'
#!/bin/sh
sha256sum <"$1" | cut -d' ' -f1 >"$T/hook.sha"
printf '%s\n' "$QL_VERSION" >"$T/slot"
EOS
chmod 755 "$T/hook.sh"
agent_conf h root_ca="$T/ca.crt" project=hostile
installed() { jq -r 'if (.installed_version // "") == "" then "none" else .installed_version end' "$T/h/state.json" 2>/dev/null || echo none; }

hostile() { # MODE EXIT ERE
    echo "$1" >"$H/MODE"
    agent h run --once
    assert_agent_rc "$2" "$1"
    assert_one_line_error "$3"
    assert_eq none "$(installed)" "$1: nothing installed"
    [ -e "$T/slot" ] && fail "$1: the hook ran"
    return 0
}
: >"$H/requests.log"
hostile redirect 9 'HTTP 302'
assert_eq 1 "$(wc -l <"$H/requests.log")" "the redirect was not followed"
hostile huge 9 'larger than allowed'
hostile badjson 9 'invalid JSON'
hostile dupkeys 9 'distinct keys'
hostile nul 9 'not a JSON document'
hostile evilurl 9 'image_url'
hostile climb 9 'image_url'

# A download cut half way: exit 3, the part kept; then resumed and installed.
: >"$H/requests.log"
hostile truncate 3 'will resume'
part=$(stat -c %s "$T/h/dl-1")
[ "$part" -gt 0 ] && [ "$part" -lt "$size" ] || fail "partial download of $part bytes kept"
echo good >"$H/MODE"
agent h run --once
assert_agent_rc 0 "resumed download installed"
assert_eq 2.0 "$(installed)" "2.0 installed after the resume"
assert_eq 2.0 "$(cat "$T/slot")" "the hook ran"
assert_file_match "^GET /device/v1/images/1 bytes=$part-\$" "$H/requests.log" "resumed with Range"
assert_file_match '"state":"installed"' "$H/reports.log" "installed reported"

# ---- an encrypted image (quarklink-image(5), made by stream_encrypt.py):
# decrypted segment by segment, checked, installed; a flipped byte in one
# segment is refused before anything is installed.
head -c $((300 * 1024 + 7)) /dev/urandom >"$H/plain3.bin"
head -c 32 /dev/urandom >"$H/content.key"
python3 "$QL_LIBDIR/stream_encrypt.py" "$H/content.key" "$H/plain3.bin" "$H/enc3.bin" ||
    hard_error "stream_encrypt.py failed"
openssl cms -encrypt -binary -aes256 -in "$H/content.key" -recip "$T/h/cert.pem" \
    -outform DER -out "$H/key.cms" || hard_error "wrapping the content key"
psize=$(stat -c %s "$H/plain3.bin")
esize=$(stat -c %s "$H/enc3.bin")
[ "$esize" = $((24 + psize + 16 * 5)) ] || fail "encrypted form is $esize bytes"
psha=$(sha256sum "$H/plain3.bin" | cut -d' ' -f1)
jq -cn --argjson s "$psize" --argjson es "$esize" --arg h "$psha" \
    --arg e "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" \
    '{format: 1, project: "hostile", image_id: 1, name: "os", version: "3.0", size: $s,
      sha256: $h, created: "2026-01-01T00:00:00Z", expires: $e, hardware: ["hw-a"],
      encrypted: true, encrypted_size: $es, segment_size: 65536}' >"$H/manifest3.json"
openssl cms -sign -binary -nodetach -md sha256 -in "$H/manifest3.json" -signer "$w/cs.crt" \
    -inkey "$w/cs.key" -outform DER -out "$H/manifest3.der" || hard_error "manifest 3 signature"
openssl cms -sign -binary -md sha256 -in "$H/plain3.bin" -signer "$w/cs.crt" -inkey "$w/cs.key" \
    -outform DER -out "$H/image.sig" || hard_error "image 3 signature"
jq -cn --argjson s "$psize" --argjson es "$esize" --arg h "$psha" \
    --arg m "$(base64 -w0 "$H/manifest3.der")" --arg k "$(base64 -w0 "$H/key.cms")" \
    '{deployment: 2, image: {id: 1, name: "os", version: "3.0", size: $s, sha256: $h,
      encrypted: true, encrypted_size: $es}, manifest: $m, key: $k,
      image_url: "/device/v1/images/1", signature_url: "/device/v1/images/1/signature"}' \
    >"$H/update-enc.json"
# One flipped byte in segment 3.
cp "$H/enc3.bin" "$H/image.served"
printf '\x55' | dd of="$H/image.served" bs=1 seek=$((24 + 3 * 65552 + 100)) conv=notrunc 2>/dev/null
echo enc >"$H/MODE"
agent h run --once
assert_agent_rc 10 "a tampered encrypted image"
assert_one_line_error 'segment 3 does not authenticate'
assert_eq 2.0 "$(installed)" "tampered encrypted image: version unchanged"
assert_eq 2.0 "$(cat "$T/slot")" "tampered encrypted image: slot unchanged"
[ -z "$(find "$T/h" -name 'img-*')" ] || fail "a partial decryption was left for the hook"
cp "$H/enc3.bin" "$H/image.served"
agent h run --once
assert_agent_rc 0 "the encrypted image installs"
assert_eq 3.0 "$(installed)" "3.0 installed"
assert_eq 3.0 "$(cat "$T/slot")" "the hook installed 3.0"
assert_eq "$psha" "$(cat "$T/hook.sha")" "the hook got the decrypted image"
assert_file_match '"state":"failed".*segment 3' "$H/reports.log" "the tampered one was reported"

# The same server, not under the pinned root.
agent_conf h root_ca="$T/rogue-ca.crt" project=hostile
agent h run --once
assert_agent_rc 4 "server outside the pinned root"
assert_one_line_error 'not trusted'

# ---- the daemon loop backs off while the server is unreachable, and a
# SIGTERM ends it with exit 0 and the failure recorded.
kill "$spid"
wait "$spid" 2>/dev/null
agent_conf h root_ca="$T/ca.crt" project=hostile retry_max=2 poll_interval=1
"$QL_AGENT" -c "$T/h.conf" run >"$T/loop.out" 2>"$T/loop.err" &
lpid=$!
retried() { [ "$(grep -c 'retrying in' "$T/loop.err")" -ge 3 ]; }
wait_until 20 retried ||
    fail "the loop did not retry: $(cat "$T/loop.err")"
assert_eq 0 "$(grep 'retrying in' "$T/loop.err" | grep -cvE 'retrying in [12] s$')" \
    "every back-off is within retry_max"
kill -TERM "$lpid"
wait_until 10 ql__exited "$lpid" || fail "the loop ignored SIGTERM"
wait "$lpid"
assert_eq 0 "$?" "SIGTERM ends run with exit 0"
assert_match '^poll failed: server unreachable' "$(jq -r .last_result "$T/h/state.json")" \
    "the unreachable server is the last result"
assert_eq 3.0 "$(installed)" "the installed version stays"
