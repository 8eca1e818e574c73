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
 * script re-implements them to check a trainer's loss curve to 1e-5. They are elementwise,
 * so they run on the rank's thread pool over contiguous ranges (parallel.c) with results
 * independent of the thread count; so do the cross-entropy gradient (by rows) and the MSE
 * gradient. The loss values are sums and stay serial, in a fixed order.
 */

#define GRAIN 16384 /* elements below which a loop stays on the calling thread */
#include "internal.h"
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
            acc[l] += mprt_ew_expf(row[j + l] - mx);
    for (; j < V; j++)
        acc[0] += mprt_ew_expf(row[j] - mx);
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    *max_out = mx;
    return logf(s);
}

double mprt_cross_entropy_forward(const float *restrict logits, const int32_t *restrict labels,
                                  int M, int V, float scale) {
    mprt__logits_captured(logits, M, V);    /* --generate (trainer_generate.c) */
    mprt__ce_counted(logits, labels, M, V); /* validation accuracy (trainer_eval.c) */
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

typedef struct Ce {
    float *dlogits;
    const float *logits;
    const int32_t *labels;
    int V;
    float scale;
} Ce;

/* Rows [lo, hi) of the cross-entropy gradient. */
MPRT__SIMD static void cross_entropy_backward_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ce *c = p;
    int V = c->V;
    for (int64_t m = lo; m < hi; m++) {
        int32_t label = c->labels[m];
        if (label < 0 || label >= V) continue; /* ignored row */
        const float *restrict row = c->logits + m * V;
        float *restrict d = c->dlogits + m * V;
        float mx;
        float lse = row_logsumexp(row, V, &mx);
        for (int j = 0; j < V; j++)
            d[j] += c->scale * mprt_ew_expf(row[j] - mx - lse);
        d[label] -= c->scale;
    }
}

void mprt_cross_entropy_backward(float *restrict dlogits, const float *restrict logits,
                                 const int32_t *restrict labels, int M, int V, float scale) {
    Ce c = {dlogits, logits, labels, V, scale};
    mprt__parallel_for(M, GRAIN / (V + 1) + 1, cross_entropy_backward_part, &c);
}

int mprt_all_finite(const float *restrict x, int64_t n) {
    unsigned bad = 0; /* exponent bits all ones: an Inf or a NaN */
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad == 0;
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

typedef struct Mse {
    float *dpred;
    const float *pred, *target;
    float c; /* 2·scale */
} Mse;

static void mse_backward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Mse *e = ctx;
    float *restrict d = e->dpred;
    const float *restrict pred = e->pred, *restrict target = e->target;
    for (int64_t i = lo; i < hi; i++)
        d[i] += e->c * (pred[i] - target[i]);
}

void mprt_mse_backward(float *restrict dpred, const float *restrict pred,
                       const float *restrict target, int64_t n, float scale) {
    Mse e = {dpred, pred, target, 2.0f * scale};
    mprt__parallel_for(n, GRAIN, mse_backward_part, &e);
}

/* ─────────────────────────────── optimizers ─────────────────────────────── */

/* The operands of the optimizers' part functions. keep: AdamW's decoupled decay factor
 * 1 − lr·wd (1 for Adam). */
typedef struct Opt {
    float *p, *m, *v;
    const float *g;
    float lr, momentum, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt, keep;
} Opt;

static void sgd_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Opt *o = ctx;
    float *restrict p = o->p, *restrict v = o->v;
    const float *restrict g = o->g;
    float lr = o->lr, momentum = o->momentum, weight_decay = o->weight_decay;
    if (!v) {
        for (int64_t i = lo; i < hi; i++)
            p[i] -= lr * (g[i] + weight_decay * p[i]);
        return;
    }
    for (int64_t i = lo; i < hi; i++) {
        v[i] = momentum * v[i] + (g[i] + weight_decay * p[i]);
        p[i] -= lr * v[i];
    }
}

void mprt_sgd_step(float *restrict p, float *restrict v, const float *restrict g, int64_t n,
                   float lr, float momentum, float weight_decay) {
    Opt o = {.p = p, .v = v, .g = g, .lr = lr, .momentum = momentum, .weight_decay = weight_decay};
    mprt__parallel_for(n, GRAIN, sgd_part, &o);
}

/* The shared Adam update over [lo, hi); AdamW's decoupled decay (keep) scales p first, in the
 * same pass. */
MPRT__SIMD
static void adam_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Opt *o = ctx;
    float *restrict p = o->p, *restrict m = o->m, *restrict v = o->v;
    const float *restrict g = o->g;
    float beta1 = o->beta1, beta2 = o->beta2, eps = o->eps, wd = o->weight_decay;
    float step_size = o->step_size, bc2_sqrt = o->bc2_sqrt, keep = o->keep;
    for (int64_t i = lo; i < hi; i++) {
        float pi = p[i] * keep;
        float gi = g[i] + wd * pi;
        m[i] = beta1 * m[i] + (1.0f - beta1) * gi;
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * m[i] / denom;
    }
}

static void adam_run(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float keep, int64_t t) {
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    Opt o = {.p = p,
             .m = m,
             .v = v,
             .g = g,
             .lr = lr,
             .beta1 = beta1,
             .beta2 = beta2,
             .eps = eps,
             .weight_decay = weight_decay,
             .step_size = (float)((double)lr / bc1),
             .bc2_sqrt = (float)sqrt(bc2),
             .keep = keep};
    mprt__parallel_for(n, GRAIN, adam_part, &o);
}

void mprt_adam_step(float *restrict p, float *restrict m, float *restrict v,
                    const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                    float eps, float weight_decay, int64_t t) {
    adam_run(p, m, v, g, n, lr, beta1, beta2, eps, weight_decay, 1.0f, t);
}

void mprt_adamw_step(float *restrict p, float *restrict m, float *restrict v,
                     const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                     float eps, float weight_decay, int64_t t) {
    adam_run(p, m, v, g, n, lr, beta1, beta2, eps, 0.0f, 1.0f - lr * weight_decay, t);
}
