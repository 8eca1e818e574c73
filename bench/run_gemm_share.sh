#!/usr/bin/env bash
# The share of examples/mlp.mp's training step spent in GEMM, from the trainer's --profile
# (per-layer forward/backward times) and from perf when installed (docs/benchmarks.md).
# Usage: bench/run_gemm_share.sh [--reps N] [--steps N] [--threads T]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/mpcc ] || { echo "run_gemm_share: build/mpcc missing; build first" >&2; exit 1; }
exec python3 bench/gemm_share.py "$@"
