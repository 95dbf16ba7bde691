#!/bin/bash
# The systemd unit contrib/systemd/quarklinkd.service (as make writes it for
# make install): systemd parses it without a warning, "systemd-analyze
# security" rates its sandbox 2.0 or lower ("OK"), and it runs quarklinkd in
# the foreground as Type=notify under its own user, SIGHUP for reload.
# systemd-analyze needs no running systemd with --offline=true; CI installs
# it (Debian package systemd).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require systemd-analyze awk

unit=$top_builddir/contrib/systemd/quarklinkd.service
[ -f "$unit" ] || hard_error "$unit not built (make writes it from quarklinkd.service.in)"
# systemd names the unit after the file; analyse a copy with its real name.
mkdir -p "$T/unit"
cp "$unit" "$T/unit/quarklinkd.service"

# value KEY: the last value of KEY= in [Service] (what systemd would use).
value() {
    awk -v k="$1" '
        /^\[/ { sec = $0; next }
        sec == "[Service]" && index($0, k "=") == 1 { v = substr($0, length(k) + 2) }
        END { print v }' "$T/unit/quarklinkd.service"
}

assert_eq notify "$(value Type)" "Type"
assert_eq main "$(value NotifyAccess)" "NotifyAccess"
assert_match '^/[^ ]*/quarklinkd -f -c /[^ ]+/quarklink/quarklinkd\.conf$' "$(value ExecStart)" \
    "ExecStart runs the installed daemon in the foreground (-f) with its configuration"
# shellcheck disable=SC2016  # $MAINPID is systemd's, not the shell's
assert_eq '/bin/kill -HUP $MAINPID' "$(value ExecReload)" "ExecReload sends SIGHUP"
user=$(value User)
assert_ne "" "$user" "User= is set"
assert_ne root "$user" "User= is not root"
assert_eq "" "$(value CapabilityBoundingSet)" "no capabilities"
assert_eq strict "$(value ProtectSystem)" "ProtectSystem"
assert_ne "" "$(value ReadWritePaths)" "ReadWritePaths lists what the daemon writes"

(cd "$T/unit" && systemd-analyze security --offline=true --no-pager quarklinkd.service) \
    >"$T/security.out" 2>"$T/security.err"
rc=$?
cat "$T/security.out"
[ "$rc" = 0 ] || fail "systemd-analyze security exited $rc: $(cat "$T/security.err")"
# Unknown keys and bad values are only warnings to systemd: none allowed.
assert_eq "" "$(cat "$T/security.err")" "systemd's warnings while parsing the unit"

line=$(grep -E 'Overall exposure level for quarklinkd\.service: ' "$T/security.out")
score=$(printf '%s\n' "$line" | sed -nE 's/.*: ([0-9]+\.[0-9]) ([A-Z]+).*/\1/p')
rating=$(printf '%s\n' "$line" | sed -nE 's/.*: ([0-9]+\.[0-9]) ([A-Z]+).*/\2/p')
assert_match '^[0-9]+\.[0-9]$' "$score" "exposure score in: $line"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
    fail "exposure $score ($rating) is above 2.0"
assert_eq OK "$rating" "systemd's rating"
ql_log "systemd-analyze security: exposure $score $rating"
