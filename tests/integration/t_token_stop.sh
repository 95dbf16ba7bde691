#!/bin/bash
# SIGTERM while the token queue is long: every job submitted gets its done
# callback once, also the jobs the stopping pool never started (they are
# handed back cancelled and free what they hold). The token is slow
# (tests/p11slow, one worker) and a burst of enrollments fills its queue;
# behind it wait a project creation through the API and the key load of a
# CA that another process (the admin CLI) created, which the daemon hears
# of by NOTIFY ql_ca (the path tests/lsan.supp once suppressed as
# pki_ca_load). With shutdown_timeout = 1 the loop ends with most of the
# queue not started. The daemon exits 0, says how many token jobs it
# cancelled, and in the sanitizer build (contrib/quickstart.sh's asan
# stage) LSan reports no leak: lib.sh fails the test on any report. A new
# start finds the stores consistent: the cancelled project creation left
# no keys, the CLI's project enrolls, every enrollment answered 200 is on
# record.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl base64 psql jq pkcs11-tool

SLOW=$top_builddir/tests/p11slow/p11slow.so
[ -r "$SLOW" ] || hard_error "$SLOW not built (make check builds it)"
[ -r /usr/lib/softhsm/libsofthsm2.so ] || skip "SoftHSM module not found"
# One worker at a second a signature: the burst alone is N_ENROLL seconds
# of token work, far more than the second the drain waits.
DELAY_MS=1000
N_ENROLL=12
export P11SLOW_MODULE=/usr/lib/softhsm/libsofthsm2.so P11SLOW_DELAY_MS=$DELAY_MS

ql_pki_start pkcs11.module="$SLOW" pkcs11.workers=1 server.shutdown_timeout=1
ql_admin_ok create-project p1 token
ql_admin_ok create-token p1 1000
tok=$ADMIN_OUT
api_admin_session admin

# keys PREFIX: key objects on the token labelled PREFIX*.
keys() {
    SOFTHSM2_CONF="$T/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
        --token-label quarklink --login --pin "$(cat "$T/pin")" --list-objects \
        >"$T/objects.txt" 2>&1 || fail "pkcs11-tool --list-objects: $(cat "$T/objects.txt")"
    grep -cE "^ *label: *$1" "$T/objects.txt"
}

for i in $(seq 1 "$N_ENROLL"); do
    est_key "d$i"
    est_csr "d$i" "d$i"
    est_body "$T/d$i.der" "$T/d$i.b64"
done
enroll_one() {
    curl -sS --max-time 60 --cacert "$T/ca.crt" -u "d$1:$tok" \
        -H 'Content-Type: application/pkcs10' --data-binary "@$T/d$1.b64" \
        -o "$T/d$1.out" -w '%{http_code}' \
        "$(device_url /.well-known/est/p1/simpleenroll)" >"$T/d$1.status" 2>"$T/d$1.curl"
}
queue_jobs() {
    ql_curl "$(admin_url /metrics)" || return 1
    sed -n 's/^quarklink_token_queue_jobs //p' "$BODY"
}
queued() { local n; n=$(queue_jobs) && [ "${n:-0}" -ge "$1" ]; }

pids=()
for i in $(seq 1 "$N_ENROLL"); do enroll_one "$i" & pids+=($!); done
wait_until 30 queued $((N_ENROLL / 2)) || fail "the enrollments never queued on the token worker"
curl -sS --max-time 60 --cacert "$T/ca.crt" -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
    -H 'Content-Type: application/json' --data '{"name":"p2"}' -o "$T/p2.body" \
    -w '%{http_code}' "$(admin_url /api/v1/projects)" >"$T/p2.status" 2>"$T/p2.curl" &
pids+=($!)
# Another process's project: its NOTIFY makes the daemon queue a key load.
ql_admin_ok create-project p3 token
kill -TERM "$QL_PID" || fail "could not signal quarklinkd"
ql_wait_exit 30 || fail "quarklinkd still running 30 s after SIGTERM with shutdown_timeout = 1"
assert_eq 0 "$QL_EXIT" "exit status after a stop with token jobs queued"
wait "${pids[@]}"
n=$(sed -nE 's/.* pkcs11: ([0-9]+) token jobs cancelled at stop$/\1/p' "$QL_LOG" | tail -n 1)
[ "${n:-0}" -ge 1 ] || fail "no token job was cancelled at stop: the queue was not long at SIGTERM"
ok=0
for i in $(seq 1 "$N_ENROLL"); do [ "$(cat "$T/d$i.status")" = 200 ] && ok=$((ok + 1)); done
ql_log "stopped with $n token jobs cancelled; $ok of $N_ENROLL enrollments answered 200"

# ---- a new start: what the stop cut off left the stores consistent.
ql_start
ql_curl "$(admin_url /readyz)"
assert_status 200 "readyz after a stop with token jobs queued"
if [ "$(ql_psql "SELECT count(*) FROM projects WHERE name = 'p2'")" = 1 ]; then
    assert_eq 4 "$(keys "ql-p2-")" "the project created before the stop has its keys"
else
    assert_eq 0 "$(keys "ql-p2-")" "the project creation cancelled at stop made no key"
fi
ql_admin_ok create-token p3 10
est_enroll_ok p3 after -u "after:$ADMIN_OUT"
for i in $(seq 1 "$N_ENROLL"); do
    [ "$(cat "$T/d$i.status")" = 200 ] || continue
    base64 -d <"$T/d$i.out" | openssl pkcs7 -inform DER -print_certs -out "$T/d$i.crt" 2>/dev/null ||
        fail "enrollment d$i: the answer is not a PKCS#7"
    assert_eq 1 "$(ql_psql "SELECT count(*) FROM certificates WHERE serial = '$(cert_serial "$T/d$i.crt")'")" \
        "d$i's certificate, answered before the stop, is on record"
done
ql_stop || fail "quarklinkd exited with $? after the restart"
