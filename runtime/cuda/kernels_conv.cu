/*
 * kernels_conv.cu: conv2d and maxpool2d on NCHW tensors on the GPU, with the semantics of
 * runtime/kernels_conv.c (docs/kernels.md).
 *
 * conv2d is im2col + one cuBLAS GEMM per sample, the CPU's algorithm with the same
 * caller-provided scratch of one sample's col matrix (MPRT_CONV2D_SCRATCH), so a trainer
 * sizes its buffers identically for both targets. Per-sample GEMMs are small for small
 * images; batching samples would need N times the scratch, which the CPU contract does not
 * give — the trade is written down in docs/cuda.md.
 *
 * The backward scatters (col2im and maxpool's dx) are written as gathers: every input pixel
 * sums the entries that were read from it, in a fixed order, so they need no atomics and
 * give the same bits on every run.
 */
#include "cu_internal.h"

struct ConvDims {
    int C, H, W, K, S, P, Ho, Wo;
};

static ConvDims conv_dims(int C, int H, int Wd, int K, int S, int P) {
    ConvDims d = {C, H, Wd, K, S, P, MPRT_CONV_OUT(H, K, S, P), MPRT_CONV_OUT(Wd, K, S, P)};
    return d;
}

static bool conv_is_pointwise(ConvDims d) { return d.K == 1 && d.S == 1 && d.P == 0; }

/* col[(c·K + kh)·K + kw, oh·Wo + ow] = x[c, oh·S − P + kh, ow·S − P + kw] (0 outside). A col
 * entry is stored f32, or bf16 for a bf16 trainer's forward (exact: x holds bf16 values); x is
 * f32, or a bf16 trainer's 16-bit activation (X = uint16_t: read exactly; cu_internal.h's
 * mprt_cu_get / mprt_cu_put). */
template <class E, class X> __global__ void im2col_k(E *col, const X *x, ConvDims d) {
    int64_t plane = (int64_t)d.Ho * d.Wo, total = (int64_t)d.C * d.K * d.K * plane;
    GRID_STRIDE(i, total) {
        int64_t row = i / plane, pix = i % plane;
        int kw = (int)(row % d.K), kh = (int)((row / d.K) % d.K), c = (int)(row / (d.K * d.K));
        int oh = (int)(pix / d.Wo), ow = (int)(pix % d.Wo);
        int ih = oh * d.S - d.P + kh, iw = ow * d.S - d.P + kw;
        bool in = ih >= 0 && ih < d.H && iw >= 0 && iw < d.W;
        mprt_cu_put(&col[i], in ? mprt_cu_get(x[((int64_t)c * d.H + ih) * d.W + iw]) : 0.0f);
    }
}

/* dx[c, ih, iw] += Σ of the col entries read from (c, ih, iw), gathered in (kh, kw) order. */
__global__ void col2im_add_k(float *dx, const float *col, ConvDims d) {
    int64_t plane = (int64_t)d.Ho * d.Wo, total = (int64_t)d.C * d.H * d.W;
    GRID_STRIDE(i, total) {
        int iw = (int)(i % d.W), ih = (int)((i / d.W) % d.H), c = (int)(i / ((int64_t)d.H * d.W));
        float s = 0.0f;
        for (int kh = 0; kh < d.K; kh++) {
            int th = ih + d.P - kh;
            if (th < 0 || th % d.S != 0 || th / d.S >= d.Ho) continue;
            for (int kw = 0; kw < d.K; kw++) {
                int tw = iw + d.P - kw;
                if (tw < 0 || tw % d.S != 0 || tw / d.S >= d.Wo) continue;
                int64_t row = ((int64_t)c * d.K + kh) * d.K + kw;
                s += col[row * plane + (int64_t)(th / d.S) * d.Wo + tw / d.S];
            }
        }
        dx[i] += s;
    }
}

/* out[o, i] = b[o] for one sample's [O, plane] output, b f32 or bf16 working weights (exact). */
template <class E> __global__ void bias_planes_k(float *out, const E *b, int O, int64_t plane) {
    GRID_STRIDE(i, (int64_t)O * plane) out[i] = mprt_cu_get(b[i / plane]);
}

/* db[o] += Σ_{n, i} dout[n, o, i]: one block per channel o. */
__global__ void bias_grad_k(float *db, const float *dout, int N, int O, int64_t plane) {
    __shared__ float part[MPRT_CU_THREADS];
    int o = (int)blockIdx.x;
    float s = 0.0f;
    for (int n = 0; n < N; n++) {
        const float *r = dout + ((int64_t)n * O + o) * plane;
        for (int64_t i = threadIdx.x; i < plane; i += blockDim.x)
            s += r[i];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = MPRT_CU_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[o] += part[0];
}

extern "C" void mprt_cu_conv2d_forward(float *out, const float *x, const float *W, const float *b,
                                       float *scratch, int N, int C, int H, int Wd, int O, int K,
                                       int S, int P, int add_bias) {
    ConvDims d = conv_dims(C, H, Wd, K, S, P);
    int plane = d.Ho * d.Wo, ckk = C * K * K;
    int64_t col_size = (int64_t)ckk * plane;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * (size_t)C * (size_t)H * (size_t)Wd;
        float *on = out + (size_t)n * (size_t)O * (size_t)plane;
        const float *col = xn;
        if (!conv_is_pointwise(d)) {
            LAUNCH_1D(im2col_k, col_size, scratch, xn, d);
            col = scratch;
        }
        float beta = 0.0f;
        if (add_bias && b) {
            LAUNCH_1D(bias_planes_k<float>, (int64_t)O * plane, on, b, O, (int64_t)plane);
            beta = 1.0f;
        }
        mprt_cu_gemm(false, false, O, plane, ckk, 1.0f, W, ckk, col, plane, beta, on, plane);
    }
}

/* A bf16 trainer's forward, x f32 (X = float) or 16-bit (X = uint16_t): every sample's col
 * packed as bf16 into the scratch (half of it), then a bf16 GEMM with fp32 sums on the bf16
 * weights. A pointwise convolution of a 16-bit x needs no col: x is the GEMM's operand. */
template <class X>
static void conv2d_forward_bf16(float *out, const X *x, const uint16_t *W, const uint16_t *b,
                                uint16_t *scratch, int N, ConvDims d, int O, int add_bias) {
    int plane = d.Ho * d.Wo, ckk = d.C * d.K * d.K;
    int64_t col_size = (int64_t)ckk * plane;
    bool direct = sizeof(X) == sizeof(uint16_t) && conv_is_pointwise(d);
    for (int n = 0; n < N; n++) {
        const X *xn = x + (size_t)n * (size_t)d.C * (size_t)d.H * (size_t)d.W;
        float *on = out + (size_t)n * (size_t)O * (size_t)plane;
        const uint16_t *col = scratch;
        if (direct)
            col = (const uint16_t *)(const void *)xn;
        else
            LAUNCH_1D(im2col_k, col_size, scratch, xn, d);
        float beta = 0.0f;
        if (add_bias && b) {
            LAUNCH_1D(bias_planes_k<uint16_t>, (int64_t)O * plane, on, b, O, (int64_t)plane);
            beta = 1.0f;
        }
        mprt_cu_gemm_bf16(false, false, O, plane, ckk, 1.0f, W, ckk, col, plane, beta, on, plane);
    }
}

extern "C" void mprt_cu_conv2d_forward_bf16(float *out, const float *x, const uint16_t *W,
                                            const uint16_t *b, uint16_t *scratch, int N, int C,
                                            int H, int Wd, int O, int K, int S, int P,
                                            int add_bias) {
    conv2d_forward_bf16(out, x, W, b, scratch, N, conv_dims(C, H, Wd, K, S, P), O, add_bias);
}

extern "C" void mprt_cu_conv2d_forward_bf16_packed(float *out, const uint16_t *xh,
                                                   const uint16_t *W, const uint16_t *b,
                                                   uint16_t *scratch, int N, int C, int H, int Wd,
                                                   int O, int K, int S, int P, int add_bias) {
    conv2d_forward_bf16(out, xh, W, b, scratch, N, conv_dims(C, H, Wd, K, S, P), O, add_bias);
}

extern "C" void mprt_cu_conv2d_backward(float *dx, float *dW, float *db, const float *dout,
                                        const float *x, const float *W, float *scratch, int N,
                                        int C, int H, int Wd, int O, int K, int S, int P) {
    ConvDims d = conv_dims(C, H, Wd, K, S, P);
    int plane = d.Ho * d.Wo, ckk = C * K * K;
    size_t in_size = (size_t)C * (size_t)H * (size_t)Wd;
    int64_t col_size = (int64_t)ckk * plane;
    bool pw = conv_is_pointwise(d);
    for (int n = 0; n < N; n++) {
        const float *don = dout + (size_t)n * (size_t)O * (size_t)plane;
        if (dW) {
            const float *col = x + (size_t)n * in_size;
            if (!pw) {
                LAUNCH_1D(im2col_k, col_size, scratch, col, d);
                col = scratch;
            }
            mprt_cu_gemm(false, true, O, ckk, plane, 1.0f, don, plane, col, plane, 1.0f, dW, ckk);
        }
        if (!dx) continue;
        float *dxn = dx + (size_t)n * in_size;
        if (pw) {
            mprt_cu_gemm(true, false, ckk, plane, O, 1.0f, W, ckk, don, plane, 1.0f, dxn, plane);
            continue;
        }
        mprt_cu_gemm(true, false, ckk, plane, O, 1.0f, W, ckk, don, plane, 0.0f, scratch, plane);
        LAUNCH_1D(col2im_add_k, (int64_t)in_size, dxn, scratch, d);
    }
    if (db && O > 0 && N > 0) {
        bias_grad_k<<<(unsigned)O, MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(db, dout, N, O, plane);
        CU_CHECK_LAUNCH("bias_grad_k");
    }
}

/* ─────────────────────────────── maxpool2d ─────────────────────────────── */

struct PoolDims {
    int H, W, K, S, Ho, Wo;
};

/* The first maximum of each window in row-major window order, as kernels_conv.c; x and out f32
 * or both a bf16 trainer's 16-bit activations (compared as their f32 values, copied exactly). */
template <class E>
__global__ void maxpool_fwd_k(E *out, int32_t *argmax, const E *x, int64_t total, PoolDims d) {
    GRID_STRIDE(o, total) {
        int64_t plane_out = (int64_t)d.Ho * d.Wo, p = o / plane_out;
        int oh = (int)((o % plane_out) / d.Wo), ow = (int)(o % d.Wo);
        const E *xp = x + p * d.H * d.W;
        int32_t best = oh * d.S * d.W + ow * d.S;
        for (int kh = 0; kh < d.K; kh++)
            for (int kw = 0; kw < d.K; kw++) {
                int32_t i = (oh * d.S + kh) * d.W + ow * d.S + kw;
                if (mprt_cu_get(xp[i]) > mprt_cu_get(xp[best])) best = i;
            }
        argmax[o] = best;
        out[o] = xp[best];
    }
}

/* dx[p, h, w] += Σ dout over the windows that contain (h, w) and chose it. */
__global__ void maxpool_bwd_k(float *dx, const float *dout, const int32_t *argmax, int64_t total,
                              PoolDims d) {
    GRID_STRIDE(i, total) {
        int64_t plane_in = (int64_t)d.H * d.W, p = i / plane_in;
        int h = (int)((i % plane_in) / d.W), w = (int)(i % d.W);
        int32_t me = h * d.W + w;
        int oh0 = h - d.K + 1 > 0 ? (h - d.K + d.S) / d.S : 0;
        int ow0 = w - d.K + 1 > 0 ? (w - d.K + d.S) / d.S : 0;
        float s = 0.0f;
        for (int oh = oh0; oh <= h / d.S && oh < d.Ho; oh++)
            for (int ow = ow0; ow <= w / d.S && ow < d.Wo; ow++) {
                int64_t o = (p * d.Ho + oh) * d.Wo + ow;
                if (argmax[o] == me) s += dout[o];
            }
        dx[i] += s;
    }
}

extern "C" void mprt_cu_maxpool2d_forward(float *out, int32_t *argmax, const float *x, int planes,
                                          int H, int Wd, int K, int S) {
    PoolDims d = {H, Wd, K, S, MPRT_CONV_OUT(H, K, S, 0), MPRT_CONV_OUT(Wd, K, S, 0)};
    int64_t total = (int64_t)planes * d.Ho * d.Wo;
    LAUNCH_1D(maxpool_fwd_k, total, out, argmax, x, total, d);
}

extern "C" void mprt_cu_maxpool2d_forward_bf16(uint16_t *out, int32_t *argmax, const uint16_t *x,
                                               int planes, int H, int Wd, int K, int S) {
    PoolDims d = {H, Wd, K, S, MPRT_CONV_OUT(H, K, S, 0), MPRT_CONV_OUT(Wd, K, S, 0)};
    int64_t total = (int64_t)planes * d.Ho * d.Wo;
    LAUNCH_1D(maxpool_fwd_k, total, out, argmax, x, total, d);
}

extern "C" void mprt_cu_maxpool2d_backward(float *dx, const float *dout, const int32_t *argmax,
                                           int planes, int H, int Wd, int K, int S) {
    PoolDims d = {H, Wd, K, S, MPRT_CONV_OUT(H, K, S, 0), MPRT_CONV_OUT(Wd, K, S, 0)};
    int64_t total = (int64_t)planes * H * Wd;
    LAUNCH_1D(maxpool_bwd_k, total, dx, dout, argmax, total, d);
}
