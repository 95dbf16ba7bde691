#!/bin/bash
# tus-js-client (npm) under Node against the admin listener: a 200 MiB
# image in one PATCH (chunkSize 200 MiB, the test daemon's max chunk), and
# another in 5 MiB chunks with quarklinkd killed (SIGKILL) and restarted in
# between, which the client must ride out by asking HEAD and resuming.
# Each image is downloaded back and its SHA-256 compared.
# tus-js-client comes from package.json (npm ci, run by contrib/quickstart.sh;
# QL_NODE_MODULES or node_modules of the tree): without it the test fails.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl psql jq sha256sum node

MODS=
for d in "${QL_NODE_MODULES:-}" "$top_srcdir/node_modules"; do
    if [ -n "$d" ] && [ -f "$d/tus-js-client/package.json" ]; then
        MODS=$d
        break
    fi
done
[ -n "$MODS" ] || fail "tus-js-client not installed: run npm ci (contrib/quickstart.sh does) or set QL_NODE_MODULES"

MIB=$((1 << 20))
ql_pki_start images.max_chunk_size=200M images.max_uploads=2
ql_admin_ok create-project p1 token
TOK=$(api_token_new operator p1)
export NODE_EXTRA_CA_CERTS=$T/ca.crt

cat >"$T/up.cjs" <<'JS'
// node up.cjs MODULES ENDPOINT TOKEN FILE CHUNK NAME VERSION PROGRESS
const path = require("path"), fs = require("fs");
const [, , mods, endpoint, token, file, chunk, name, version, progress] = process.argv;
const tus = require(path.join(mods, "tus-js-client"));
const size = fs.statSync(file).size;
const upload = new tus.Upload(fs.createReadStream(file), {
    endpoint,
    chunkSize: Number(chunk),
    uploadSize: size,
    // long enough to ride out a daemon restart
    retryDelays: Array(40).fill(500),
    headers: { Authorization: "Bearer " + token },
    metadata: { project: "p1", name, version, filename: path.basename(file) },
    onChunkComplete: (n, accepted) => fs.appendFileSync(progress, accepted + "\n"),
    onError: (e) => { console.error("upload failed: " + e); process.exit(1); },
    onSuccess: () => { console.log(upload.url); process.exit(0); },
});
upload.start();
JS
data() {
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv "$2" \
        </dev/zero 2>/dev/null | head -c $((200 * MIB)) >"$1"
}
# check_image URL FILE: the upload became an image with the file's bytes.
check_image() {
    local id sha
    id=$(ql_psql "SELECT i.id FROM images i WHERE i.upload_id = '${1##*/}'")
    [ -n "$id" ] || fail "upload $1 did not become an image"
    sha=$(sha256sum "$2" | cut -d' ' -f1)
    api_bearer "$TOK" GET "/api/v1/projects/p1/images/$id"
    assert_json "$BODY" sha256 "$sha" "SHA-256 of the image"
    assert_json "$BODY" size $((200 * MIB))
    curl -sS --cacert "$T/ca.crt" -H "Authorization: Bearer $TOK" \
        "$(admin_url "/api/v1/projects/p1/images/$id/content")" | sha256sum >"$T/down.sha"
    assert_eq "$sha" "$(cut -d' ' -f1 "$T/down.sha")" "downloaded bytes"
}

# ---- 200 MiB in one PATCH.
data "$T/one" 00000000000000000000000000000001
node "$T/up.cjs" "$MODS" "$(admin_url /api/v1/uploads/)" "$TOK" "$T/one" $((200 * MIB)) \
    fw 1.0 "$T/one.progress" >"$T/one.out" 2>"$T/one.err" ||
    fail "tus-js-client: $(cat "$T/one.err")"
url=$(tail -n 1 "$T/one.out")
assert_match "/api/v1/uploads/[a-z2-7]{26}$" "$url" "upload URL"
assert_eq 1 "$(grep -c . "$T/one.progress")" "one PATCH"
n=$(grep -c "admin PATCH /api/v1/uploads/${url##*/} 204 " "$QL_LOG")
assert_eq 1 "$n" "the daemon saw one PATCH"
check_image "$url" "$T/one"
rm -f "$T/one"

# ---- 5 MiB chunks, quarklinkd killed after the third and restarted.
data "$T/five" 00000000000000000000000000000002
node "$T/up.cjs" "$MODS" "$(admin_url /api/v1/uploads/)" "$TOK" "$T/five" $((5 * MIB)) \
    fw 2.0 "$T/five.progress" >"$T/five.out" 2>"$T/five.err" &
client=$!
three() { [ -f "$T/five.progress" ] && [ "$(grep -c . "$T/five.progress")" -ge 3 ]; }
wait_until 60 three || fail "tus-js-client did not get three chunks through"
kill -KILL "$QL_PID"
wait "$QL_PID" 2>/dev/null
QL_PID=
# the same port again, where the client will knock
ql_config images.max_chunk_size=200M images.max_uploads=2 "admin.listen=127.0.0.1:$ADMIN_PORT"
ql_start
wait "$client" || fail "tus-js-client did not finish after the restart: $(cat "$T/five.err")"
url=$(tail -n 1 "$T/five.out")
[ "$(tail -n 1 "$T/five.progress")" = $((200 * MIB)) ] || fail "the client did not finish"
heads=$(grep -c "admin HEAD /api/v1/uploads/${url##*/} 200 " "$QL_LOG")
[ "$heads" -ge 1 ] || fail "the client did not ask HEAD where to resume"
check_image "$url" "$T/five"
ql_stop || fail "quarklinkd did not exit cleanly"
