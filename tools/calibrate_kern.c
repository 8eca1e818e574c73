/*
 * calibrate_kern.c: mpcc-calibrate's measurements of the runtime's own kernels besides the
 * GEMM grid (docs/presets.md): the `ops` table, the `optimizer` rates and `grad_overlap` with
 * its slowdown.
 *
 * ops: each memory-bound op's forward and backward kernel (runtime/kernels*.c, on the rank's
 * thread pool as in training) on a tensor of about a million floats, its median call of
 * ~20 ms of repeats (at least 10), averaged over the ranks (all measuring at once). Each rate is
 * the bytes the cost model counts for that pass (docs/cost-model.md §5: inputs, output, what is
 * kept for backward, parameters; the backward also reads the output's gradient and writes the
 * input's) over the seconds it took, so the planner's bytes / rate is the kernel's time.
 * conv2d's entry is its unrolling: im2col (fwd) and col2im (bwd), per byte of the unrolled
 * matrix, one sample of a 32-channel 16×16 input under a 3×3 kernel, and its bias passes
 * (bias_fwd/bwd) per byte of one sample's output.
 *
 * optimizer: each optimizer's step over 2^22 parameters, per byte the cost model counts.
 *
 * grad_overlap: how much of a gradient all-reduce the C trainer's schedule hides behind
 * compute on this machine. A 4 MiB all-reduce over all ranks is run three ways: alone,
 * blocking (T_b, all of it waiting); a GEMM loop of about the same length alone (T_c); and the
 * loop with the all-reduce started before it (MPI_Iallreduce) and MPI_Test between its GEMMs,
 * as the trainer tests before every kernel, then waited for (T_o, of which W_o inside MPI).
 * grad_overlap = 1 − W_o / T_b is the share of the wait removed — what the trainer's
 * grad_sync_exposed_s measures against a blocking run — and grad_overlap_slowdown =
 * (T_o − W_o − T_c) / T_b the compute the all-reduce beside it cost (compute and MPI share the
 * cores: the reduction's copies and sums take cycles the GEMMs need). Medians of 21,
 * averaged over the ranks.
 */
#include "calibrate.h"

#include "internal.h"
#include "mprt_kernels.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>

typedef void (*KernFn)(void *ctx, int bwd);

enum { KERN_CALLS = 4096 };

/* The median call of fn (fwd or bwd) in ~budget seconds (at least 10 calls), averaged over the
 * ranks (the GEMM grid's statistic: what a training step's layers typically see). Call i runs
 * on ctx[i % nctx]: several buffer sets whose sum exceeds the last-level cache make every call's
 * operands cold, as a training step's are (tools/calibrate.c, the GEMM grid). */
static double kern_time(KernFn fn, void *const *ctx, int nctx, int bwd, double budget) {
    static double t[KERN_CALLS];
    fn(ctx[0], bwd); /* warm-up */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = cal_now();
    int calls = 0;
    do {
        double t1 = cal_now();
        fn(ctx[(calls + 1) % nctx], bwd);
        t[calls] = cal_now() - t1;
    } while (++calls < KERN_CALLS && (calls < 10 || cal_now() - t0 < budget));
    return cal_mean(cal_median(t, calls));
}

typedef struct Bufs {
    float *a, *b, *c, *d, *e, *f;
    int32_t *idx;
    int64_t n;
} Bufs;

static void k_relu(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt_relu_backward(q->c, q->b, q->a, q->n);
    else
        mprt_relu_forward(q->b, q->a, q->n);
}

static void k_gelu(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt_gelu_backward(q->c, q->b, q->a, q->n);
    else
        mprt_gelu_forward(q->b, q->a, q->n);
}

static void k_tanh(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt_tanh_backward(q->c, q->b, q->a, q->n);
    else
        mprt_tanh_forward(q->b, q->a, q->n);
}

static void k_add(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt_add_backward(q->c, q->d, q->a, q->n);
    else
        mprt_add_forward(q->c, q->a, q->b, q->n);
}

enum { LN_C = 512 };
static void k_layernorm(void *x, int bwd) {
    Bufs *q = x;
    int N = (int)(q->n / LN_C);
    if (bwd)
        mprt_layernorm_backward(q->c, q->e, q->e + LN_C, q->b, q->a, q->d, q->d + N, q->f, N, LN_C);
    else
        mprt_layernorm_forward(q->b, q->d, q->d + N, q->a, q->f, q->f + LN_C, N, LN_C, 1e-5f);
}

enum { MP_HW = 32 };
static void k_maxpool(void *x, int bwd) {
    Bufs *q = x;
    int planes = (int)(q->n / (MP_HW * MP_HW));
    if (bwd)
        mprt_maxpool2d_backward(q->c, q->b, q->idx, planes, MP_HW, MP_HW, 2, 2);
    else
        mprt_maxpool2d_forward(q->b, q->idx, q->a, planes, MP_HW, MP_HW, 2, 2);
}

enum { CV_C = 32, CV_HW = 16 };
static void k_unroll(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt__col2im_add(q->c, q->b, CV_C, CV_HW, CV_HW, 3, 1, 1);
    else
        mprt__im2col(q->b, q->a, CV_C, CV_HW, CV_HW, 3, 1, 1);
}

/* The unrolling as the convolution runs it. Alone (k_unroll, cold operands) im2col and
 * col2im read one rate; inside mprt_conv2d_forward/backward, each sample's unrolling between
 * two multi-threaded GEMM calls costs more (the GEMM's threads wake for every call and the
 * unrolled matrix moves between the cores' caches): on a 2-core Xeon, bench/cnn.mp's c2
 * forward took 5.6 ms where its im2col alone and its GEMMs alone took 3.3 + 1.5. So the
 * convolution's passes are timed whole at this shape (CV_N samples, CV_O output channels) and
 * again without the unrolling (the same GEMM calls and bias passes on the same buffers); what
 * the unrolling adds, per byte of the unrolled matrix, is the entry's rate, never above the
 * rate measured alone. The backward's remainder holds an im2col (at the forward's rate) and
 * the col2im. */
enum { CV_N = 8, CV_O = 64, CV_CKK = 9 * CV_C, CV_PLANE = CV_HW * CV_HW };

typedef struct ConvBufs {
    float *x, *w, *b, *out, *col, *dw, *db, *dx, *dout;
} ConvBufs;

/* The whole forward (bwd = 0) or backward (1) of CV_N samples, as the trainer calls them. */
static void k_conv_whole(void *ctx, int bwd) {
    ConvBufs *v = ctx;
    if (bwd)
        mprt_conv2d_backward(v->dx, v->dw, v->db, v->dout, v->x, v->w, v->col, CV_N, CV_C, CV_HW,
                             CV_HW, CV_O, 3, 1, 1);
    else
        mprt_conv2d_forward(v->out, v->x, v->w, v->b, v->col, CV_N, CV_C, CV_HW, CV_HW, CV_O, 3, 1,
                            1, 1);
}

/* The same passes but the unrolling: per sample the bias fill and W·col (forward); dW += dy·colᵀ,
 * the bias sum and Wᵀ·dy into the unrolled buffer (backward). */
static void k_conv_rest(void *ctx, int bwd) {
    ConvBufs *v = ctx;
    for (int n = 0; n < CV_N; n++) {
        float *on = v->out + (size_t)n * CV_O * CV_PLANE,
              *don = v->dout + (size_t)n * CV_O * CV_PLANE;
        if (bwd) {
            mprt__sgemm(false, true, CV_O, CV_CKK, CV_PLANE, 1.0f, don, CV_PLANE, v->col, CV_PLANE,
                        1.0f, v->dw, CV_CKK);
            mprt__conv_bias_grad(v->db, don, CV_O, CV_PLANE);
            mprt__sgemm(true, false, CV_CKK, CV_PLANE, CV_O, 1.0f, v->w, CV_CKK, don, CV_PLANE,
                        0.0f, v->col, CV_PLANE);
        } else {
            mprt__conv_bias_fill(on, v->b, CV_O, CV_PLANE);
            mprt__sgemm(false, false, CV_O, CV_PLANE, CV_CKK, 1.0f, v->w, CV_CKK, v->col, CV_PLANE,
                        1.0f, on, CV_PLANE);
        }
    }
}

static void conv_in_situ(cJSON *entry, double budget) {
    size_t in = (size_t)CV_N * CV_C * CV_PLANE, out = (size_t)CV_N * CV_O * CV_PLANE,
           wn = (size_t)CV_O * CV_CKK, cn = (size_t)CV_CKK * CV_PLANE;
    ConvBufs v = {malloc(in * 4), malloc(wn * 4),  calloc(CV_O, 4), malloc(out * 4), calloc(cn, 4),
                  calloc(wn, 4),  calloc(CV_O, 4), calloc(in, 4),   malloc(out * 4)};
    cal_need(!v.x || !v.w || !v.b || !v.out || !v.col || !v.dw || !v.db || !v.dx || !v.dout,
             "the convolution's buffers");
    for (size_t i = 0; i < in; i++)
        v.x[i] = (float)(i % 11) * 0.1f - 0.5f;
    for (size_t i = 0; i < wn; i++)
        v.w[i] = (float)(i % 7) * 0.01f - 0.03f;
    for (size_t i = 0; i < out; i++)
        v.dout[i] = (float)(i % 5) * 0.01f - 0.02f;
    void *ctx[1] = {&v};
    double colb = 4.0 * CV_N * CV_CKK * CV_PLANE;
    double fwd = colb / (kern_time(k_conv_whole, ctx, 1, 0, budget) -
                         kern_time(k_conv_rest, ctx, 1, 0, budget));
    double bwd_rest =
        kern_time(k_conv_whole, ctx, 1, 1, budget) - kern_time(k_conv_rest, ctx, 1, 1, budget);
    double alone_f = cJSON_GetObjectItem(entry, "fwd_bytes_per_s")->valuedouble,
           alone_b = cJSON_GetObjectItem(entry, "bwd_bytes_per_s")->valuedouble;
    if (fwd > 0 && fwd < alone_f) alone_f = fwd; /* the forward's unrolling in place */
    double col2im = bwd_rest - colb / alone_f, bwd = col2im > 0 ? colb / col2im : alone_b;
    cJSON_SetNumberValue(cJSON_GetObjectItem(entry, "fwd_bytes_per_s"), alone_f);
    cJSON_SetNumberValue(cJSON_GetObjectItem(entry, "bwd_bytes_per_s"), fmin(bwd, alone_b));
    free(v.x), free(v.w), free(v.b), free(v.out), free(v.col), free(v.dw), free(v.db), free(v.dx),
        free(v.dout);
}

enum { CB_O = 32, CB_PLANE = 1024 };
/* conv2d's bias passes over one sample's output, CB_O planes of CB_PLANE (bench/cnn.mp's c1). */
static void k_bias(void *x, int bwd) {
    Bufs *q = x;
    if (bwd)
        mprt__conv_bias_grad(q->d, q->c, CB_O, CB_PLANE);
    else
        mprt__conv_bias_fill(q->b, q->a, CB_O, CB_PLANE);
}

enum { CE_V = 1024, EMB_D = 512, EMB_V = 256, EMB_T = 128 }; /* tables fit --quick's 2^18 */
/* cross-entropy over rows of CE_V classes (labels in q->idx). */
static void k_xent(void *x, int bwd) {
    Bufs *q = x;
    int M = (int)(q->n / CE_V);
    if (bwd)
        mprt_cross_entropy_backward(q->c, q->a, q->idx, M, CE_V, 1.0f / (float)M);
    else
        q->e[0] += (float)mprt_cross_entropy_forward(q->a, q->idx, M, CE_V, 1.0f / (float)M);
}

/* an embedding lookup of n / EMB_D tokens in an EMB_V-row table, positions added (q->idx). */
static void k_embed(void *x, int bwd) {
    Bufs *q = x;
    int M = (int)(q->n / EMB_D);
    if (bwd)
        mprt_embedding_backward(q->d, q->e, q->c, q->idx, M, EMB_T, EMB_V, 0, EMB_D);
    else
        mprt_embedding_forward(q->b, q->idx, q->a, q->f, M, EMB_T, EMB_V, 0, EMB_D, 1);
}

/* dropout with p = 0.1 on rows of 1024 features (the mask hashed per element, both ways). */
static void k_drop(void *x, int bwd) {
    Bufs *q = x;
    MprtDropShard sh = {0, 1, 0, 1024, 1024, 0};
    int N = (int)(q->n / 1024);
    if (bwd)
        mprt_dropout_backward(q->c, q->b, N, sh, 0.1f, 1, 0, 1);
    else
        mprt_dropout_forward(q->b, q->a, N, sh, 0.1f, 1, 0, 1, 1);
}

typedef struct OpSpec {
    const char *name;
    KernFn fn;
    double fwd_bytes, bwd_bytes; /* per element of n, as the cost model counts them */
} OpSpec;

/* The ops' buffer sets: each holds six float tensors and an index of 2^20 elements (28 MiB);
 * a call touches 8-20 MiB of its set, so between two uses of a set the other seven moved more
 * than the 32 MiB L3 of the machines we calibrate, twice over: the trainer's ops read
 * activations written or kept long before. */
enum { OP_SETS = 8 };

static void add_op(cJSON *arr, const OpSpec *o, void *const *qs, double budget,
                   const double *extra) {
    double n = (double)((Bufs *)qs[0])->n;
    double tf = kern_time(o->fn, qs, OP_SETS, 0, budget),
           tb = kern_time(o->fn, qs, OP_SETS, 1, budget);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "op", o->name);
    cJSON_AddNumberToObject(e, "fwd_bytes_per_s", (o->fwd_bytes * n + extra[0]) / tf);
    cJSON_AddNumberToObject(e, "bwd_bytes_per_s", (o->bwd_bytes * n + extra[1]) / tb);
    cJSON_AddItemToArray(arr, e);
}

static Bufs bufs_new(int64_t n) {
    Bufs q = {0};
    q.n = n;
    float **all[] = {&q.a, &q.b, &q.c, &q.d, &q.e, &q.f};
    for (int i = 0; i < 6; i++) {
        *all[i] = malloc((size_t)n * sizeof(float));
        for (int64_t j = 0; *all[i] && j < n; j++)
            (*all[i])[j] = (float)((j * 7 + i) % 13) * 0.1f - 0.6f;
    }
    q.idx = calloc((size_t)n, sizeof(int32_t));
    cal_need(!q.a || !q.b || !q.c || !q.d || !q.e || !q.f || !q.idx, "the ops' buffers");
    return q;
}

static void bufs_free(Bufs *q) {
    free(q->a), free(q->b), free(q->c), free(q->d), free(q->e), free(q->f), free(q->idx);
}

cJSON *cal_ops_table(bool quick) {
    int64_t n = quick ? (1 << 18) : (1 << 20);
    double budget = quick ? 0.005 : 0.02;
    Bufs q[OP_SETS];
    void *qs[OP_SETS];
    for (int s = 0; s < OP_SETS; s++) {
        q[s] = bufs_new(n > 9 * CV_C * CV_HW * CV_HW ? n : 9 * CV_C * CV_HW * CV_HW);
        q[s].n = n, qs[s] = &q[s];
        for (int64_t i = 0; i < n; i++)
            q[s].idx[i] = (int32_t)((i * 7) % EMB_V);
    }
    double rows = (double)n / LN_C;
    /* fwd: in + out (+ kept); bwd: dout + in (+ kept) + din, per element; layernorm's two row
     * statistics and 2·C parameters (3 passes in backward) come as `extra` bytes */
    static const OpSpec ew[] = {{"relu", k_relu, 8, 12},           {"gelu", k_gelu, 8, 12},
                                {"tanh", k_tanh, 8, 12},           {"add", k_add, 12, 20},
                                {"layernorm", k_layernorm, 8, 12}, {"maxpool2d", k_maxpool, 6, 10}};
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < 6; i++) {
        double ln[2] = {8.0 * rows + 8.0 * LN_C, 8.0 * rows + 24.0 * LN_C}, none[2] = {0, 0};
        add_op(arr, &ew[i], qs, budget, i == 4 ? ln : none);
    }
    /* cross_entropy: logits in (fwd) and their gradient out too (bwd), plus 4 bytes of label per
     * row; embedding: ids (4 per token), the output and as many table bytes (fwd), the output's
     * gradient and the table's 3 passes (bwd); dropout: in + out, dout + in + din */
    double ce[2] = {4.0 * (double)n / CE_V, 4.0 * (double)n / CE_V},
           em[2] = {4.0 * (double)n / EMB_D, 4.0 * (double)n / EMB_D}, none[2] = {0, 0};
    static const OpSpec more[] = {
        {"cross_entropy", k_xent, 4, 8}, {"embedding", k_embed, 8, 16}, {"dropout", k_drop, 8, 12}};
    add_op(arr, &more[0], qs, budget, ce);
    add_op(arr, &more[1], qs, budget, em);
    add_op(arr, &more[2], qs, budget, none);
    for (int s = 0; s < OP_SETS; s++)
        q[s].n = 9 * CV_C * CV_HW * CV_HW; /* the unrolled matrix: 4 bytes per element */
    OpSpec cv = {"conv2d", k_unroll, 4, 4};
    add_op(arr, &cv, qs, budget, none);
    cJSON *conv = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
    conv_in_situ(conv, budget);
    /* its bias passes: 4 bytes per output element written (fill) or read (the sum) */
    double ob = 4.0 * CB_O * CB_PLANE;
    cJSON_AddNumberToObject(conv, "bias_fwd_bytes_per_s",
                            ob / kern_time(k_bias, qs, OP_SETS, 0, budget));
    cJSON_AddNumberToObject(conv, "bias_bwd_bytes_per_s",
                            ob / kern_time(k_bias, qs, OP_SETS, 1, budget));
    for (int s = 0; s < OP_SETS; s++)
        bufs_free(&q[s]);
    return arr;
}

/* ───────────────────────────── optimizer ───────────────────────────── */

typedef struct OptBufs {
    float *p, *g, *m, *v;
    int64_t n;
} OptBufs;

static void k_sgd(void *x, int mom) {
    OptBufs *o = x;
    mprt_sgd_step(o->p, mom ? o->m : NULL, o->g, o->n, 1e-6f, mom ? 0.9f : 0.0f, 0.0f);
}

static void k_adam(void *x, int w) {
    OptBufs *o = x;
    if (w)
        mprt_adamw_step(o->p, o->m, o->v, o->g, o->n, 1e-6f, 0.9f, 0.999f, 1e-8f, 0.01f, 10);
    else
        mprt_adam_step(o->p, o->m, o->v, o->g, o->n, 1e-6f, 0.9f, 0.999f, 1e-8f, 0.0f, 10);
}

/* The optimizer steps over 2^23 parameters (--quick 2^18; four arrays of 32 MiB: a model's
 * parameters, gradients and state, as the trainer's step sweeps them, do not stay in cache),
 * each as bytes/s of the (3 + 2·copies) × 4 bytes per parameter the cost model counts. The
 * arrays hold values, not calloc's untouched zero pages (reading those reads one cached page:
 * AdamW measured 1.5x faster on them than on a model's numbers). */
cJSON *cal_optimizer(bool quick) {
    OptBufs o = {0};
    o.n = quick ? (1 << 18) : (1 << 23);
    float **all[] = {&o.p, &o.g, &o.m, &o.v};
    for (int i = 0; i < 4; i++) {
        *all[i] = malloc((size_t)o.n * sizeof(float));
        cal_need(!*all[i], "the optimizers' arrays");
        for (int64_t j = 0; j < o.n; j++)
            (*all[i])[j] = i == 3 ? 1e-6f : (float)((j * 7 + i) % 13) * 1e-3f - 6e-3f;
    }
    double budget = quick ? 0.005 : 0.05, n = (double)o.n;
    void *op[1] = {&o};
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "sgd", 12.0 * n / kern_time(k_sgd, op, 1, 0, budget));
    cJSON_AddNumberToObject(r, "sgd_momentum", 20.0 * n / kern_time(k_sgd, op, 1, 1, budget));
    cJSON_AddNumberToObject(r, "adam", 28.0 * n / kern_time(k_adam, op, 1, 0, budget));
    cJSON_AddNumberToObject(r, "adamw", 28.0 * n / kern_time(k_adam, op, 1, 1, budget));
    for (int i = 0; i < 4; i++)
        free(*all[i]);
    return r;
}

/* ───────────────────────────── grad_overlap ───────────────────────────── */

enum { OV_BYTES = 4 << 20, OV_GEMM = 192 };

/* `chunks` GEMMs of OV_GEMM³; with req, MPI_Test on it after each (the trainer's progress),
 * adding the seconds spent in MPI to *wait. */
static void ov_compute(int chunks, const float *a, float *c, MPI_Request *req, double *wait) {
    for (int i = 0; i < chunks; i++) {
        mprt__sgemm(false, false, OV_GEMM, OV_GEMM, OV_GEMM, 1.0f, a, OV_GEMM, a, OV_GEMM, 0.0f, c,
                    OV_GEMM);
        int done = 0;
        double t0 = cal_now();
        if (req) MPI_Test(req, &done, MPI_STATUS_IGNORE);
        *wait += cal_now() - t0;
    }
}

/* Seconds of: the all-reduce alone (mode 0), the GEMMs alone (1), both overlapped (2); *wait:
 * the seconds spent inside MPI (the all-reduce's start, tests and wait, as the trainer's
 * grad_sync_exposed_s counts them; all of mode 0). */
static double ov_run(int mode, int chunks, float *buf, const float *a, float *c, double *wait) {
    int n = OV_BYTES / 4;
    *wait = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = cal_now();
    if (mode == 0) { /* as the runtime's blocking all-reduce: the non-blocking call waited for */
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        *wait = cal_now() - t0;
    }
    if (mode == 1) ov_compute(chunks, a, c, NULL, wait);
    if (mode == 2) {
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        *wait = cal_now() - t0;
        ov_compute(chunks, a, c, &req, wait);
        double t1 = cal_now();
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        *wait += cal_now() - t1;
    }
    return cal_now() - t0;
}

enum { OV_REPS = 21 };

/* The medians of OV_REPS runs of a mode: its seconds, and in *wait its seconds inside MPI. */
static double ov_median(int mode, int chunks, float *buf, const float *a, float *c, double *wait) {
    double t[OV_REPS], w[OV_REPS];
    for (int r = 0; r < OV_REPS; r++)
        t[r] = ov_run(mode, chunks, buf, a, c, &w[r]);
    *wait = cal_median(w, OV_REPS);
    return cal_median(t, OV_REPS);
}

CalOverlap cal_grad_overlap(void) {
    float *buf = malloc(OV_BYTES), *a = malloc(OV_GEMM * OV_GEMM * 4),
          *c = malloc(OV_GEMM * OV_GEMM * 4);
    cal_need(!buf || !a || !c, "the overlap measurement");
    for (int i = 0; i < OV_GEMM * OV_GEMM; i++)
        a[i] = (float)(i % 5) * 0.01f;
    for (int i = 0; i < OV_BYTES / 4; i++)
        buf[i] = (float)(i % 3) * 1e-3f;
    double wb, wc, wo, tb = ov_median(0, 0, buf, a, c, &wb), one = ov_median(1, 1, buf, a, c, &wc);
    double tmax = tb, tmin = one;
    MPI_Allreduce(&tb, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&one, &tmin, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int chunks = (int)ceil(tmax / tmin); /* about as long as the all-reduce */
    if (chunks < 2) chunks = 2;
    double tc = ov_median(1, chunks, buf, a, c, &wc), to = ov_median(2, chunks, buf, a, c, &wo);
    /* the wait removed (what the trainer's profile measures), and what the compute lost */
    double hid = fmin(fmax(1.0 - wo / wb, 0.0), 1.0), slow = fmax((to - wo - tc) / wb, 0.0);
    free(buf), free(a), free(c);
    CalOverlap r = {fmin(fmax(cal_mean(hid), 0.0), 1.0), cal_mean(slow)};
    return r;
}
