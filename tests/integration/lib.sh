# shellcheck shell=bash
# Integration test harness for quarklinkd.  Sourced by every tests/integration/t_*.sh.
#
# Each test is one program run by automake's parallel test driver:
# exit 0 = PASS, 1 = FAIL, 77 = SKIP, 99 = hard error (broken setup).
#
# Environment (set by the Makefile, defaulted here so a test can be run by hand):
#   top_srcdir, top_builddir   absolute paths of the source and build trees
#   QUARKLINKD                 the daemon binary ($top_builddir/src/quarklinkd)
#   QL_KEEP=1                  keep the per-test temp dir $T after the test
#   QL_WRAPPER                 command prefix for the daemon, e.g.
#                              "valgrind --error-exitcode=99 --leak-check=full"
#   QL_TIMEOUT_SCALE           multiply every wait_until timeout (e.g. 5 under valgrind)
#   QL_PGBIN                   PostgreSQL binaries (/usr/lib/postgresql/15/bin)
#
# Rules for tests: never sleep to synchronise; poll a real condition with
# wait_until.  Every test asserts real outcomes.

set -u -o pipefail

QL_TEST=$(basename "$0" .sh)
QL_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$QL_LIBDIR/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${QUARKLINKD:=$top_builddir/src/quarklinkd}"
: "${QL_PGBIN:=/usr/lib/postgresql/15/bin}"
: "${QL_TIMEOUT_SCALE:=1}"
: "${QL_WRAPPER:=}"
export top_srcdir top_builddir QUARKLINKD

# Keep the environment from leaking libpq/SoftHSM settings into the daemon:
# everything it needs must come from its configuration file.
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD SOFTHSM2_CONF

QL_PID=
QL_EXIT=
QL_LOG=
PG_PORT=
PG_CONNINFO=
ADMIN_PORT=
DEVICE_PORT=
PKI_PORT=
HTTP_STATUS=
CURL_RC=

# ---------------------------------------------------------------- reporting

# ql__where DEPTH: "file:line" of the caller DEPTH frames above the helper.
ql__where() {
    local d=$(( $1 + 1 ))
    printf '%s:%s' "$(basename "${BASH_SOURCE[$d]:-?}")" "${BASH_LINENO[$((d - 1))]:-?}"
}

ql_log() { printf '# %s: %s\n' "$QL_TEST" "$*"; }

# fail MSG...: the test failed (exit 1).
fail() {
    printf 'FAIL %s: %s\n' "$(ql__where 1)" "$*"
    exit 1
}

# ql__fail_at DEPTH MSG...: fail, naming the frame DEPTH above the caller.
ql__fail_at() {
    local depth=$1; shift
    printf 'FAIL %s: %s\n' "$(ql__where $((depth + 1)))" "$*"
    exit 1
}

# hard_error MSG...: the test could not be set up (exit 99).
hard_error() {
    printf 'ERROR %s: %s\n' "$(ql__where 1)" "$*"
    exit 99
}

# skip MSG...: the test cannot run here (exit 77).
skip() {
    printf 'SKIP %s: %s\n' "$QL_TEST" "$*"
    exit 77
}

# ql_require CMD...: skip unless every command exists.
ql_require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "required tool '$c' not found"
    done
}

# ql__run DESCRIPTION CMD...: run a setup step, hard error (99) with its output if it fails.
ql__run() {
    local what=$1; shift
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out"
        printf 'ERROR %s: setup step failed: %s\n' "$(ql__where 1)" "$what"
        exit 99
    fi
}

# ---------------------------------------------------------------- assertions

# assert_eq EXPECTED ACTUAL [MSG]
assert_eq() {
    [ "$1" = "$2" ] && return 0
    ql__fail_at 1 "${3:-values differ}: expected '$1', got '$2'"
}

# assert_ne UNEXPECTED ACTUAL [MSG]
assert_ne() {
    [ "$1" != "$2" ] && return 0
    ql__fail_at 1 "${3:-values equal}: did not expect '$1'"
}

# assert_match ERE TEXT [MSG]: TEXT (a string) has a line matching ERE.
# A here-string, not a pipe: grep -q may exit before a writer finishes,
# and under pipefail the writer's SIGPIPE would fail a true match.
assert_match() {
    grep -Eq -- "$1" <<<"$2" && return 0
    printf '%s\n' "---- text:" "$2" "----"
    ql__fail_at 1 "${3:-no match}: /$1/ not found"
}

# assert_no_match ERE TEXT [MSG]
assert_no_match() {
    grep -Eq -- "$1" <<<"$2" || return 0
    printf '%s\n' "---- text:" "$2" "----"
    ql__fail_at 1 "${3:-unexpected match}: /$1/ found"
}

# assert_file_match ERE FILE [MSG]: FILE has a line matching ERE.
assert_file_match() {
    [ -f "$2" ] && grep -Eq -- "$1" "$2" && return 0
    printf '%s\n' "---- $2:"; tail -n 50 "$2" 2>/dev/null; printf '%s\n' "----"
    ql__fail_at 1 "${3:-no match}: /$1/ not found in $2"
}

# assert_status EXPECTED [MSG]: the last ql_curl got HTTP status EXPECTED.
assert_status() {
    [ "$HTTP_STATUS" = "$1" ] && return 0
    printf '%s\n' "---- curl rc=$CURL_RC status=$HTTP_STATUS" "---- headers:"
    cat "$HEADERS" 2>/dev/null; printf '%s\n' "---- body:"; head -c 2000 "$BODY" 2>/dev/null
    printf '\n%s\n' "---- curl stderr:"; cat "$T/curl.err" 2>/dev/null; printf '%s\n' "----"
    ql__fail_at 1 "${2:-unexpected HTTP status}: expected $1, got $HTTP_STATUS"
}

# ---------------------------------------------------------------- polling

# wait_until TIMEOUT_SECONDS CMD...: re-run CMD every 0.05 s until it succeeds;
# return 1 if it has not succeeded after TIMEOUT_SECONDS (scaled by
# QL_TIMEOUT_SCALE).  The only permitted delay in the tests.
wait_until() {
    local timeout=$1; shift
    local now deadline
    now=${EPOCHREALTIME/./}
    deadline=$(awk -v n="$now" -v t="$timeout" -v s="$QL_TIMEOUT_SCALE" \
        'BEGIN { printf "%.0f", n + t * s * 1000000 }')
    while :; do
        "$@" && return 0
        now=${EPOCHREALTIME/./}
        [ "$now" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- temp dir and cleanup

T=$(mktemp -d /tmp/ql-test.XXXXXX) || { echo "ERROR: mktemp failed"; exit 99; }
chmod 755 "$T"
export T

# Sanitizer builds (./configure CFLAGS=-fsanitize=address,undefined, as the
# asan stage of "contrib/quickstart.sh check" does): each instrumented
# process this test starts writes its ASan, UBSan and LSan reports to
# $T/sanitizer.PID, also one whose stderr is /dev/null (a daemon that forked)
# or a variable; the last setting wins over the caller's.  gcc's UBSan
# ignores log_path and writes to stderr: ql__sanitizer_reports reads the
# daemon's stderr and the *.err files too.  Either way the test fails.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
export ASAN_OPTIONS UBSAN_OPTIONS
QL_SANITIZER_RE='ERROR: [A-Za-z]+Sanitizer|runtime error: |SUMMARY: [A-Za-z]+Sanitizer'

# ql__sanitizer_reports: print the files holding a sanitizer report (none:
# return 1).  Called once the daemon has exited, so leak reports are in.
ql__sanitizer_reports() {
    local f found=1
    for f in "$T"/sanitizer.* "$T"/*.stderr "$T"/*.err; do
        if [ -f "$f" ] && grep -Eq -- "$QL_SANITIZER_RE" "$f"; then
            printf '%s\n' "$f"
            found=0
        fi
    done
    return "$found"
}

ql__dump_logs() {
    local f
    for f in "${QL_LOG:-$T/quarklinkd.log}" "$T/quarklinkd.stderr" "$T/pg/log"; do
        [ -s "$f" ] || continue
        printf '%s\n' "---- $QL_TEST: tail -n 100 $f"
        tail -n 100 "$f"
        printf '%s\n' "---- end of $f"
    done
}

ql__cleanup() {
    local rc=$?
    trap - EXIT
    trap "" PIPE   # a closed stdout must not stop the cleanup
    local p
    for p in "${QL_CHILD_PIDS[@]}"; do   # a browser test's node, say
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ -n "$QL_PID" ] && kill -0 "$QL_PID" 2>/dev/null; then
        kill -TERM "$QL_PID" 2>/dev/null
        if ! wait_until 5 ql__exited "$QL_PID"; then
            echo "# $QL_TEST: daemon $QL_PID ignored SIGTERM at cleanup, killing it"
            kill -KILL "$QL_PID" 2>/dev/null
        fi
        wait "$QL_PID" 2>/dev/null
    fi
    if [ -f "$T/pg/data/postmaster.pid" ]; then
        pg__ctl stop -m immediate -w >/dev/null 2>&1
    fi
    local reports f
    if reports=$(ql__sanitizer_reports); then
        for f in $reports; do
            printf '%s\n' "---- $QL_TEST: sanitizer report in $f"
            head -n 200 "$f"
            printf '%s\n' "---- end of $f"
        done
        printf 'FAIL %s: sanitizer report (ASan, UBSan or LSan) from a process of this test\n' "$QL_TEST"
        case $rc in 0 | 77) rc=1 ;; esac
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        ql__dump_logs
    fi
    if [ "${QL_KEEP:-0}" = 1 ]; then
        echo "# $QL_TEST: kept $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
# Processes a test starts in the background that must not outlive it.
QL_CHILD_PIDS=()
trap ql__cleanup EXIT
trap 'exit 99' INT TERM HUP

# ---------------------------------------------------------------- PostgreSQL

ql__is_root() { [ "$(id -u)" = 0 ]; }

# pg__as_owner CMD...: run a PostgreSQL server tool as the cluster owner.
pg__as_owner() {
    if ql__is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg__ctl() { pg__as_owner "$QL_PGBIN/pg_ctl" -D "$T/pg/data" "$@"; }

# pg__template: path of an initdb'd cluster cached per build tree, made once
# under flock so parallel tests do not race.  Prints the data dir path, or
# nothing if the build tree is not writable (then each test runs initdb).
pg__template() {
    local cache="$top_builddir/tests/integration/.pgtemplate"
    local major
    major=$("$QL_PGBIN/pg_ctl" --version | awk '{ split($NF, v, "."); print v[1] }')
    local dir="$cache/pg$major"
    if [ ! -f "$dir/complete" ]; then
        mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || return 0
        (
            flock 9 || exit 1
            [ -f "$dir/complete" ] && exit 0
            tmp=$(mktemp -d /tmp/ql-pgtemplate.XXXXXX) || exit 1
            chmod 755 "$tmp"
            ql__is_root && chown postgres "$tmp"
            if ! pg__as_owner "$QL_PGBIN/initdb" -D "$tmp/data" -A trust -U ql \
                    --no-sync -E UTF8 --locale=C >"$tmp/initdb.log" 2>&1; then
                cat "$tmp/initdb.log"
                rm -rf "$tmp"
                exit 1
            fi
            rm -rf "$dir.new"
            mkdir -p "$dir.new" && cp -a "$tmp/data" "$dir.new/data" &&
                touch "$dir.new/complete" && mv "$dir.new" "$dir"
            status=$?
            rm -rf "$tmp"
            exit $status
        ) 9>"$cache/lock" || hard_error "could not create the PostgreSQL template in $cache"
    fi
    printf '%s\n' "$dir/data"
}

# pg_start: start this test's private PostgreSQL cluster (unix socket in $T/pg
# only, fsync off) and make sure database "quarklink" exists.  On an existing
# cluster (after pg_stop) it starts the same data dir on the same port.
# Exports PG_CONNINFO and PG_PORT.
pg_start() {
    ql_require "$QL_PGBIN/initdb" "$QL_PGBIN/pg_ctl" psql
    ql__is_root && ql_require runuser
    if [ ! -d "$T/pg/data" ]; then
        local tmpl
        tmpl=$(pg__template)
        mkdir -p "$T/pg"
        if [ -n "$tmpl" ]; then
            cp -a "$tmpl" "$T/pg/data" || hard_error "copying $tmpl failed"
        fi
        ql__is_root && chown -R postgres "$T/pg"
        if [ -z "$tmpl" ]; then
            ql__run initdb pg__as_owner "$QL_PGBIN/initdb" -D "$T/pg/data" -A trust -U ql \
                --no-sync -E UTF8 --locale=C
        fi
        chmod 700 "$T/pg/data"
        PG_PORT=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40001 ))
    fi
    if ! pg__ctl -l "$T/pg/log" -w -t 30 \
            -o "-k $T/pg -p $PG_PORT -c listen_addresses='' -c fsync=off -c full_page_writes=off" \
            start >"$T/pg/ctl.out" 2>&1; then
        cat "$T/pg/ctl.out"
        hard_error "PostgreSQL did not start"
    fi
    PG_CONNINFO="host=$T/pg port=$PG_PORT user=ql dbname=quarklink"
    export PG_CONNINFO PG_PORT
    local exists
    exists=$(psql -X -A -t -q -h "$T/pg" -p "$PG_PORT" -U ql -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = 'quarklink'") ||
        hard_error "psql could not connect to the test cluster"
    if [ "$exists" != 1 ]; then
        ql__run createdb "$QL_PGBIN/createdb" -h "$T/pg" -p "$PG_PORT" -U ql quarklink
    fi
}

# pg_stop: fast shutdown, waiting for it to finish.
pg_stop() {
    ql__run "pg_ctl stop" pg__ctl stop -m fast -w -t 30
}

pg_restart() {
    pg_stop
    pg_start
}

# ql_psql SQL: run SQL in database quarklink, print unaligned tuples only.
ql_psql() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$PG_CONNINFO" -c "$1"
}

# ---------------------------------------------------------------- SoftHSM

# hsm_init: a SoftHSM token labelled "quarklink" in $T/tokens configured by
# $T/softhsm2.conf; the user PIN is in $T/pin (mode 0600).
hsm_init() {
    ql_require softhsm2-util
    [ -r /usr/lib/softhsm/libsofthsm2.so ] || skip "SoftHSM module not found"
    mkdir -p "$T/tokens"
    cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
EOF
    local so_pin user_pin
    so_pin=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
    user_pin=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
    ql__run "softhsm2-util --init-token" env SOFTHSM2_CONF="$T/softhsm2.conf" \
        softhsm2-util --init-token --free --label quarklink --so-pin "$so_pin" --pin "$user_pin"
    (umask 077 && printf '%s\n' "$user_pin" >"$T/pin")
    chmod 600 "$T/pin"
    HSM_PIN=$user_pin
    export HSM_PIN
}

# ---------------------------------------------------------------- certificates

# tls_make_certs: test CA ($T/ca.crt/.key, P-256), server cert for
# 127.0.0.1/localhost ($T/server.crt/.key), client cert from the same CA
# ($T/client.crt/.key, CN in $CLIENT_CN), and a client cert from an untrusted
# CA ($T/rogue.crt/.key, CN in $ROGUE_CN).
tls_make_certs() {
    ql_require openssl
    local d="$T/pki-work"
    mkdir -p "$d"
    CLIENT_CN="ql-test-device-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
    ROGUE_CN="ql-rogue-device-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
    CA_CN="quarklink test CA $QL_TEST"
    export CLIENT_CN ROGUE_CN CA_CN
    cat >"$d/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    cat >"$d/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
EOF
    cat >"$d/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
    local ca
    for ca in ca rogue-ca; do
        local cn=$CA_CN
        [ "$ca" = rogue-ca ] && cn="rogue CA $QL_TEST"
        ql__run "$ca key" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$d/$ca.key"
        ql__run "$ca csr" openssl req -new -key "$d/$ca.key" -subj "/CN=$cn" -out "$d/$ca.csr"
        ql__run "$ca cert" openssl x509 -req -in "$d/$ca.csr" -signkey "$d/$ca.key" -days 2 \
            -extfile "$d/ca.ext" -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
            -out "$d/$ca.crt"
    done
    tls_issue server ca server localhost
    tls_issue client ca client "$CLIENT_CN"
    tls_issue rogue rogue-ca client "$ROGUE_CN"
    cp "$d/ca.crt" "$d/ca.key" "$d/rogue-ca.crt" "$d/server.crt" "$d/server.key" \
        "$d/client.crt" "$d/client.key" "$d/rogue.crt" "$d/rogue.key" "$T/" ||
        hard_error "copying certificates failed"
    chmod 600 "$T"/*.key
}

# tls_issue NAME ISSUER EXT CN: new P-256 key and certificate
# $T/pki-work/NAME.{key,crt} for CN, signed by ISSUER (ca or rogue-ca) with
# extensions EXT (server or client), with a random serial.
tls_issue() {
    local d="$T/pki-work" name=$1 issuer=$2 ext=$3 cn=$4
    ql__run "$name key" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$d/$name.key"
    ql__run "$name csr" openssl req -new -key "$d/$name.key" -subj "/CN=$cn/O=quarklink tests" \
        -out "$d/$name.csr"
    ql__run "$name cert" openssl x509 -req -in "$d/$name.csr" -CA "$d/$issuer.crt" \
        -CAkey "$d/$issuer.key" -days 2 -extfile "$d/$ext.ext" \
        -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -out "$d/$name.crt"
}

# ---------------------------------------------------------------- configuration

# ql_config [section.key=value ...]: write $T/quarklinkd.conf for the test
# cluster, token and certificates.  Each argument overrides (or adds) one key;
# "section.key=" sets it empty and "section.key" without "=" removes it.
# A test that needs something else writes its own file.
ql_config() {
    local -a order=(
        server.log_level server.log_file server.debug_endpoints
        database.conninfo database.reconnect_max
        pkcs11.module pkcs11.token_label pkcs11.pin_file pkcs11.softhsm2_conf
        admin.listen admin.tls_cert admin.tls_key
        device.listen device.tls_cert device.tls_key device.client_ca
        pki.listen
    )
    local -A val=(
        [server.log_level]=debug
        [server.log_file]="$T/quarklinkd.log"
        [server.debug_endpoints]=yes
        [database.conninfo]="${PG_CONNINFO:-host=$T/pg port=5432 user=ql dbname=quarklink}"
        [database.reconnect_max]=1
        [pkcs11.module]=/usr/lib/softhsm/libsofthsm2.so
        [pkcs11.token_label]=quarklink
        [pkcs11.pin_file]="$T/pin"
        [pkcs11.softhsm2_conf]="$T/softhsm2.conf"
        [admin.listen]=127.0.0.1:0
        [admin.tls_cert]="$T/server.crt"
        [admin.tls_key]="$T/server.key"
        [device.listen]=127.0.0.1:0
        [device.tls_cert]="$T/server.crt"
        [device.tls_key]="$T/server.key"
        [device.client_ca]="$T/ca.crt"
        [pki.listen]=127.0.0.1:0
    )
    local arg key
    for arg in "$@"; do
        if [[ $arg == *=* ]]; then
            key=${arg%%=*}
            [ -n "${val[$key]+set}" ] || order+=("$key")
            val[$key]=${arg#*=}
        else
            unset "val[$arg]"
        fi
    done
    local -a sections=()
    local s found
    for key in "${order[@]}"; do
        s=${key%%.*}
        found=0
        for arg in "${sections[@]}"; do [ "$arg" = "$s" ] && found=1; done
        [ $found = 1 ] || sections+=("$s")
    done
    {
        echo "# written by tests/integration/lib.sh for $QL_TEST"
        for s in "${sections[@]}"; do
            printf '\n[%s]\n' "$s"
            for key in "${order[@]}"; do
                if [ "${key%%.*}" != "$s" ] || [ -z "${val[$key]+set}" ]; then continue; fi
                printf '%s = %s\n' "${key#*.}" "${val[$key]}"
            done
        done
    } >"$T/quarklinkd.conf"
    QL_LOG=${val[server.log_file]:-}
}

# ---------------------------------------------------------------- daemon

ql__exited() {
    local state
    [ -e "/proc/$1" ] || return 0
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$state" = Z ] || [ -z "$state" ]
}

ql__log_since() { tail -n "+$((QL_LOG_START + 1))" "$QL_LOG" 2>/dev/null; }

ql__ready() {
    if ql__exited "$QL_PID"; then
        wait "$QL_PID"
        local rc=$?
        QL_PID=
        ql__fail_at 3 "quarklinkd exited with status $rc before it was ready"
    fi
    ql__log_since | grep -Eq ' info ready$'
}

# ql_start [EXTRA ARGS...]: start "$QUARKLINKD -f -c $T/quarklinkd.conf" in the
# background, wait for "info ready", set QL_PID, ADMIN_PORT, DEVICE_PORT, PKI_PORT.
# shellcheck disable=SC2120  # callers in this file pass none; tests may
ql_start() {
    [ -x "$QUARKLINKD" ] || hard_error "quarklinkd not built: $QUARKLINKD"
    [ -n "$QL_LOG" ] || QL_LOG="$T/quarklinkd.stderr"
    QL_LOG_START=0
    [ -f "$QL_LOG" ] && QL_LOG_START=$(wc -l <"$QL_LOG")
    # shellcheck disable=SC2086  # QL_WRAPPER is a command prefix, split on purpose
    $QL_WRAPPER "$QUARKLINKD" -f -c "$T/quarklinkd.conf" "$@" \
        >>"$T/quarklinkd.stdout" 2>>"$T/quarklinkd.stderr" </dev/null &
    QL_PID=$!
    wait_until 15 ql__ready || ql__fail_at 1 "quarklinkd did not log 'info ready' within 15 s"
    local lines
    lines=$(ql__log_since | grep -E ' info listening (admin|device|pki) ')
    ADMIN_PORT=$(printf '%s\n' "$lines" | sed -nE 's/.* info listening admin [^ ]*:([0-9]+)$/\1/p' | tail -n 1)
    DEVICE_PORT=$(printf '%s\n' "$lines" | sed -nE 's/.* info listening device [^ ]*:([0-9]+)$/\1/p' | tail -n 1)
    PKI_PORT=$(printf '%s\n' "$lines" | sed -nE 's/.* info listening pki [^ ]*:([0-9]+)$/\1/p' | tail -n 1)
    export ADMIN_PORT DEVICE_PORT PKI_PORT QL_PID
}

# ql_wait_exit TIMEOUT: wait for the daemon to exit; sets QL_EXIT; returns 1 on timeout.
ql_wait_exit() {
    wait_until "$1" ql__exited "$QL_PID" || return 1
    wait "$QL_PID"
    QL_EXIT=$?
    QL_PID=
    return 0
}

# ql_stop: SIGTERM, wait (bounded) for exit, return the exit status.
ql_stop() {
    [ -n "$QL_PID" ] || hard_error "ql_stop: daemon not running"
    kill -TERM "$QL_PID" || ql__fail_at 1 "could not signal quarklinkd $QL_PID"
    ql_wait_exit 20 || ql__fail_at 1 "quarklinkd did not exit within 20 s of SIGTERM"
    return "$QL_EXIT"
}

# ql_alive: the daemon started by ql_start is still running.
ql_alive() { [ -n "$QL_PID" ] && ! ql__exited "$QL_PID"; }

# ---------------------------------------------------------------- HTTP

admin_url()  { printf 'https://127.0.0.1:%s%s' "$ADMIN_PORT" "$1"; }
device_url() { printf 'https://127.0.0.1:%s%s' "$DEVICE_PORT" "$1"; }
pki_url()    { printf 'http://127.0.0.1:%s%s' "$PKI_PORT" "$1"; }

BODY="$T/body"
HEADERS="$T/headers"

# ql_curl [CURL ARGS...] URL: request trusting the test CA; sets HTTP_STATUS
# ("000" if no response), CURL_RC; body in $BODY, headers in $HEADERS, curl's
# errors in $T/curl.err.  Returns curl's exit status.
ql_curl() {
    rm -f "$BODY" "$HEADERS"
    HTTP_STATUS=$(curl -sS --max-time 10 --cacert "$T/ca.crt" -o "$BODY" -D "$HEADERS" \
        -w '%{http_code}' "$@" 2>"$T/curl.err")
    CURL_RC=$?
    [ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
    touch "$BODY" "$HEADERS"
    return "$CURL_RC"
}

# ql_header NAME: value of header NAME in the last ql_curl response.
ql_header() {
    tr -d '\r' <"$HEADERS" | awk -v n="$1" '
        /^HTTP\// { v = ""; found = 0 }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == tolower(n)) {
              v = substr($0, i + 1); sub(/^[ \t]+/, "", v); found = 1 } }
        END { if (found) print v; else exit 1 }'
}

# ---------------------------------------------------------------- JSON

# json_get FILE KEY: print top-level KEY of the JSON object in FILE (strings
# raw, other values as JSON); fails if FILE is not a JSON object or lacks KEY.
# Uses jq, or python3 if jq is missing.
json_get() {
    if command -v jq >/dev/null 2>&1; then
        jq -r --arg k "$2" 'if type == "object" and has($k) then .[$k] else error("no key") end' \
            "$1" 2>/dev/null
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    doc = json.load(f)
if not isinstance(doc, dict) or sys.argv[2] not in doc:
    sys.exit(1)
v = doc[sys.argv[2]]
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2" 2>/dev/null
    else
        skip "neither jq nor python3 available to parse JSON"
    fi
}

# json_valid FILE: FILE holds exactly one valid JSON value.
json_valid() {
    if command -v jq >/dev/null 2>&1; then
        jq -e -s 'length == 1' "$1" >/dev/null 2>&1
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null
    else
        skip "neither jq nor python3 available to parse JSON"
    fi
}

# assert_json FILE KEY EXPECTED [MSG]
assert_json() {
    local v
    if ! v=$(json_get "$1" "$2"); then
        printf '%s\n' "---- $1:"; head -c 2000 "$1"; printf '\n%s\n' "----"
        ql__fail_at 1 "${4:-bad JSON}: no key '$2' in JSON object"
    fi
    [ "$v" = "$3" ] && return 0
    ql__fail_at 1 "${4:-JSON value differs}: $2: expected '$3', got '$v'"
}

# assert_problem STATUS: the last response is an RFC 9457 problem+json with STATUS.
assert_problem() {
    local ct
    ct=$(ql_header Content-Type) || ql__fail_at 1 "no Content-Type header"
    [[ $ct == application/problem+json* ]] ||
        ql__fail_at 1 "Content-Type is '$ct', expected application/problem+json"
    json_valid "$BODY" || ql__fail_at 1 "body is not valid JSON: $(head -c 500 "$BODY")"
    local v
    v=$(json_get "$BODY" status) || ql__fail_at 1 "problem body has no status: $(head -c 500 "$BODY")"
    [ "$v" = "$1" ] || ql__fail_at 1 "problem status is '$v', expected $1"
    v=$(json_get "$BODY" title) || ql__fail_at 1 "problem body has no title: $(head -c 500 "$BODY")"
    [ -n "$v" ] || ql__fail_at 1 "problem title is empty"
}

# ere_quote STRING: STRING with ERE metacharacters escaped.
ere_quote() { printf '%s' "$1" | sed -e 's/[][\\.^$*+?(){}|]/\\&/g'; }

# ql_request_logged ID METHOD PATH STATUS [LISTENER]: the daemon logged the
# documented request line for that request (PATH may be followed by a query).
ql_request_logged() {
    local re
    re="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z info request"
    re="$re id=$(ere_quote "$1") ${5:-[a-z]+} $2 $(ere_quote "$3")(\?[^ ]*)? $4 [0-9]+B [0-9.]+ms$"
    grep -Eq -- "$re" "$QL_LOG"
}

# ---------------------------------------------------------------- PKI and EST

# Set by ql_admin and est_enroll_ok for the tests that source this file.
# shellcheck disable=SC2034
ADMIN_OUT='' ADMIN_ERR='' SERIAL='' DEVICE_ID=''

# ql_admin ARGS...: run "quarklinkd -c $T/quarklinkd.conf admin ARGS...";
# its stdout in ADMIN_OUT, stderr in ADMIN_ERR; returns its exit status.
ql_admin() {
    # shellcheck disable=SC2034
    ADMIN_OUT=$("$QUARKLINKD" -c "$T/quarklinkd.conf" admin "$@" 2>"$T/admin.err")
    local rc=$?
    ADMIN_ERR=$(cat "$T/admin.err")
    return "$rc"
}

# ql_admin_ok ARGS...: ql_admin that must succeed (else the test fails).
ql_admin_ok() {
    ql_admin "$@" && return 0
    ql__fail_at 1 "admin $* failed: $ADMIN_ERR"
}

# ql_pki_start [ql_config ARGS...]: PostgreSQL, token, test certificates, a
# config (ql_config ARGS), the daemon, and the root CA as $T/root.pem.
ql_pki_start() {
    ql_require curl openssl
    pg_start
    hsm_init
    tls_make_certs
    ql_config "$@"
    ql_start
    pki_fetch_ca root "$T/root.pem"
}

# pki_fetch_ca NAME FILE: GET /pki/ca/NAME.crt (DER) from the pki listener,
# check it is a DER certificate served as application/pkix-cert, write it
# as PEM to FILE.
pki_fetch_ca() {
    ql_curl "$(pki_url "/pki/ca/$1.crt")"
    [ "$HTTP_STATUS" = 200 ] || ql__fail_at 1 "GET /pki/ca/$1.crt: HTTP $HTTP_STATUS $(head -c 300 "$BODY")"
    local ct
    ct=$(ql_header Content-Type)
    [ "$ct" = application/pkix-cert ] ||
        ql__fail_at 1 "GET /pki/ca/$1.crt: Content-Type '$ct', expected application/pkix-cert"
    openssl x509 -inform DER -in "$BODY" -out "$2" 2>"$T/openssl.err" ||
        ql__fail_at 1 "GET /pki/ca/$1.crt is not a DER certificate: $(cat "$T/openssl.err")"
}

# est_key NAME [TYPE]: a new private key $T/NAME.key.  TYPE: p256 (default),
# p384, p521, secp256k1, rsa1024, rsa2048, rsa3072, rsa4096.
est_key() {
    local out="$T/$1.key" type=${2:-p256}
    case $type in
        p256) set -- -algorithm EC -pkeyopt ec_paramgen_curve:P-256 ;;
        p384) set -- -algorithm EC -pkeyopt ec_paramgen_curve:P-384 ;;
        p521) set -- -algorithm EC -pkeyopt ec_paramgen_curve:P-521 ;;
        secp256k1) set -- -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 ;;
        rsa*) set -- -algorithm RSA -pkeyopt "rsa_keygen_bits:${type#rsa}" ;;
        *) hard_error "est_key: unknown key type $type" ;;
    esac
    ql__run "key $out ($type)" openssl genpkey "$@" -out "$out"
    chmod 600 "$out"
}

# est_csr NAME KEYNAME [SUBJECT]: CSR for $T/KEYNAME.key as $T/NAME.csr (PEM)
# and $T/NAME.der (DER); SUBJECT defaults to /CN=NAME.
est_csr() {
    ql__run "CSR $1" openssl req -new -key "$T/$2.key" -subj "${3:-/CN=$1}" -out "$T/$1.csr"
    ql__run "CSR $1 to DER" openssl req -in "$T/$1.csr" -outform DER -out "$T/$1.der"
}

# est_body DERFILE OUTFILE [none|lf|crlf]: OUTFILE = base64 of DERFILE with no
# line breaks, LF (default, 64 columns) or CRLF line breaks.
est_body() {
    case ${3:-lf} in
        none) base64 -w 0 "$1" >"$2" ;;
        lf)   base64 -w 64 "$1" >"$2" ;;
        crlf) base64 -w 64 "$1" | sed 's/$/\r/' >"$2" ;;
        *) hard_error "est_body: bad line break style $3" ;;
    esac
}

# device_id_of CSRFILE: the device ID of the CSR's key (the formula of the
# EST contract: base32 of the first 20 bytes of SHA-256 of the DER SPKI).
device_id_of() {
    openssl req -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | head -c 20 | base32 | tr -d = | tr '[:upper:]' '[:lower:]'
}

# est_post PROJECT OP BODYFILE [CURL ARGS...]: POST BODYFILE (bytes as they
# are) to /.well-known/est/PROJECT/OP as application/pkcs10 (extra curl
# arguments may add -H/-u/--cert or override the Content-Type).
est_post() {
    local project=$1 op=$2 file=$3
    shift 3
    ql_curl -H 'Content-Type: application/pkcs10' "$@" --data-binary "@$file" \
        "$(device_url "/.well-known/est/$project/$op")"
}

# est_cert_out FILE: the last response is a base64 certs-only PKCS#7 holding
# exactly one certificate; write it to FILE (PEM).
est_cert_out() {
    base64 -d <"$BODY" >"$T/p7.der" 2>"$T/openssl.err" ||
        ql__fail_at 1 "EST response is not base64: $(head -c 300 "$BODY")"
    openssl pkcs7 -inform DER -in "$T/p7.der" -print_certs -out "$T/p7.pem" 2>"$T/openssl.err" ||
        ql__fail_at 1 "EST response is not a DER PKCS#7: $(cat "$T/openssl.err")"
    local n
    n=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$T/p7.pem")
    [ "$n" = 1 ] || ql__fail_at 1 "EST response holds $n certificates, expected 1"
    openssl x509 -in "$T/p7.pem" -out "$1" ||
        ql__fail_at 1 "cannot extract the certificate from the EST response"
}

# est_enroll_ok PROJECT NAME [CURL ARGS...]: new P-256 key $T/NAME.key, CSR,
# simpleenroll (credentials in the curl args), 200 expected; the certificate
# in $T/NAME.crt, its serial (32 lowercase hex) in SERIAL, device ID in DEVICE_ID.
est_enroll_ok() {
    local project=$1 name=$2
    shift 2
    est_key "$name"
    est_csr "$name" "$name"
    est_body "$T/$name.der" "$T/$name.b64"
    est_post "$project" simpleenroll "$T/$name.b64" "$@"
    if [ "$HTTP_STATUS" != 200 ]; then
        printf '%s\n' "---- curl rc=$CURL_RC status=$HTTP_STATUS" "---- body:"
        head -c 2000 "$BODY"; printf '\n%s\n' "---- curl stderr:"; cat "$T/curl.err"
        ql__fail_at 1 "enrolling $name in $project: expected 200, got $HTTP_STATUS"
    fi
    est_cert_out "$T/$name.crt"
    # shellcheck disable=SC2034
    SERIAL=$(cert_serial "$T/$name.crt")
    # shellcheck disable=SC2034
    DEVICE_ID=$(device_id_of "$T/$name.csr")
}

# cert_serial PEMFILE: the certificate's serial as lowercase hex.
cert_serial() {
    openssl x509 -in "$1" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f'
}

# assert_est_problem STATUS [DETAIL_ERE]: the last response is problem+json
# with STATUS whose detail is one non-empty line (matching DETAIL_ERE if given).
assert_est_problem() {
    [ "$HTTP_STATUS" = "$1" ] || {
        printf '%s\n' "---- curl rc=$CURL_RC status=$HTTP_STATUS" "---- body:"
        head -c 2000 "$BODY"; printf '\n%s\n' "---- curl stderr:"; cat "$T/curl.err" 2>/dev/null
        ql__fail_at 1 "expected HTTP $1, got $HTTP_STATUS"
    }
    local ct v
    ct=$(ql_header Content-Type) || ql__fail_at 1 "HTTP $1 without Content-Type"
    [[ $ct == application/problem+json* ]] ||
        ql__fail_at 1 "HTTP $1: Content-Type '$ct', expected application/problem+json"
    json_valid "$BODY" || ql__fail_at 1 "HTTP $1: body is not JSON: $(head -c 500 "$BODY")"
    v=$(json_get "$BODY" status) || ql__fail_at 1 "HTTP $1: problem has no status"
    [ "$v" = "$1" ] || ql__fail_at 1 "problem status '$v', expected $1"
    v=$(json_get "$BODY" detail) || ql__fail_at 1 "HTTP $1: problem has no detail: $(cat "$BODY")"
    [ -n "$v" ] || ql__fail_at 1 "HTTP $1: empty detail"
    [ "$(printf '%s\n' "$v" | wc -l)" = 1 ] || ql__fail_at 1 "HTTP $1: detail is not one line: $v"
    if [ $# -ge 2 ]; then
        printf '%s\n' "$v" | grep -Eq -- "$2" ||
            ql__fail_at 1 "HTTP $1: detail '$v' does not match /$2/"
    fi
}

# ocsp_status ISSUERPEM CERTPEM [OPENSSL OCSP ARGS...]: run openssl ocsp against
# the pki listener (response verified against $T/root.pem) and print the
# status word of CERTPEM (good, revoked, unknown); full output in $T/ocsp.out.
# CERTPEM may be a serial instead (0x..., -0x...), asked of ISSUERPEM.
ocsp_status() {
    local issuer=$1 cert=$2 what=(-cert "$2")
    shift 2
    case $cert in 0x*|-0x*) what=(-serial "$cert") ;; esac
    openssl ocsp -issuer "$issuer" "${what[@]}" -url "$(pki_url /pki/ocsp)" \
        -CAfile "$T/root.pem" "$@" >"$T/ocsp.out" 2>&1 || { cat "$T/ocsp.out"; return 1; }
    grep -q '^Response verify OK' "$T/ocsp.out" || { cat "$T/ocsp.out"; return 1; }
    sed -nE "s|^$(ere_quote "$cert"): ([a-z]+)\$|\\1|p" "$T/ocsp.out"
}

# ocsp_says STATUS ISSUERPEM CERTPEM [ARGS...]: for wait_until.
ocsp_says() {
    local want=$1 got
    shift
    got=$(ocsp_status "$@" 2>/dev/null) && [ "$got" = "$want" ]
}

# ---------------------------------------------------------------- admin API

# Set by api_login for the tests that source this file.
# shellcheck disable=SC2034
API_COOKIE='' API_CSRF=''

# api_routes: the admin API routes the daemon serves, one "METHOD PATTERN ROLE"
# line per method (from quarklinkd --list-routes, so new routes are covered).
api_routes() {
    "$QUARKLINKD" --list-routes | awk -F'\t' '
        $1 == "admin" && $3 ~ /^\/api\/v1\// {
            n = split($2, m, /, */)
            for (i = 1; i <= n; i++) print m[i], $3, $4, $5
        }'
}

# api_random_secret: a fresh random test secret (hex).
api_random_secret() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# api_token_new ROLE PROJECT [EXPIRES_SQL [REVOKED_SQL]]: insert an API token
# row directly (token_hash = SHA-256 of the secret) and print its secret.
# PROJECT "" means every project.  EXPIRES_SQL/REVOKED_SQL are SQL
# expressions, e.g. "now() - interval '1 hour'".
api_token_new() {
    local role=$1 project=$2 expires=${3:-NULL} revoked=${4:-NULL} secret pid=NULL
    secret="qlt-$(api_random_secret)"
    if [ -n "$project" ]; then
        pid=$(ql_psql "SELECT id FROM projects WHERE name = '$project'") && [ -n "$pid" ] ||
            ql__fail_at 1 "api_token_new: no project $project"
    fi
    ql_psql "INSERT INTO api_tokens (name, token_hash, role, project_id, expires_at, revoked_at)
             VALUES ('test $role ${project:-all}', sha256(convert_to('$secret', 'UTF8')),
                     '$role', $pid, $expires, $revoked)" >/dev/null ||
        ql__fail_at 1 "api_token_new: insert failed"
    printf '%s\n' "$secret"
}

# api_user_new NAME ROLE PROJECTS LIKE_USER: insert user NAME with ROLE, the
# comma-separated project names PROJECTS ("" = every project) and the same
# password as the existing user LIKE_USER (its Argon2id hash is copied).
api_user_new() {
    local projects=NULL n
    if [ -n "$3" ]; then
        projects="(SELECT array_agg(id) FROM projects WHERE name = ANY('{$3}'))"
    fi
    n=$(ql_psql "WITH u AS (INSERT INTO users (name, password_hash, role, projects)
                 SELECT '$1', password_hash, '$2', $projects FROM users WHERE name = '$4'
                 RETURNING 1) SELECT count(*) FROM u") || n=0
    [ "$n" = 1 ] || ql__fail_at 1 "api_user_new: could not create user $1 like $4"
}

# api_login USER PASSWORD [CURL ARGS...]: POST /api/v1/login; on 200 sets
# API_COOKIE (the ql_session value) and API_CSRF.  Returns 1 unless 200.
api_login() {
    local user=$1 pw=$2
    shift 2
    API_COOKIE='' API_CSRF=''
    ql_curl -H 'Content-Type: application/json' "$@" \
        --data-binary "$(jq -cn --arg u "$user" --arg p "$pw" '{username: $u, password: $p}')" \
        "$(admin_url /api/v1/login)"
    [ "$HTTP_STATUS" = 200 ] || return 1
    API_COOKIE=$(ql_header Set-Cookie | sed -nE 's/^ql_session=([^;]*).*/\1/p')
    API_CSRF=$(json_get "$BODY" csrf_token)
    [ -n "$API_COOKIE" ] && [ -n "$API_CSRF" ]
}

# api_problem_summary FILE: "type|title|status|detail|sorted keys" of a
# problem+json body, or "not-json" (for comparing refusals field by field;
# "instance" differs per request, so only its presence counts).
api_problem_summary() {
    jq -r 'if type == "object" then
               [(.type | tostring), (.title | tostring), (.status | tostring),
                (.detail | tostring), (keys | join(","))] | join("|")
           else "not-object" end' "$1" 2>/dev/null || printf 'not-json\n'
}

# api_detail FILE: the problem detail of a JSON body ("" if none).
api_detail() { jq -r 'if type == "object" then (.detail // "") else "" end' "$1" 2>/dev/null; }

# api_table_counts: "table=rows ..." for every table except audit_log, to
# prove a refused request changed nothing (a dropped table shows too).
api_table_counts() {
    ql_psql "SELECT string_agg(table_name || '=' ||
                 (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I',
                  table_name), false, true, '')))[1]::text, ' ' ORDER BY table_name)
             FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
               AND table_name <> 'audit_log'"
}

# api_alive: the daemon answers /healthz with 200 (for wait_until too).
api_alive() {
    [ "$(curl -sS --max-time 5 --cacert "$T/ca.crt" -o /dev/null -w '%{http_code}' \
        "$(admin_url /healthz)" 2>/dev/null)" = 200 ]
}

# api_admin_session USER: create the admin USER (--create-admin), log in
# as it, and keep the session in $T/cookies and $API_CSRF for api().
api_admin_session() {
    local pw
    pw=$("$QUARKLINKD" -c "$T/quarklinkd.conf" --create-admin "$1" 2>"$T/create-admin.err") ||
        hard_error "--create-admin failed: $(cat "$T/create-admin.err")"
    api_login "$1" "$pw" -c "$T/cookies" || ql__fail_at 1 "login as $1: HTTP $HTTP_STATUS"
}

# api_bearer SECRET METHOD PATH [JSON]: an API request with a bearer token.
api_bearer() {
    local t=$1 m=$2 p=$3
    shift 3
    local -a a=(-X "$m" -H "Authorization: Bearer $t")
    [ $# -ge 1 ] && a+=(-H 'Content-Type: application/json' --data-binary "$1")
    ql_curl "${a[@]}" "$(admin_url "$p")"
}

# api METHOD PATH [JSON]: an API request in the api_admin_session.
api() {
    local m=$1 p=$2
    shift 2
    if [ $# -gt 0 ]; then
        ql_curl -X "$m" -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" \
            -H 'Content-Type: application/json' --data "$1" "$(admin_url "$p")"
    else
        ql_curl -X "$m" -b "$T/cookies" -H "X-CSRF-Token: $API_CSRF" "$(admin_url "$p")"
    fi
}

# ---------------------------------------------------------------- web UI

# ui_www_setup: for the browser tests (tests/browser/): NM, the node_modules
# holding the npm packages they need (missing ones fail: contrib/quickstart.sh
# installs them), and W=$T/www, the UI as installed: www/ from the sources,
# vendor/ from the build.
ui_www_setup() {
    NM=${QL_NODE_MODULES:-$top_srcdir/node_modules}
    command -v node >/dev/null || fail "node not found (contrib/quickstart.sh installs nodejs)"
    [ -x /usr/bin/chromium ] || fail "/usr/bin/chromium not found (contrib/quickstart.sh installs chromium)"
    local p
    for p in playwright-core @axe-core/playwright tus-js-client uplot; do
        [ -f "$NM/$p/package.json" ] ||
            fail "npm package $p missing in $NM: run npm ci (contrib/quickstart.sh does)"
    done
    W="$T/www"
    cp -R "$top_srcdir/www" "$W" || hard_error "copying www/"
    chmod -R u+w "$W"
    rm -rf "$W/vendor"
    [ -f "$top_builddir/www/vendor/vendor.json" ] ||
        fail "$top_builddir/www/vendor not built (make builds it once npm ci has run)"
    cp -R "$top_builddir/www/vendor" "$W/vendor" || hard_error "copying www/vendor"
}
