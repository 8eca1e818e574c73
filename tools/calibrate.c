/*
 * mpcc-calibrate: measures this machine and writes a preset file (docs/presets.md).
 *
 * Run it under `mpirun -np N` with the ranks placed as training will place them. Every
 * rank measures at once, as in training: GEMM rates over a grid of shapes through the
 * runtime's own GEMM (mprt__sgemm, so its thread pool and BLAS), each shape called the three
 * ways the kernels call it (C = A·B, C += A·Bᵀ, C += Aᵀ·B), the median call of each (what a
 * step's layers typically see, not the best call), a triad for memory bandwidth, the
 * runtime's memory-bound kernels and optimizers (calibrate_kern.c), and the collectives the
 * planner prices — all-reduce, all-gather,
 * reduce-scatter, all-to-all over the whole job (and over each node when MPI_Comm_split_type
 * finds several), send/recv between ranks 0 and 1 — over a range of message sizes. Each
 * collective's time t(n) for a tensor of n bytes is fitted by least squares to α + n/β,
 * exactly how the cost model prices a measured collective. Figures are averaged over the
 * ranks for compute, and the slowest rank's time is kept for communication (a collective
 * ends when its last rank does). Rank 0 writes the file, atomically (temp + rename).
 *
 * What is not measured is copied from --base (a preset file), else from the built-in
 * `cpu` preset's link figures; memory_bytes is MemTotal divided by the ranks on the node.
 */
#include "calibrate.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct Opts {
    const char *out, *base;
    bool quick;
    int threads; /* 0: the rank's share of the node, as the trainer's default */
} Opts;

typedef struct Fit {
    double alpha, beta;
} Fit;

double cal_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#define now cal_now

double cal_mean(double x) {
    double sum = 0;
    int size;
    MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return sum / size;
}

static void usage(FILE *f) {
    fprintf(f, "usage: mpirun -np N mpcc-calibrate -o FILE.json [--quick] [--base PRESET.json]\n"
               "  -o FILE      where to write the preset (docs/presets.md)\n"
               "  --quick      fewer shapes and sizes (a few seconds)\n"
               "  --base FILE  copy the fields not measured from this preset file\n"
               "  --threads N  compute threads per rank (default: the trainer's default, the\n"
               "               rank's share of the node's CPUs)\n"
               "  --help       this text\n");
}

static int parse(int argc, char **argv, Opts *o) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) return 1;
        if (strcmp(argv[i], "--quick") == 0)
            o->quick = true;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            o->out = argv[++i];
        else if (strcmp(argv[i], "--base") == 0 && i + 1 < argc)
            o->base = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
            o->threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "mpcc-calibrate: unknown or incomplete option '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!o->out) {
        fprintf(stderr, "mpcc-calibrate: -o FILE is required\n");
        return -1;
    }
    return 0;
}

/* ───────────────────────────── compute ───────────────────────────── */

enum { MAX_CALLS = 4096 };
/* How the runtime calls a GEMM (passes/passes.h's GemmKind, the preset's flops/_nt/_tn). */
typedef enum GemmKind { GEMM_NN, GEMM_NT, GEMM_TN } GemmKind;

void cal_need(bool failed, const char *what) {
    if (!failed) return;
    fprintf(stderr, "mpcc-calibrate: out of memory for %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n > 0 times (sorts them). */
double cal_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* The GEMM grid's operands are cold, as a training step's are: between two uses of a layer's
 * weights the step sweeps every other layer's parameters, gradients, optimizer state and
 * activations, far more than the last-level cache holds, so a layer's GEMM reads its operands
 * from memory and writes its result there (measured hot, with the same buffers every call, the
 * grid read 10-40 % faster than the trainer's layers: docs/benchmarks.md). Each operand
 * cycles through its own COLD_BYTES region (twice a 32 MiB L3), every call using the next
 * slice, so a slice was last touched more than a cache's worth of bytes ago. */
enum { COLD_BYTES = 64 << 20 };

static struct { float *a, *b, *c; } Cold;

static void cold_alloc(void) {
    size_t n = COLD_BYTES / sizeof(float);
    Cold.a = malloc(n * sizeof(float)), Cold.b = malloc(n * sizeof(float));
    Cold.c = calloc(n, sizeof(float));
    cal_need(!Cold.a || !Cold.b || !Cold.c, "the GEMM grid's operands");
    for (size_t i = 0; i < n; i++)
        Cold.a[i] = (float)(i % 7) * 0.25f, Cold.b[i] = (float)(i % 5) * 0.5f;
}

static void cold_free(void) { free(Cold.a), free(Cold.b), free(Cold.c); }

/* The call-th slice of `each` floats (rounded up to 64 bytes) of a cold region. */
static float *cold_slice(float *region, size_t each, int call) {
    size_t step = (each + 15) & ~(size_t)15, count = (COLD_BYTES / sizeof(float)) / step;
    return region + step * ((size_t)call % count);
}

/* FLOP/s of one GEMM call of `kind` at (m, n, k) as the runtime's kernels make it: C = A·B
 * (GEMM_NN, a forward), C += A·Bᵀ (GEMM_NT) or C += Aᵀ·B (GEMM_TN), on cold operands (above),
 * or with `hot` on the same operands every call (in cache: a convolution's unrolled input
 * just written and its weights reused by every sample, a linear layer's weights reused by
 * the step's micro-batches); the median call of ~budget seconds of repeats (a training step's
 * layers see typical calls, not the best one), averaged over the ranks (all running at once). */
static double gemm_rate(GemmKind kind, bool hot, int m, int n, int k, double budget) {
    size_t na = (size_t)m * (size_t)k, nb = (size_t)k * (size_t)n, nc = (size_t)m * (size_t)n;
    double *t = malloc(MAX_CALLS * sizeof *t);
    cal_need(!t, "the GEMM grid's timings");
    bool ta = kind == GEMM_TN, tb = kind == GEMM_NT;
    int lda = ta ? m : k, ldb = tb ? k : n;
    float beta = kind == GEMM_NN ? 0.0f : 1.0f;
    mprt__sgemm(ta, tb, m, n, k, 1.0f, Cold.a, lda, Cold.b, ldb, beta, Cold.c, n); /* warm-up */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    int calls = 0;
    do {
        int at = hot ? 0 : calls + 1;
        const float *a = cold_slice(Cold.a, na, at), *b = cold_slice(Cold.b, nb, at);
        float *c = cold_slice(Cold.c, nc, at);
        double t1 = now();
        mprt__sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
        t[calls] = now() - t1;
    } while (++calls < MAX_CALLS && (calls < 3 || now() - t0 < budget));
    double rate = 2.0 * m * n * k / cal_median(t, calls);
    free(t);
    return cal_mean(rate);
}

/* The triad a[i] = b[i] + s·c[i] over [lo, hi); with `init`, the arrays' first touch instead
 * (on the threads that will run the triad). */
typedef struct Triad {
    float *a, *b, *c;
    bool init;
} Triad;

static void triad_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Triad *t = ctx;
    float *restrict a = t->a, *restrict b = t->b, *restrict c = t->c;
    if (t->init)
        for (int64_t i = lo; i < hi; i++)
            a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
    else
        for (int64_t i = lo; i < hi; i++)
            a[i] = b[i] + 3.0f * c[i];
}

/* Bytes/s of the triad (3 arrays of n floats touched) on the rank's threads, as the trainer's
 * kernels run, every rank at once: the median of seven, averaged over the ranks. */
static double triad(size_t n) {
    Triad t = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), malloc(n * sizeof(float)),
               true};
    cal_need(!t.a || !t.b || !t.c, "the triad's arrays");
    mprt__parallel_for((int64_t)n, 1 << 16, triad_part, &t);
    t.init = false;
    double times[7];
    for (int r = 0; r < 7; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        mprt__parallel_for((int64_t)n, 1 << 16, triad_part, &t);
        times[r] = now() - t0;
    }
    double best = cal_median(times, 7);
    volatile float sink = t.a[n / 2];
    (void)sink;
    double bw = 3.0 * (double)n * sizeof(float) / best, sum = 0;
    MPI_Allreduce(&bw, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    free(t.a), free(t.b), free(t.c);
    return sum / size;
}

/* Floats per triad array: out of the cache, as the roofline's memory term means (STREAM's rule
 * is arrays beyond the caches): the rank's share of the last-level cache, between 32 and
 * 256 MiB. On the 2-core Xeon (a 480 MiB L3 reported, about 100 MiB effective) three 32 MiB
 * arrays, the old fixed size, sat on the edge: 15.6-22 GB/s from run to run on one thread,
 * 13-14 GB/s stable at 128 MiB and more (docs/benchmarks.md). --quick: 4 MiB arrays. */
static size_t triad_floats(double llc, int local, bool quick) {
    if (quick) return 1u << 20;
    double mib = llc / (local > 0 ? local : 1) / (1 << 20);
    mib = mib < 32 ? 32 : mib > 256 ? 256 : mib;
    return (size_t)mib << 18;
}

/* ───────────────────────────── communication ───────────────────────────── */

enum { AR, AG, RS, A2A, SR, NCOLL };
static const char *const coll_names[] = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all",
                                         "send/recv"};

/* One call of collective `k` on a tensor of n bytes (the planner's n) over `comm`, issued as
 * the runtime issues it: its deadline on every wait (comm_wait.c, --comm-timeout, on by
 * default) makes each collective the non-blocking call, then waited for. Open MPI runs those
 * through a different component (libnbc) than the blocking calls (tuned), 1.5-3x slower for
 * messages of MiBs on the 2-vCPU EPYC (docs/benchmarks.md): the blocking call measured what
 * the trainer never runs. The all-reduce is in place, as every all-reduce of the runtime is:
 * on the 2-core Xeon Open MPI's in-place all-reduce of 2.4 MB took 1.05 ms where the same call
 * into another buffer took 0.67 (the transformer's gradient sync measured 1.8x its prediction
 * from the out-of-place fit). */
static void coll_call(int k, MPI_Comm comm, int g, int rank, size_t n, float *x, float *y) {
    int f = (int)(n / sizeof(float)), part = f / g > 0 ? f / g : 1,
        each = f / (g * g) > 0 ? f / (g * g) : 1;
    MPI_Request rq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    switch (k) {
    case AR: MPI_Iallreduce(MPI_IN_PLACE, x, f, MPI_FLOAT, MPI_SUM, comm, rq); break;
    case AG: MPI_Iallgather(x, part, MPI_FLOAT, y, part, MPI_FLOAT, comm, rq); break;
    case RS: MPI_Ireduce_scatter_block(x, y, part, MPI_FLOAT, MPI_SUM, comm, rq); break;
    case A2A: MPI_Ialltoall(x, each, MPI_FLOAT, y, each, MPI_FLOAT, comm, rq); break;
    default:
        if (rank < 2) {
            MPI_Irecv(y, f, MPI_FLOAT, rank ^ 1, 7, comm, &rq[0]);
            MPI_Isend(x, f, MPI_FLOAT, rank ^ 1, 7, comm, &rq[1]);
        }
        break;
    }
    MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
}

/* Seconds per call: each rank's median of `reps` synchronised calls after one warm-up (the
 * median, as the GEMM grid: a step's collectives see typical calls), then the slowest rank.
 * Before each call the sending buffer is written, as the kernel before a collective has just
 * written what it sends (and never a calloc'd page that reads as one cached page of zeros). */
enum { COLL_REPS = 30, COLL_REPS_QUICK = 10 }; /* calls per size (--quick) */

static double coll_time(int k, MPI_Comm comm, size_t n, int reps, float *x, float *y) {
    int g, rank;
    MPI_Comm_size(comm, &g);
    MPI_Comm_rank(comm, &rank);
    coll_call(k, comm, g, rank, n, x, y);
    double t[COLL_REPS], mx = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < n / sizeof(float); i++)
            x[i] = (float)((i + (size_t)r) % 7) * 0.125f;
        MPI_Barrier(comm);
        double t0 = now();
        coll_call(k, comm, g, rank, n, x, y);
        t[r] = now() - t0;
    }
    double med = cal_median(t, reps);
    MPI_Allreduce(&med, &mx, 1, MPI_DOUBLE, MPI_MAX, comm);
    return mx;
}

/* Least squares t = α + n/β over the sizes, in relative error (each residual over its t, so
 * a 4 KiB call counts as much as a 16 MiB one: in absolute error the large sizes decide α
 * alone, and the fit read 250 µs for a call measured at 9); α ≥ 0 (refitted through the
 * origin when it comes out negative), β > 0 (a flat or falling line: 1e15). */
static Fit fit(const double *n, const double *t, int k) {
    double sw = 0, sn = 0, st = 0, snn = 0, snt = 0;
    for (int i = 0; i < k; i++) {
        double w = t[i] > 0 ? 1.0 / (t[i] * t[i]) : 0.0;
        sw += w, sn += w * n[i], st += w * t[i], snn += w * n[i] * n[i], snt += w * n[i] * t[i];
    }
    double den = sw * snn - sn * sn, slope = den > 0 ? (sw * snt - sn * st) / den : 0;
    double icpt = sw > 0 ? (st - slope * sn) / sw : 0;
    if (icpt < 0) icpt = 0, slope = snn > 0 ? snt / snn : 0;
    Fit f = {icpt, slope > 1e-15 ? 1.0 / slope : 1e15};
    return f;
}

static Fit measure(int k, MPI_Comm comm, const Opts *o) {
    static const size_t full[] = {4096, 65536, 262144, 1048576, 4194304, 16777216};
    static const size_t quick[] = {4096, 65536, 1048576};
    const size_t *sz = o->quick ? quick : full;
    int ns = o->quick ? 3 : 6;
    size_t mx = sz[ns - 1] * 2;
    float *x = malloc(mx), *y = malloc(mx);
    cal_need(!x || !y, "the collectives' buffers");
    memset(y, 0, mx);
    double n[8], t[8];
    for (int i = 0; i < ns; i++) {
        n[i] = (double)sz[i];
        t[i] = coll_time(k, comm, sz[i], o->quick ? COLL_REPS_QUICK : COLL_REPS, x, y);
    }
    free(x), free(y);
    return fit(n, t, ns);
}

/* ───────────────────────────── the preset ───────────────────────────── */

/* The base preset (--base), or the built-in `cpu` preset's figures (docs/language.md). */
static cJSON *base_preset(const char *path) {
    if (!path) {
        cJSON *b =
            cJSON_Parse("{\"devices_per_node\": 8, \"memory_bytes\": 4294967296,"
                        "\"intra_node\": {\"alpha_s\": 2e-6, \"beta_bytes_per_s\": 5e9},"
                        "\"inter_node\": {\"alpha_s\": 30e-6, \"beta_bytes_per_s\": 1.1e9}}");
        return b;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *b = cJSON_Parse(buf);
    if (b && !cJSON_IsObject(b)) cJSON_Delete(b), b = NULL;
    return b;
}

/* Replaces (or adds) member `name` of `o`. */
static void put(cJSON *o, const char *name, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(o, name))
        cJSON_ReplaceItemInObjectCaseSensitive(o, name, v);
    else
        cJSON_AddItemToObject(o, name, v);
}

static cJSON *link_obj(Fit f) {
    cJSON *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(l, "alpha_s", f.alpha);
    cJSON_AddNumberToObject(l, "beta_bytes_per_s", f.beta);
    return l;
}

static void add_coll(cJSON *arr, int k, bool inter, int g, Fit f) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "op", coll_names[k]);
    cJSON_AddStringToObject(e, "link", inter ? "inter" : "intra");
    cJSON_AddNumberToObject(e, "group", g);
    cJSON_AddNumberToObject(e, "alpha_s", f.alpha);
    cJSON_AddNumberToObject(e, "beta_bytes_per_s", f.beta);
    cJSON_AddItemToArray(arr, e);
}

/* Writes `text` to `path` through a temporary beside it and a rename. */
static int write_atomic(const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* The last-level cache of this node in bytes: the highest level sysfs lists for cpu0 (a
 * size like "32768K"), else glibc's _SC_LEVEL3_CACHE_SIZE; 0 when neither says. */
static double last_level_cache(void) {
    double best = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], text[32];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        f = fopen(path, "r");
        if (!f) continue;
        double kb = 0;
        if (fgets(text, sizeof text, f)) kb = atof(text) * (strchr(text, 'M') ? 1024 : 1);
        fclose(f);
        if (level > best_level && kb > 0) best_level = level, best = kb * 1024;
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (best <= 0) best = (double)sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    return best > 0 ? best : 0;
}

static double mem_per_rank(int local) {
    FILE *f = fopen("/proc/meminfo", "r");
    long long kb = 0;
    if (f) {
        if (fscanf(f, "MemTotal: %lld kB", &kb) != 1) kb = 0;
        fclose(f);
    }
    return kb > 0 ? (double)kb * 1024.0 / (local > 0 ? local : 1) : 4294967296.0;
}

/* ───────────────────────────── main ───────────────────────────── */

typedef struct World {
    int rank, size, local, nodes;
    MPI_Comm node;
} World;

static void gemm_table(cJSON *p, const Opts *o, double *flat) {
    static const int ms_full[] = {1, 4, 16, 64, 256, 1024, 2048},
                     ns_full[] = {16, 64, 256, 1024, 2048};
    static const int ms_quick[] = {1, 64, 1024}, ns_quick[] = {64, 1024};
    const int *ms = o->quick ? ms_quick : ms_full, *ns = o->quick ? ns_quick : ns_full;
    int nm = o->quick ? 3 : 7, nn = o->quick ? 2 : 5;
    cJSON *arr = cJSON_CreateArray();
    cold_alloc();
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < nn; j++)
            for (int l = 0; l < nn; l++) {
                static const char *const names[2][3] = {
                    {"flops", "flops_nt", "flops_tn"},
                    {"flops_hot", "flops_nt_hot", "flops_tn_hot"}};
                double bud = o->quick ? 0.003 : 0.01, rate[2][3];
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "m", ms[i]);
                cJSON_AddNumberToObject(e, "n", ns[j]);
                cJSON_AddNumberToObject(e, "k", ns[l]);
                for (int hot = 0; hot < 2; hot++)
                    for (int kind = GEMM_NN; kind <= GEMM_TN; kind++) {
                        rate[hot][kind] = gemm_rate((GemmKind)kind, hot, ms[i], ns[j], ns[l], bud);
                        cJSON_AddNumberToObject(e, names[hot][kind], rate[hot][kind]);
                    }
                cJSON_AddItemToArray(arr, e);
                if (rate[0][GEMM_NN] > *flat) *flat = rate[0][GEMM_NN]; /* the roof: fastest */
            }
    cold_free();
    put(p, "gemm", arr);
}

/* Collectives over the job (intra when one node), per node when several, send/recv 0↔1. */
static void comm_table(cJSON *p, const World *w, const Opts *o) {
    cJSON *arr = cJSON_CreateArray();
    bool inter = w->nodes > 1;
    if (w->size > 1) {
        for (int k = AR; k < SR; k++)
            add_coll(arr, k, inter, w->size, measure(k, MPI_COMM_WORLD, o));
        Fit sr = measure(SR, MPI_COMM_WORLD, o);
        int lead = 0, same = 0;
        int local_rank;
        MPI_Comm_rank(w->node, &local_rank);
        lead = w->rank == 1 ? local_rank : 0;
        MPI_Allreduce(&lead, &same, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        bool sr_inter = same == 0 && inter; /* rank 1 leads its node: 0 and 1 are apart */
        add_coll(arr, SR, sr_inter, 2, sr);
        put(p, sr_inter ? "inter_node" : "intra_node", link_obj(sr));
    }
    if (inter && w->local > 1)
        for (int k = AR; k < SR; k++)
            add_coll(arr, k, false, w->local, measure(k, w->node, o));
    put(p, "collectives", arr);
}

static void summary(const cJSON *p, const World *w, const char *out) {
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(p, "flops");
    printf("mpcc-calibrate: %d rank(s) on %d node(s), %d per node -> %s\n", w->size, w->nodes,
           w->local, out);
    printf("  gemm      %.1f GFLOP/s per rank at the fastest shape (flops.f32)\n",
           cJSON_GetObjectItemCaseSensitive(fl, "f32")->valuedouble / 1e9);
    printf("  memory    %.2f GB/s triad per rank (%d thread(s))\n",
           cJSON_GetObjectItemCaseSensitive(p, "memory_bandwidth_bytes_per_s")->valuedouble / 1e9,
           mprt_threads());
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "collectives")) {
        printf("  %-14s %-5s g=%-3d alpha %.2f us, beta %.2f GB/s\n",
               cJSON_GetObjectItemCaseSensitive(e, "op")->valuestring,
               cJSON_GetObjectItemCaseSensitive(e, "link")->valuestring,
               (int)cJSON_GetObjectItemCaseSensitive(e, "group")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(e, "alpha_s")->valuedouble * 1e6,
               cJSON_GetObjectItemCaseSensitive(e, "beta_bytes_per_s")->valuedouble / 1e9);
    }
}

static int calibrate(const Opts *o, const World *w) {
    cJSON *p = base_preset(o->base);
    int ok = p != NULL, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        if (w->rank == 0)
            fprintf(stderr, "mpcc-calibrate: --base %s: cannot read it as a JSON object\n",
                    o->base);
        cJSON_Delete(p);
        return 1;
    }
    double flat = 0;
    gemm_table(p, o, &flat);
    cJSON *fl = cJSON_CreateObject();
    cJSON_AddNumberToObject(fl, "f32", flat);
    put(p, "flops", fl);
    double llc = last_level_cache();
    put(p, "memory_bandwidth_bytes_per_s",
        cJSON_CreateNumber(triad(triad_floats(llc, w->local, o->quick))));
    if (llc > 0) put(p, "cache_bytes", cJSON_CreateNumber(llc));
    put(p, "ops", cal_ops_table(o->quick));
    put(p, "optimizer", cal_optimizer(o->quick));
    comm_table(p, w, o);
    if (w->size > 1) {
        CalOverlap ov = cal_grad_overlap();
        put(p, "grad_overlap", cJSON_CreateNumber(ov.hidden));
        put(p, "grad_overlap_slowdown", cJSON_CreateNumber(ov.slowdown));
    }
    put(p, "format", cJSON_CreateNumber(1));
    put(p, "name", cJSON_CreateString("calibrated"));
    char src[256];
    snprintf(src, sizeof src, "mpcc-calibrate%s on %d rank(s), %d node(s), %d thread(s) per rank",
             o->quick ? " --quick" : "", w->size, w->nodes, mprt_threads());
    put(p, "source", cJSON_CreateString(src));
    put(p, "devices_per_node", cJSON_CreateNumber(w->local));
    if (!o->base) put(p, "memory_bytes", cJSON_CreateNumber(floor(mem_per_rank(w->local))));
    int rc = 0;
    if (w->rank == 0) {
        char *text = cJSON_Print(p);
        rc = !text || write_atomic(o->out, text) != 0;
        if (rc)
            fprintf(stderr, "mpcc-calibrate: cannot write %s\n", o->out);
        else
            summary(p, w, o->out);
        free(text);
    }
    cJSON_Delete(p);
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}

int main(int argc, char **argv) {
    Opts o = {0};
    int pr = parse(argc, argv, &o);
    if (pr != 0) {
        usage(pr > 0 ? stdout : stderr);
        return pr > 0 ? 0 : 2;
    }
    MPI_Init(&argc, &argv);
    World w = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &w.node);
    MPI_Comm_size(w.node, &w.local);
    int lr, lead, nodes = 0;
    MPI_Comm_rank(w.node, &lr);
    lead = lr == 0;
    MPI_Allreduce(&lead, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    w.nodes = nodes;
    mprt_set_threads(o.threads); /* the pool the trainer computes on */
    int rc = calibrate(&o, &w);
    MPI_Comm_free(&w.node);
    mprt__par_finalize();
    MPI_Finalize();
    return rc;
}
