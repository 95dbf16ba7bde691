#!/bin/sh
# vendor.sh NODE_MODULES OUTDIR: copy the web UI's npm packages from
# NODE_MODULES into OUTDIR (www/vendor) under content-hashed names, which
# quarklinkd serves as immutable, and write OUTDIR/vendor.json mapping each
# plain name to its hashed one (the UI reads it, revalidated on each load).
set -eu
nm=$1 out=$2
set -- \
	"tus.js:tus-js-client/dist/tus.min.js" \
	"uPlot.js:uplot/dist/uPlot.iife.min.js" \
	"uPlot.css:uplot/dist/uPlot.min.css"
for e in "$@"; do
	[ -f "$nm/${e#*:}" ] || { echo "vendor.sh: $nm/${e#*:} missing: run npm ci" >&2; exit 1; }
done
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
sep='{'
json=
for e in "$@"; do
	name=${e%%:*} src=$nm/${e#*:}
	h=$(sha256sum "$src" | cut -c1-16)
	hashed="${name%.*}.$h.${name##*.}"
	cp "$src" "$out.tmp/$hashed"
	json="$json$sep\"$name\":\"$hashed\""
	sep=','
done
for l in tus-js-client uplot; do
	cp "$nm/$l/LICENSE" "$out.tmp/$l.LICENSE.txt"
done
printf '%s}\n' "$json" >"$out.tmp/vendor.json"
rm -rf "$out"
mv "$out.tmp" "$out"
