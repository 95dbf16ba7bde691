#!/bin/bash
# HTTP/1.1 framing (issue 10, finding 4), with raw sockets on the pki
# listener: a repeated Content-Length, Content-Length beside
# Transfer-Encoding and an unknown transfer coding are 400 and close the
# connection (RFC 9112 6.3: what follows is never read as a request); an
# oversized Content-Length is 413 at once, with "Expect: 100-continue" too
# and for 2^63-1, instead of waiting for a body; a malformed chunked body is
# 400 (over TLS too), a well-framed one is answered.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl python3

SLOW="$QL_LIBDIR/slowclient.py"
ql_pki_start server.max_body_size=1K server.request_timeout=30

# raw NAME: send $T/NAME.req to the pki listener, the reply (until the daemon
# closes, at most 5 s) in $T/NAME.out; STATUS = its first status code.
raw() {
    python3 "$SLOW" raw --port "${RAW_PORT:-$PKI_PORT}" ${RAW_TLS:+--tls "$RAW_TLS"} --max 5 \
        <"$T/$1.req" >"$T/$1.out" 2>"$T/$1.err" ||
        hard_error "raw client failed: $(cat "$T/$1.err")"
    STATUS=$(tr -d '\r' <"$T/$1.out" | sed -nE '1s|^HTTP/1\.[01] ([0-9]{3}).*|\1|p')
}
# refused NAME CODE DETAIL_ERE: one problem+json reply CODE naming the
# problem, the connection closed after it, nothing else answered.
refused() {
    local f="$T/$1.out" body
    assert_eq "$2" "$STATUS" "$1: status"
    assert_no_match '^TIMEOUT$' "$(cat "$f")" "$1: the daemon kept the connection open"
    assert_eq 1 "$(grep -c '^HTTP/1' "$f")" "$1: number of replies"
    assert_match '^Content-Type: application/problem\+json' "$(tr -d '\r' <"$f")" "$1: problem+json"
    assert_match '^Connection: close' "$(tr -d '\r' <"$f")" "$1: Connection: close"
    body=$(tr -d '\r' <"$f" | sed '1,/^$/d')
    assert_match "\"detail\":\"[^\"]*($3)" "$body" "$1: detail"
}
hdr=$'Host: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n'
next=$'GET /pki/ca/root.crt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

# Two different lengths; a second request hides behind the shorter one.
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 5\r\nContent-Length: 30\r\n\r\nhello%s' \
    "$hdr" "$next" >"$T/two-lengths.req"
raw two-lengths
refused two-lengths 400 'Content-Length'

# Content-Length beside Transfer-Encoding: chunked.
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n%s' \
    "$hdr" "$next" >"$T/cl-te.req"
raw cl-te
# evhttp refuses this one itself, with its own HTML 400 (like its 413s).
assert_eq 400 "$STATUS" "Content-Length with Transfer-Encoding"
assert_eq 1 "$(grep -c '^HTTP/1' "$T/cl-te.out")" "cl-te: number of replies"
assert_no_match '^TIMEOUT$' "$(cat "$T/cl-te.out")" "cl-te: the daemon kept the connection open"

# A transfer coding evhttp does not decode (it would fall back to no body).
printf 'POST /pki/ocsp HTTP/1.1\r\n%sTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n%s' \
    "$hdr" "$next" >"$T/te-gzip.req"
raw te-gzip
refused te-gzip 400 'Transfer-Encoding'

# Chunked bodies: evhttp 2.1 answers a malformed chunk size with 413, as
# if the body were too long; the connection layer refuses it with 400
# before evhttp reads it. A bad size, a chunk extension (evhttp cannot
# decode one), data not followed by CRLF, and the same over TLS.
chunked() {	# NAME BODY: a chunked POST carrying BODY as it is
    printf 'POST /pki/ocsp HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n%s' \
        "$hdr" "$2" >"$T/$1.req"
}
chunked chunk-size $'zz\r\nhello\r\n0\r\n\r\n'
raw chunk-size
refused chunk-size 400 'chunk size'
chunked chunk-ext $'5;name=value\r\nhello\r\n0\r\n\r\n'
raw chunk-ext
refused chunk-ext 400 'chunk size'
chunked chunk-crlf $'5\r\nhelloXX0\r\n\r\n'
raw chunk-crlf
refused chunk-crlf 400 'chunk'
chunked chunk-digits $'00000000000000005\r\nhello\r\n0\r\n\r\n'
raw chunk-digits
refused chunk-digits 400 'chunk size'
chunked chunk-tls $'5\r\nhello\r\nq\r\n\r\n'
RAW_PORT=$ADMIN_PORT RAW_TLS=$T/ca.crt raw chunk-tls
refused chunk-tls 400 'chunk size'
# Well framed but longer than max_body_size (1K): evhttp's 413 stays.
chunked chunk-long "$(printf '801\r\n%02049d\r\n0\r\n\r\n' 0)"
raw chunk-long
assert_eq 413 "$STATUS" "a chunked body above max_body_size"
# Well framed, in chunks, with trailer and mixed-case hex: answered, and
# the pipelined request behind it too.
chunked chunk-ok $'2\r\nhe\r\nA\r\nllo, world\r\n0\r\nX-Trailer: 1\r\n\r\n'"${next/$'\r\n\r\n'/$'\r\nConnection: close\r\n\r\n'}"
raw chunk-ok
statuses=$(grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] ' "$T/chunk-ok.out" | tr -d '\n')
assert_eq 'HTTP/1.1 200 HTTP/1.1 200 ' "$statuses" "a well-framed chunked request and the one behind it"

# Expect: 100-continue above max_body_size: 413, no "100 Continue".
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n' \
    "$hdr" >"$T/expect-big.req"
raw expect-big
assert_eq 413 "$STATUS" "Expect: 100-continue with a 10 MB body"
assert_no_match '100 Continue' "$(cat "$T/expect-big.out")" "no 100 Continue for a refused body"
assert_no_match '^TIMEOUT$' "$(cat "$T/expect-big.out")" "Expect: 100-continue: connection kept open"

# The largest Content-Length there is: 413 at once, not a wait for 2^63 bytes.
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 9223372036854775807\r\n\r\nabc' \
    "$hdr" >"$T/huge.req"
raw huge
assert_eq 413 "$STATUS" "Content-Length: 2^63-1"
assert_no_match '^TIMEOUT$' "$(cat "$T/huge.out")" "Content-Length 2^63-1: connection kept open"

# Within the limit, Expect: 100-continue gets its 100 Continue.
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n' \
    "$hdr" >"$T/expect-ok.req"
raw expect-ok
assert_eq 100 "$STATUS" "Expect: 100-continue within max_body_size"

# A well-framed pipeline still gets both answers.
printf 'POST /pki/ocsp HTTP/1.1\r\n%sContent-Length: 5\r\n\r\nhello%s' "$hdr" \
    "${next/$'\r\n\r\n'/$'\r\nConnection: close\r\n\r\n'}" >"$T/pipeline.req"
raw pipeline
statuses=$(grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] ' "$T/pipeline.out" | tr -d '\n')
assert_eq 'HTTP/1.1 200 HTTP/1.1 200 ' "$statuses" "two replies for two well-framed requests"

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
