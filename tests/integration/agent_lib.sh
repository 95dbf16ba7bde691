# shellcheck shell=bash
# Helpers for the ql-agent tests (sourced after lib.sh).  The daemon's
# device listener serves a certificate issued by the installation root
# (tls_cert = auto), so the agent pins $T/root.pem, as a device does.
#   QL_AGENT   the agent binary ($top_builddir/contrib/agent/ql-agent)

: "${QL_AGENT:=$top_builddir/contrib/agent/ql-agent}"
AGENT_OUT='' AGENT_ERR='' AGENT_RC=''

# agent_pki_start [ql_config ARGS...]: the harness with the device listener
# on a root-issued certificate and no extra client CA.
agent_pki_start() {
    [ -x "$QL_AGENT" ] || skip "ql-agent not built (configure --enable-agent): $QL_AGENT"
    ql_pki_start device.tls_cert=auto device.tls_key device.client_ca= "$@"
}

# agent_conf NAME [key=value ...]: write $T/NAME.conf for a device whose
# state directory is $T/NAME (project p1 unless overridden).
agent_conf() {
    local name=$1
    shift
    local -a order=(est_url device_url root_ca project hardware key_store state_dir
        poll_interval renew_fraction install_hook enroll_wait retry_max timeout)
    local -A val=(
        [est_url]="https://127.0.0.1:$DEVICE_PORT/.well-known/est"
        [device_url]="https://127.0.0.1:$DEVICE_PORT"
        [root_ca]="$T/root.pem"
        [project]=p1
        [hardware]=hw-a
        [key_store]=file
        [state_dir]="$T/$name"
        [poll_interval]=1
        [renew_fraction]=0.66
        [install_hook]="$T/hook.sh"
        [enroll_wait]=30
        [retry_max]=1
        [timeout]=20
    )
    local arg key
    for arg in "$@"; do
        key=${arg%%=*}
        [ -n "${val[$key]+set}" ] || order+=("$key")
        val[$key]=${arg#*=}
    done
    {
        echo "# ql-agent configuration for $QL_TEST device $name"
        for key in "${order[@]}"; do
            printf '%s = %s\n' "$key" "${val[$key]}"
        done
    } >"$T/$name.conf"
}

# agent NAME ARGS...: run ql-agent -c $T/NAME.conf ARGS; stdout in AGENT_OUT,
# stderr in AGENT_ERR (also appended to $T/NAME.agent.err), status in AGENT_RC.
agent() {
    local name=$1
    shift
    AGENT_OUT=$("$QL_AGENT" -c "$T/$name.conf" "$@" 2>"$T/agent.stderr")
    AGENT_RC=$?
    AGENT_ERR=$(cat "$T/agent.stderr")
    cat "$T/agent.stderr" >>"$T/$name.agent.err"
    return 0
}

# assert_agent_rc EXPECTED MSG: the last agent run exited with EXPECTED.
assert_agent_rc() {
    [ "$AGENT_RC" = "$1" ] && return 0
    printf '%s\n' "---- agent stdout:" "$AGENT_OUT" "---- agent stderr:" "$AGENT_ERR" "----"
    ql__fail_at 1 "${2:-ql-agent exit status}: expected $1, got $AGENT_RC"
}

# assert_one_line_error ERE: the last agent run printed exactly one error
# line, matching ERE.
assert_one_line_error() {
    local n
    n=$(printf '%s\n' "$AGENT_ERR" | grep -c '^ql-agent: error: ')
    [ "$n" = 1 ] || ql__fail_at 1 "expected one error line, got $n: $AGENT_ERR"
    printf '%s\n' "$AGENT_ERR" | grep -Eq -- "^ql-agent: error: .*$1" ||
        ql__fail_at 1 "error line does not match /$1/: $AGENT_ERR"
}

# ---------------------------------------------------------------- TPM

TPM_PIDS=()

# tpm_start: a software TPM (swtpm) on free loopback ports behind a
# resource manager (tpm2-abrmd on a private D-Bus session bus), as
# /dev/tpmrm0 is on a device.  Exports TPM_TCTI for the agent and
# TPM2TOOLS_TCTI for tpm2-tools; the processes stop with the test.
tpm_start() {
    ql_require swtpm tpm2-abrmd dbus-daemon tpm2_getrandom
    [ -r /usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so ] ||
        [ -n "$(find /usr/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ] ||
        skip "the tpm2-openssl provider is not installed"
    mkdir -p "$T/tpm"
    local port
    port=$(( 20000 + RANDOM % 20000 ))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
          (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; do
        port=$((port + 2))
    done
    swtpm socket --tpmstate dir="$T/tpm" --tpm2 \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port="$((port + 1))",bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear --daemon --pid file="$T/tpm/swtpm.pid" \
        --log file="$T/tpm/swtpm.log" || hard_error "swtpm did not start"
    wait_until 10 test -s "$T/tpm/swtpm.pid" || hard_error "swtpm wrote no pid file"
    TPM_PIDS+=("$(cat "$T/tpm/swtpm.pid")")
    local out
    out=$(dbus-daemon --session --fork --print-address=1 --print-pid=1) ||
        hard_error "dbus-daemon did not start"
    DBUS_SESSION_BUS_ADDRESS=$(printf '%s\n' "$out" | sed -n 1p)
    TPM_PIDS+=("$(printf '%s\n' "$out" | sed -n 2p)")
    export DBUS_SESSION_BUS_ADDRESS
    tpm2-abrmd --session --allow-root --tcti="swtpm:host=127.0.0.1,port=$port" \
        >"$T/tpm/abrmd.log" 2>&1 &
    TPM_PIDS+=("$!")
    TPM_TCTI="tabrmd:bus_type=session"
    TPM2TOOLS_TCTI=$TPM_TCTI
    export TPM_TCTI TPM2TOOLS_TCTI
    wait_until 20 tpm2_getrandom 4 >/dev/null 2>&1 ||
        hard_error "the TPM does not answer through tpm2-abrmd: $(cat "$T/tpm/abrmd.log")"
}

tpm_stop() {
    local p
    for p in "${TPM_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    TPM_PIDS=()
}
