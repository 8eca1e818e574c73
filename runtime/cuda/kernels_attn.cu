/*
 * kernels_attn.cu: token embedding and multi-head self-attention on the GPU, with the
 * semantics of runtime/kernels_attn.c (docs/kernels.md).
 *
 * Attention takes the documented cuBLAS path rather than a fused kernel: the projections are
 * the linear kernels; per head h, the scores of all N samples are ONE strided-batched GEMM
 * (batch = samples, stride T·Dl through q and k, heads read in place as strided views with
 * leading dimension Dl, exactly as the CPU reads them), a warp-per-row softmax applies the
 * scale's result and the causal mask (masked probabilities are exact zeros), and P·V is
 * another batched GEMM. So a layer costs 2·Hl batched GEMMs forward and 4·Hl backward plus
 * the projections, with the T×T probabilities materialised in the stash — the memory the CPU
 * contract already pays. A flash-style fused kernel would avoid the T² traffic; docs/cuda.md
 * says why it is not here yet.
 *
 * Embedding backward adds rows of dout into the table with atomicAdd, because two tokens may
 * share an id; the position gradient is a fixed-order gather.
 */
#include "cu_internal.h"

#include <math.h>

/* ─────────────────────────────── embedding ─────────────────────────────── */

/* The lookup of both forms: the table and positions f32 (E = float) or the bf16 working
 * weights (E = uint16_t, each value read exactly as f32: mprt_cu_get); the output f32, or a
 * 16-bit activation (O = uint16_t: the f32 value rounded, mprt_cu_put). */
template <class O, class E>
__global__ void embedding_fwd_k(O *out, const int32_t *ids, const E *W, const E *pos, int M, int T,
                                int V_local, int v0, int D, int add_pos) {
    GRID_STRIDE(i, (int64_t)M * D) {
        int64_t m = i / D, j = i % D;
        int64_t r = (int64_t)ids[m] - v0;
        float v = (r >= 0 && r < V_local) ? mprt_cu_get(W[r * D + j]) : 0.0f;
        if (add_pos && pos) v += mprt_cu_get(pos[(m % T) * D + j]);
        mprt_cu_put(&out[i], v);
    }
}

__global__ void embedding_bwd_table_k(float *dW, const float *dout, const int32_t *ids, int M,
                                      int V_local, int v0, int D) {
    GRID_STRIDE(i, (int64_t)M * D) {
        int64_t m = i / D, j = i % D;
        int64_t r = (int64_t)ids[m] - v0;
        if (r >= 0 && r < V_local) atomicAdd(&dW[r * D + j], dout[i]);
    }
}

/* dpos[t, j] += Σ_{m ≡ t mod T} dout[m, j], in increasing m. */
__global__ void embedding_bwd_pos_k(float *dpos, const float *dout, int M, int T, int D) {
    GRID_STRIDE(i, (int64_t)T * D) {
        int64_t t = i / D, j = i % D;
        float s = 0.0f;
        for (int64_t m = t; m < M; m += T)
            s += dout[m * D + j];
        dpos[i] += s;
    }
}

extern "C" void mprt_cu_embedding_forward(float *out, const int32_t *ids, const float *W,
                                          const float *pos, int M, int T, int V_local, int v0,
                                          int D, int add_pos) {
    LAUNCH_1D(embedding_fwd_k, (int64_t)M * D, out, ids, W, pos, M, T, V_local, v0, D, add_pos);
}

extern "C" void mprt_cu_embedding_forward_bf16(float *out, const int32_t *ids, const uint16_t *W,
                                               const uint16_t *pos, int M, int T, int V_local,
                                               int v0, int D, int add_pos) {
    LAUNCH_1D(embedding_fwd_k, (int64_t)M * D, out, ids, W, pos, M, T, V_local, v0, D, add_pos);
}

extern "C" void mprt_cu_embedding_forward_bf16_act(uint16_t *out, const int32_t *ids,
                                                   const uint16_t *W, const uint16_t *pos, int M,
                                                   int T, int V_local, int v0, int D, int add_pos) {
    LAUNCH_1D(embedding_fwd_k, (int64_t)M * D, out, ids, W, pos, M, T, V_local, v0, D, add_pos);
}

extern "C" void mprt_cu_embedding_backward(float *dW, float *dpos, const float *dout,
                                           const int32_t *ids, int M, int T, int V_local, int v0,
                                           int D) {
    if (dW) LAUNCH_1D(embedding_bwd_table_k, (int64_t)M * D, dW, dout, ids, M, V_local, v0, D);
    if (dpos) LAUNCH_1D(embedding_bwd_pos_k, (int64_t)T * D, dpos, dout, M, T, D);
}

/* ─────────────────────────────── attention ─────────────────────────────── */

__device__ static float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ static float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#define SM_WARPS 4 /* rows per block, one warp each */

/* Row-wise softmax in place over rows of length T (row r is query r mod T); causal rows see
 * keys j ≤ i only and get exact zeros beyond. */
__global__ void softmax_rows_k(float *s, int64_t rows, int T, int causal) {
    int64_t r = (int64_t)blockIdx.x * SM_WARPS + threadIdx.y;
    int lane = (int)threadIdx.x;
    if (r >= rows) return;
    float *row = s + r * T;
    int n = causal ? (int)(r % T) + 1 : T;
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32)
        mx = fmaxf(mx, row[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < n; j += 32) {
        float e = mprt_ew_expf(row[j] - mx);
        row[j] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32)
        row[j] = j < n ? row[j] * inv : 0.0f;
}

/* dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale in place over dP [N, T, T], for head h of P
 * [N, Hl, T, T]. */
__global__ void softmax_bwd_rows_k(float *dP, const float *P, int N, int Hl, int h, int T,
                                   float scale) {
    int64_t r = (int64_t)blockIdx.x * SM_WARPS + threadIdx.y;
    int lane = (int)threadIdx.x;
    if (r >= (int64_t)N * T) return;
    int64_t n = r / T, i = r % T;
    float *d = dP + r * T;
    const float *p = P + (((n * Hl + h) * T) + i) * T;
    float s = 0.0f;
    for (int j = lane; j < T; j += 32)
        s += p[j] * d[j];
    s = warp_sum(s);
    for (int j = lane; j < T; j += 32)
        d[j] = p[j] * (d[j] - s) * scale;
}

static dim3 rows_grid(int64_t rows) { return dim3((unsigned)((rows + SM_WARPS - 1) / SM_WARPS)); }

struct Stash {
    float *q, *k, *v, *y, *p;
};

static Stash stash_at(const float *s, int N, int T, int Dl) {
    size_t a = (size_t)N * (size_t)T * (size_t)Dl;
    float *b = (float *)s;
    Stash st = {b, b + a, b + 2 * a, b + 3 * a, b + 4 * a};
    return st;
}

/* Everything after the q, k and v projections (the stash's q, k, v): per head the scores of
 * all samples as one batched GEMM, the softmax, P·V into y, then the output projection. */
static void attention_core(float *out, Stash st, MprtAttnW w, int N, int T, int D, int Hl, int hd,
                           int causal, int add_bias) {
    int NT = N * T, Dl = Hl * hd;
    int64_t sT = (int64_t)T * Dl, sP = (int64_t)Hl * T * T;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < Hl; h++) {
        float *P = st.p + (size_t)h * (size_t)T * (size_t)T;
        size_t off = (size_t)h * (size_t)hd;
        mprt_cu_gemm_batched(false, true, T, T, hd, scale, st.q + off, Dl, sT, st.k + off, Dl, sT,
                             0.0f, P, T, sP, N);
    }
    int64_t rows = (int64_t)N * Hl * T;
    if (rows > 0) {
        softmax_rows_k<<<rows_grid(rows), dim3(32, SM_WARPS), 0, mprt_cu_stream()>>>(st.p, rows, T,
                                                                                     causal);
        CU_CHECK_LAUNCH("softmax_rows_k");
    }
    for (int h = 0; h < Hl; h++) {
        float *P = st.p + (size_t)h * (size_t)T * (size_t)T;
        size_t off = (size_t)h * (size_t)hd;
        mprt_cu_gemm_batched(false, false, T, hd, T, 1.0f, P, T, sP, st.v + off, Dl, sT, 0.0f,
                             st.y + off, Dl, sT, N);
    }
    mprt_cu_linear_forward(out, st.y, w.wo, w.bo, NT, Dl, D, add_bias);
}

extern "C" void mprt_cu_attention_forward(float *out, float *stash, const float *x, MprtAttnW w,
                                          int N, int T, int D, int Hl, int hd, int causal,
                                          int add_bias) {
    int NT = N * T, Dl = Hl * hd;
    Stash st = stash_at(stash, N, T, Dl);
    mprt_cu_linear_forward(st.q, x, w.wq, w.bq, NT, D, Dl, w.bq != NULL);
    mprt_cu_linear_forward(st.k, x, w.wk, w.bk, NT, D, Dl, w.bk != NULL);
    mprt_cu_linear_forward(st.v, x, w.wv, w.bv, NT, D, Dl, w.bv != NULL);
    attention_core(out, st, w, N, T, D, Hl, hd, causal, add_bias);
}

/* q, k and v as bf16 GEMMs straight from the 16-bit input xh [N·T, D], then the f32 core. */
extern "C" void mprt_cu_attention_forward_bf16_packed(float *out, float *stash, const uint16_t *xh,
                                                      MprtAttnW w, MprtCuAttnWh h, int N, int T,
                                                      int D, int Hl, int hd, int causal,
                                                      int add_bias) {
    int NT = N * T, Dl = Hl * hd;
    Stash st = stash_at(stash, N, T, Dl);
    mprt_cu_linear_forward_bf16_packed(st.q, xh, h.wq, h.bq, NT, D, Dl, h.bq != NULL);
    mprt_cu_linear_forward_bf16_packed(st.k, xh, h.wk, h.bk, NT, D, Dl, h.bk != NULL);
    mprt_cu_linear_forward_bf16_packed(st.v, xh, h.wv, h.bv, NT, D, Dl, h.bv != NULL);
    attention_core(out, st, w, N, T, D, Hl, hd, causal, add_bias);
}

/* The same from an f32 input of bf16 values, packed (exactly) into xh first. */
extern "C" void mprt_cu_attention_forward_bf16(float *out, float *stash, const float *x,
                                               MprtAttnW w, MprtCuAttnWh h, int N, int T, int D,
                                               int Hl, int hd, int causal, int add_bias,
                                               uint16_t *xh) {
    mprt_cu_bf16_pack(xh, x, (int64_t)N * T * D);
    mprt_cu_attention_forward_bf16_packed(out, stash, xh, w, h, N, T, D, Hl, hd, causal, add_bias);
}

/* One head's core backward over all samples: dq_h, dk_h, dv_h from dy_h (heads disjoint). */
static void attn_head_backward(Stash st, float *dq, float *dk, float *dv, float *dP,
                               const float *dy, int N, int T, int Hl, int hd, int h) {
    int Dl = Hl * hd;
    int64_t sT = (int64_t)T * Dl, sP = (int64_t)Hl * T * T, sD = (int64_t)T * T;
    size_t off = (size_t)h * (size_t)hd;
    const float *P = st.p + (size_t)h * (size_t)T * (size_t)T;
    mprt_cu_gemm_batched(false, true, T, T, hd, 1.0f, dy + off, Dl, sT, st.v + off, Dl, sT, 0.0f,
                         dP, T, sD, N);
    mprt_cu_gemm_batched(true, false, T, hd, T, 1.0f, P, T, sP, dy + off, Dl, sT, 0.0f, dv + off,
                         Dl, sT, N);
    int64_t rows = (int64_t)N * T;
    softmax_bwd_rows_k<<<rows_grid(rows), dim3(32, SM_WARPS), 0, mprt_cu_stream()>>>(
        dP, st.p, N, Hl, h, T, 1.0f / sqrtf((float)hd));
    CU_CHECK_LAUNCH("softmax_bwd_rows_k");
    mprt_cu_gemm_batched(false, false, T, hd, T, 1.0f, dP, T, sD, st.k + off, Dl, sT, 0.0f,
                         dq + off, Dl, sT, N);
    mprt_cu_gemm_batched(true, false, T, hd, T, 1.0f, dP, T, sD, st.q + off, Dl, sT, 0.0f, dk + off,
                         Dl, sT, N);
}

extern "C" void mprt_cu_attention_backward(float *dx, MprtAttnG g, const float *dout,
                                           const float *x, const float *stash, float *scratch,
                                           MprtAttnW w, int N, int T, int D, int Hl, int hd,
                                           int causal) {
    (void)causal; /* the mask lives in the stashed P: masked probabilities are exact zeros */
    int NT = N * T, Dl = Hl * hd;
    size_t a = (size_t)NT * (size_t)Dl;
    if (N <= 0 || T <= 0) return;
    Stash st = stash_at(stash, N, T, Dl);
    float *dy = scratch, *dq = scratch + a, *dk = scratch + 2 * a, *dv = scratch + 3 * a;
    float *dP = scratch + 4 * a;
    mprt_cu_memset0(dy, a * sizeof *dy);
    mprt_cu_linear_backward(dy, g.wo, g.bo, dout, st.y, w.wo, NT, Dl, D);
    for (int h = 0; h < Hl; h++)
        attn_head_backward(st, dq, dk, dv, dP, dy, N, T, Hl, hd, h);
    mprt_cu_linear_backward(dx, g.wq, g.bq, dq, x, w.wq, NT, D, Dl);
    mprt_cu_linear_backward(dx, g.wk, g.bk, dk, x, w.wk, NT, D, Dl);
    mprt_cu_linear_backward(dx, g.wv, g.bv, dv, x, w.wv, NT, D, Dl);
}
