#!/bin/bash
# The web UI's files on the admin listener: content types, ETag and 304,
# the cache policy (no-cache for index.html, immutable for hashed names),
# the security headers (a CSP without inline script), path traversal and
# other paths refused, files read once at start, and the start refused
# with a clear error for a www_dir over www_max_size, with a bad file
# name, or missing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl cmp sha256sum

# The UI as shipped, plus a hashed asset and a vendor file.
W="$T/www"
cp -R "$top_srcdir/www" "$W" || hard_error "copying www/"
chmod -R u+w "$W"
rm -rf "$W/vendor"
mkdir -p "$W/vendor"
printf 'export const hashed = 1;\n' >"$W/assets/chunk.0123abcd.js"
printf '/* vendor */\n' >"$W/vendor/lib.js"
[ -f "$W/index.html" ] || hard_error "www/index.html is missing"

pg_start
hsm_init
tls_make_certs
ql_config admin.www_dir="$W"
ql_start
assert_file_match "info web UI: [0-9]+ files, [0-9]+ bytes from $W" "$QL_LOG"

# header_is NAME EXPECTED
header_is() {
    local v
    v=$(ql_header "$1") || ql__fail_at 1 "no $1 header"
    [ "$v" = "$2" ] || ql__fail_at 1 "$1 is '$v', expected '$2'"
}

# ---- index.html at / and /index.html
ql_curl "$(admin_url /)"
assert_status 200 "GET /"
cmp -s "$BODY" "$W/index.html" || fail "GET / is not www/index.html"
header_is Content-Type "text/html; charset=utf-8"
header_is Cache-Control "no-cache"
header_is X-Content-Type-Options nosniff
header_is Referrer-Policy no-referrer
header_is X-Frame-Options DENY
csp=$(ql_header Content-Security-Policy) || fail "no Content-Security-Policy on /"
assert_match "(^|; )default-src 'none'(;|$)" "$csp" "CSP default-src"
assert_match "(^|; )script-src 'self'(;|$)" "$csp" "CSP script-src"
assert_match "(^|; )style-src 'self'(;|$)" "$csp" "CSP style-src"
assert_match "(^|; )frame-ancestors 'none'(;|$)" "$csp" "CSP frame-ancestors"
assert_match "(^|; )object-src 'none'(;|$)" "$csp" "CSP object-src"
assert_no_match "unsafe-inline|unsafe-eval|\\*" "$csp" "CSP allows inline code or any origin"
etag=$(ql_header ETag) || fail "no ETag on /"
want="\"$(sha256sum "$W/index.html" | cut -c1-32)\""
assert_eq "$want" "$etag" "ETag is the first 128 bits of the file's SHA-256"

ql_curl "$(admin_url /index.html)"
assert_status 200 "GET /index.html"
assert_eq "$etag" "$(ql_header ETag)" "/ and /index.html are the same file"

# The shipped page loads no inline script or style (the CSP would block it).
assert_no_match "<script>|<script [^>]*>[^<]|<style|style=|onclick=|onload=" \
    "$(cat "$W/index.html")" "index.html holds inline script or style"

# ---- conditional requests
ql_curl -H "If-None-Match: $etag" "$(admin_url /)"
assert_status 304 "If-None-Match with the current ETag"
[ ! -s "$BODY" ] || fail "304 has a body"
assert_eq "$etag" "$(ql_header ETag)" "304 repeats the ETag"
header_is Cache-Control "no-cache"
ql_curl -H "If-None-Match: \"0000\", W/$etag" "$(admin_url /)"
assert_status 304 "If-None-Match list with a weak match"
ql_curl -H 'If-None-Match: *' "$(admin_url /)"
assert_status 304 "If-None-Match: *"
ql_curl -H 'If-None-Match: "00000000000000000000000000000000"' "$(admin_url /)"
assert_status 200 "If-None-Match with another ETag"
cmp -s "$BODY" "$W/index.html" || fail "200 after a stale ETag is not the file"

# ---- HEAD: headers, no body
ql_curl -I "$(admin_url /assets/app.css)"
assert_status 200 "HEAD /assets/app.css"
# curl -I writes the headers as its output: anything more is a body.
cmp -s "$BODY" "$HEADERS" || fail "HEAD has a body"
header_is Content-Type "text/css; charset=utf-8"
header_is Content-Length "$(stat -c %s "$W/assets/app.css")"

# ---- content types and cache policy by name
for f in assets/app.js:"text/javascript; charset=utf-8" \
         assets/app.css:"text/css; charset=utf-8" \
         assets/icon.svg:image/svg+xml \
         vendor/lib.js:"text/javascript; charset=utf-8"; do
    p=${f%%:*} type=${f#*:}
    ql_curl "$(admin_url "/$p")"
    assert_status 200 "GET /$p"
    cmp -s "$BODY" "$W/$p" || fail "GET /$p differs from the file"
    header_is Content-Type "$type"
    header_is Cache-Control "no-cache"
    ql_header Content-Security-Policy >/dev/null || fail "no CSP on /$p"
done
ql_curl "$(admin_url /assets/chunk.0123abcd.js)"
assert_status 200 "GET a hashed asset"
header_is Cache-Control "public, max-age=31536000, immutable"

# ---- what is not a file of the UI
for p in /nope.html /assets/ /assets/missing.js /assets/app.js/ /assets//app.js \
         /vendor /etc/passwd /assets/../index.html /assets/../../../../etc/passwd \
         /assets/%2e%2e/%2e%2e/etc/passwd /assets/..%2f..%2fetc%2fpasswd \
         /vendor/..%2f..%2f..%2f..%2fetc/passwd /assets/.hidden /index.html%00.js; do
    ql_curl --path-as-is "$(admin_url "$p")"
    assert_status 404 "GET $p"
    assert_problem 404
    assert_no_match "^root:" "$(cat "$BODY")" "GET $p leaked /etc/passwd"
done
printf 'secret\n' >"$W/assets/.hidden"   # dotfiles were never loaded
ql_curl "$(admin_url /assets/.hidden)"
assert_status 404 "a dotfile"
ql_curl -X POST --data x "$(admin_url /)"
assert_status 405 "POST /"
ql_header Allow | grep -q GET || fail "405 without Allow: GET"
ql_curl "$(admin_url '/?x=1')"
assert_status 400 "a query string on /"
# The API is not shadowed: an unknown API path is still a 404, and a
# session call without credentials still 401.
ql_curl -X POST "$(admin_url /api/v1/nonexistent)"
assert_status 404 "POST to an unknown API path"
ql_curl "$(admin_url /api/v1/session)"
assert_status 401 "GET /api/v1/session without credentials"
# Only the admin listener serves the UI.
ql_curl --cert "$T/client.crt" --key "$T/client.key" "$(device_url /)"
assert_status 404 "GET / on the device listener"
ql_curl "$(pki_url /index.html)"
assert_status 404 "GET /index.html on the pki listener"

# ---- read once at start: a change on disk is not served until a restart
printf '<!doctype html><title>changed</title>\n' >"$W/index.html"
ql_curl "$(admin_url /)"
assert_status 200 "GET / after the file changed"
assert_eq "$etag" "$(ql_header ETag)" "ETag changed without a restart"
assert_no_match "changed" "$(cat "$BODY")" "the changed file was served without a restart"
rm "$W/assets/.hidden"
ql_stop || fail "quarklinkd exited $QL_EXIT"

# ---- start refused: each case checked by -t and by a real start
# refuse DESCRIPTION ERE KEY=VALUE...: both exit non-zero and name the cause.
refuse() {
    local label=$1 re=$2
    shift 2
    ql_config "$@"
    "$QUARKLINKD" -t -c "$T/quarklinkd.conf" >"$T/t.out" 2>"$T/t.err" &&
        fail "$label: quarklinkd -t accepted it"
    assert_file_match "$re" "$T/t.err" "$label: quarklinkd -t"
    : >"$T/quarklinkd.log"
    if "$QUARKLINKD" -f -c "$T/quarklinkd.conf" >"$T/start.out" 2>"$T/start.err" </dev/null; then
        fail "$label: quarklinkd started"
    fi
    assert_file_match "cannot start: web UI: .*$re" "$T/quarklinkd.log" "$label: start"
}
# The files' total in bytes (as www_load counts: regular files only).
sz=$(find "$W/index.html" "$W/assets" "$W/vendor" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')
max=$((sz + 50000))
head -c 40000 /dev/urandom >"$W/assets/a.png"
head -c 40000 /dev/urandom >"$W/vendor/b.png"
refuse "files adding up to more than www_max_size" "exceed www_max_size \\($max bytes\\)" \
    admin.www_dir="$W" admin.www_max_size=$max
rm "$W/assets/a.png" "$W/vendor/b.png"
# One file larger than the bound on its own is named, whenever it is read.
head -c $((max + 1)) /dev/urandom >"$W/assets/big.png"
refuse "one file over www_max_size" "exceed www_max_size .*big.png \\($((max + 1)) bytes\\)" \
    admin.www_dir="$W" admin.www_max_size=$max
rm "$W/assets/big.png"
# Exactly at the bound is fine.
ql_config admin.www_dir="$W" admin.www_max_size="$sz"
"$QUARKLINKD" -t -c "$T/quarklinkd.conf" >"$T/t.out" 2>"$T/t.err" ||
    fail "www_max_size equal to the files' total refused: $(cat "$T/t.err")"
touch "$W/assets/bad name.js"
refuse "a file name with a space" "bad name.js: a file name of the web UI may only hold" \
    admin.www_dir="$W"
rm "$W/assets/bad name.js"
refuse "a missing www_dir" "$T/nowhere/index.html: No such file or directory" \
    admin.www_dir="$T/nowhere"
chmod 000 "$W/assets/app.css"
if [ "$(id -u)" != 0 ]; then
    refuse "an unreadable file" "app.css: Permission denied" admin.www_dir="$W"
fi
chmod 644 "$W/assets/app.css"

# ---- www_dir empty: no UI, an explicit 404
ql_config admin.www_dir=
ql_start
ql_curl "$(admin_url /)"
assert_status 404 "GET / with www_dir empty"
assert_match "web UI is not installed" "$(api_detail "$BODY")"
ql_stop || fail "quarklinkd exited $QL_EXIT"
ql_log "UI of $sz bytes served from memory; refusals and traversal checked"
