#!/usr/bin/env bash
# The issue-14 acceptance run (docs/benchmarks.md, "Predicted against measured"): calibrates
# this machine (mpcc-calibrate at 1 and 2 ranks), builds, runs examples/mlp.mp,
# examples/transformer.mp (batch 4) and bench/cnn.mp at 1 and 2 ranks REPS times each (each
# 2-rank run paired with a blocking-sync run for the hidden share), every pinned 2-rank mesh
# for "is the chosen plan the fastest", and prints the Markdown tables to paste. Run it on an
# otherwise idle machine (the load average is printed with every figure); about 5-10 minutes.
# Usage: bench/run_predicted.sh [--reps N] [--workdir DIR] [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(nproc) CPUs; uptime: $(uptime)"
cmake -S . -B build -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build build -j"$(nproc)" --target mpcc mpcc-calibrate >/dev/null
exec python3 bench/predicted.py --workdir /tmp/mpcc-predicted --alternatives "$@"
