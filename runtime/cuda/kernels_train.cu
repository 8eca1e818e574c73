/*
 * kernels_train.cu: the losses and optimizers on the GPU, with the semantics of
 * runtime/kernels_train.c (docs/kernels.md): cross-entropy and mean squared error with a
 * caller-given scale, SGD with momentum, Adam and AdamW with PyTorch's update rules.
 *
 * The one difference from the CPU contract is the loss value. The CPU forward returns it;
 * here it is added (atomicAdd on a double) into a device accumulator the trainer reads when it
 * logs, so a training step never waits for the GPU just to learn a number it prints every
 * few steps. Cross-entropy gives one block to one row (max, Σ exp, then the row's loss);
 * backward recomputes the softmax, as on the CPU, and rounds its update in the CPU's order.
 *
 * The optimizers are elementwise; Adam's bias corrections are computed on the host in double
 * and rounded once, exactly as kernels_train.c does, so the GPU update is the same arithmetic.
 */
#include "cu_internal.h"

#include <math.h>

/* ─────────────────────────────── losses ─────────────────────────────── */

/* The max and log Σ exp(x − max) of one row, agreed by the whole block. The logits (and mse's
 * prediction) are f32, or a bf16 trainer's 16-bit activations (X = uint16_t, read exactly:
 * mprt_cu_get), with the same f32 arithmetic. */
template <class X> __device__ static float row_logsumexp(const X *row, int V, float *max_out) {
    float mx = -INFINITY;
    for (int j = (int)threadIdx.x; j < V; j += blockDim.x)
        mx = fmaxf(mx, mprt_cu_get(row[j]));
    mx = mprt_cu_block_reduce(mx, MprtCuMax());
    float s = 0.0f;
    for (int j = (int)threadIdx.x; j < V; j += blockDim.x)
        s += mprt_ew_expf(mprt_cu_get(row[j]) - mx);
    s = mprt_cu_block_reduce(s, MprtCuSum());
    *max_out = mx;
    return logf(s);
}

/* One block per row. A row whose label lies outside [0, V) is ignored, as by the CPU kernels
 * (mprt_cross_entropy_forward/_backward) and the vocabulary-parallel ones: no loss, no
 * gradient, and nothing read at the label. The trainer never hands such a label (the data
 * loader refuses a label file holding one with a one-line error before any step,
 * mprt_data_check); this keeps a bad one from reading past the row. The whole block leaves
 * together (the label is the block's), before any of its reductions. */
template <class X>
__global__ void cross_entropy_fwd_k(double *loss, const X *logits, const int32_t *labels, int V,
                                    float scale) {
    const X *row = logits + (size_t)blockIdx.x * (size_t)V;
    int label = labels[blockIdx.x];
    if (label < 0 || label >= V) return; /* ignored row */
    float mx;
    float lse = row_logsumexp(row, V, &mx);
    if (threadIdx.x == 0)
        atomicAdd(loss, (double)(lse - (mprt_cu_get(row[label]) - mx)) * (double)scale);
}

template <class X>
__global__ void cross_entropy_bwd_k(float *dlogits, const X *logits, const int32_t *labels, int V,
                                    float scale) {
    const X *row = logits + (size_t)blockIdx.x * (size_t)V;
    float *d = dlogits + (size_t)blockIdx.x * (size_t)V;
    int label = labels[blockIdx.x];
    if (label < 0 || label >= V) return; /* ignored row: its gradient is left as it was */
    float mx;
    float lse = row_logsumexp(row, V, &mx);
    for (int j = (int)threadIdx.x; j < V; j += blockDim.x) {
        float t = d[j] + scale * mprt_ew_expf(mprt_cu_get(row[j]) - mx - lse);
        if (j == label) t -= scale;
        d[j] = t;
    }
}

template <class X>
static void cross_entropy_forward(double *loss, const X *logits, const int32_t *labels, int M,
                                  int V, float scale) {
    if (M <= 0) return;
    cross_entropy_fwd_k<<<(unsigned)M, MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(loss, logits, labels,
                                                                               V, scale);
    CU_CHECK_LAUNCH("cross_entropy_fwd_k");
}

template <class X>
static void cross_entropy_backward(float *dlogits, const X *logits, const int32_t *labels, int M,
                                   int V, float scale) {
    if (M <= 0) return;
    cross_entropy_bwd_k<<<(unsigned)M, MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(dlogits, logits,
                                                                               labels, V, scale);
    CU_CHECK_LAUNCH("cross_entropy_bwd_k");
}

extern "C" void mprt_cu_cross_entropy_forward(double *loss, const float *logits,
                                              const int32_t *labels, int M, int V, float scale) {
    cross_entropy_forward(loss, logits, labels, M, V, scale);
}
extern "C" void mprt_cu_cross_entropy_backward(float *dlogits, const float *logits,
                                               const int32_t *labels, int M, int V, float scale) {
    cross_entropy_backward(dlogits, logits, labels, M, V, scale);
}
extern "C" void mprt_cu_cross_entropy_forward_bf16(double *loss, const uint16_t *logits,
                                                   const int32_t *labels, int M, int V,
                                                   float scale) {
    cross_entropy_forward(loss, logits, labels, M, V, scale);
}
extern "C" void mprt_cu_cross_entropy_backward_bf16(float *dlogits, const uint16_t *logits,
                                                    const int32_t *labels, int M, int V,
                                                    float scale) {
    cross_entropy_backward(dlogits, logits, labels, M, V, scale);
}

template <class X>
__global__ void mse_fwd_k(double *loss, const X *pred, const float *target, int64_t n,
                          float scale) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float e = mprt_cu_get(pred[i]) - target[i];
        s += (double)(e * e);
    }
    s = mprt_cu_block_reduce(s, MprtCuSum());
    if (threadIdx.x == 0) atomicAdd(loss, s * (double)scale);
}

template <class X>
__global__ void mse_bwd_k(float *dpred, const X *pred, const float *target, int64_t n, float c) {
    GRID_STRIDE(i, n) dpred[i] += c * (mprt_cu_get(pred[i]) - target[i]);
}

extern "C" void mprt_cu_mse_forward(double *loss, const float *pred, const float *target, int64_t n,
                                    float scale) {
    LAUNCH_1D(mse_fwd_k, n, loss, pred, target, n, scale);
}

extern "C" void mprt_cu_mse_backward(float *dpred, const float *pred, const float *target,
                                     int64_t n, float scale) {
    LAUNCH_1D(mse_bwd_k, n, dpred, pred, target, n, 2.0f * scale);
}

extern "C" void mprt_cu_mse_forward_bf16(double *loss, const uint16_t *pred, const float *target,
                                         int64_t n, float scale) {
    LAUNCH_1D(mse_fwd_k, n, loss, pred, target, n, scale);
}

extern "C" void mprt_cu_mse_backward_bf16(float *dpred, const uint16_t *pred, const float *target,
                                          int64_t n, float scale) {
    LAUNCH_1D(mse_bwd_k, n, dpred, pred, target, n, 2.0f * scale);
}

/* ─────────────────────────────── optimizers ─────────────────────────────── */

__global__ void sgd_k(float *p, float *v, const float *g, int64_t n, float lr, float momentum,
                      float weight_decay) {
    GRID_STRIDE(i, n) {
        float gi = g[i] + weight_decay * p[i];
        if (v) {
            v[i] = momentum * v[i] + gi;
            gi = v[i];
        }
        p[i] -= lr * gi;
    }
}

/* keep != 1 applies AdamW's decoupled decay first (p *= 1 − lr·wd). */
__global__ void adam_k(float *p, float *m, float *v, const float *g, int64_t n, float keep,
                       float step_size, float bc2_sqrt, float beta1, float beta2, float eps,
                       float weight_decay) {
    GRID_STRIDE(i, n) {
        float pi = p[i] * keep;
        float gi = g[i] + weight_decay * pi;
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * m[i] / denom;
    }
}

static void adam_launch(float *p, float *m, float *v, const float *g, int64_t n, float keep,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        int64_t t) {
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)((double)lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    LAUNCH_1D(adam_k, n, p, m, v, g, n, keep, step_size, bc2_sqrt, beta1, beta2, eps, weight_decay);
}

extern "C" void mprt_cu_sgd_step(float *p, float *v, const float *g, int64_t n, float lr,
                                 float momentum, float weight_decay) {
    LAUNCH_1D(sgd_k, n, p, v, g, n, lr, momentum, weight_decay);
}

extern "C" void mprt_cu_adam_step(float *p, float *m, float *v, const float *g, int64_t n, float lr,
                                  float beta1, float beta2, float eps, float weight_decay,
                                  int64_t t) {
    adam_launch(p, m, v, g, n, 1.0f, lr, beta1, beta2, eps, weight_decay, t);
}

extern "C" void mprt_cu_adamw_step(float *p, float *m, float *v, const float *g, int64_t n,
                                   float lr, float beta1, float beta2, float eps,
                                   float weight_decay, int64_t t) {
    adam_launch(p, m, v, g, n, 1.0f - lr * weight_decay, lr, beta1, beta2, eps, 0.0f, t);
}
