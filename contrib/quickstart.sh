#!/usr/bin/env bash
# quickstart.sh: install the Debian packages quarklink needs, build it, and run
# quarklinkd from the checkout with a private PostgreSQL cluster and SoftHSM
# token under var/; quarklinkd issues its own TLS certificates (tls_cert =
# auto).  It then creates project demo, an enrollment token for it and
# var/root.crt, and prints a command that enrolls a device over EST.  Apart
# from installing packages, it never touches the system PostgreSQL cluster or
# anything under /etc.
#
#   contrib/quickstart.sh [start]   install, build, set up var/, start quarklinkd
#   contrib/quickstart.sh stop      stop quarklinkd and the private PostgreSQL
#   contrib/quickstart.sh check     install, build, run the test stages (CI
#                                   entry point, .ci/run), each timed:
#       check  make check in the source tree
#       asan   make check again in build-asan/, a clang build with
#              -fsanitize=address,undefined of a "make distdir" copy
#              (build-dist/): any ASan, UBSan or LSan report fails
#       fuzz   every fuzz/fuzz_*.c target, built in build-fuzz/ with clang's
#              libFuzzer, for FUZZ_SECONDS (60) each from its seed corpus
#              fuzz/corpus/NAME/
#     CHECK_STAGES="check asan fuzz" (the default) picks stages, e.g.
#     CHECK_STAGES=check for a quick local run; CHECK_JOBS=N sets make's -j
#     (default nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# Everything below writes under $ROOT/var: make sure this is the checkout.
[[ -f $ROOT/configure.ac && -f $ROOT/contrib/quickstart.sh ]] ||
	{ echo "quickstart: $ROOT is not a quarklink source tree" >&2; exit 1; }
VAR=$ROOT/var
PGBIN=/usr/lib/postgresql/15/bin
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
CONF=$VAR/quarklinkd.conf
DAEMON=$ROOT/src/quarklinkd

PACKAGES=(build-essential autoconf automake libtool pkg-config libevent-dev
	libssl-dev libpq-dev libyajl-dev check postgresql softhsm2 opensc
	libengine-pkcs11-openssl libp11-dev libp11-kit-dev libargon2-dev
	libcurl4-openssl-dev curl openssl ca-certificates jq
	swtpm swtpm-tools tpm2-tools tpm2-openssl libtss2-dev tpm2-abrmd
	libtss2-tcti-tabrmd0 dbus
	python3 python3-cryptography python3-tpm2-pytss systemd clang libclang-rt-14-dev
	llvm chromium)
# swtpm ... dbus: a software TPM behind tpm2-abrmd for ql-agent's tpm2 key
# store tests (t_agent_tpm.sh) and the tpm2-openssl provider it uses;
# python3-cryptography: the independent decoder of encrypted images in
# t_image_encrypt.sh and t_deploy.sh, and t_agent_hostile.sh's encryptor.
# python3-tpm2-pytss: ESAPI from Python for tests/integration/attest_client.py,
# the independent device side of TPM attestation that t_attest.sh drives.
# python3: the sd_notify receiver of t_notify.sh; systemd: systemd-analyze
# for t_service.sh; clang, libclang-rt-14-dev (sanitizer and libFuzzer
# runtimes) and llvm (llvm-symbolizer for readable stacks): asan and fuzz.
# chromium: the headless browser of tests/browser (driven by playwright-core).

say() { printf 'quickstart: %s\n' "$*"; }
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# --- packages ---------------------------------------------------------------

deps_install() {
	local p st missing=()

	if ! command -v dpkg >/dev/null 2>&1; then
		say "no dpkg: not Debian; make sure these are installed: ${PACKAGES[*]}"
		return 0
	fi
	# Node.js runs the OpenAPI validator of make check; any packaging of it
	# will do (Debian's, or NodeSource's nodejs that bundles npm).
	{ command -v node && command -v npm; } >/dev/null 2>&1 || missing+=(nodejs npm)
	for p in "${PACKAGES[@]}"; do
		# dpkg -s succeeds for removed-but-not-purged packages too; read
		# Status.  (No "| grep -q": with pipefail an early grep exit can
		# kill dpkg with SIGPIPE and fail the test.)
		st=$(dpkg -s "$p" 2>/dev/null) || st=
		if [[ $'\n'$st$'\n' != *$'\nStatus: install ok installed\n'* ]]; then
			missing+=("$p")
		fi
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0

	if ! is_root; then
		say "missing packages; run this, then run the quick start again:"
		printf '  sudo apt-get install -y %s\n' "${missing[*]}"
		exit 1
	fi
	say "installing: ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# PostgreSQL, SoftHSM and the tools the integration tests drive.
tools_check() {
	local f
	for f in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/postgres" "$PGBIN/psql" \
	    "$PGBIN/createdb" "$SOFTHSM_MODULE"; do
		[[ -e $f ]] || die "$f not found (is PostgreSQL 15 / softhsm2 installed?)"
	done
	for f in softhsm2-util pkcs11-tool openssl curl base64 jq python3 \
	    systemd-analyze clang chromium; do
		command -v "$f" >/dev/null 2>&1 || die "$f not found in PATH"
	done
	if is_root; then
		id postgres >/dev/null 2>&1 ||
			die "user postgres missing (it comes with the postgresql package)"
		command -v runuser >/dev/null 2>&1 || die "runuser not found"
	fi
}

# --- build ------------------------------------------------------------------

# The npm packages of package.json (the UI's vendored libraries, the
# browser tests' driver, tus-js-client for t_tus_js.sh) into $ROOT/node_modules, exactly as locked; the
# out-of-tree builds of the check stages find them through QL_NODE_MODULES.
npm_install() {
	cd "$ROOT"
	if [[ -f node_modules/.package-lock.json ]] &&
	    cmp -s package-lock.json node_modules/.ql-package-lock.json; then
		return 0
	fi
	say "installing the npm packages of package-lock.json"
	npm ci --no-audit --no-fund --loglevel=error ||
		die "npm ci failed (the web UI and its browser tests need these packages)"
	cp package-lock.json node_modules/.ql-package-lock.json
}
export QL_NODE_MODULES="$ROOT/node_modules"

build() {
	cd "$ROOT"
	npm_install
	# Makefile.in too: an interrupted autoreconf can leave configure alone.
	[[ -x configure && -f Makefile.in ]] || autoreconf -fi
	[[ -f Makefile ]] || ./configure
	make -j"$(nproc)"
	[[ -x $DAEMON ]] || die "build finished but $DAEMON is missing"
}

# --- ports ------------------------------------------------------------------

# True if something listens on TCP port $1 (any address).
port_taken() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# Print $1 if free, else the first free port above it; ports in $2 (a space
# separated list) are treated as taken.  Bounded to 200 candidates.
port_pick() {
	local p=$1 avoid=" ${2:-} " i
	for ((i = 0; i < 200; i++, p++)); do
		[[ $avoid == *" $p "* ]] && continue
		port_taken "$p" && continue
		printf '%s\n' "$p"
		return 0
	done
	die "no free TCP port found from $1 to $p"
}

# PostgreSQL with listen_addresses='' opens no TCP port; still skip ports that
# another cluster uses (TCP or the usual socket directories) to avoid confusion.
pg_port_pick() {
	local p=$1 i
	for ((i = 0; i < 200; i++, p++)); do
		port_taken "$p" && continue
		[[ -e /var/run/postgresql/.s.PGSQL.$p || -e /tmp/.s.PGSQL.$p ]] && continue
		printf '%s\n' "$p"
		return 0
	done
	die "no free PostgreSQL port found from $1 to $p"
}

# --- config file reading ----------------------------------------------------

# conf_get SECTION KEY FILE: print the value of KEY in [SECTION], if set.
conf_get() {
	awk -v s="$1" -v k="$2" '
		/^[ \t]*[#;]/ { next }
		/^[ \t]*\[/ { sec = $0; gsub(/^[ \t]*\[[ \t]*|[ \t]*\][ \t]*$/, "", sec); next }
		sec == s {
			i = index($0, "="); if (i == 0) next
			key = substr($0, 1, i - 1); gsub(/^[ \t]+|[ \t]+$/, "", key)
			if (key != k) next
			v = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v)
			print v; exit
		}' "$3"
}

# A path from the config, resolved like the daemon does (relative to $VAR).
conf_path() {
	local v
	v=$(conf_get "$1" "$2" "$CONF")
	[[ -z $v ]] && return 0
	[[ $v == /* ]] && printf '%s\n' "$v" || printf '%s\n' "$VAR/$v"
}

# --- PostgreSQL -------------------------------------------------------------

PGDIR=""
PGPORT=""

# Run a PostgreSQL server program as the owner of the cluster directory:
# initdb and postgres refuse to run as root.
pg_as_owner() {
	local owner
	owner=$(stat -c %U "$PGDIR")
	if is_root && [[ $owner != root ]]; then
		(cd / && runuser -u "$owner" -- "$@")
	else
		"$@"
	fi
}

# Find the cluster directory from an earlier run; print nothing if none.
pg_find() {
	local d
	if [[ -f $VAR/pgdir ]]; then
		d=$(<"$VAR/pgdir")
		[[ -n $d && -d $d/data ]] && { printf '%s\n' "$d"; return 0; }
	fi
	[[ -d $VAR/pg/data ]] && printf '%s\n' "$VAR/pg"
	return 0
}

pg_setup() {
	PGDIR=$(pg_find)
	if [[ -n $PGDIR ]]; then
		# An existing cluster's own configuration says which port it uses.
		PGPORT=$(sed -n "s/^port = \([0-9]*\)$/\1/p" \
		    "$PGDIR/data/postgresql.conf" | tail -n 1)
		[[ -n $PGPORT ]] || die "no port in $PGDIR/data/postgresql.conf"
	else
		[[ -f $VAR/pgport ]] && PGPORT=$(<"$VAR/pgport")
		if [[ -z $PGPORT ]] || port_taken "$PGPORT"; then
			PGPORT=$(pg_port_pick 5433)
		fi
		if is_root; then
			# The checkout may sit under a mode-700 home the postgres user
			# cannot reach, so the cluster lives under /tmp; var/pgdir
			# remembers where.  A reboot that clears /tmp loses it; the
			# next run then makes a fresh one and re-applies migrations.
			PGDIR=
			[[ -f $VAR/pgdir ]] && PGDIR=$(<"$VAR/pgdir")
			if [[ -z $PGDIR || ! -d $PGDIR ]]; then
				PGDIR=$(mktemp -d /tmp/quarklink-pg.XXXXXX)
				printf '%s\n' "$PGDIR" >"$VAR/pgdir"
			fi
			chown postgres: "$PGDIR"
		else
			PGDIR=$VAR/pg
			mkdir -p "$PGDIR"
		fi
		# sun_path holds 107 bytes; the socket is $PGDIR/.s.PGSQL.$PGPORT.
		[[ ${#PGDIR} -le 90 ]] ||
			die "socket directory $PGDIR is too long for a unix socket; use a shorter checkout path"
		chmod 700 "$PGDIR"
		say "creating PostgreSQL cluster in $PGDIR/data (port $PGPORT)"
		pg_as_owner "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U ql \
		    -E UTF8 --locale=C.UTF-8 >"$VAR/initdb.log" 2>&1 ||
			{ cat "$VAR/initdb.log" >&2; die "initdb failed"; }
		# Unix socket only, in the cluster's own mode-700 directory, so
		# trust authentication reaches no other user.  fsync stays on.
		cat >>"$PGDIR/data/postgresql.conf" <<-EOF

		# quarklink quick start
		listen_addresses = ''
		port = $PGPORT
		unix_socket_directories = '$PGDIR'
		EOF
	fi
	printf '%s\n' "$PGPORT" >"$VAR/pgport"

	if pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		say "PostgreSQL already running ($PGDIR, port $PGPORT)"
	else
		say "starting PostgreSQL ($PGDIR, port $PGPORT)"
		pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgresql.log" \
		    -w -t 30 start >/dev/null ||
			{ tail -n 20 "$PGDIR/postgresql.log" >&2 || true
			  die "PostgreSQL did not start; log: $PGDIR/postgresql.log"; }
	fi

	if [[ $("$PGBIN/psql" -X -h "$PGDIR" -p "$PGPORT" -U ql -d postgres -tAc \
	    "SELECT 1 FROM pg_database WHERE datname = 'quarklink'") != 1 ]]; then
		say "creating database quarklink"
		"$PGBIN/createdb" -h "$PGDIR" -p "$PGPORT" -U ql quarklink
	fi
}

pg_stop() {
	PGDIR=$(pg_find)
	if [[ -z $PGDIR ]]; then
		say "no PostgreSQL cluster under var/"
		return 0
	fi
	if [[ ! -x $PGBIN/pg_ctl ]]; then
		say "$PGBIN/pg_ctl missing; cannot stop the cluster in $PGDIR"
		return 0
	fi
	if pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		say "stopping PostgreSQL ($PGDIR)"
		pg_as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 60 stop >/dev/null
	else
		say "PostgreSQL not running ($PGDIR)"
	fi
}

# --- SoftHSM ----------------------------------------------------------------

softhsm_setup() {
	local so_pin pin slots

	mkdir -p "$VAR/tokens"
	chmod 700 "$VAR/tokens"
	# Rewritten each run: the token directory must be absolute and follows
	# the checkout if it moves.
	cat >"$VAR/softhsm2.conf" <<-EOF
	# written by contrib/quickstart.sh
	directories.tokendir = $VAR/tokens
	objectstore.backend = file
	log.level = ERROR
	EOF

	slots=$(SOFTHSM2_CONF=$VAR/softhsm2.conf softhsm2-util --show-slots 2>/dev/null) ||
		die "softhsm2-util --show-slots failed with $VAR/softhsm2.conf"
	if grep -Eq '^[[:space:]]*Label:[[:space:]]+quarklink[[:space:]]*$' <<<"$slots"; then
		[[ -s $VAR/pin ]] || die "token quarklink exists in var/tokens but var/pin" \
		    "is missing; remove var/tokens to start over with a new token"
		say "SoftHSM token quarklink already initialised"
		return 0
	fi

	say "initialising SoftHSM token quarklink in $VAR/tokens"
	(
		umask 077
		so_pin=$(openssl rand -hex 16)
		pin=$(openssl rand -hex 16)
		# No trailing newline: the file holds exactly the PIN.
		printf '%s' "$pin" >"$VAR/pin"
		# The SO PIN is not kept: to recover from a locked user PIN,
		# delete var/tokens and var/pin and run the quick start again.
		SOFTHSM2_CONF=$VAR/softhsm2.conf softhsm2-util --init-token --free \
		    --label quarklink --so-pin "$so_pin" --pin "$pin" >/dev/null
	)
	chmod 600 "$VAR/pin"
}

# --- quarklinkd.conf --------------------------------------------------------

conf_setup() {
	local conninfo old admin device pki

	conninfo="host=$PGDIR port=$PGPORT user=ql dbname=quarklink"
	if [[ -f $CONF ]]; then
		# The cluster may have moved (a new /tmp directory after a reboot):
		# follow it if the line is still the one this script wrote.
		old=$(conf_get database conninfo "$CONF")
		if [[ $old != "$conninfo" ]]; then
			if [[ $old =~ ^host=[^\ ]+\ port=[0-9]+\ user=ql\ dbname=quarklink$ ]]; then
				say "updating database.conninfo in var/quarklinkd.conf: $conninfo"
				sed -i "s|^conninfo = host=.* user=ql dbname=quarklink\$|conninfo = $conninfo|" "$CONF"
			else
				say "note: var/quarklinkd.conf has conninfo '$old'; the private cluster is '$conninfo'"
			fi
		fi
		# Earlier quick starts pointed both listeners at a self-signed
		# var/tls.crt; quarklinkd now issues its own from the root CA.
		if grep -Eq '^tls_(cert|key) = tls\.(crt|key)$' "$CONF"; then
			say "switching var/quarklinkd.conf to tls_cert = auto (var/tls.* are no longer used)"
			sed -i -e 's|^tls_cert = tls\.crt$|tls_cert = auto|' \
			    -e '/^tls_key = tls\.key$/d' "$CONF"
		fi
		return 0
	fi

	admin=$(port_pick 8443)
	device=$(port_pick 8444 "$admin")
	pki=$(port_pick 8080 "$admin $device")
	say "writing var/quarklinkd.conf"
	cat >"$CONF" <<-EOF
	# quarklinkd configuration written by contrib/quickstart.sh.
	# Relative paths are relative to this file's directory (var/).
	# Every option: man/quarklinkd.conf.5 and etc/quarklinkd.conf.
	# tls_cert = auto: quarklinkd issues the listeners' certificates from its
	# root CA (var/admin-auto.crt, var/device-auto.crt; trust var/root.crt).

	[server]
	log_level = info
	log_file = quarklinkd.log
	pid_file = quarklinkd.pid

	[database]
	conninfo = $conninfo

	[pkcs11]
	module = $SOFTHSM_MODULE
	token_label = quarklink
	pin_file = pin
	softhsm2_conf = softhsm2.conf

	[admin]
	listen = 127.0.0.1:$admin
	tls_cert = auto
	# The web UI from the checkout (www/vendor is built by make).
	www_dir = $ROOT/www

	[device]
	listen = 127.0.0.1:$device
	tls_cert = auto

	[pki]
	listen = 127.0.0.1:$pki
	EOF
}

# --- quarklinkd -------------------------------------------------------------

# Print the pid of the running quarklinkd, or nothing.
daemon_pid() {
	local pidfile pid
	pidfile=$(conf_path server pid_file)
	[[ -n $pidfile && -s $pidfile ]] || return 0
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	# comm may be lt-quarklinkd when src/quarklinkd is a libtool wrapper.
	if kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == *quarklinkd ]]; then
		printf '%s\n' "$pid"
	fi
}

# listen_addr NAME [LOGOFFSET]: host:port a listener really uses.  The daemon
# logs "listening NAME ADDR" at start (the real port, even for port 0); fall
# back to the config when the log has no such line.
listen_addr() {
	local name=$1 off=${2:-0} log addr=
	log=$(conf_path server log_file)
	if [[ -n $log && -f $log ]]; then
		addr=$(tail -c +"$((off + 1))" "$log" |
		    awk -v n="$name" '$2 == "info" && $3 == "listening" && $4 == n { a = $5 } END { print a }')
	fi
	[[ -n $addr ]] || addr=$(conf_get "$name" listen "$CONF")
	[[ -n $addr ]] || return 0
	case $addr in
	0.0.0.0:*) addr=127.0.0.1:${addr#0.0.0.0:} ;;
	"[::]:"*) addr="[::1]:${addr#\[::\]:}" ;;
	esac
	printf '%s\n' "$addr"
}

listener_enabled() {
	case $(conf_get "$1" enabled "$CONF") in
	no | false | off | 0) return 1 ;;
	esac
	return 0
}

# Offset in the log file where this start's lines begin (0: read the whole
# log, whose last "listening" lines are the running daemon's).
LOGOFF=0

# Show the log lines of this start on stderr (after a failure).
log_tail() {
	local log
	log=$(conf_path server log_file)
	if [[ -n $log && -f $log ]]; then
		say "last lines of $log:" >&2
		tail -c +"$((LOGOFF + 1))" "$log" | tail -n 20 >&2
	fi
}

print_urls() {
	local a log
	say "quarklinkd is running (pid $(daemon_pid))"
	if listener_enabled admin; then
		a=$(listen_addr admin "$LOGOFF")
		if [[ -s $VAR/root.crt ]]; then
			printf '  admin   https://%s/   (try: curl --cacert %s https://%s/readyz)\n' \
			    "$a" "$VAR/root.crt" "$a"
		else
			printf '  admin   https://%s/   (try: curl -k https://%s/readyz)\n' "$a" "$a"
		fi
	fi
	if listener_enabled device; then
		a=$(listen_addr device "$LOGOFF")
		printf '  device  https://%s/\n' "$a"
	fi
	if listener_enabled pki; then
		a=$(listen_addr pki "$LOGOFF")
		printf '  pki     http://%s/   (root CA: http://%s/pki/ca/root.crt)\n' "$a" "$a"
	fi
	log=$(conf_path server log_file)
	printf '  log     %s\n' "${log:-stderr/syslog (log_file not set)}"
	printf '  config  %s\n' "$CONF"
	printf '  stop    %s stop\n' "$0"
}

daemon_start() {
	local log addr i

	if [[ -n $(daemon_pid) ]]; then
		say "quarklinkd already running"
		return 0
	fi

	say "checking the configuration"
	"$DAEMON" -c "$CONF" -t || die "fix $CONF (see quarklinkd.conf(5)) and run again"
	say "applying database migrations"
	"$DAEMON" -c "$CONF" --migrate || die "quarklinkd --migrate failed"

	log=$(conf_path server log_file)
	LOGOFF=0
	[[ -n $log && -f $log ]] && LOGOFF=$(stat -c %s "$log")
	say "starting quarklinkd"
	# The parent exits 0 only once the child serves, 1 if start-up failed
	# (first start: creating the root CA and the TLS certificates).
	if ! "$DAEMON" -c "$CONF"; then
		log_tail
		die "quarklinkd failed to start; log: ${log:-syslog}"
	fi

	# Serving already; still make sure the admin listener answers (bounded:
	# at most 20 polls, about 5 seconds).
	listener_enabled admin || return 0
	for ((i = 0; i < 20; i++)); do
		addr=$(listen_addr admin "$LOGOFF")
		curl -gksf --max-time 1 "https://$addr/readyz" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	log_tail
	die "quarklinkd started but GET https://$addr/readyz does not answer 200"
}

# --- demo project -----------------------------------------------------------

# Project demo (policy: enrollment token) and a token for it in var/demo.token.
demo_setup() {
	local out rc=0 token=$VAR/demo.token

	out=$("$DAEMON" -c "$CONF" admin create-project demo token 2>&1) || rc=$?
	if [[ $rc -eq 0 ]]; then
		say "created project demo (enrollment policy: token)"
		# A token kept from an earlier database cannot belong to it.
		rm -f "$token"
	elif [[ $out == *"project already exists"* ]]; then
		say "project demo already exists"
	else
		die "cannot create project demo: $out"
	fi

	if [[ -s $token ]]; then
		chmod 600 "$token"
		return 0
	fi
	say "creating an enrollment token for demo in var/demo.token (1000 uses, 365 days)"
	rm -f "$token.tmp"
	(umask 077 && "$DAEMON" -c "$CONF" admin create-token demo 1000 365 >"$token.tmp") ||
		{ rm -f "$token.tmp"; die "quarklinkd admin create-token demo failed"; }
	[[ -s $token.tmp ]] || { rm -f "$token.tmp"; die "admin create-token printed nothing"; }
	chmod 600 "$token.tmp"
	mv -f "$token.tmp" "$token"
}

# The first admin user; its generated password is printed once by the
# daemon and kept in var/admin.credentials (mode 0600) as username:password.
admin_setup() {
	local cred=$VAR/admin.credentials pw out rc=0

	if [[ -s $cred ]]; then
		chmod 600 "$cred"
		say "admin credentials in var/admin.credentials"
		return 0
	fi
	pw=$("$DAEMON" -c "$CONF" --create-admin admin 2>&1) || rc=$?
	if [[ $rc -ne 0 ]]; then
		out=$pw
		[[ $out == *"already exists"* || $out == *"duplicate"* ]] &&
			die "user admin exists but var/admin.credentials is gone; reset its password with the API or remove var/ to start over"
		die "cannot create the admin user: $out"
	fi
	(umask 077 && printf 'admin:%s\n' "$pw" >"$cred.tmp") && mv -f "$cred.tmp" "$cred"
	say "created admin user: admin / $pw (kept in var/admin.credentials)"
}

# The root CA certificate as PEM in var/root.crt, fetched on every start:
# a new database means a new root.
root_fetch() {
	local a

	if ! listener_enabled pki; then
		say "pki listener disabled: not downloading var/root.crt"
		return 0
	fi
	a=$(listen_addr pki "$LOGOFF")
	rm -f "$VAR/root.crt.tmp"
	curl -gsSf --max-time 10 "http://$a/pki/ca/root.crt" |
	    openssl x509 -inform DER -out "$VAR/root.crt.tmp" ||
		{ rm -f "$VAR/root.crt.tmp"; die "cannot download the root CA from http://$a/pki/ca/root.crt"; }
	chmod 644 "$VAR/root.crt.tmp"
	mv -f "$VAR/root.crt.tmp" "$VAR/root.crt"
	say "root CA certificate in var/root.crt ($(openssl x509 -in "$VAR/root.crt" -noout -subject))"
}

# A device enrollment anyone can paste: new P-256 key and CSR, EST
# simpleenroll with the demo token, the certificate printed as PEM.
print_recipe() {
	local a

	listener_enabled device && [[ -s $VAR/root.crt && -s $VAR/demo.token ]] || return 0
	a=$(listen_addr device "$LOGOFF")
	say "enroll a device in project demo over EST (key in var/device1.key):"
	printf '  cd %q\n' "$ROOT"
	printf '  %s | base64 | %s | base64 -d | openssl pkcs7 -inform DER -print_certs\n' \
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout var/device1.key -subj /CN=device1 -outform DER" \
	    "curl -sSf --cacert var/root.crt -u \"device1:\$(cat var/demo.token)\" -H 'Content-Type: application/pkcs10' --data-binary @- https://$a/.well-known/est/demo/simpleenroll"
	say "the device ID (the certificate's CN) of that key:"
	printf '  %s\n' "openssl pkey -in var/device1.key -pubout -outform DER | openssl dgst -sha256 -binary | head -c 20 | base32 | tr -d = | tr A-Z a-z"
}

daemon_stop() {
	local pid i pidfile
	[[ -f $CONF ]] || { say "no var/quarklinkd.conf; nothing to stop"; return 0; }
	pid=$(daemon_pid)
	pidfile=$(conf_path server pid_file)
	if [[ -z $pid ]]; then
		say "quarklinkd not running"
		[[ -n $pidfile ]] && rm -f "$pidfile"
		return 0
	fi
	say "stopping quarklinkd (pid $pid)"
	kill -TERM "$pid"
	# shutdown_timeout defaults to 10 s; allow 20 s, polled.
	for ((i = 0; i < 80; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "quarklinkd (pid $pid) did not exit after 20 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	[[ -n $pidfile ]] && rm -f "$pidfile"
	return 0
}

# --- tests ------------------------------------------------------------------

# print_test_logs DIR: the test-suite.log (the logs of every failed test)
# under build tree DIR; the source tree's own excludes var/ and build-*/.
print_test_logs() {
	local dir=$1 f skip=$1/var found=
	# From the source tree, the out-of-tree builds' logs are not ours.
	[[ $dir == "$ROOT" ]] && skip="$ROOT/build-*"
	while IFS= read -r -d '' f; do
		found=1
		printf '\n===== %s =====\n' "${f#"$ROOT"/}"
		cat "$f"
	done < <(find "$dir" \( -path "$ROOT/var" -o -path "$skip" \) -prune -o \
	    -name test-suite.log -print0)
	[[ -n $found ]] || say "no test-suite.log under $dir (did the tests build?)"
}

# check_make DIR: make check in build tree DIR; the logs of failed tests
# follow a failure.  The tests are parallel-safe (own temp dirs, allocated
# ports); CHECK_JOBS=1 runs them one at a time.
check_make() {
	local rc=0
	make -C "$1" -j"${CHECK_JOBS:-$(nproc)}" check || rc=$?
	if [[ $rc -ne 0 ]]; then
		say "make check in $1 failed (exit $rc); test logs follow" >&2
		print_test_logs "$1"
	fi
	return "$rc"
}

stage_check() {
	check_make "$ROOT"
}

# The sanitizer and fuzz builds are out-of-tree (VPATH) builds, which
# configure refuses next to an in-tree one: they build a "make distdir"
# copy of the sources, which also proves the distribution complete.
dist_tree() {
	local dist=$ROOT/build-dist
	[[ -n ${DIST_DONE:-} ]] && return 0
	rm -rf "$dist"
	make -C "$ROOT" -s distdir distdir="$dist" >/dev/null ||
		{ say "make distdir failed"; return 1; }
	DIST_DONE=1
}

# vpath_configure DIR ARGS...: configure build tree DIR from build-dist/
# (again only when the arguments changed).
vpath_configure() {
	local dir=$1 args
	shift
	args="$*"
	mkdir -p "$dir"
	if [[ -f $dir/Makefile && -f $dir/.ql-configure && $(<"$dir/.ql-configure") == "$args" ]]; then
		return 0
	fi
	(cd "$dir" && "$ROOT/build-dist/configure" -q "$@") ||
		{ say "configure in $dir failed (see $dir/config.log)"; return 1; }
	printf '%s\n' "$args" >"$dir/.ql-configure"
}

# clang, not gcc: gcc's UBSan ignores log_path, and the harness reads
# every process's reports from there (tests/integration/lib.sh).  Every
# report stops the process (halt_on_error, -fno-sanitize-recover=all) and
# fails the test; LSan's suppressions come from tests/lsan.supp.
stage_asan() {
	local dir=$ROOT/build-asan san="-fsanitize=address,undefined"
	dist_tree || return 1
	vpath_configure "$dir" CC=clang \
	    CFLAGS="$san -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1" \
	    LDFLAGS="$san" || return 1
	make -C "$dir" -j"${CHECK_JOBS:-$(nproc)}" >/dev/null || return 1
	ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0" \
	UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
	QL_TIMEOUT_SCALE=${QL_TIMEOUT_SCALE:-3} \
	    check_make "$dir"
}

# Each fuzz/fuzz_NAME.c is a target with seeds in fuzz/corpus/NAME/ and an
# optional fuzz/NAME.dict.  New inputs go to build-fuzz/corpus/NAME (the
# first directory libFuzzer is given), never into the seeds; a crash leaves
# build-fuzz/artifacts/NAME-crash-* and fails the stage.
stage_fuzz() {
	local dir=$ROOT/build-fuzz src=$ROOT/build-dist secs=${FUZZ_SECONDS:-60}
	local c name t rc=0 stats
	local -a targets=() args
	dist_tree || return 1
	vpath_configure "$dir" --enable-fuzzing CC=clang || return 1
	for c in "$src"/fuzz/fuzz_*.c; do
		targets+=("$(basename "$c" .c)")
	done
	[[ ${#targets[@]} -gt 0 ]] || { say "no fuzz targets in fuzz/"; return 1; }
	make -C "$dir" -j"${CHECK_JOBS:-$(nproc)}" "${targets[@]/#/fuzz/}" >/dev/null || return 1
	mkdir -p "$dir/artifacts"
	for t in "${targets[@]}"; do
		name=${t#fuzz_}
		if [[ ! -d $src/fuzz/corpus/$name ]]; then
			say "fuzz: $t has no seed corpus fuzz/corpus/$name/"
			rc=1
			continue
		fi
		mkdir -p "$dir/corpus/$name"
		args=(-max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048
		    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$name-")
		[[ -f $src/fuzz/$name.dict ]] && args+=(-dict="$src/fuzz/$name.dict")
		if ! LSAN_OPTIONS="suppressions=$src/tests/lsan.supp" \
		    "$dir/fuzz/$t" "${args[@]}" "$dir/corpus/$name" "$src/fuzz/corpus/$name" \
		    >"$dir/$t.log" 2>&1; then
			say "fuzz: $t FAILED; last lines of $dir/$t.log:"
			tail -n 60 "$dir/$t.log"
			rc=1
			continue
		fi
		stats=$(awk '/^stat::number_of_executed_units:/ { n = $2 }
		    /^stat::peak_rss_mb:/ { r = $2 }
		    END { printf "%s runs, peak RSS %s MB", n, r }' "$dir/$t.log")
		say "fuzz: $t: ${secs} s, $stats, corpus $(find "$dir/corpus/$name" -type f | wc -l) inputs"
	done
	return "$rc"
}

# run_stage NAME: run stage_NAME, print how long it took, and remember the
# result for the summary (the other stages run even when one fails).
STAGE_SUMMARY=()
STAGE_FAILED=0
run_stage() {
	local name=$1 t0 rc=0 status=ok
	t0=$(date +%s)
	say "stage $name: started $(date -u +%H:%M:%S)"
	"stage_$name" || rc=$?
	[[ $rc -eq 0 ]] || { status="FAILED (exit $rc)"; STAGE_FAILED=1; }
	STAGE_SUMMARY+=("$(printf '%-6s %5d s  %s' "$name" "$(($(date +%s) - t0))" "$status")")
	say "stage $name: ${STAGE_SUMMARY[-1]#"$name"}"
}

run_check() {
	local s t0 stages=${CHECK_STAGES:-check asan fuzz}
	t0=$(date +%s)
	for s in $stages; do
		declare -F "stage_$s" >/dev/null || die "unknown stage '$s' in CHECK_STAGES (check, asan, fuzz)"
	done
	deps_install
	tools_check
	npm_install
	build
	STAGE_SUMMARY+=("$(printf '%-6s %5d s  %s' setup "$(($(date +%s) - t0))" "ok (packages, build)")")
	for s in $stages; do
		run_stage "$s"
	done
	say "time per stage:"
	printf '  %s\n' "${STAGE_SUMMARY[@]}"
	t0=$(($(date +%s) - t0))
	say "total: $t0 s"
	# CI stops at 90 minutes; the run is meant to stay under 45 on 2 cores.
	[[ $t0 -le 2700 ]] || say "warning: over the 45-minute budget of .ci/run ($t0 s)"
	exit "$STAGE_FAILED"
}

# --- main -------------------------------------------------------------------

run_start() {
	deps_install
	tools_check
	build
	mkdir -p "$VAR"
	chmod 700 "$VAR"
	pg_setup
	softhsm_setup
	conf_setup
	daemon_start
	demo_setup
	admin_setup
	root_fetch
	print_urls
	print_recipe
}

run_stop() {
	daemon_stop
	pg_stop
}

main() {
	case ${1:-start} in
	start) run_start ;;
	stop) run_stop ;;
	check) run_check ;;
	-h | --help | help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		;;
	*) die "unknown command '$1' (start, stop, check)" ;;
	esac
}

# Sourcing the script (for testing single steps) defines functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
