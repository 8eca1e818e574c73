/*
 * kernels_train.c: what surrounds the layers in a training step — the losses
 * (cross-entropy, mean squared error), and the optimizers (SGD with momentum, Adam,
 * AdamW).
 *
 * Losses take a caller-given `scale` (1 / the global number of rows or elements), so that
 * under any split of the batch the local sums add up to the global mean and the gradients
 * are already those of the mean; they return the local (scaled) sum for logging.
 *
 * The optimizers reproduce PyTorch's update rules to the operation (torch.optim.SGD with
 * dampening 0 and no Nesterov, torch.optim.Adam and AdamW with amsgrad off), because a numpy
 * script re-implements them to check a trainer's loss curve to 1e-5.
 */
#include "mprt_kernels.h"

#include "kernels_math.h"

#include <math.h>
#include <stddef.h>

/* ─────────────────────────────── losses ─────────────────────────────── */

/* Row maximum and log Σ exp(x − max) of one row of logits. */
MPRT__SIMD
static float row_logsumexp(const float *restrict row, int V, float *restrict max_out) {
    float mx = row[0];
    for (int j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    /* Eight running sums in a fixed order, so the exponentials vectorise (a single float
     * accumulator would serialise the loop) and the result does not depend on the target. */
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= V; j += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += mprt__expf(row[j + l] - mx);
    for (; j < V; j++)
        acc[0] += mprt__expf(row[j] - mx);
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    *max_out = mx;
    return logf(s);
}

double mprt_cross_entropy_forward(const float *restrict logits, const int32_t *restrict labels,
                                  int M, int V, float scale) {
    double loss = 0.0;
    for (int m = 0; m < M; m++) {
        if (labels[m] < 0 || labels[m] >= V) continue; /* ignored row */
        const float *restrict row = logits + (size_t)m * (size_t)V;
        float mx;
        float lse = row_logsumexp(row, V, &mx);
        loss += (double)(lse - (row[labels[m]] - mx));
    }
    return loss * (double)scale;
}

MPRT__SIMD static void cross_entropy_backward_loop(float *restrict dlogits,
                                                   const float *restrict logits,
                                                   const int32_t *restrict labels, int M, int V,
                                                   float scale) {
    for (int m = 0; m < M; m++) {
        if (labels[m] < 0 || labels[m] >= V) continue; /* ignored row */
        const float *restrict row = logits + (size_t)m * (size_t)V;
        float *restrict d = dlogits + (size_t)m * (size_t)V;
        float mx;
        float lse = row_logsumexp(row, V, &mx);
        for (int j = 0; j < V; j++)
            d[j] += scale * mprt__expf(row[j] - mx - lse);
        d[labels[m]] -= scale;
    }
}

void mprt_cross_entropy_backward(float *restrict dlogits, const float *restrict logits,
                                 const int32_t *restrict labels, int M, int V, float scale) {
    cross_entropy_backward_loop(dlogits, logits, labels, M, V, scale);
}

double mprt_mse_forward(const float *restrict pred, const float *restrict target, int64_t n,
                        float scale) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float e = pred[i] - target[i];
        s += (double)(e * e);
    }
    return s * (double)scale;
}

void mprt_mse_backward(float *restrict dpred, const float *restrict pred,
                       const float *restrict target, int64_t n, float scale) {
    float c = 2.0f * scale;
    for (int64_t i = 0; i < n; i++)
        dpred[i] += c * (pred[i] - target[i]);
}

/* ─────────────────────────────── optimizers ─────────────────────────────── */

void mprt_sgd_step(float *restrict p, float *restrict v, const float *restrict g, int64_t n,
                   float lr, float momentum, float weight_decay) {
    if (!v) {
        for (int64_t i = 0; i < n; i++)
            p[i] -= lr * (g[i] + weight_decay * p[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] + (g[i] + weight_decay * p[i]);
        p[i] -= lr * v[i];
    }
}

/* The shared Adam update; the caller has applied any decoupled decay already. */
MPRT__SIMD
static void adam_update(float *restrict p, float *restrict m, float *restrict v,
                        const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int64_t t) {
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)((double)lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * p[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

void mprt_adam_step(float *restrict p, float *restrict m, float *restrict v,
                    const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                    float eps, float weight_decay, int64_t t) {
    adam_update(p, m, v, g, n, lr, beta1, beta2, eps, weight_decay, t);
}

void mprt_adamw_step(float *restrict p, float *restrict m, float *restrict v,
                     const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                     float eps, float weight_decay, int64_t t) {
    float keep = 1.0f - lr * weight_decay;
    for (int64_t i = 0; i < n; i++)
        p[i] *= keep;
    adam_update(p, m, v, g, n, lr, beta1, beta2, eps, 0.0f, t);
}
