# shellcheck shell=bash
# bench/common.sh: shared set-up for bench/enroll and bench/ocsp, sourced.
# A private PostgreSQL cluster, a SoftHSM token and a quarklinkd with
# auto TLS certificates, all in one temporary directory that the EXIT trap
# removes together with every process started here.  Never touches
# anything outside $T; every wait is bounded.
#
# The sourcing script sets BENCH_NAME before sourcing and calls bench_init.
# Environment: BENCH_KEEP=1 keeps $T, QUARKLINKD (default src/quarklinkd),
# QL_PGBIN, BENCH_LOG_LEVEL (default warn), BENCH_POOL_SIZE (database
# pool_size; default: the daemon's default); BENCH_EXTRA_CONF (set by the
# sourcing script: more config sections, appended).  A sourcing script may
# also set BENCH_SERVER_CONF and BENCH_DEVICE_CONF to extra lines for the
# [server] and [device] sections.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DAEMON=${QUARKLINKD:-$BENCH_ROOT/src/quarklinkd}
PGBIN=${QL_PGBIN:-/usr/lib/postgresql/15/bin}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}

T=""
QL_PID=""
PG_STARTED=""
PG_PORT=""
CONNINFO=""
BENCH_PIDS=()		# other processes to stop on exit

note() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# bench_deps PACKAGE:COMMAND... (or PACKAGE:pc=PKGCONFIG_MODULE): installs
# the packages whose command or pkg-config module is missing (root only).
bench_deps() {
	local missing=() spec pkg cmd f
	for spec in "$@"; do
		pkg=${spec%%:*}
		cmd=${spec#*:}
		if [[ $cmd == pc=* ]]; then
			pkg-config --exists "${cmd#pc=}" 2>/dev/null || missing+=("$pkg")
		else
			command -v "$cmd" >/dev/null 2>&1 || [[ -x $cmd ]] || missing+=("$pkg")
		fi
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		is_root || die "missing packages; run: sudo apt-get install -y ${missing[*]}"
		note "installing ${missing[*]}"
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
	fi
	for f in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/createdb" /usr/lib/softhsm/libsofthsm2.so; do
		[[ -e $f ]] || die "$f not found"
	done
	if is_root; then
		id postgres >/dev/null 2>&1 || die "user postgres missing (package postgresql)"
	fi
	[[ $LOG_LEVEL =~ ^(debug|info|warn|error)$ ]] || die "BENCH_LOG_LEVEL: debug, info, warn or error"
	[[ -x $DAEMON ]] || die "$DAEMON not built; run ./configure && make first"
}

# stop_pid PID: SIGTERM, up to 10 s of polling, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

pg_as_owner() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

bench_cleanup() {
	local rc=$? pid
	set +e
	for pid in "${BENCH_PIDS[@]}"; do
		stop_pid "$pid"
	done
	[[ -n $QL_PID ]] && stop_pid "$QL_PID"
	[[ -n $PG_STARTED ]] &&
		pg_as_owner "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1
	if [[ -n $T && -d $T ]]; then
		if [[ ${BENCH_KEEP:-} == 1 ]]; then
			note "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

port_taken() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# A free TCP port, at most 100 tries: in 20000-59999 below the kernel's
# ephemeral range (32768 on Linux by default), where an outgoing connection
# of another process can take the port between this check and the daemon's
# bind (seen here with other test runs on the machine).
port_free() {
	local i p lo _ span=40000
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=60000
	[[ $lo -gt 21000 && $lo -lt 60000 ]] && span=$((lo - 20000))
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % span))
		port_taken "$p" || { printf '%s\n' "$p"; return 0; }
	done
	die "no free port found"
}

# wait_for TRIES CMD...: run CMD every 0.1 s until it succeeds, at most TRIES
# times; stop early when CMD returns 2 (it will never succeed).
wait_for() {
	local n=$1 i rc
	shift
	for ((i = 0; i < n; i++)); do
		rc=0
		"$@" || rc=$?
		[[ $rc -eq 0 || $rc -eq 2 ]] && return "$rc"
		sleep 0.1
	done
	return 1
}

bench_init() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	T=$(mktemp -d "/tmp/ql-$BENCH_NAME.XXXXXX")
	# Traversable (not listable) for the postgres user.
	chmod 711 "$T"
	note "working in $T"
}

setup_pg() {
	PG_PORT=$(port_free)
	mkdir "$T/pg"
	is_root && chown postgres: "$T/pg"
	chmod 700 "$T/pg"
	pg_as_owner "$PGBIN/initdb" -D "$T/pg/data" -A trust -U ql --no-sync \
	    -E UTF8 --locale=C >"$T/initdb.log" 2>&1 ||
		{ cat "$T/initdb.log" >&2; die "initdb failed"; }
	# fsync=off: durability is irrelevant for a benchmark cluster, and
	# the figures are therefore an upper bound for a real disk.
	pg_as_owner "$PGBIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w -t 30 \
	    -o "-k $T/pg -p $PG_PORT -c listen_addresses='' -c fsync=off" start >/dev/null ||
		{ cat "$T/pg/log" >&2; die "PostgreSQL did not start"; }
	PG_STARTED=1
	"$PGBIN/createdb" -h "$T/pg" -p "$PG_PORT" -U ql quarklink
	CONNINFO="host=$T/pg port=$PG_PORT user=ql dbname=quarklink"
}

# psql_q SQL: one value, unaligned.
psql_q() {
	psql -X -q -h "$T/pg" -p "$PG_PORT" -U ql -d quarklink -Atc "$1"
}

setup_softhsm() {
	mkdir -m 700 "$T/tokens"
	cat >"$T/softhsm2.conf" <<-EOF
	directories.tokendir = $T/tokens
	objectstore.backend = file
	log.level = ERROR
	EOF
	(
		umask 077
		pin=$(openssl rand -hex 16)
		printf '%s' "$pin" >"$T/pin"
		SOFTHSM2_CONF=$T/softhsm2.conf softhsm2-util --init-token --free \
		    --label quarklink --so-pin "$(openssl rand -hex 16)" --pin "$pin" >/dev/null
	)
}

# Starts quarklinkd with auto TLS certificates on admin and device and the
# pki listener; sets QL_ADMIN_PORT, QL_DEVICE_PORT, QL_PKI_PORT.  The ports
# are picked here rather than with port 0: at log_level warn the daemon does
# not log its "listening" lines.
start_quarklinkd() {
	local pool=""
	QL_ADMIN_PORT=$(port_free)
	QL_DEVICE_PORT=$(port_free)
	QL_PKI_PORT=$(port_free)
	[[ $QL_ADMIN_PORT != "$QL_DEVICE_PORT" && $QL_DEVICE_PORT != "$QL_PKI_PORT" &&
	    $QL_ADMIN_PORT != "$QL_PKI_PORT" ]] || die "port collision, run again"
	[[ -n ${BENCH_POOL_SIZE:-} ]] && pool="pool_size = $BENCH_POOL_SIZE"
	mkdir -m 700 "$T/state"
	cat >"$T/quarklinkd.conf" <<-EOF
	[server]
	log_level = $LOG_LEVEL
	log_file = quarklinkd.log
	state_dir = state
	${BENCH_SERVER_CONF:-}

	[database]
	conninfo = $CONNINFO
	$pool

	[pkcs11]
	token_label = quarklink
	pin_file = pin
	softhsm2_conf = softhsm2.conf

	[admin]
	listen = 127.0.0.1:$QL_ADMIN_PORT
	tls_cert = auto

	[device]
	listen = 127.0.0.1:$QL_DEVICE_PORT
	tls_cert = auto
	${BENCH_DEVICE_CONF:-}

	[pki]
	listen = 127.0.0.1:$QL_PKI_PORT

	${BENCH_EXTRA_CONF:-}
	EOF
	"$DAEMON" -c "$T/quarklinkd.conf" --migrate >"$T/migrate.out" 2>&1 ||
		{ cat "$T/migrate.out" >&2; die "quarklinkd --migrate failed"; }
	"$DAEMON" -c "$T/quarklinkd.conf" -f 2>"$T/quarklinkd.stderr" &
	QL_PID=$!
	# shellcheck disable=SC2317  # called through wait_for
	ql_ready() {
		kill -0 "$QL_PID" 2>/dev/null || return 2
		curl -ksf --max-time 1 -o /dev/null "https://127.0.0.1:$QL_ADMIN_PORT/readyz"
	}
	wait_for 300 ql_ready ||
		{ cat "$T/quarklinkd.stderr" "$T/quarklinkd.log" >&2 2>/dev/null; die "quarklinkd did not become ready"; }
	curl -sf --max-time 5 "http://127.0.0.1:$QL_PKI_PORT/pki/ca/root.crt" |
	    openssl x509 -inform DER -out "$T/root.pem" ||
		die "could not fetch the root CA from the pki listener"
	# From here on the device listener must verify against the root.
	curl -sf --max-time 5 --cacert "$T/root.pem" -o /dev/null \
	    "https://127.0.0.1:$QL_DEVICE_PORT/.well-known/est/nonexistent-project/cacerts" ||
		[[ $? -eq 22 ]] || die "device listener's auto certificate does not verify against the root"
}

ql_admin() {
	"$DAEMON" -c "$T/quarklinkd.conf" admin "$@"
}

# new_project NAME: creates it with the token policy; sets TOKEN.
new_project() {
	ql_admin create-project "$1" token >"$T/create-project.out" 2>&1 ||
		{ cat "$T/create-project.out" >&2; die "admin create-project $1 failed"; }
	TOKEN=$(ql_admin create-token "$1" "${2:-1000000}" 30 2>"$T/create-token.err") ||
		{ cat "$T/create-token.err" >&2; die "admin create-token $1 failed"; }
	[[ -n $TOKEN && $TOKEN != *$'\n'* ]] || die "admin create-token printed no single-line secret"
}

# signing_columns: the two image columns the update API reads, made here
# when the signing migration (010) is not in this tree yet.
signing_columns() {
	psql_q "ALTER TABLE images ADD COLUMN IF NOT EXISTS signature_der bytea,
	    ADD COLUMN IF NOT EXISTS manifest_der bytea" >/dev/null
}

# build_tool NAME: compiles bench/NAME.c into $T/NAME.
build_tool() {
	local libs
	libs=$(pkg-config --cflags --libs libevent libevent_openssl openssl) ||
		die "pkg-config cannot find libevent / libevent_openssl / openssl"
	# shellcheck disable=SC2086
	cc -O2 -Wall -Wextra -o "$T/$1" "$BENCH_ROOT/bench/$1.c" \
	    "$BENCH_ROOT/bench/loadgen.c" $libs ||
		die "cannot compile bench/$1.c"
}

# enroll_one NAME: key, CSR and EST simpleenroll with curl; writes
# $T/NAME.key, $T/NAME.pem.
enroll_one() {
	local n=$1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/$n.key" -subj "/CN=$n" -outform DER 2>/dev/null |
	    base64 -w0 >"$T/$n.csr.b64"
	curl -sf --max-time 10 --cacert "$T/root.pem" -u "$n:$TOKEN" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$T/$n.csr.b64" \
	    "https://127.0.0.1:$QL_DEVICE_PORT/.well-known/est/bench/simpleenroll" \
	    >"$T/$n.p7.b64" || die "enrollment of $n failed"
	base64 -d <"$T/$n.p7.b64" | openssl pkcs7 -inform DER -print_certs |
	    openssl x509 -out "$T/$n.pem" || die "enrollment of $n: no certificate in the answer"
}

# ticks PID...: utime+stime of those processes in clock ticks (gone ones: 0).
ticks() {
	local pid sum=0 line rest
	local -a f
	for pid in "$@"; do
		line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		rest=${line##*) }	# comm may hold spaces and parentheses
		read -r -a f <<<"$rest"
		sum=$((sum + f[11] + f[12]))
	done
	printf '%s\n' "$sum"
}

# PostgreSQL of this cluster: the postmaster with the reaped children it
# accounts for (cutime+cstime), plus every live child.
pg_ticks() {
	local pm line rest sum
	local -a f
	pm=$(head -n1 "$T/pg/data/postmaster.pid")
	line=$(cat "/proc/$pm/stat") || { echo 0; return; }
	rest=${line##*) }
	read -r -a f <<<"$rest"
	sum=$((f[11] + f[12] + f[13] + f[14]))
	# shellcheck disable=SC2046
	sum=$((sum + $(ticks $(pgrep -P "$pm"))))
	printf '%s\n' "$sum"
}

# Busy ticks of the whole machine, all cores: user nice system irq softirq
# (not idle, iowait, or steal, which is the hypervisor's).
machine_ticks() {
	local -a f
	read -r -a f </proc/stat
	echo $((f[1] + f[2] + f[3] + f[6] + f[7]))
}

now_ns() { date +%s%N; }
