#!/bin/bash
# Slow and non-reading clients (issue 10, finding 3): a header trickled a
# byte at a time is closed at header_timeout, a trickled body at
# body_timeout, other clients are served meanwhile, and clients that
# pipeline a large CRL and never read hold at most max_output_buffer.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl python3

SLOW="$QL_LIBDIR/slowclient.py"
# The memory bound below is about live memory. Under AddressSanitizer every
# freed block waits in a quarantine (256 MB by default), so RSS would count
# all the reply buffers ever freed: keep the quarantine small for this
# daemon. Other builds ignore ASAN_OPTIONS.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
export ASAN_OPTIONS
ql_pki_start server.header_timeout=3 server.body_timeout=3 server.request_timeout=3 \
    server.max_output_buffer=4M server.log_level=info

fds() { find "/proc/$QL_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$QL_PID/status"; }
base_fds=$(fds)

# ---- slowloris on the admin listener (TLS): a header byte every 0.5 s.
python3 "$SLOW" header --port "$ADMIN_PORT" --tls "$T/ca.crt" -n 100 --every 0.5 \
    --max 15 --path /healthz >"$T/header.out" 2>"$T/header.err" &
hdr=$!
held() { [ "$(fds)" -ge $((base_fds + 80)) ]; }
wait_until 10 held || fail "slow-header connections never reached the daemon ($(fds) fds)"
ql_log "slowloris: daemon holds $(fds) descriptors (idle: $base_fds)"
# Others are served while the attack lasts.
ql_curl "$(admin_url /healthz)"
assert_status 200 "healthz during the slowloris"
ql_curl "$(pki_url /pki/ca/root.crt)"
assert_status 200 "pki during the slowloris"
wait "$hdr" || fail "slowclient header failed: $(cat "$T/header.err")"
# all_closed_within WHAT FILE N MIN MAX: slowclient's summary in FILE says
# all N connections were closed, the last after MIN..MAX seconds.
all_closed_within() {
    local out max
    out=$(cat "$2")
    ql_log "$1: $out"
    assert_match "^opened=$3 closed=$3 open=0 " "$out" "$1: every connection closed"
    max=$(sed -nE 's/.*max_close_s=([0-9.]+).*/\1/p' <<<"$out")
    awk -v m="$max" -v a="$4" -v b="$5" 'BEGIN { exit !(m >= a && m <= b) }' ||
        ql__fail_at 1 "$1: closed after $max s, expected $4-$5 s"
}
all_closed_within slowloris "$T/header.out" 100 2.5 4.5	# header_timeout=3

# ---- a body trickled a byte at a time (header complete at once).
python3 "$SLOW" body --port "$PKI_PORT" -n 50 --every 0.5 --max 15 --path /pki/ocsp \
    >"$T/body.out" 2>"$T/body.err" || fail "slowclient body failed: $(cat "$T/body.err")"
all_closed_within "slow body" "$T/body.out" 50 2.5 5.5	# body_timeout=3
back() { [ "$(fds)" -le $((base_fds + 2)) ]; }
wait_until 5 back || fail "descriptors not released: $(fds), idle $base_fds"

# ---- clients that pipeline a ~400 KB CRL and never read.  8000 revoked
# certificates of the root CA make the CRL big.
ql_psql "INSERT INTO certificates (serial, ca_id, subject, spki_sha256, not_before,
             not_after, cert_der, revoked_at, revocation_reason)
         SELECT md5(i::text), (SELECT id FROM cas WHERE kind = 'root'), 'x', '\\x00',
                now(), now() + interval '1 day', '\\x00', now(), 1
         FROM generate_series(1, 8000) i" >/dev/null || hard_error "inserting revoked rows"
ql_curl "$(pki_url /pki/crl/root.crl)"
assert_status 200 "GET the root CRL"
crl=$(stat -c %s "$BODY")
[ "$crl" -ge 200000 ] || hard_error "CRL is only $crl bytes"
rss0=$(rss_kb)
start=$EPOCHREALTIME
python3 "$SLOW" noread --port "$PKI_PORT" -n 100 --requests 20 --path /pki/crl/root.crl \
    --release "$T/release" --max 20 >"$T/noread.out" 2>"$T/noread.err" &
nr=$!
holding() { grep -q '^holding 100$' "$T/noread.out"; }
wait_until 10 holding || fail "non-reading clients did not connect: $(cat "$T/noread.err")"
# Peak memory while all 100 are open (VmHWM would include earlier peaks).
peak=0
sample() { local r; r=$(rss_kb); [ "$r" -gt "$peak" ] && peak=$r; [ "$(fds)" -ge $((base_fds + 100)) ]; }
wait_until 5 sample || true
ql_curl "$(pki_url /pki/ca/root.crt)"
assert_status 200 "pki serves while 100 clients do not read"
ql_curl "$(admin_url /healthz)"
assert_status 200 "admin serves while 100 clients do not read"
sample
growth=$(( (peak - rss0) / 1024 ))
ql_log "non-reading: CRL $crl bytes, 100 clients x 20 pipelined: RSS ${rss0} kB -> peak ${peak} kB (+${growth} MB)"
[ "$growth" -le 24 ] ||
    fail "RSS grew by $growth MB for 100 non-reading clients (max_output_buffer=4M)"
# Closed by the write timeout (request_timeout=3) while they still do not read.
closed() { [ "$(fds)" -le $((base_fds + 2)) ]; }
wait_until 10 closed || fail "non-reading connections still held: $(fds) fds"
ql_log "non-reading: all closed after $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
touch "$T/release"
wait "$nr"
refused=$(grep -c 'info request id=[0-9a-f]* pki GET /pki/crl/root.crl 503 ' "$QL_LOG")
ql_log "non-reading: $refused CRL requests refused with 503 while the budget was full"
[ "$refused" -ge 1 ] || fail "no CRL request was refused although 100 x $crl bytes exceed 4M"

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
