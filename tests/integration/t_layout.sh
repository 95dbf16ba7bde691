#!/bin/bash
# The modules of src/ include each other in no circle
# (build-aux/include-cycles.sh), and the check itself catches a planted
# one, so a pass is not the script's failure to look.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ql_require tsort sed sort

check="$top_srcdir/build-aux/include-cycles.sh"
[ -f "$check" ] || hard_error "$check is missing"

out=$(sh "$check" "$top_srcdir/src" 2>&1) ||
    { printf '%s\n' "$out"; fail "src/ has an include circle"; }
assert_match '^include-cycles: no circle among [0-9]+ modules$' "$out"

# http.c serves the table routes.c gives it: it includes no handler.
handlers=$(grep -E '^#include "(api|api_[a-z]+|devapi|est)\.h"' "$top_srcdir/src/http.c" || true)
assert_eq "" "$handlers" "handler headers included by http.c"

# A planted circle (http.h -> api.h, api.h -> http.h) is reported.
mkdir "$T/src"
cp "$top_srcdir"/src/*.c "$top_srcdir"/src/*.h "$T/src/"
printf '#include "api.h"\n' >>"$T/src/http.h"
if out=$(sh "$check" "$T/src" 2>&1); then
    fail "a planted circle api <-> http was not reported: $out"
fi
assert_match '^  (api|http)$' "$out" "the circle's modules are named"
ql_log "ok"
