# shellcheck shell=bash
# Software TPMs for the attestation tests (sourced after lib.sh): swtpm
# states manufactured by swtpm_setup with EK certificates from a local CA
# that stands in for a TPM maker, and swtpm reached directly over TCP.
# Without a resource manager transient objects and sessions stay loaded
# until flushed, and the TPM runs out of slots (0x902) after three or four
# commands: every helper here ends with tpm_flush.
#
#   tpm_ca_new CA                  a manufacturer CA in $T/CA
#   tpm_manufacture NAME CA [DIR]  a TPM state in DIR (default $T/tpm-NAME)
#                                  with its EK certificates issued by CA
#   tpm_swtpm_start NAME           swtpm on that state, free loopback ports
#   tpm_swtpm_spawn DIR            swtpm on any state directory (ports, pid)
#   tpm_use NAME                   point tpm2-tools (TPM2TOOLS_TCTI) at it
#   tpm_ek_read NAME               ek.der (NV 0x01c00002) and ek.pub
#   tpm_ak_create NAME [ecc|rsa]   AK at 0x81010002: ak.pub, ak.name
#   tpm_idkey_create NAME          SRK 0x81000001, identity key 0x81000002: id.pub
#   tpm_lib_stop                   stop every swtpm started here
# Files of TPM NAME are in $(tpm_dir NAME); TPM2B_PUBLIC files (*.pub) are
# in tpm2-tools' default format, which is the TPM wire format with size.
#
# A manufactured state also works behind agent_lib.sh's tpm_start (which
# runs swtpm and tpm2-abrmd on $T/tpm): tpm_manufacture NAME CA "$T/tpm".
#
# Persistent handles: swtpm_setup persists the RSA EK at 0x81010001 (the
# TCG default template, the key of the certificate at 0x01c00002).

[ -n "${TPM_LIB_LOADED:-}" ] && return 0	# sourced by a test and agent_lib.sh
TPM_LIB_LOADED=1
TPM_LIB_PIDS=()
TPM_SPAWN_PORT='' TPM_SPAWN_PID=''
declare -A TPM_LIB_DIR=() TPM_LIB_PORT=()
TPM_EK_HANDLE=0x81010001
TPM_AK_HANDLE=0x81010002
TPM_SRK_HANDLE=0x81000001
TPM_ID_HANDLE=0x81000002

tpm_dir() { printf '%s\n' "${TPM_LIB_DIR[$1]:-$T/tpm-$1}"; }

# tpm_ca_new CA: swtpm_localca's configuration for a private CA directory
# $T/CA; the CA itself (a root and an intermediate that signs EK
# certificates) is made by the first tpm_manufacture that uses it.
# $T/CA/bundle.pem then holds root and intermediate (tpm_ca_bundle).
tpm_ca_new() {
    local d="$T/$1"
    ql_require swtpm swtpm_setup swtpm_localca
    mkdir -p "$d"
    cat >"$d/localca.conf" <<EOF
statedir = $d
signingkey = $d/signkey.pem
issuercert = $d/issuercert.pem
certserial = $d/certserial
EOF
    cat >"$d/localca.options" <<EOF
--platform-manufacturer quarklink-test-$1
--platform-version 2.1
--platform-model swtpm
EOF
    cat >"$d/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $d/localca.conf
create_certs_tool_options = $d/localca.options
active_pcr_banks = sha256
EOF
}

# tpm_ca_bundle CA: print the path of the CA's root + intermediate PEM file.
tpm_ca_bundle() {
    local d="$T/$1"
    { [ -s "$d/swtpm-localca-rootca-cert.pem" ] && [ -s "$d/issuercert.pem" ]; } ||
        hard_error "tpm_ca_bundle: CA $1 has not issued anything yet"
    cat "$d/swtpm-localca-rootca-cert.pem" "$d/issuercert.pem" >"$d/bundle.pem"
    printf '%s\n' "$d/bundle.pem"
}

# tpm_manufacture NAME CA [DIR]: a fresh TPM state with EK certificates
# (RSA and ECC) and a platform certificate signed by CA, SHA-256 PCR bank.
tpm_manufacture() {
    local name=$1 ca=$2 dir=${3:-$T/tpm-$1}
    [ -f "$T/$ca/swtpm_setup.conf" ] || hard_error "tpm_manufacture: no CA $ca (tpm_ca_new)"
    mkdir -p "$dir"
    TPM_LIB_DIR[$name]=$dir
    swtpm_setup --tpm2 --tpmstate "$dir" --create-ek-cert --create-platform-cert \
        --config "$T/$ca/swtpm_setup.conf" --overwrite >"$dir/setup.log" 2>&1 ||
        hard_error "swtpm_setup failed for $name: $(tail -n 5 "$dir/setup.log")"
}

# tpm_swtpm_spawn DIR: swtpm (TCP, loopback) on the state in DIR on two
# free ports; sets TPM_SPAWN_PORT (command port, control is the next) and
# TPM_SPAWN_PID.  Also behind agent_lib.sh's tpm_start.
tpm_swtpm_spawn() {
    local dir=$1 port try
    rm -f "$dir/swtpm.pid"
    # Another process may take the port between the check and the bind.
    for try in 1 2 3 4 5; do
        port=$(( 20000 + RANDOM % 20000 ))
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
              (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; do
            port=$((port + 2))
        done
        swtpm socket --tpmstate dir="$dir" --tpm2 \
            --server type=tcp,port="$port",bindaddr=127.0.0.1 \
            --ctrl type=tcp,port="$((port + 1))",bindaddr=127.0.0.1 \
            --flags not-need-init,startup-clear --daemon --pid file="$dir/swtpm.pid" \
            --log file="$dir/swtpm.log" && break
        [ "$try" = 5 ] && hard_error "swtpm did not start: $(tail -n 5 "$dir/swtpm.log" 2>/dev/null)"
    done
    wait_until 10 test -s "$dir/swtpm.pid" || hard_error "swtpm wrote no pid file"
    TPM_SPAWN_PORT=$port
    TPM_SPAWN_PID=$(cat "$dir/swtpm.pid")
}

# tpm_swtpm_start NAME: run swtpm on NAME's state; tpm2-tools then talk
# to it (tpm_use NAME).  TPM_LIB_PORT[NAME] is its command port.
tpm_swtpm_start() {
    local name=$1 dir
    dir=$(tpm_dir "$name")
    [ -d "$dir" ] || hard_error "tpm_swtpm_start: no state for $name (tpm_manufacture)"
    ql_require tpm2_getrandom
    tpm_swtpm_spawn "$dir"
    TPM_LIB_PIDS+=("$TPM_SPAWN_PID")
    TPM_LIB_PORT[$name]=$TPM_SPAWN_PORT
    tpm_use "$name"
    wait_until 10 tpm2_getrandom 4 >/dev/null 2>&1 || hard_error "swtpm $name does not answer"
}

# tpm_use NAME: tpm2-tools talk to NAME's swtpm; TPM_LIB_TCTI is the same
# TCTI string for programs of our own.
tpm_use() {
    [ -n "${TPM_LIB_PORT[$1]:-}" ] || hard_error "tpm_use: swtpm $1 not started"
    TPM_LIB_TCTI="swtpm:host=127.0.0.1,port=${TPM_LIB_PORT[$1]}"
    TPM2TOOLS_TCTI=$TPM_LIB_TCTI
    export TPM_LIB_TCTI TPM2TOOLS_TCTI
}

# tpm_flush: unload transient objects, sessions and saved sessions.
tpm_flush() {
    tpm2_flushcontext -t >/dev/null 2>&1
    tpm2_flushcontext -s >/dev/null 2>&1
    tpm2_flushcontext -l >/dev/null 2>&1
    return 0
}

# tpm__run NAME STEP CMD...: a TPM step whose failure is a setup error,
# output kept in NAME's directory.
tpm__run() {
    local name=$1 step=$2 dir
    shift 2
    dir=$(tpm_dir "$name")
    "$@" >"$dir/$step.log" 2>&1 || {
        tpm_flush
        hard_error "$name: $step failed: $(tail -n 5 "$dir/$step.log")"
    }
    tpm_flush
}

# tpm_ek_read NAME: the RSA EK's certificate (DER) and public (TPM2B_PUBLIC).
tpm_ek_read() {
    local name=$1 dir
    dir=$(tpm_dir "$name")
    tpm_use "$name"
    tpm__run "$name" nvread tpm2_nvread 0x01c00002 -o "$dir/ek.der"
    tpm__run "$name" ekpub tpm2_readpublic -c "$TPM_EK_HANDLE" -o "$dir/ek.pub"
    openssl x509 -inform DER -in "$dir/ek.der" -noout 2>/dev/null ||
        hard_error "$name: NV 0x01c00002 is not a certificate"
}

# tpm_ak_create NAME [ecc|rsa]: an attestation key under the EK
# (restricted signing, ECDSA or RSASSA with SHA-256), persisted.
tpm_ak_create() {
    local name=$1 alg=${2:-ecc} dir scheme=ecdsa
    dir=$(tpm_dir "$name")
    [ "$alg" = rsa ] && scheme=rsassa
    tpm_use "$name"
    tpm2_evictcontrol -C o -c "$TPM_AK_HANDLE" >/dev/null 2>&1
    tpm_flush
    tpm__run "$name" createak tpm2_createak -C "$TPM_EK_HANDLE" -c "$dir/ak.ctx" -G "$alg" \
        -g sha256 -s "$scheme" -u "$dir/ak.pub" -n "$dir/ak.name"
    tpm__run "$name" akpersist tpm2_evictcontrol -C o -c "$dir/ak.ctx" "$TPM_AK_HANDLE"
}

# tpm_idkey_create NAME: an SRK and under it the device's identity key
# (ECC P-256, unrestricted signing, fixedTPM, fixedParent,
# sensitiveDataOrigin), both persisted; id.pub is its TPM2B_PUBLIC.
tpm_idkey_create() {
    local name=$1 dir
    dir=$(tpm_dir "$name")
    tpm_use "$name"
    tpm2_evictcontrol -C o -c "$TPM_ID_HANDLE" >/dev/null 2>&1
    tpm2_evictcontrol -C o -c "$TPM_SRK_HANDLE" >/dev/null 2>&1
    tpm_flush
    tpm__run "$name" srk tpm2_createprimary -C o -G ecc -c "$dir/srk.ctx"
    tpm__run "$name" srkpersist tpm2_evictcontrol -C o -c "$dir/srk.ctx" "$TPM_SRK_HANDLE"
    tpm__run "$name" idcreate tpm2_create -C "$TPM_SRK_HANDLE" -G ecc256:ecdsa-sha256 \
        -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" \
        -u "$dir/id.tpub" -r "$dir/id.priv"
    tpm__run "$name" idload tpm2_load -C "$TPM_SRK_HANDLE" -u "$dir/id.tpub" -r "$dir/id.priv" \
        -c "$dir/id.ctx"
    tpm__run "$name" idpersist tpm2_evictcontrol -C o -c "$dir/id.ctx" "$TPM_ID_HANDLE"
    tpm__run "$name" idpub tpm2_readpublic -c "$TPM_ID_HANDLE" -o "$dir/id.pub"
}

tpm_lib_stop() {
    local p
    for p in "${TPM_LIB_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    TPM_LIB_PIDS=()
}
