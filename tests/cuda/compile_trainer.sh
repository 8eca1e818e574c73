#!/bin/sh
# compile_trainer.sh MPCC MODEL OUTDIR NVCC [nvcc arguments: includes, libraries]...
#
# The CUDA target's CI check (no GPU needed): mpcc writes MODEL's trainer as .cu, twice to
# show the text is deterministic, and nvcc compiles and links it against mprt_cuda, cuBLAS,
# NCCL and MPI with every warning an error (nvcc's and the host compiler's -Wall -Wextra).
# One architecture (sm_80) is enough to check the source; the library carries both.
# $MPCC_FLAGS (optional, split on spaces) goes to mpcc: settings such as -D train.zero=2.
set -u
mpcc=$1 model=$2 out=$3 nvcc=$4
shift 4
name=$(basename "$model" .mp)
flags=${MPCC_FLAGS:-}
mkdir -p "$out" || exit 1
# shellcheck disable=SC2086 # the flags are words
"$mpcc" "$model" $flags --emit=cuda -o "$out/$name.cu" || { echo "FAIL: mpcc --emit=cuda"; exit 1; }
# shellcheck disable=SC2086
"$mpcc" "$model" $flags --emit=cuda > "$out/$name.again.cu" || exit 1
cmp -s "$out/$name.cu" "$out/$name.again.cu" || { echo "FAIL: the generated .cu differs between two runs"; exit 1; }
log="$out/$name.nvcc.log"
"$nvcc" -arch=sm_80 -O2 -Werror all-warnings -Xcompiler=-Wall,-Wextra,-Werror "$out/$name.cu" \
        -o "$out/$name" "$@" $(pkg-config --libs openblas libcjson) -lm >"$log" 2>&1
rc=$?
cat "$log"
if [ "$rc" -ne 0 ] || grep -qi "warning" "$log"; then
  echo "FAIL: nvcc did not compile $name.cu cleanly"; exit 1
fi
"$out/$name" --help | grep -q -- "--comm MODE" || { echo "FAIL: $name --help"; exit 1; }
echo "ok: $name.cu compiles and links with nvcc, no warnings"
