/*
 * kernels_vocab.cu: the vocabulary-parallel cross-entropy on the GPU (Shoeybi et al. 2019,
 * §3), the twin of runtime/kernels_vocab.c (docs/runtime.md, "Vocabulary-parallel
 * cross-entropy"; docs/cuda.md).
 *
 * Each tensor rank holds its classes [v0, v0 + Vl) of every row's logits. The forward never
 * moves the logits: one block per row takes the local maximum, the tensor group all-reduces
 * it (max, one float per row), one block per row sums exp(x − max) over the slice and picks
 * the target's logit where this rank owns the label, and the group all-reduces both (sum, one
 * float per row each) — the three calls the planner prices as the loss's own forward
 * collectives (rules.c own_fwd), counted by the collectives like the CPU's. A last kernel turns
 * the sums into log Σ, keeps them in the stash [3, M] (max, log Σ, target) for the backward
 * and adds the rows' losses into the device double `loss` (NULL on the ranks that do not
 * report it). The backward, softmax − onehot on the owned classes, is local.
 */
#include "cu_internal.h"
extern "C" {
#include "mprt.h" /* MPRT_TENSOR */
}

#include <math.h>

__device__ static bool owns(int32_t label, int64_t v0, int Vl) {
    return label >= v0 && label < v0 + Vl;
}

/* The logits are f32, or a bf16 trainer's 16-bit activations (X = uint16_t, read exactly:
 * mprt_cu_get), with the same f32 arithmetic; the stash and the gradients stay f32. */

/* Block m: the maximum of row m's local slice (rows of Vl floats, the first nv of them classes:
 * a padded vocabulary's last rank has fewer) into mx[m] (−inf for an empty slice). */
template <class X> __global__ void vocab_max_k(float *mx, const X *logits, int Vl, int nv) {
    const X *row = logits + (size_t)blockIdx.x * (size_t)Vl;
    float v = -INFINITY;
    for (int j = (int)threadIdx.x; j < nv; j += blockDim.x)
        v = fmaxf(v, mprt_cu_get(row[j]));
    v = mprt_cu_block_reduce(v, MprtCuMax());
    if (threadIdx.x == 0) mx[blockIdx.x] = v;
}

/* Block m: Σ exp(x − mx[m]) over the slice into sum[m], the target's logit into tgt[m] (0 unless
 * this rank owns the label). */
template <class X>
__global__ void vocab_sums_k(float *sum, float *tgt, const float *mx, const X *logits,
                             const int32_t *labels, int Vl, int nv, int64_t v0) {
    const X *row = logits + (size_t)blockIdx.x * (size_t)Vl;
    float m = mx[blockIdx.x], s = 0.0f;
    for (int j = (int)threadIdx.x; j < nv; j += blockDim.x)
        s += mprt_ew_expf(mprt_cu_get(row[j]) - m);
    s = mprt_cu_block_reduce(s, MprtCuSum());
    if (threadIdx.x == 0) {
        int32_t label = labels[blockIdx.x];
        sum[blockIdx.x] = s;
        tgt[blockIdx.x] = owns(label, v0, nv) ? mprt_cu_get(row[label - v0]) : 0.0f;
    }
}

/* Row by row: lse = log Σ in place; with `loss`, each warp adds its rows' scaled losses
 * (log Σ − (target − max)) in one atomicAdd. Rows whose label is outside [0, V) are ignored. */
__global__ void vocab_loss_k(double *loss, float *stash, const int32_t *labels, int M, int64_t V,
                             float scale) {
    const float *mx = stash, *tgt = stash + 2 * (size_t)M;
    float *lse = stash + M;
    double part = 0.0;
    GRID_STRIDE(m, M) {
        lse[m] = logf(lse[m]);
        if (labels[m] >= 0 && labels[m] < V) part += (double)(lse[m] - (tgt[m] - mx[m]));
    }
    for (int o = 16; o > 0; o >>= 1)
        part += __shfl_xor_sync(0xffffffffu, part, o);
    if (loss && threadIdx.x % 32 == 0 && part != 0.0) atomicAdd(loss, part * (double)scale);
}

/* Element (m, j) of the slice: d += scale · softmax, minus scale at the owned label; padding
 * (v0 + j ≥ V) untouched. */
template <class X>
__global__ void vocab_bwd_k(float *dlogits, const X *logits, const int32_t *labels,
                            const float *stash, int M, int Vl, int64_t v0, int64_t V, float scale) {
    const float *mx = stash, *lse = stash + M;
    GRID_STRIDE(i, (int64_t)M * Vl) {
        int64_t m = i / Vl, j = i % Vl;
        int32_t label = labels[m];
        if (label < 0 || label >= V || v0 + j >= V) continue; /* ignored row, padding */
        float t = dlogits[i] + scale * mprt_ew_expf(mprt_cu_get(logits[i]) - mx[m] - lse[m]);
        if (label - v0 == j) t -= scale;
        dlogits[i] = t;
    }
}

template <class X>
static void vocab_ce_forward(double *loss, const X *logits, const int32_t *labels, float *stash,
                             int M, int Vl, int64_t v0, int64_t V, float scale) {
    if (M <= 0) return;
    float *mx = stash, *sum = stash + M, *tgt = stash + 2 * (size_t)M;
    int nv = v0 >= V ? 0 : V - v0 < Vl ? (int)(V - v0) : Vl; /* real classes of a padded slice */
    vocab_max_k<<<(unsigned)M, MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(mx, logits, Vl, nv);
    CU_CHECK_LAUNCH("vocab_max_k");
    mprt_cu_allreduce_max(MPRT_TENSOR, mx, M);
    vocab_sums_k<<<(unsigned)M, MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(sum, tgt, mx, logits,
                                                                        labels, Vl, nv, v0);
    CU_CHECK_LAUNCH("vocab_sums_k");
    /* the loss is f32 (docs/cuda.md, "bf16"): its sums stay off the bf16 wire, 4 bytes a row,
     * as the planner prices them and the C trainer sends them (runtime/kernels_vocab.c) */
    bool wire = mprt_wire_bf16();
    mprt_set_wire_bf16(false);
    mprt_cu_allreduce(MPRT_TENSOR, sum, M);
    mprt_cu_allreduce(MPRT_TENSOR, tgt, M);
    mprt_set_wire_bf16(wire);
    LAUNCH_1D(vocab_loss_k, M, loss, stash, labels, M, V, scale);
}

extern "C" void mprt_cu_vocab_ce_forward(double *loss, const float *logits, const int32_t *labels,
                                         float *stash, int M, int Vl, int64_t v0, int64_t V,
                                         float scale) {
    vocab_ce_forward(loss, logits, labels, stash, M, Vl, v0, V, scale);
}

extern "C" void mprt_cu_vocab_ce_forward_bf16(double *loss, const uint16_t *logits,
                                              const int32_t *labels, float *stash, int M, int Vl,
                                              int64_t v0, int64_t V, float scale) {
    vocab_ce_forward(loss, logits, labels, stash, M, Vl, v0, V, scale);
}

extern "C" void mprt_cu_vocab_ce_backward(float *dlogits, const float *logits,
                                          const int32_t *labels, const float *stash, int M, int Vl,
                                          int64_t v0, int64_t V, float scale) {
    LAUNCH_1D(vocab_bwd_k, (int64_t)M * Vl, dlogits, logits, labels, stash, M, Vl, v0, V, scale);
}

extern "C" void mprt_cu_vocab_ce_backward_bf16(float *dlogits, const uint16_t *logits,
                                               const int32_t *labels, const float *stash, int M,
                                               int Vl, int64_t v0, int64_t V, float scale) {
    LAUNCH_1D(vocab_bwd_k, (int64_t)M * Vl, dlogits, logits, labels, stash, M, Vl, v0, V, scale);
}
