#!/bin/bash
# The descriptor limit (issue 10, finding 3), with RLIMIT_NOFILE=48: idle
# connections that exhaust it make accept() fail with EMFILE; the daemon
# then backs off instead of spinning, says so in its log (not on stderr,
# once per interval), and accepts again as soon as descriptors are free.
# With a per-listener cap below the limit, a flood on the pki listener
# leaves the admin listener served.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl openssl python3 prlimit

SLOW="$QL_LIBDIR/slowclient.py"
NOFILE=48
QL_WRAPPER="prlimit --nofile=$NOFILE:$NOFILE -- $QL_WRAPPER"
ql_pki_start server.header_timeout=60 server.request_timeout=60 server.log_level=info

fds() { find "/proc/$QL_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
ticks() { awk '{ print $14 + $15 }' "/proc/$QL_PID/stat"; }
lim=$(awk '/^Max open files/ { print $4 }' "/proc/$QL_PID/limits")
assert_eq "$NOFILE" "$lim" "the daemon runs with RLIMIT_NOFILE=$NOFILE"
base=$(fds)
ql_log "idle daemon: $base descriptors, limit $lim"

# ---- 80 idle connections on the pki listener: more than the limit.
python3 "$SLOW" idle --hold --port "$PKI_PORT" -n 80 --release "$T/release1" --max 40 \
    >"$T/idle1.out" 2>"$T/idle1.err" &
atk=$!
warned() { grep -Eq ' warn pki: accept: Too many open files' "$QL_LOG"; }
wait_until 10 warned || fail "no accept warning in the log at the descriptor limit ($(fds) fds)"
ql_log "at the limit: $(fds) descriptors"
t0=$(ticks) w0=$EPOCHREALTIME
# A client of another listener waits meanwhile (no descriptor for it):
# its 2 s timeout is the window over which the CPU use is measured.
curl -sS --max-time 2 --cacert "$T/ca.crt" -o /dev/null "$(admin_url /healthz)" 2>/dev/null
t1=$(ticks) w1=$EPOCHREALTIME
hz=$(getconf CLK_TCK)
cpu=$(awk -v a="$t0" -v b="$t1" -v x="$w0" -v y="$w1" -v hz="$hz" \
    'BEGIN { printf "%d", 100 * (b - a) / hz / (y - x) }')
ql_log "at the limit: daemon CPU ${cpu}% over $(awk -v x="$w0" -v y="$w1" 'BEGIN { printf "%.1f", y - x }') s"
[ "$cpu" -le 10 ] || fail "the daemon spins at the descriptor limit: ${cpu}% CPU"
n=$(grep -c ' warn pki: accept: ' "$QL_LOG")
[ "$n" -le 2 ] || fail "$n accept warnings logged within a few seconds, expected one per 10 s"
assert_no_match 'accept' "$(cat "$T/quarklinkd.stderr")" "accept errors on stderr"

# ---- the attacker leaves: both listeners serve again at once.
touch "$T/release1"
wait "$atk"
pki_ok() { curl -sSf --max-time 2 -o /dev/null "$(pki_url /pki/ca/root.crt)" 2>/dev/null; }
wait_until 5 pki_ok || fail "pki does not accept again once descriptors are free"
wait_until 5 api_alive || fail "admin does not accept again once descriptors are free"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"

# ---- a cap on the pki listener keeps the flood within it.
ql_config server.header_timeout=60 server.request_timeout=60 server.log_level=info \
    pki.max_connections=10
ql_start
base=$(fds)
python3 "$SLOW" idle --hold --port "$PKI_PORT" -n 60 --release "$T/release2" --max 40 \
    >"$T/idle2.out" 2>"$T/idle2.err" &
atk=$!
capped() { [ "$(fds)" -ge $((base + 10)) ]; }
wait_until 10 capped || fail "the pki connections did not reach the daemon ($(fds) fds)"
api_alive || fail "admin not served while pki is at its cap"
ql_log "pki at its cap of 10: daemon holds $(fds) descriptors (idle $base); admin served"
[ "$(fds)" -le $((base + 10 + 3)) ] || fail "pki holds more than its cap: $(fds) descriptors"
touch "$T/release2"
wait "$atk"
wait_until 5 pki_ok || fail "pki does not accept again after the flood"

ql_alive || fail "quarklinkd died"
ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
