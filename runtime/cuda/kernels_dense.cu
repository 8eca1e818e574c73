/*
 * kernels_dense.cu: the dense and elementwise kernels on the GPU — linear, relu, gelu,
 * tanh, add, fill, layernorm, dropout — with the semantics of runtime/kernels.c, which
 * docs/kernels.md derives. Each function here is the device twin of the CPU function of the
 * same name without the `cu_`, and tests/cuda/test_cu_kernels.c holds them to it.
 *
 * Shapes of the work: elementwise kernels are grid-stride loops over flat arrays; row
 * operations (layernorm) give one warp to one row and reduce with shuffles; column sums (bias
 * and layernorm parameter gradients) give a block to 32 columns and 8 row lanes and reduce
 * through shared memory, so the reads stay coalesced. Float sums therefore add in a
 * different order than the CPU's sequential loops: results agree to rounding, not bitwise.
 * Dropout must agree bitwise, and does: the keep decision is integer arithmetic (SplitMix64)
 * identical to the CPU's. So do the elementwise activations: their math is runtime/mprt_ew.h,
 * the same inline functions the CPU kernels expand.
 *
 * The elementwise kernels, layernorm and dropout are templates over the storage type of the
 * activations they read and write (f32, or a bf16 trainer's 16-bit values: cu_internal.h's
 * mprt_cu_get / mprt_cu_put), so each _bf16 entry runs the f32 entry's very arithmetic.
 */
#include "cu_internal.h"

#include <math.h>

/* ─────────────────────────────── column sums ─────────────────────────────── */

#define COL_X 32
#define COL_Y 8

/* dst[c] += Σ_r f(r, c) over rows r < rows, for c < cols. */
template <class F> __global__ void colsum_add_kernel(float *dst, int rows, int cols, F f) {
    __shared__ float part[COL_Y][COL_X];
    int c = (int)(blockIdx.x * COL_X + threadIdx.x);
    float s = 0.0f;
    if (c < cols)
        for (int r = (int)threadIdx.y; r < rows; r += COL_Y)
            s += f(r, c);
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float t = 0.0f;
        for (int y = 0; y < COL_Y; y++)
            t += part[y][threadIdx.x];
        dst[c] += t;
    }
}

template <class F> static void colsum_add(float *dst, int rows, int cols, F f) {
    if (cols <= 0) return;
    dim3 block(COL_X, COL_Y), grid((unsigned)((cols + COL_X - 1) / COL_X));
    colsum_add_kernel<<<grid, block, 0, mprt_cu_stream()>>>(dst, rows, cols, f);
    CU_CHECK_LAUNCH("colsum_add_kernel");
}

struct ReadMatrix {
    const float *m;
    int ld;
    __device__ float operator()(int r, int c) const {
        return m[(size_t)r * (size_t)ld + (size_t)c];
    }
};

/* ─────────────────────────────── linear ─────────────────────────────── */

/* out[r, c] = b[c], the bias f32 (E = float) or a bf16 working weight (E = uint16_t, exact). */
template <class E>
__global__ void broadcast_rows_kernel(float *out, const E *b, int64_t rows, int cols) {
    GRID_STRIDE(i, rows * cols) out[i] = mprt_cu_get(b[i % cols]);
}

template <class E> static void broadcast_rows(float *out, const E *b, int64_t rows, int cols) {
    LAUNCH_1D(broadcast_rows_kernel<E>, rows * cols, out, b, rows, cols);
}

extern "C" void mprt_cu_linear_forward(float *out, const float *x, const float *W, const float *b,
                                       int N, int Din, int Dout, int add_bias) {
    float beta = 0.0f;
    if (add_bias && b) {
        broadcast_rows(out, b, N, Dout);
        beta = 1.0f;
    }
    mprt_cu_gemm(false, false, N, Dout, Din, 1.0f, x, Din, W, Dout, beta, out, Dout);
}

/* out = xh·W (+ b) with xh already bf16 [N, Din]: mprt_cu_gemm_bf16 (fp32 products and sums)
 * onto the bias, as above. */
extern "C" void mprt_cu_linear_forward_bf16_packed(float *out, const uint16_t *xh,
                                                   const uint16_t *W, const uint16_t *b, int N,
                                                   int Din, int Dout, int add_bias) {
    float beta = 0.0f;
    if (add_bias && b) {
        broadcast_rows(out, b, N, Dout);
        beta = 1.0f;
    }
    mprt_cu_gemm_bf16(false, false, N, Dout, Din, 1.0f, xh, Din, W, Dout, beta, out, Dout);
}

/* The same product on the bf16 tensor cores: x (bf16 values in f32) packed into xh, exactly,
 * then the packed product. */
extern "C" void mprt_cu_linear_forward_bf16(float *out, const float *x, const uint16_t *W,
                                            const uint16_t *b, int N, int Din, int Dout,
                                            int add_bias, uint16_t *xh) {
    mprt_cu_bf16_pack(xh, x, (int64_t)N * Din);
    mprt_cu_linear_forward_bf16_packed(out, xh, W, b, N, Din, Dout, add_bias);
}

extern "C" void mprt_cu_linear_backward(float *dx, float *dW, float *db, const float *dout,
                                        const float *x, const float *W, int N, int Din, int Dout) {
    if (dx) mprt_cu_gemm(false, true, N, Din, Dout, 1.0f, dout, Dout, W, Dout, 1.0f, dx, Din);
    if (dW) mprt_cu_gemm(true, false, Din, Dout, N, 1.0f, x, Din, dout, Dout, 1.0f, dW, Dout);
    if (db) colsum_add(db, N, Dout, ReadMatrix{dout, Dout});
}

/* ──────────────────── elementwise: relu, gelu, tanh, add, fill ──────────────────── */

/* The unary ops of runtime/mprt_ew.h's table, each expanded into a forward and a backward
 * grid-stride kernel and the extern "C" functions mprt_cu_NAME_forward / _backward that
 * mprt_cuda.h declares from the same table. The math is mprt_ew_NAME_fwd / _grad, the very
 * functions the CPU loops of kernels.c call; with no fused multiply-add (--fmad=false, see
 * CMakeLists.txt) the GPU computes the same bits. */
#define CU_EW_UNARY_KERNELS(name, saved)                                                           \
    template <class O, class X> __global__ void name##_fwd(O *out, const X *x, int64_t n) {        \
        GRID_STRIDE(i, n) mprt_cu_put(&out[i], mprt_ew_##name##_fwd(mprt_cu_get(x[i])));           \
    }                                                                                              \
    template <class S>                                                                             \
    __global__ void name##_bwd(float *dx, const float *dout, const S *s, int64_t n) {              \
        GRID_STRIDE(i, n) dx[i] += mprt_ew_##name##_grad(dout[i], mprt_cu_get(s[i]));              \
    }                                                                                              \
    extern "C" void mprt_cu_##name##_forward(float *out, const float *x, int64_t n) {              \
        LAUNCH_1D(name##_fwd, n, out, x, n);                                                       \
    }                                                                                              \
    extern "C" void mprt_cu_##name##_backward(float *dx, const float *dout, const float *saved,    \
                                              int64_t n) {                                         \
        LAUNCH_1D(name##_bwd, n, dx, dout, saved, n);                                              \
    }                                                                                              \
    extern "C" void mprt_cu_##name##_forward_bf16(uint16_t *out, const uint16_t *x, int64_t n) {   \
        LAUNCH_1D(name##_fwd, n, out, x, n);                                                       \
    }                                                                                              \
    extern "C" void mprt_cu_##name##_backward_bf16(float *dx, const float *dout,                   \
                                                   const uint16_t *saved, int64_t n) {             \
        LAUNCH_1D(name##_bwd, n, dx, dout, saved, n);                                              \
    }

MPRT_EW_UNARY(CU_EW_UNARY_KERNELS)

template <class O, class X> __global__ void add_fwd(O *out, const X *a, const X *b, int64_t n) {
    GRID_STRIDE(i, n) mprt_cu_put(&out[i], mprt_cu_get(a[i]) + mprt_cu_get(b[i]));
}
__global__ void accumulate_k(float *dst, const float *src, int64_t n) {
    GRID_STRIDE(i, n) dst[i] += src[i];
}
__global__ void fill_k(float *dst, int64_t n, float value) { GRID_STRIDE(i, n) dst[i] = value; }

extern "C" void mprt_cu_add_forward(float *out, const float *a, const float *b, int64_t n) {
    LAUNCH_1D(add_fwd, n, out, a, b, n);
}
extern "C" void mprt_cu_add_forward_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b,
                                         int64_t n) {
    LAUNCH_1D(add_fwd, n, out, a, b, n);
}
extern "C" void mprt_cu_accumulate(float *dst, const float *src, int64_t n) {
    LAUNCH_1D(accumulate_k, n, dst, src, n);
}
/* Two launches, so da == db (add(x, x)) receives 2·dout, as on the CPU. */
extern "C" void mprt_cu_add_backward(float *da, float *db, const float *dout, int64_t n) {
    if (da) mprt_cu_accumulate(da, dout, n);
    if (db) mprt_cu_accumulate(db, dout, n);
}
extern "C" void mprt_cu_fill(float *dst, int64_t n, float value) {
    LAUNCH_1D(fill_k, n, dst, n, value);
}

/* ─────────────────────────────── layernorm ─────────────────────────────── */

__device__ static float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

#define LN_WARPS 4 /* rows per block, one warp each */

/* Two passes over the row, like the CPU (mean, then the centred variance). x and out f32, or a
 * bf16 trainer's 16-bit activations (read exactly, stored rounded); the statistics f32. */
template <class O, class X>
__global__ void layernorm_fwd(O *out, float *mean, float *rstd, const X *x, const float *gamma,
                              const float *beta, int N, int C, float eps) {
    int n = (int)(blockIdx.x * LN_WARPS + threadIdx.y), lane = (int)threadIdx.x;
    if (n >= N) return;
    const X *xr = x + (size_t)n * (size_t)C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32)
        s += mprt_cu_get(xr[c]);
    float mu = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32)
        v += (mprt_cu_get(xr[c]) - mu) * (mprt_cu_get(xr[c]) - mu);
    float rs = 1.0f / sqrtf(warp_sum(v) / (float)C + eps);
    O *yr = out + (size_t)n * (size_t)C;
    for (int c = lane; c < C; c += 32)
        mprt_cu_put(&yr[c], (mprt_cu_get(xr[c]) - mu) * rs * gamma[c] + beta[c]);
    if (lane == 0) {
        mean[n] = mu;
        rstd[n] = rs;
    }
}

template <class X>
__global__ void layernorm_bwd_dx(float *dx, const float *dout, const X *x, const float *mean,
                                 const float *rstd, const float *gamma, int N, int C) {
    int n = (int)(blockIdx.x * LN_WARPS + threadIdx.y), lane = (int)threadIdx.x;
    if (n >= N) return;
    const X *xr = x + (size_t)n * (size_t)C;
    const float *gr = dout + (size_t)n * (size_t)C;
    float mu = mean[n], rs = rstd[n], sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = gr[c] * gamma[c];
        sg += g;
        sgx += g * (mprt_cu_get(xr[c]) - mu) * rs;
    }
    float mg = warp_sum(sg) / (float)C, mgx = warp_sum(sgx) / (float)C;
    float *dr = dx + (size_t)n * (size_t)C;
    for (int c = lane; c < C; c += 32) {
        float xh = (mprt_cu_get(xr[c]) - mu) * rs;
        dr[c] += rs * (gr[c] * gamma[c] - mg - xh * mgx);
    }
}

template <class X> struct LnDgamma {
    const float *dout;
    const X *x;
    const float *mean, *rstd;
    int C;
    __device__ float operator()(int n, int c) const {
        size_t i = (size_t)n * (size_t)C + (size_t)c;
        return dout[i] * (mprt_cu_get(x[i]) - mean[n]) * rstd[n];
    }
};

template <class O, class X>
static void layernorm_forward(O *out, float *mean, float *rstd, const X *x, const float *gamma,
                              const float *beta, int N, int C, float eps) {
    if (N <= 0) return;
    dim3 block(32, LN_WARPS), grid((unsigned)((N + LN_WARPS - 1) / LN_WARPS));
    layernorm_fwd<<<grid, block, 0, mprt_cu_stream()>>>(out, mean, rstd, x, gamma, beta, N, C, eps);
    CU_CHECK_LAUNCH("layernorm_fwd");
}

template <class X>
static void layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                               const X *x, const float *mean, const float *rstd, const float *gamma,
                               int N, int C) {
    if (N <= 0) return;
    if (dgamma) colsum_add(dgamma, N, C, LnDgamma<X>{dout, x, mean, rstd, C});
    if (dbeta) colsum_add(dbeta, N, C, ReadMatrix{dout, C});
    if (!dx) return;
    dim3 block(32, LN_WARPS), grid((unsigned)((N + LN_WARPS - 1) / LN_WARPS));
    layernorm_bwd_dx<<<grid, block, 0, mprt_cu_stream()>>>(dx, dout, x, mean, rstd, gamma, N, C);
    CU_CHECK_LAUNCH("layernorm_bwd_dx");
}

extern "C" void mprt_cu_layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                                          const float *gamma, const float *beta, int N, int C,
                                          float eps) {
    layernorm_forward(out, mean, rstd, x, gamma, beta, N, C, eps);
}

extern "C" void mprt_cu_layernorm_forward_bf16(uint16_t *out, float *mean, float *rstd,
                                               const uint16_t *x, const float *gamma,
                                               const float *beta, int N, int C, float eps) {
    layernorm_forward(out, mean, rstd, x, gamma, beta, N, C, eps);
}

extern "C" void mprt_cu_layernorm_backward(float *dx, float *dgamma, float *dbeta,
                                           const float *dout, const float *x, const float *mean,
                                           const float *rstd, const float *gamma, int N, int C) {
    layernorm_backward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, N, C);
}

extern "C" void mprt_cu_layernorm_backward_bf16(float *dx, float *dgamma, float *dbeta,
                                                const float *dout, const uint16_t *x,
                                                const float *mean, const float *rstd,
                                                const float *gamma, int N, int C) {
    layernorm_backward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma, N, C);
}

/* ─────────────────────────────── dropout ─────────────────────────────── */
/* The construction of kernels.c (docs/kernels.md "dropout"), in device code. */

#define DROP_STREAM 0x64726f706f7574ull /* "dropout" in ASCII */
#define GOLDEN 0x9E3779B97F4A7C15ull

__device__ static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ static uint64_t drop_sub(uint64_t key, uint64_t id) {
    return mix64(key ^ mix64(id ^ 0xA4093822299F31D0ull));
}
__device__ static uint64_t drop_key(uint64_t seed, uint32_t layer, int64_t step, int64_t n) {
    uint64_t k =
        mix64(mix64(seed ^ 0x243F6A8885A308D3ull) ^ mix64(DROP_STREAM ^ 0x13198A2E03707344ull));
    k = drop_sub(k, layer);
    k = drop_sub(k, (uint64_t)step);
    return drop_sub(k, (uint64_t)n);
}

/* dst (=, or += when acc) src·keep/(1 − p) over the local [N, R, F] shard. */
template <class D, class S>
__global__ void dropout_apply(D *dst, const S *src, int N, MprtDropShard sh, uint64_t thr,
                              float scale, uint64_t seed, uint32_t layer, int64_t step, int acc) {
    int64_t per = (int64_t)sh.R * sh.F, total = (int64_t)N * per;
    GRID_STRIDE(i, total) {
        int64_t n = i / per, rf = i % per;
        int64_t r = rf / sh.F, f = rf % sh.F;
        uint64_t key = drop_key(seed, layer, step, sh.n0 + n);
        uint64_t e = (uint64_t)((sh.r0 + r) * sh.F_global + sh.f0 + f);
        uint64_t h = mix64(key + (e + 1) * GOLDEN);
        /* __fmul_rn: no fused multiply-add, so dst + v rounds exactly as on the CPU */
        float v = (h >> 40) >= thr ? __fmul_rn(mprt_cu_get(src[i]), scale) : 0.0f;
        mprt_cu_put(&dst[i], acc ? __fadd_rn(mprt_cu_get(dst[i]), v) : v);
    }
}

template <class D, class S>
static void dropout_launch(D *dst, const S *src, int N, MprtDropShard sh, float p, uint64_t seed,
                           uint32_t layer, int64_t step, int acc) {
    int64_t total = (int64_t)N * sh.R * sh.F;
    uint64_t thr = (uint64_t)ceil((double)p * 16777216.0);
    float scale = 1.0f / (1.0f - p);
    LAUNCH_1D(dropout_apply, total, dst, src, N, sh, thr, scale, seed, layer, step, acc);
}

/* The forward of both storage types: out = x where nothing is dropped (a copy). */
template <class E>
static void dropout_forward(E *out, const E *x, int N, MprtDropShard sh, float p, uint64_t seed,
                            uint32_t layer, int64_t step, int training) {
    int64_t total = (int64_t)N * sh.R * sh.F;
    if (!training || p <= 0.0f) {
        if (total > 0)
            CU_CHECK(cudaMemcpyAsync(out, x, (size_t)total * sizeof(E), cudaMemcpyDeviceToDevice,
                                     mprt_cu_stream()));
        return;
    }
    dropout_launch(out, x, N, sh, p, seed, layer, step, 0);
}

extern "C" void mprt_cu_dropout_forward(float *out, const float *x, int N, MprtDropShard sh,
                                        float p, uint64_t seed, uint32_t layer, int64_t step,
                                        int training) {
    dropout_forward(out, x, N, sh, p, seed, layer, step, training);
}

extern "C" void mprt_cu_dropout_forward_bf16(uint16_t *out, const uint16_t *x, int N,
                                             MprtDropShard sh, float p, uint64_t seed,
                                             uint32_t layer, int64_t step, int training) {
    dropout_forward(out, x, N, sh, p, seed, layer, step, training);
}

extern "C" void mprt_cu_dropout_backward(float *dx, const float *dout, int N, MprtDropShard sh,
                                         float p, uint64_t seed, uint32_t layer, int64_t step) {
    if (p <= 0.0f) {
        mprt_cu_accumulate(dx, dout, (int64_t)N * sh.R * sh.F);
        return;
    }
    dropout_launch(dx, dout, N, sh, p, seed, layer, step, 1);
}
