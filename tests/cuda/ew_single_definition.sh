#!/bin/sh
# ew_single_definition.sh ROOT: the runtime's elementwise math has one definition,
# runtime/mprt_ew.h, which the CPU and the CUDA kernels both expand (docs/kernels.md).
#   - runtime/kernels.c and runtime/cuda/kernels_dense.cu expand its table, MPRT_EW_UNARY;
#   - no other runtime source calls exp/tanh (libm's, CUDA's or the intrinsics) or spells
#     GELU's constants in code: a second copy of a formula is what this test refuses.
# (cuda/link checks that every row of the table has its GPU kernels; cuda/kernels, on a GPU,
# that they give the CPU's bits.)
root=${1:?usage: ew_single_definition.sh SOURCE_ROOT}
fail=0

for f in runtime/kernels.c runtime/cuda/kernels_dense.cu; do
    if ! grep -q '^MPRT_EW_UNARY(' "$root/$f"; then
        echo "FAIL: $f does not expand MPRT_EW_UNARY (runtime/mprt_ew.h)"
        fail=1
    fi
done

# The code of a file without its comments (one-line /* */ and //, and comment-body lines).
code() {
    sed -e 's|/\*.*\*/||g' -e 's|//.*$||' "$1" | grep -vE '^[[:space:]]*(\*|/\*)'
}

pattern='(^|[^_[:alnum:]])(expf|tanhf|exp|tanh|__expf|__tanhf|erff|erf)[[:space:]]*\(|0\.044715|0\.797884'
for f in $(find "$root/runtime" -name '*.c' -o -name '*.cu' -o -name '*.h' | sort); do
    case $f in */runtime/mprt_ew.h) continue ;; esac
    hits=$(code "$f" | grep -E "$pattern")
    if [ -n "$hits" ]; then
        echo "FAIL: ${f#"$root"/} computes elementwise math outside runtime/mprt_ew.h:"
        echo "$hits"
        fail=1
    fi
done

[ $fail -eq 0 ] && echo "ew_single_definition: ok"
exit $fail
