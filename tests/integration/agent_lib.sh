# shellcheck shell=bash
# Helpers for the ql-agent tests (sourced after lib.sh).  The daemon's
# device listener serves a certificate issued by the installation root
# (tls_cert = auto), so the agent pins $T/root.pem, as a device does.
#   QL_AGENT   the agent binary ($top_builddir/contrib/agent/ql-agent)

: "${QL_AGENT:=$top_builddir/contrib/agent/ql-agent}"
# shellcheck source=tpm_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tpm_lib.sh"
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
# TPM_ABRMD_ARGS: more options for tpm2-abrmd (e.g. its per-connection limits).
tpm_start() {
    ql_require swtpm tpm2-abrmd dbus-daemon tpm2_getrandom
    [ -r /usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so ] ||
        [ -n "$(find /usr/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ] ||
        skip "the tpm2-openssl provider is not installed"
    mkdir -p "$T/tpm"
    tpm_swtpm_spawn "$T/tpm"
    TPM_PIDS+=("$TPM_SPAWN_PID")
    local port=$TPM_SPAWN_PORT
    local out
    out=$(dbus-daemon --session --fork --print-address=1 --print-pid=1) ||
        hard_error "dbus-daemon did not start"
    DBUS_SESSION_BUS_ADDRESS=$(printf '%s\n' "$out" | sed -n 1p)
    TPM_PIDS+=("$(printf '%s\n' "$out" | sed -n 2p)")
    export DBUS_SESSION_BUS_ADDRESS
    # shellcheck disable=SC2086 # TPM_ABRMD_ARGS: words for tpm2-abrmd
    tpm2-abrmd --session --allow-root ${TPM_ABRMD_ARGS:-} --tcti="swtpm:host=127.0.0.1,port=$port" \
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

# ---------------------------------------------------------------- images

# agent_images_init: once the database is up.  Until the signing
# migration (010) is in this tree, the two columns the device update API
# reads are made here (as tests/integration/deploy_lib.sh does).
agent_images_init() {
    ql_psql "ALTER TABLE images ADD COLUMN IF NOT EXISTS signature_der bytea,
             ADD COLUMN IF NOT EXISTS manifest_der bytea" >/dev/null ||
        hard_error "agent_images_init: images columns"
    agent_p11_conf
}

# agent_p11_conf: an OpenSSL config loading libp11's engine on the test
# token, for signing with a project's code-signing key (it stays in the token).
agent_p11_conf() {
    local engine
    engine=$(openssl version -e | sed -nE 's/^ENGINESDIR: "(.*)"$/\1/p')/pkcs11.so
    [ -r "$engine" ] || skip "libp11's pkcs11 engine not found at $engine"
    cat >"$T/p11.cnf" <<EOC
openssl_conf = oc
[oc]
engines = es
[es]
pkcs11 = p11
[p11]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so
PIN = $HSM_PIN
init = 0
EOC
}

# cs_sign PROJECT IN OUT [detached]: CMS SignedData (DER) over IN signed on
# the token with PROJECT's code-signing key, its certificate included;
# embedded content unless "detached".
cs_sign() {
    local project=$1 in=$2 out=$3 mode=${4:-embedded} label
    label=$(ql_psql "SELECT c.key_label FROM cas c JOIN projects p ON p.id = c.project_id
                     WHERE p.name = '$project' AND c.kind = 'codesign'")
    [ -n "$label" ] || hard_error "cs_sign: project $project has no code-signing key"
    ql_psql "SELECT encode(c.cert_der, 'base64') FROM cas c JOIN projects p ON p.id = c.project_id
             WHERE p.name = '$project' AND c.kind = 'codesign'" | base64 -d |
        openssl x509 -inform DER -out "$T/cs-$project.pem" || hard_error "cs_sign: no certificate"
    local -a detach=(-nodetach)
    [ "$mode" = detached ] && detach=()
    OPENSSL_CONF=$T/p11.cnf SOFTHSM2_CONF=$T/softhsm2.conf \
        openssl cms -sign -binary "${detach[@]}" -md sha256 -in "$in" -signer "$T/cs-$project.pem" \
        -engine pkcs11 -keyform engine -inkey "pkcs11:token=quarklink;object=$label;type=private" \
        -outform DER -out "$out" >"$T/cs_sign.err" 2>&1 ||
        hard_error "cs_sign: openssl cms -sign failed: $(cat "$T/cs_sign.err")"
}

# image_new NAME VERSION KIB [key=value...]: a random image $T/NAME.bin of
# KIB KiB stored for project p1 as the upload helper's tables hold it
# (chunks of 1 MiB), with a manifest and a detached signature made on the
# token (signed: the status the signing step gives).  Options:
#   project=P (manifest's project, default p1)  signer=P (whose key, default p1)
#   hardware=JSON-array  expires=RFC3339  created=RFC3339
# Prints the image id.
image_new() {
    local name=$1 version=$2 kib=$3
    shift 3
    local project=p1 signer=p1 hardware='["hw-a","hw-b"]' arg
    local expires created
    expires=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for arg in "$@"; do
        case $arg in
            project=*) project=${arg#*=} ;;
            signer=*) signer=${arg#*=} ;;
            hardware=*) hardware=${arg#*=} ;;
            expires=*) expires=${arg#*=} ;;
            created=*) created=${arg#*=} ;;
            *) hard_error "image_new: unknown option $arg" ;;
        esac
    done
    local f="$T/$name.bin" up size sha key id
    head -c "$((kib * 1024))" /dev/urandom >"$f"
    chmod 644 "$f"
    size=$(stat -c %s "$f")
    sha=$(sha256sum "$f" | cut -d' ' -f1)
    up=$(head -c 20 /dev/urandom | base32 | tr -d = | tr '[:upper:]' '[:lower:]' | head -c 26)
    key="{$(printf '%s' "$version.0.0.0" | cut -d. -f1-4 | tr . ,)}"
    id=$(ql_psql "
        INSERT INTO uploads (id, project_id, image_name, version, version_key, upload_length,
                upload_offset, created_by, expires_at, completed_at)
            SELECT '$up', id, '$name', '$version', '$key', $size, $size, 'test',
                   now() + interval '1 day', now() FROM projects WHERE name = 'p1';
        INSERT INTO image_chunks (upload_id, variant, off, data)
            SELECT '$up', 0, o, pg_read_binary_file('$f', o, least(1048576, $size - o))
            FROM generate_series(0, $size - 1, 1048576) o;
        INSERT INTO images (project_id, name, version, version_key, upload_id, size, sha256,
                hardware, uploaded_by)
            SELECT id, '$name', '$version', '$key', '$up', $size, decode('$sha', 'hex'),
                   '{hw-a}', 'test' FROM projects WHERE name = 'p1'
            RETURNING id") || hard_error "image_new: insert failed"
    id=$(printf '%s\n' "$id" | tail -n 1)
    jq -cn --arg p "$project" --argjson id "$id" --arg n "$name" --arg v "$version" \
        --argjson s "$size" --arg h "$sha" --arg c "$created" --arg e "$expires" \
        --argjson hw "$hardware" \
        '{format: 1, project: $p, image_id: $id, name: $n, version: $v, size: $s, sha256: $h,
          created: $c, expires: $e, hardware: $hw, encrypted: false}' >"$T/$name.manifest.json"
    cs_sign "$signer" "$T/$name.manifest.json" "$T/$name.manifest.der"
    cs_sign "$signer" "$f" "$T/$name.sig.der" detached
    chmod 644 "$T/$name.manifest.der" "$T/$name.sig.der"
    # The signing step's bookkeeping columns (sql/010) when the schema has them.
    local extra=""
    if [ "$(ql_psql "SELECT count(*) FROM information_schema.columns
                     WHERE table_name = 'images' AND column_name = 'signed_by'")" = 1 ]; then
        extra=", signed_by = 'test', signed_at = now(), expires_at = '$expires'"
    fi
    ql_psql "UPDATE images SET status = 'signed',
                 manifest_der = pg_read_binary_file('$T/$name.manifest.der'),
                 signature_der = pg_read_binary_file('$T/$name.sig.der') $extra
             WHERE id = $id" >/dev/null || hard_error "image_new: signing columns"
    printf '%s\n' "$id"
}

# deploy_new IMAGE_ID: a deployment of the image to every device of p1
# through the admin API; prints its id.
deploy_new() {
    api POST /api/v1/projects/p1/deployments "{\"image\": $1}"
    [ "$HTTP_STATUS" = 201 ] || ql__fail_at 1 "create deployment of image $1: HTTP $HTTP_STATUS $(cat "$BODY")"
    jq -r .id "$BODY"
}

# dd_state DEPLOYMENT: "state|detail" of the p1 device's row.
dd_state() {
    ql_psql "SELECT state || '|' || coalesce(detail, '') FROM device_deployments
             WHERE deployment_id = $1"
}
