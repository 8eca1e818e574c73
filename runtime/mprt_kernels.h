/*
 * mprt_kernels.h: the numeric kernels a generated trainer calls (included by runtime/mprt.h).
 * docs/kernels.md gives each op's math, forward and backward.
 *
 * Every op is an `mprt_OP_forward` / `mprt_OP_backward` pair in the style of llm.c. A kernel
 * works on the LOCAL shard a rank holds and knows nothing about the plan: every dimension is
 * an argument (generated code passes compile-time constants), and a shard of a weight is just
 * a smaller weight. What a split means for each op is written next to it: a column split of a
 * linear passes the local W [in, out/t]; a row split passes [in/t, out] and adds the bias on
 * one rank only (`add_bias`), so the partial sums add up to the whole.
 *
 * Conventions, for every kernel:
 *   - float32, row-major, C order; shapes in the comments are [outer, ..., inner].
 *   - Pointers are `restrict`: no output may alias an input. Nothing is allocated; where a
 *     kernel needs room it takes a caller-provided scratch buffer whose size (in floats) is
 *     given by a MPRT_*_SCRATCH / MPRT_*_STASH macro usable in constant expressions.
 *   - Backward kernels ACCUMULATE: parameter gradients (dW, db, dgamma, ...) with += because
 *     gradients add up over micro-batches, and input gradients (dx) with += too, so a value
 *     with several consumers (a residual) receives the sum of their gradients. The caller
 *     zeroes gradient buffers when a step (parameters) or a micro-batch (activations) begins.
 *     A gradient pointer may be NULL when nobody needs that gradient (a model input, a
 *     layer without bias); the kernel then skips computing it. A bias added on one rank
 *     only (row split) still gets its gradient on every rank, from the replicated dout.
 *   - Matrix products go to OpenBLAS (cblas_sgemm); elementwise loops are written so the
 *     compiler vectorises them; both use the rank's threads (mprt_set_threads, below).
 */
#ifndef MPRT_KERNELS_H
#define MPRT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "mprt_ew.h" /* the elementwise table and its math, shared with the GPU */

/* The rank's compute threads (parallel.c): OpenBLAS's and the kernels' pool. threads ≤ 0 means
 * this rank's share of its node: the CPUs the node's ranks may run on (the union of their
 * affinity masks) divided by the number of ranks on the node. When the rank's own mask is
 * narrower than `threads` (Open MPI binds one or two ranks to one core each), the rank moves
 * itself, every thread of it, to its own block of `threads` CPUs of that union, or to the whole
 * union when the node is oversubscribed. Collective over the node's ranks once MPI is up; also
 * callable without MPI (unit tests). Returns the thread count. Kernel results do not depend on it
 * except through OpenBLAS's GEMMs. */
int mprt_set_threads(int threads);
int mprt_threads(void);
/* The CPUs this rank was moved to by the last mprt_set_threads ("0-1"), or "" if it was not. */
const char *mprt_rebound_cpus(void);

/* ─────────────────────────────── linear ─────────────────────────────── */

/* out[N, Dout] = x[N, Din] · W[Din, Dout]  (+ b[Dout] broadcast over rows when add_bias)
 * W is stored [in, out]. Column split: the local W is [Din, Dout/t], b [Dout/t], output split by
 * feature. Row split: x [N, Din/t], W [Din/t, Dout], output a partial sum; add_bias on one rank. */
void mprt_linear_forward(float *restrict out, const float *restrict x, const float *restrict W,
                         const float *restrict b, int N, int Din, int Dout, int add_bias);
/* dx[N, Din] += dout · Wᵀ;  dW[Din, Dout] += xᵀ · dout;  db[Dout] += Σ_n dout[n, :] */
void mprt_linear_backward(float *restrict dx, float *restrict dW, float *restrict db,
                          const float *restrict dout, const float *restrict x,
                          const float *restrict W, int N, int Din, int Dout);

/* ──────────────────── elementwise: relu, gelu, tanh, add ──────────────────── */

/* The unary ops of runtime/mprt_ew.h's table (relu, gelu, tanh, …), whose math is written
 * once there, for the CPU and the GPU, each formula beside its row (and in docs/kernels.md).
 * For each row X(NAME, saved):
 *   void mprt_NAME_forward(float *out, const float *x, int64_t n);       out = NAME(x)
 *   void mprt_NAME_backward(float *dx, const float *dout, const float *saved, int64_t n);
 *                                                                         dx += dout · NAME'(x)
 * where `saved` is the forward input x (relu, gelu) or the forward OUTPUT out (tanh, whose
 * derivative is 1 − out²). */
#define MPRT_EW_DECLARE(name, saved)                                                               \
    void mprt_##name##_forward(float *restrict out, const float *restrict x, int64_t n);           \
    void mprt_##name##_backward(float *restrict dx, const float *restrict dout,                    \
                                const float *restrict saved, int64_t n);
MPRT_EW_UNARY(MPRT_EW_DECLARE)
/* out = a + b;  backward: da += dout, db += dout. da and db may be the same buffer
 * (add(x, x) then receives 2·dout), or NULL. */
void mprt_add_forward(float *restrict out, const float *restrict a, const float *restrict b,
                      int64_t n);
void mprt_add_backward(float *da, float *db, const float *dout, int64_t n);
/* dst[n] += src[n]: the building block of gradient accumulation. */
void mprt_accumulate(float *restrict dst, const float *restrict src, int64_t n);

/* ─────────────────────────────── layernorm ─────────────────────────────── */

/* Over the last dimension C of x [N, C] (N counts all leading dims):
 *   mean[n] = Σ_c x / C,  rstd[n] = 1/√(Σ_c (x − mean)² / C + eps)   (biased variance)
 *   out[n, c] = (x − mean)·rstd·gamma[c] + beta[c]
 * mean and rstd [N] are saved for backward. */
void mprt_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                            const float *restrict x, const float *restrict gamma,
                            const float *restrict beta, int N, int C, float eps);
/* With x̂ = (x − mean)·rstd and g = dout·gamma:
 *   dx += rstd·(g − mean_c(g) − x̂·mean_c(g·x̂));  dgamma += Σ_n dout·x̂;  dbeta += Σ_n dout */
void mprt_layernorm_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                             const float *restrict dout, const float *restrict x,
                             const float *restrict mean, const float *restrict rstd,
                             const float *restrict gamma, int N, int C);

/* ─────────────────────────────── dropout ─────────────────────────────── */

/* Where a local dropout shard sits in the whole tensor. The local tensor is viewed as
 * [N, R, F] (N samples, R rows per sample, F contiguous features per row); the global sample
 * has rows of `F_global` features. Local element (n, r, f) is global sample n0 + n, element
 * index e = (r0 + r)·F_global + f0 + f inside that sample. Examples: [N, D] split by
 * feature: R = 1, F = D/t, F_global = D, f0 = rank·D/t. [N, T, D] split by batch: R = T,
 * F = F_global = D, n0 = first global sample. NCHW split by channel: R = C/t, r0 = first
 * channel, F = F_global = H·W. */
typedef struct MprtDropShard {
    int64_t n0;          /* global index of local sample 0 */
    int R, r0;           /* local rows per sample and the global row of local row 0 */
    int F, F_global, f0; /* local features per row, the global row width, the global
                            feature index of local feature 0 */
} MprtDropShard;

/* Keep decision for element e of global sample n, at training step `step`, in the dropout
 * layer numbered `layer`: a pure function of (seed, layer, step, n, e), so the mask is the
 * same under any split of the batch or the features (docs/kernels.md gives the hash).
 *   training: out = x · keep / (1 − p);   not training (or p == 0, or evaluation mode:
 *   mprt_kernels_eval): out = x.
 * Backward recomputes the same mask: dx += dout · keep / (1 − p). p must be in [0, 1). */
int mprt_dropout_keep(uint64_t seed, uint32_t layer, int64_t step, int64_t n, int64_t e, float p);
void mprt_dropout_forward(float *restrict out, const float *restrict x, int N, MprtDropShard sh,
                          float p, uint64_t seed, uint32_t layer, int64_t step, int training);
void mprt_dropout_backward(float *restrict dx, const float *restrict dout, int N, MprtDropShard sh,
                           float p, uint64_t seed, uint32_t layer, int64_t step);

/* ─────────────────────────── conv2d, maxpool2d, flatten ─────────────────────────── */

/* Output size of a convolution or pooling window along one axis. */
#define MPRT_CONV_OUT(H, K, S, P) (((H) + 2 * (P) - (K)) / (S) + 1)
/* Scratch for conv2d forward and backward: one sample's im2col matrix [C·K·K, Ho·Wo]. */
#define MPRT_CONV2D_SCRATCH(C, K, Ho, Wo) ((int64_t)(C) * (K) * (K) * (Ho) * (Wo))

/* out[N, O, Ho, Wo] = conv(x[N, C, H, W], W[O, C, K, K]) (+ b[O] when add_bias), square
 * kernel K, stride S, zero padding P, Ho = MPRT_CONV_OUT(H, K, S, P). Weight stored as in
 * PyTorch. Per sample: im2col into scratch [C·K·K, Ho·Wo], then out_n = W[O, C·K·K] · col.
 * Column split: local W [O/t, C, K, K]. Row split: x [N, C/t, H, W], W [O, C/t, K, K],
 * output a partial sum, add_bias on one rank. */
void mprt_conv2d_forward(float *restrict out, const float *restrict x, const float *restrict W,
                         const float *restrict b, float *restrict scratch, int N, int C, int H,
                         int Wd, int O, int K, int S, int P, int add_bias);
/* dx += col2im(Wᵀ · dout_n);  dW += dout_n · im2col(x_n)ᵀ;  db[o] += Σ_{n,y,x} dout */
void mprt_conv2d_backward(float *restrict dx, float *restrict dW, float *restrict db,
                          const float *restrict dout, const float *restrict x,
                          const float *restrict W, float *restrict scratch, int N, int C, int H,
                          int Wd, int O, int K, int S, int P);

/* out[planes, Ho, Wo] = max over each K×K window (stride S, no padding) of x[planes, H, W],
 * planes = N·C; argmax[planes, Ho, Wo] saves the winning index h·W + w inside the plane
 * (the first maximum in row-major window order). Backward: dx[plane][argmax] += dout. */
void mprt_maxpool2d_forward(float *restrict out, int32_t *restrict argmax, const float *restrict x,
                            int planes, int H, int Wd, int K, int S);
void mprt_maxpool2d_backward(float *restrict dx, const float *restrict dout,
                             const int32_t *restrict argmax, int planes, int H, int Wd, int K,
                             int S);

/* flatten needs no kernel: [N, C, H, W] and [N, C·H·W] are the same bytes in row-major
 * order, so the generated code reuses the buffer (and its gradient) under the new shape. */

/* ─────────────────────────────── embedding ─────────────────────────────── */

/* out[M, D] = W[ids[m] − v0, :] (+ pos[m mod T, :] when pos and add_pos), M = N·T tokens.
 * W is the local [V_local, D] block of rows [v0, v0 + V_local) of the whole table; an id
 * outside that range gives a zero row, so under a vocabulary split the ranks' outputs are
 * partial sums (add_pos on one rank). Under a feature split W is [V, D/t], pos [P, D/t]
 * (columns of the whole tables) and v0 = 0. pos is [P, D] with P ≥ T, or NULL. */
void mprt_embedding_forward(float *restrict out, const int32_t *restrict ids,
                            const float *restrict W, const float *restrict pos, int M, int T,
                            int V_local, int v0, int D, int add_pos);
/* The same on bf16 tables (a bf16 trainer's working weights, runtime/trainer_bf16.c): only the
 * rows looked up are converted, to the same f32 values the f32 kernel would read. */
void mprt_embedding_forward_bf16(float *restrict out, const int32_t *restrict ids,
                                 const uint16_t *restrict W, const uint16_t *restrict pos, int M,
                                 int T, int V_local, int v0, int D, int add_pos);
/* dW[ids[m] − v0, :] += dout[m, :] for ids in the local range; dpos[m mod T, :] += dout[m, :]
 * when dpos is not NULL (under a vocabulary split on every rank: dout and pos are replicated). */
void mprt_embedding_backward(float *restrict dW, float *restrict dpos, const float *restrict dout,
                             const int32_t *restrict ids, int M, int T, int V_local, int v0, int D);

/* ─────────────────────────────── attention ─────────────────────────────── */

/* Multi-head self-attention over x [N, T, D] with Hl local heads of size hd (Dl = Hl·hd;
 * Hl = H unsplit, H/t under a head split):
 *   q = x·Wq + bq, k = x·Wk + bk, v = x·Wv + bv          [N·T, Dl], head h = columns h·hd..
 *   P_h = softmax(q_h·k_hᵀ / √hd) per sample, rows over keys; causal: key j > query i masked
 *   y_h = P_h · v_h                                       [N·T, Dl]
 *   out = y · Wo (+ bo when add_bias)                     [N·T, D]
 * Weights: Wq, Wk, Wv [D, Dl], bq, bk, bv [Dl], Wo [Dl, D], bo [D]. Under a head split these
 * are the local column blocks of Wq/Wk/Wv/b and the local row block of Wo: the output is a
 * partial sum and bo is added on one rank. */
typedef struct MprtAttnW {
    const float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} MprtAttnW;
typedef struct MprtAttnG { /* gradients, accumulated (+=); any may be NULL */
    float *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo;
} MprtAttnG;

/* Forward keeps q, k, v, y [N·T, Dl] and P [N, Hl, T, T] in the stash for backward. */
#define MPRT_ATTENTION_STASH(N, T, Dl, Hl)                                                         \
    (4 * (int64_t)(N) * (T) * (Dl) + (int64_t)(N) * (Hl) * (T) * (T))
/* Backward scratch: dy, dq, dk, dv [N·T, Dl]. (Each thread's dP [T, T] is the runtime's own.) */
#define MPRT_ATTENTION_SCRATCH(N, T, Dl) (4 * (int64_t)(N) * (T) * (Dl))

void mprt_attention_forward(float *restrict out, float *restrict stash, const float *restrict x,
                            MprtAttnW w, int N, int T, int D, int Hl, int hd, int causal,
                            int add_bias);
/* dx [N, T, D] += the gradient through q, k and v (a partial sum under a head split);
 * every non-NULL entry of g accumulates its parameter's gradient. */
void mprt_attention_backward(float *restrict dx, MprtAttnG g, const float *restrict dout,
                             const float *restrict x, const float *restrict stash,
                             float *restrict scratch, MprtAttnW w, int N, int T, int D, int Hl,
                             int hd, int causal);

/* ─────────────────────────────── losses ─────────────────────────────── */

/* logits [M, V], labels [M]:  returns scale · Σ_m −log softmax(logits[m])[label[m]] over the
 * local rows; scale is 1 / (the global number of rows) for a mean loss.
 * Backward: dlogits[m, :] += scale · (softmax(logits[m]) − onehot(label[m])).
 * A row whose label is outside [0, V) (PyTorch's ignore_index −100, or bad data the loader
 * should have rejected) is skipped: no loss, no gradient, and never an out-of-bounds read. */
double mprt_cross_entropy_forward(const float *restrict logits, const int32_t *restrict labels,
                                  int M, int V, float scale);
/* 1 when x[0 .. n) are all finite, 0 when one is a NaN or an Inf: one pass over the bits,
 * vectorised, no floating-point arithmetic (the non-finite guard, trainer_guard.c). */
int mprt_all_finite(const float *restrict x, int64_t n);
/* Evaluation mode (text generation, trainer_generate.c): dropout passes its input through. */
void mprt_kernels_eval(int on);
/* While armed (trainer_generate.c), the next cross-entropy forward on this rank whose rows
 * reach `row` copies that row of its logits (V floats) into dst and disarms; pending tells
 * whether it is still armed (and disarms). */
void mprt_logits_capture(int64_t row, float *dst, int64_t V);
int mprt_logits_capture_pending(void);
void mprt__logits_captured(const float *logits, int M, int V);
/* While a validation runs (trainer_eval.c): counts the rows whose largest logit is the label. */
void mprt__ce_counted(const float *logits, const int32_t *labels, int M, int V);
void mprt_cross_entropy_backward(float *restrict dlogits, const float *restrict logits,
                                 const int32_t *restrict labels, int M, int V, float scale);
/* Vocabulary-parallel cross-entropy (Shoeybi et al. 2019, §3; docs/runtime.md): this rank holds
 * logits[M, Vl], classes [v0, v0 + Vl) of V, and every rank of the tensor group the same M
 * labels. The forward all-reduces over MPRT_TENSOR the row maxima (max), then the sums of
 * exp(x − max) and the target's logit (sum; only its owner adds it), so every rank returns
 * the whole loss, scale · Σ_m (log Σ exp(x − max) + max − x[label]); stash [3, M] keeps max,
 * log Σ and the target logit per row for the backward, which is local:
 * dlogits[m, j] += scale · (softmax − onehot) on the owned classes. Rows with labels outside
 * [0, V) are ignored as in mprt_cross_entropy_forward. A vocabulary that does not divide the
 * group is padded: every rank holds Vl = ceil(V/t) columns and the columns at v0 + j ≥ V are
 * padding, left out of the maximum and the sums, their gradient left untouched. */
double mprt_vocab_ce_forward(const float *restrict logits, const int32_t *restrict labels,
                             float *restrict stash, int M, int Vl, int64_t v0, int64_t V,
                             float scale);
void mprt_vocab_ce_backward(float *restrict dlogits, const float *restrict logits,
                            const int32_t *restrict labels, const float *restrict stash, int M,
                            int Vl, int64_t v0, int64_t V, float scale);
/* pred, target [n]: returns scale · Σ (pred − target)²  (scale = 1 / global element count
 * for PyTorch's mean).  Backward: dpred += 2·scale·(pred − target). */
double mprt_mse_forward(const float *restrict pred, const float *restrict target, int64_t n,
                        float scale);
void mprt_mse_backward(float *restrict dpred, const float *restrict pred,
                       const float *restrict target, int64_t n, float scale);

/* ─────────────────────────────── optimizers ─────────────────────────────── */

/* All over flat arrays of n floats: parameters p, gradients g (read only), state zeroed
 * before the first step. PyTorch semantics (docs/kernels.md):
 * SGD:   g' = g + wd·p;  v = μ·v + g' (v may be NULL when μ = 0, then v = g');  p −= lr·v */
void mprt_sgd_step(float *restrict p, float *restrict v, const float *restrict g, int64_t n,
                   float lr, float momentum, float weight_decay);
/* Adam, step t ≥ 1:  g' = g + wd·p;  m = β1·m + (1 − β1)·g';  v = β2·v + (1 − β2)·g'²;
 *   p −= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps) */
void mprt_adam_step(float *restrict p, float *restrict m, float *restrict v,
                    const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                    float eps, float weight_decay, int64_t t);
/* AdamW: p −= lr·wd·p first (decoupled decay), then the Adam update with wd = 0. */
void mprt_adamw_step(float *restrict p, float *restrict m, float *restrict v,
                     const float *restrict g, int64_t n, float lr, float beta1, float beta2,
                     float eps, float weight_decay, int64_t t);

/* ─────────────────────────────── fill ─────────────────────────────── */

/* dst[0..n) = value (zeros for biases and layernorm beta, ones for gamma). Random initial
 * values come from the runtime's counter RNG (mprt_rng_shard_normal, rng.c) with the scheme
 * in docs/kernels.md, so every plan starts from the same weights. */
void mprt_fill(float *restrict dst, int64_t n, float value);
/* memset(p, 0, bytes) on the rank's threads: the trainer zeroes its gradient buffers with it. */
void mprt_zero(void *p, size_t bytes);

#endif /* MPRT_KERNELS_H */
