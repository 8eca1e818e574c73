/*
 * calibrate_kern.c: mpcc-calibrate's measurements of the runtime's own kernels besides the
 * GEMM grid (docs/presets.md): the `ops` table and `grad_overlap`.
 *
 * ops: each memory-bound op's forward and backward kernel (runtime/kernels*.c, on the rank's
 * thread pool as in training) on a tensor of about a million floats, its fastest call of
 * ~20 ms of repeats (at least 10), averaged over the ranks (all measuring at once). Each rate is
 * the bytes the cost model counts for that pass (docs/cost-model.md §5: inputs, output, what is
 * kept for backward, parameters; the backward also reads the output's gradient and writes the
 * input's) over the seconds it took, so the planner's bytes / rate is the kernel's time.
 * conv2d's entry is its unrolling: im2col (fwd) and col2im (bwd), per byte of the unrolled
 * matrix, one sample of a 32-channel 16×16 input under a 3×3 kernel.
 *
 * grad_overlap: how much of a gradient all-reduce the C trainer's schedule hides behind
 * compute on this machine. A 4 MiB all-reduce over all ranks is run three ways: alone,
 * blocking (T_b); a GEMM loop of about the same length alone (T_c); and the loop with the
 * all-reduce started before it (MPI_Iallreduce) and MPI_Test between its GEMMs, as the
 * trainer tests between layers, then waited for (T_o). The backward hid
 * T_c + T_b − T_o of it, out of at most min(T_c, T_b): grad_overlap is that share, in [0, 1]
 * (the fastest of five of each; averaged over the ranks). Compute and MPI share the cores,
 * so where the reduction's copies and sums take the cores the GEMMs need, little is hidden.
 */
#include "calibrate.h"

#include "internal.h"
#include "mprt_kernels.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>

typedef void (*KernFn)(void *ctx, int bwd);

/* The fastest call of fn (fwd or bwd) in ~budget seconds, averaged over the ranks. */
static double kern_time(KernFn fn, void *ctx, int bwd, double budget) {
    fn(ctx, bwd); /* warm-up */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = cal_now(), best = INFINITY;
    int calls = 0;
    do { /* at least 10 calls: a loaded machine's other work only ever adds time */
        double t1 = cal_now();
        fn(ctx, bwd);
        best = fmin(best, cal_now() - t1);
    } while (++calls < 10 || cal_now() - t0 < budget);
    return cal_mean(best);
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

typedef struct OpSpec {
    const char *name;
    KernFn fn;
    double fwd_bytes, bwd_bytes; /* per element of n, as the cost model counts them */
} OpSpec;

static void add_op(cJSON *arr, const OpSpec *o, Bufs *q, double budget, const double *extra) {
    double n = (double)q->n;
    double tf = kern_time(o->fn, q, 0, budget), tb = kern_time(o->fn, q, 1, budget);
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
    if (!q.a || !q.b || !q.c || !q.d || !q.e || !q.f || !q.idx) {
        fprintf(stderr, "mpcc-calibrate: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return q;
}

static void bufs_free(Bufs *q) {
    free(q->a), free(q->b), free(q->c), free(q->d), free(q->e), free(q->f), free(q->idx);
}

cJSON *cal_ops_table(bool quick) {
    int64_t n = quick ? (1 << 18) : (1 << 20);
    double budget = quick ? 0.005 : 0.02;
    Bufs q = bufs_new(n > 9 * CV_C * CV_HW * CV_HW ? n : 9 * CV_C * CV_HW * CV_HW);
    q.n = n;
    double rows = (double)n / LN_C;
    /* fwd: in + out (+ kept); bwd: dout + in (+ kept) + din, per element; layernorm's two row
     * statistics and 2·C parameters (3 passes in backward) come as `extra` bytes */
    static const OpSpec ew[] = {{"relu", k_relu, 8, 12},           {"gelu", k_gelu, 8, 12},
                                {"tanh", k_tanh, 8, 12},           {"add", k_add, 12, 20},
                                {"layernorm", k_layernorm, 8, 12}, {"maxpool2d", k_maxpool, 6, 10}};
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < 6; i++) {
        double ln[2] = {8.0 * rows + 8.0 * LN_C, 8.0 * rows + 24.0 * LN_C}, none[2] = {0, 0};
        add_op(arr, &ew[i], &q, budget, i == 4 ? ln : none);
    }
    q.n = 9 * CV_C * CV_HW * CV_HW; /* the unrolled matrix: 4 bytes per element */
    OpSpec cv = {"conv2d", k_unroll, 4, 4};
    double none[2] = {0, 0};
    add_op(arr, &cv, &q, budget, none);
    bufs_free(&q);
    return arr;
}

/* ───────────────────────────── grad_overlap ───────────────────────────── */

enum { OV_BYTES = 4 << 20, OV_GEMM = 192 };

/* `chunks` GEMMs of OV_GEMM³; with req, MPI_Test on it after each (the trainer's progress). */
static void ov_compute(int chunks, const float *a, float *c, MPI_Request *req) {
    for (int i = 0; i < chunks; i++) {
        mprt__sgemm(false, false, OV_GEMM, OV_GEMM, OV_GEMM, 1.0f, a, OV_GEMM, a, OV_GEMM, 0.0f, c,
                    OV_GEMM);
        int done = 0;
        if (req) MPI_Test(req, &done, MPI_STATUS_IGNORE);
    }
}

/* Seconds of: the all-reduce alone (mode 0), the GEMMs alone (1), both overlapped (2). */
static double ov_run(int mode, int chunks, float *buf, const float *a, float *c) {
    int n = OV_BYTES / 4;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = cal_now();
    if (mode == 0) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (mode == 1) ov_compute(chunks, a, c, NULL);
    if (mode == 2) {
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        ov_compute(chunks, a, c, &req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    }
    return cal_now() - t0;
}

static double ov_best(int mode, int chunks, float *buf, const float *a, float *c) {
    double best = INFINITY;
    for (int r = 0; r < 5; r++)
        best = fmin(best, ov_run(mode, chunks, buf, a, c));
    return best;
}

double cal_grad_overlap(void) {
    float *buf = calloc(OV_BYTES / 4, sizeof(float)), *a = malloc(OV_GEMM * OV_GEMM * 4),
          *c = malloc(OV_GEMM * OV_GEMM * 4);
    if (!buf || !a || !c) {
        fprintf(stderr, "mpcc-calibrate: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int i = 0; i < OV_GEMM * OV_GEMM; i++)
        a[i] = (float)(i % 5) * 0.01f;
    double tb = ov_best(0, 0, buf, a, c), one = ov_best(1, 1, buf, a, c);
    double tmax = tb, tmin = one;
    MPI_Allreduce(&tb, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&one, &tmin, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int chunks = (int)ceil(tmax / tmin); /* about as long as the all-reduce */
    if (chunks < 2) chunks = 2;
    double tc = ov_best(1, chunks, buf, a, c), to = ov_best(2, chunks, buf, a, c);
    double hid = (tc + tb - to) / fmin(tc, tb);
    free(buf), free(a), free(c);
    return fmin(fmax(cal_mean(fmin(fmax(hid, 0.0), 1.0)), 0.0), 1.0);
}
