#!/usr/bin/env bash
# every_example.sh MPCC EXAMPLES_DIR OUTDIR: `mpcc --emit=plan` and `--report-json` on every
# example for 1, 2, 4, 8, 64 and 1024 devices, twice each. Fails on the first non-zero exit,
# on a report that does not end with the comparison table, or on a second run whose text or
# JSON differs from the first by a byte; leaves the JSON files in OUTDIR.
set -euo pipefail
mpcc=$1 examples=$2 out=$3
mkdir -p "$out"
n=0
for f in "$examples"/*.mp; do
    name=$(basename "$f" .mp)
    for d in 1 2 4 8 64 1024; do
        "$mpcc" "$f" --emit=plan -D cluster.devices=$d --report-json "$out/$name.$d.json" \
            > "$out/$name.$d.txt" || { echo "FAILED: $f with $d devices" >&2; exit 1; }
        grep -q "^  pure pipeline " "$out/$name.$d.txt" ||
            { echo "incomplete report: $f with $d devices" >&2; exit 1; }
        "$mpcc" "$f" --emit=plan -D cluster.devices=$d --report-json "$out/again.json" \
            > "$out/again.txt"
        cmp "$out/$name.$d.txt" "$out/again.txt" && cmp "$out/$name.$d.json" "$out/again.json" ||
            { echo "not deterministic: $f with $d devices" >&2; exit 1; }
        n=$((n + 1))
    done
done
rm -f "$out/again.txt" "$out/again.json"
echo "planned $n example/device pairs, each twice with identical bytes"
