#!/bin/bash
# The options the daemon knows (--list-options), the sample configuration
# etc/quarklinkd.conf and the man page quarklinkd.conf(5) list the same
# options, and the sample shows the real defaults.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require awk sort comm

[ -x "$QUARKLINKD" ] || hard_error "quarklinkd not built: $QUARKLINKD"
sample="$top_srcdir/etc/quarklinkd.conf"
man="$top_srcdir/man/quarklinkd.conf.5"
[ -f "$sample" ] || fail "sample configuration $sample is missing"
[ -f "$man" ] || fail "man page $man is missing"

# The daemon: "section.name<TAB>default".
"$QUARKLINKD" --list-options </dev/null >"$T/opts.raw" 2>"$T/opts.err" ||
    { cat "$T/opts.err"; fail "--list-options exited $?"; }
bad=$(grep -Ev $'^[a-z0-9_]+\\.[a-z0-9_]+\t' "$T/opts.raw")
assert_eq "" "$bad" "--list-options lines that are not section.name<TAB>default"
[ "$(wc -l <"$T/opts.raw")" -ge 1 ] || fail "--list-options printed nothing"
LC_ALL=C sort "$T/opts.raw" >"$T/daemon.defaults"
cut -f1 "$T/daemon.defaults" >"$T/daemon.names"
dups=$(uniq -d "$T/daemon.names")
assert_eq "" "$dups" "options listed twice by --list-options"

# The sample: "[section]" (or "# [section]") headers, then commented
# "# name = default" lines.
awk '
    { sub(/\r$/, "") }
    /^[#;]?[ \t]*\[[a-z0-9_]+\][ \t]*$/ {
        s = $0; sub(/^[^[]*\[/, "", s); sub(/\].*$/, "", s); next }
    s != "" && /^[#;][ \t]*[a-z0-9_]+[ \t]*=/ {
        line = $0; sub(/^[#;][ \t]*/, "", line)
        name = line; sub(/[ \t]*=.*$/, "", name)
        val = line; sub(/^[^=]*=[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
        printf "%s.%s\t%s\n", s, name, val }
' "$sample" | LC_ALL=C sort >"$T/sample.defaults"
cut -f1 "$T/sample.defaults" >"$T/sample.names"
dups=$(uniq -d "$T/sample.names")
assert_eq "" "$dups" "options shown twice in $sample"

# The man page: ".SS [section]" (quotes allowed), then ".B name" lines.
awk '
    /^\.SS[ \t]/ {
        s = ""
        if (match($0, /\[[a-z0-9_]+\]/)) s = substr($0, RSTART + 1, RLENGTH - 2)
        next }
    /^\.SH[ \t]/ { s = ""; next }
    s != "" && /^\.B[ \t]/ {
        name = $2; gsub(/"/, "", name)
        if (name ~ /^[a-z0-9_]+$/) print s "." name }
' "$man" | LC_ALL=C sort -u >"$T/man.names"

# diff_sets WHAT A_FILE A_NAME B_FILE B_NAME: names in one list but not the other.
errors=0
diff_sets() {
    local only_a only_b
    only_a=$(LC_ALL=C comm -23 "$2" "$4")
    only_b=$(LC_ALL=C comm -13 "$2" "$4")
    if [ -n "$only_a" ]; then
        printf 'options in %s but not in %s:\n%s\n' "$3" "$5" "$only_a"; errors=1
    fi
    if [ -n "$only_b" ]; then
        printf 'options in %s but not in %s:\n%s\n' "$5" "$3" "$only_b"; errors=1
    fi
}
diff_sets names "$T/daemon.names" "--list-options" "$T/sample.names" "$sample"
diff_sets names "$T/daemon.names" "--list-options" "$T/man.names" "$man"

# Defaults shown in the sample equal the daemon's.
if ! LC_ALL=C join -t $'\t' -j 1 -o 1.1,1.2,2.2 "$T/daemon.defaults" "$T/sample.defaults" |
        awk -F'\t' '$2 != $3 { printf "%s: daemon default \"%s\", sample shows \"%s\"\n", $1, $2, $3; bad = 1 }
                    END { exit bad }'; then
    errors=1
fi

[ "$errors" = 0 ] || fail "documentation and --list-options disagree (see above)"
ql_log "$(wc -l <"$T/daemon.names") options agree across --list-options, $sample and $man"
