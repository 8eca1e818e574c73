#!/usr/bin/env bash
# Step time at one rank of examples/mlp.mp and examples/transformer.mp (CPU-sized: batch 4)
# against the same models in PyTorch on CPU, same threads and batch (docs/benchmarks.md).
# Needs a build (cmake -S . -B build && cmake --build build -j2) and bench/setup_torch.sh.
# Usage: bench/run_step_time.sh [--reps N] [--threads T] [CONFIG...]   (configs: see step_time.py)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/mpcc ] || { echo "run_step_time: build/mpcc missing; build first" >&2; exit 1; }
[ -x bench/.venv/bin/python ] || bash bench/setup_torch.sh
exec python3 bench/step_time.py "$@"
