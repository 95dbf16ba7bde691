#!/bin/bash
# quarklinkd --migrate creates the schema on a fresh database, is a no-op the
# second time, and the daemon runs on the migrated database.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require curl

pg_start
hsm_init
tls_make_certs
ql_config

[ -x "$QUARKLINKD" ] || hard_error "quarklinkd not built: $QUARKLINKD"

assert_eq "" "$(ql_psql "SELECT to_regclass('public.schema_version')")" \
    "schema_version does not exist before --migrate"

migrate() {
    "$QUARKLINKD" --migrate -c "$T/quarklinkd.conf" </dev/null >"$T/migrate.out" 2>&1
}

# schema: every table and column in the public schema, and the versions applied.
schema() {
    ql_psql "SELECT table_name || '.' || column_name || ' ' || data_type
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, ordinal_position"
}

migrate || { cat "$T/migrate.out"; fail "first --migrate exited $?"; }
[ -n "$(ql_psql "SELECT to_regclass('public.schema_version')")" ] ||
    fail "--migrate did not create table schema_version"
rows1=$(ql_psql 'SELECT * FROM schema_version ORDER BY 1')
n1=$(ql_psql 'SELECT count(*) FROM schema_version')
[ "$n1" -ge 1 ] || fail "schema_version has no rows after --migrate"
schema1=$(schema)

migrate || { cat "$T/migrate.out"; fail "second --migrate exited $?"; }
assert_eq "$rows1" "$(ql_psql 'SELECT * FROM schema_version ORDER BY 1')" \
    "schema_version rows after a second --migrate"
assert_eq "$schema1" "$(schema)" "schema after a second --migrate"

# --migrate against an unreachable database fails.
ql_config database.conninfo="host=$T/pg port=1 user=ql dbname=quarklink connect_timeout=2"
"$QUARKLINKD" --migrate -c "$T/quarklinkd.conf" </dev/null >"$T/migrate-bad.out" 2>&1
assert_eq 1 "$?" "--migrate with an unreachable database: exit status"

# The daemon starts on the migrated database and is ready.
ql_config
ql_start
ql_curl "$(admin_url /readyz)"
assert_status 200 "readyz on the migrated database"
assert_json "$BODY" database ok
assert_eq "$rows1" "$(ql_psql 'SELECT * FROM schema_version ORDER BY 1')" \
    "schema_version rows after the daemon started"

ql_stop || fail "quarklinkd exited with status $? after SIGTERM"
