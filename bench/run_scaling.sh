#!/usr/bin/env bash
# MLP scaling from 1 to 2 to 4 ranks, searched plan and pure data, with the bytes the runtime
# counted beside the schedule's prediction (docs/benchmarks.md). Needs a build.
# On a 2-core machine 4 ranks oversubscribe the cores (mpirun --oversubscribe).
# Usage: bench/run_scaling.sh [--reps N] [--steps N] [--ranks 1,2,4]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/mpcc ] || { echo "run_scaling: build/mpcc missing; build first" >&2; exit 1; }
exec python3 bench/scaling.py "$@"
