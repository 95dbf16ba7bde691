#!/bin/sh
# include-cycles.sh SRCDIR: fails when the modules of SRCDIR include each
# other in a circle. A module is X.c with X.h; X depends on Y when X.c or
# X.h has #include "Y.h". A circle means neither can be read, built or
# tested without the other: one of them should own the shared part.
# Prints the circle and exits 1; exits 0 when the graph is acyclic.
set -eu
src=${1:-src}
# Edges not to count, "from to  # why it is still there". Remove a line
# once its circle is gone: a stale line hides a new circle.
allow=$(sed 's/[[:space:]]*#.*//' <<'ALLOW'
pki ocsp  # pki.c calls ocsp_revoked; ocsp.c calls pki: the p11pool split of pki.c (issue 11) makes ocsp subscribe to revocations itself
ALLOW
)
allow="
$allow
"
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in "$src"/*.c "$src"/*.h; do
	b=$(basename "$f")
	m=${b%.*}
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$f" |
	while read -r d; do
		[ "$d" != "$m" ] && [ -e "$src/$d.h" ] || continue
		printf '%s %s\n' "$m" "$d"
	done
done | sort -u | while read -r a b; do
	case "$allow" in *"
$a $b
"*) continue ;; esac
	printf '%s %s\n' "$a" "$b"
done > "$edges"
# tsort names the modules of every circle it finds on stderr.
if ! out=$(tsort "$edges" 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "include-cycles: modules of $src include each other in a circle:" >&2
	printf '%s\n' "$out" | sed -n 's/^tsort: \([A-Za-z0-9_]*\)$/  \1/p' >&2
	exit 1
fi
echo "include-cycles: no circle among $(cut -d' ' -f1 "$edges" | sort -u | wc -l) modules"
