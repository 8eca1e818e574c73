/*
 * comm_mpi.c: the mesh, its communicators and the collectives, over MPI.
 *
 * mprt_init checks the world size against the plan's mesh S × d × t before anything else,
 * then splits MPI_COMM_WORLD into the four groups of passes.h (tensor, data, stage, pipe)
 * plus a duplicate of the world, each with MPI_ERRORS_RETURN so that a failing call comes
 * back to us: we name the call, the group and the rank, and abort the job. A collective
 * that hangs because one rank died is the worst failure mode of distributed training; an
 * abort with a readable line is the best we can do about it.
 *
 * Every collective works on float buffers and has one job. The caller describes a tensor
 * split along one dimension as outer × (G·chunk) × inner (mprt.h); MPI's collectives
 * gather and scatter rank-major contiguous blocks, so when outer > 1 the data is packed or
 * unpacked through a scratch buffer owned by the runtime (grown on demand, freed at
 * finalize). Each call adds the bytes of mprt_coll_bytes() and its wall time to the
 * counters in log.c, under its (kind, group) — the numbers the partition report predicted.
 *
 * Shards must divide evenly; counts must fit MPI's int. Violations are programming errors
 * in the generated code, reported with mprt_fatal.
 */
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct {
    bool inited;
    bool owns_mpi; /* the runtime called MPI_Init, so mprt_finalize calls MPI_Finalize */
    MprtMesh mesh;
    MPI_Comm comm[MPRT_GROUP__COUNT];
    int gsize[MPRT_GROUP__COUNT], grank[MPRT_GROUP__COUNT];
    float *scratch;
    size_t scratch_cap; /* floats */
    double t0;
    char prog[64];
} R = {.prog = "train"};

struct MprtReq {
    MPI_Request req;
    double t0;
    int64_t bytes;
    const char *call;
    uint16_t *own; /* a bf16 send's packed copy, freed at the wait (or NULL) */
};

/* The gradient all-reduces a step has started and not yet joined, in start order. */
static struct {
    MPI_Request *req;
    MprtGroup *group;
    int64_t *count;
    double *t0;
    float **buf;     /* the caller's buffer */
    uint16_t **wire; /* under the bf16 wire: its packed copy in flight, else NULL */
    int n, cap;
    double exposed; /* seconds the caller spent inside start/progress/join */
} F;

static void inflight_free(void) {
    free(F.req);
    free(F.group);
    free(F.count);
    free(F.t0);
    for (int i = 0; i < F.n; i++)
        free(F.wire[i]);
    free(F.buf);
    free(F.wire);
    memset(&F, 0, sizeof F);
}

/* ───────────────────────────── errors ───────────────────────────── */

const char *mprt_progname(void) { return R.prog; }

void mprt_fatal(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s: rank %d: %s\n", R.prog, R.mesh.rank, msg);
    fflush(stderr);
    int up = 0;
    MPI_Initialized(&up);
    if (up) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void check(int rc, const char *call, MprtGroup g) {
    if (rc == MPI_SUCCESS) return;
    char why[MPI_MAX_ERROR_STRING + 1] = "";
    int len = 0;
    if (MPI_Error_string(rc, why, &len) != MPI_SUCCESS)
        snprintf(why, sizeof why, "MPI error %d", rc);
    mprt_fatal("%s on %s group failed: %s", call, mprt_group_name(g), why);
}

/* Waits for a call this rank posted, under the communication timeout (comm_wait.c): every
 * collective and receive is posted non-blocking and completed here, so a stuck rank ends the
 * job with its name instead of hanging it. */
static void await(MPI_Request *rq, const char *call, MprtGroup g) {
    check(mprt__wait(rq, call, mprt_group_name(g)), call, g);
}

MPI_Comm mprt__comm(MprtGroup g) { return R.comm[g]; }
void mprt__check(int rc, const char *call, MprtGroup g) { check(rc, call, g); }
void mprt__await(MPI_Request *rq, const char *call, MprtGroup g) { await(rq, call, g); }

/* A collective of a step on group g: its non-blocking form completed by await, or with the
 * timeout off (0), MPI's blocking form, whose algorithms are faster for mid-size messages on
 * Open MPI (docs/benchmarks.md, "Communication timeout"). Both take the same arguments, the
 * non-blocking one a request more. */
#define COLLECTIVE(g, blocking, nonblocking, ...)                                                  \
    do {                                                                                           \
        if (mprt_comm_timeout() > 0) {                                                             \
            MPI_Request rq_;                                                                       \
            check(nonblocking(__VA_ARGS__, &rq_), #nonblocking, g);                                \
            await(&rq_, #blocking, g);                                                             \
        } else {                                                                                   \
            check(blocking(__VA_ARGS__), #blocking, g);                                            \
        }                                                                                          \
    } while (0)

static int to_int(int64_t n, const char *call) {
    if (n < 0 || n > INT_MAX)
        mprt_fatal("%s: element count %lld out of range for MPI (0..%d)", call, (long long)n,
                   INT_MAX);
    return (int)n;
}

/* outer·chunk·inner with each factor ≥ 0 and the product within MPI's int. */
static int64_t block3(int64_t a, int64_t b, int64_t c, const char *call) {
    int64_t dims[3] = {a, b, c}, n = 0;
    if (!mprt__numel(3, dims, 1, INT_MAX, &n))
        mprt_fatal("%s: bad tensor view %lld x %lld x %lld", call, (long long)a, (long long)b,
                   (long long)c);
    return n;
}

int mprt__count_int(int64_t n, const char *call) { return to_int(n, call); }

/* One rank's block of an outer×(G·chunk)×inner view split G ways (outer·chunk·inner), with the
 * whole view, G blocks, within MPI's int. */
int64_t mprt__view_block(int64_t outer, int64_t chunk, int64_t inner, int G, const char *call) {
    int64_t blk = block3(outer, chunk, inner, call);
    block3(blk, G, 1, call);
    return blk;
}

/* Rows of `row` bytes between outer-major (o, r) and rank-major (r, o) order. */
void mprt__regroup(void *dst, const void *src, int G, int64_t outer, size_t row,
                   bool to_rank_major) {
    for (int64_t o = 0; o < outer; o++)
        for (int r = 0; r < G; r++) {
            size_t om = ((size_t)o * (size_t)G + (size_t)r) * row;
            size_t rm = ((size_t)r * (size_t)outer + (size_t)o) * row;
            memcpy((char *)dst + (to_rank_major ? rm : om),
                   (const char *)src + (to_rank_major ? om : rm), row);
        }
}

float *mprt__scratch(int64_t nfloats) {
    if ((size_t)nfloats > R.scratch_cap) {
        float *p = realloc(R.scratch, (size_t)nfloats * sizeof(float));
        if (!p)
            mprt_fatal("out of memory for a %lld-byte communication buffer",
                       (long long)nfloats * 4);
        R.scratch = p;
        R.scratch_cap = (size_t)nfloats;
    }
    return R.scratch;
}

/* ───────────────────────────── launch ───────────────────────────── */

static void set_progname(int *argc, char ***argv) {
    if (!argc || !argv || *argc < 1 || !(*argv)[0] || !(*argv)[0][0]) return;
    const char *base = strrchr((*argv)[0], '/');
    base = base ? base + 1 : (*argv)[0];
    if (*base) snprintf(R.prog, sizeof R.prog, "%s", base);
}

static void split(MprtGroup g, int color, int key) {
    MPI_Comm c;
    check(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c), "MPI_Comm_split", g);
    check(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", g);
    R.comm[g] = c;
    check(MPI_Comm_size(c, &R.gsize[g]), "MPI_Comm_size", g);
    check(MPI_Comm_rank(c, &R.grank[g]), "MPI_Comm_rank", g);
}

/* MPI_Init unless MPI is up (started by mprt__agree_flag, or by an embedding program). */
static void start_mpi(int *argc, char ***argv) {
    set_progname(argc, argv);
    int up = 0;
    MPI_Initialized(&up);
    if (up) return;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init failed\n", R.prog);
        exit(1);
    }
    R.owns_mpi = true;
}

int mprt__agree_flag(int *argc, char ***argv, const char *flag, bool mine, int *rank) {
    start_mpi(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    int me[2] = {mine ? *rank : INT_MAX, mine ? INT_MAX : *rank}, first[2] = {0, 0};
    MPI_Request rq;
    int rc = MPI_Iallreduce(me, first, 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &rq);
    if (rc == MPI_SUCCESS) rc = mprt__wait(&rq, "MPI_Allreduce (start-up)", "world");
    if (rc != MPI_SUCCESS) mprt_fatal("MPI_Allreduce of the start-up agreement failed (%d)", rc);
    if (first[0] == INT_MAX) return 0; /* no rank has it: MPI stays up for mprt_init */
    if (first[1] != INT_MAX && *rank == 0) {
        fprintf(stderr,
                "%s: %s was given to rank %d but not to rank %d; give it to every rank or to "
                "none\n",
                R.prog, flag, first[0], first[1]);
        fflush(stderr);
    }
    if (R.owns_mpi) MPI_Finalize();
    R.owns_mpi = false;
    if (first[1] != INT_MAX) exit(1);
    return 1;
}

void mprt_init(int *argc, char ***argv, int S, int d, int t) {
    start_mpi(argc, argv);
    R.t0 = MPI_Wtime();
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MprtMesh *m = &R.mesh;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &m->rank), "MPI_Comm_rank", MPRT_WORLD);
    check(MPI_Comm_size(MPI_COMM_WORLD, &m->size), "MPI_Comm_size", MPRT_WORLD);
    if (S < 1 || d < 1 || t < 1) mprt_fatal("invalid mesh S=%d x d=%d x t=%d", S, d, t);
    long long need = (long long)S * d * t;
    if (need != m->size) {
        if (m->rank == 0)
            fprintf(stderr,
                    "%s: this plan needs %lld ranks (S=%d \xc3\x97 d=%d \xc3\x97 t=%d), "
                    "launched with %d\n",
                    R.prog, need, S, d, t, m->size);
        MPI_Finalize();
        exit(1);
    }
    m->S = S, m->d = d, m->t = t;
    m->k = m->rank % t;
    m->j = (m->rank / t) % d;
    m->s = m->rank / (t * d);
    split(MPRT_TENSOR, m->s * d + m->j, m->k);
    split(MPRT_DATA, m->s * t + m->k, m->j);
    split(MPRT_STAGE, m->s, m->j * t + m->k);
    split(MPRT_PIPE, m->j * t + m->k, m->s);
    split(MPRT_WORLD, 0, m->rank);
    mprt__wait_init();
    R.inited = true;
    mprt__set_progress_hook(mprt__progress_inflight); /* kernels progress calls in flight */
}

void mprt_finalize(void) {
    if (!R.inited) return;
    mprt__set_progress_hook(NULL);
    int down = 0; /* a C API program that called MPI_Finalize first: its communicators are gone */
    MPI_Finalized(&down);
    if (!down && R.gsize[MPRT_WORLD] > 1) { /* all here, or the timeout names who is not */
        MPI_Request rq;
        check(MPI_Ibarrier(R.comm[MPRT_WORLD], &rq), "MPI_Ibarrier", MPRT_WORLD);
        await(&rq, "MPI_Barrier (finalize)", MPRT_WORLD);
    }
    mprt__wait_finalize();
    mprt__par_finalize();
    mprt__bf16_finalize();
    for (int g = 0; g < MPRT_GROUP__COUNT && !down; g++)
        MPI_Comm_free(&R.comm[g]);
    inflight_free(); /* a step always joins; calls left here belong to a run that failed */
    free(R.scratch);
    R.scratch = NULL;
    R.scratch_cap = 0;
    R.inited = false;
    if (R.owns_mpi && !down) MPI_Finalize();
    R.owns_mpi = false;
}

const MprtMesh *mprt_mesh(void) { return &R.mesh; }

static MprtGroup valid(MprtGroup g) {
    if (!R.inited) mprt_fatal("the runtime is used before mprt_init");
    if ((unsigned)g >= MPRT_GROUP__COUNT) mprt_fatal("invalid group %d", (int)g);
    return g;
}

int mprt_group_size(MprtGroup g) { return R.gsize[valid(g)]; }
int mprt_group_rank(MprtGroup g) { return R.grank[valid(g)]; }

const char *mprt_group_name(MprtGroup g) {
    static const char *const names[] = {"tensor", "data", "stage", "pipe", "world"};
    return (unsigned)g < MPRT_GROUP__COUNT ? names[g] : "?";
}

double mprt_now(void) { return MPI_Wtime(); }
double mprt_elapsed(void) { return MPI_Wtime() - R.t0; }

/* ───────────────────────────── collectives ───────────────────────────── */

void mprt_allreduce(MprtGroup g, float *buf, int64_t count) {
    if (mprt__wire()) {
        mprt__wire_allreduce(g, buf, count);
        return;
    }
    int n = to_int(count, "MPI_Allreduce");
    int G = mprt_group_size(g);
    double t0 = MPI_Wtime();
    if (G > 1)
        COLLECTIVE(g, MPI_Allreduce, MPI_Iallreduce, MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM,
                   R.comm[g]);
    mprt_stats_add(MPRT_ALLREDUCE, g, mprt_coll_bytes(MPRT_ALLREDUCE, G, 4 * count),
                   MPI_Wtime() - t0);
}

void mprt_allreduce_max(MprtGroup g, float *buf, int64_t count) {
    int n = to_int(count, "MPI_Allreduce");
    int G = mprt_group_size(g);
    double t0 = MPI_Wtime();
    if (G > 1)
        COLLECTIVE(g, MPI_Allreduce, MPI_Iallreduce, MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_MAX,
                   R.comm[g]);
    mprt_stats_add(MPRT_ALLREDUCE, g, mprt_coll_bytes(MPRT_ALLREDUCE, G, 4 * count),
                   MPI_Wtime() - t0);
}

/* ───────────────────────────── gradient all-reduces in flight ───────────────────────────── */

static void inflight_grow(void) {
    if (F.n < F.cap) return;
    int cap = F.cap ? 2 * F.cap : 16;
    MPI_Request *r = realloc(F.req, (size_t)cap * sizeof *r);
    if (r) F.req = r;
    MprtGroup *g = realloc(F.group, (size_t)cap * sizeof *g);
    if (g) F.group = g;
    int64_t *c = realloc(F.count, (size_t)cap * sizeof *c);
    if (c) F.count = c;
    double *t = realloc(F.t0, (size_t)cap * sizeof *t);
    if (t) F.t0 = t;
    float **b = realloc(F.buf, (size_t)cap * sizeof *b);
    if (b) F.buf = b;
    uint16_t **w = realloc(F.wire, (size_t)cap * sizeof *w);
    if (w) F.wire = w;
    if (!r || !g || !c || !t || !b || !w) mprt_fatal("MPI_Iallreduce: out of memory");
    F.cap = cap;
}

/* Counts call i as one all-reduce (bytes as mprt_allreduce, time from start to completion). */
static void inflight_done(int i, double now) {
    int64_t count = F.count[i];
    F.count[i] = -1; /* counted; first, as the unpacking's kernels progress the calls in flight */
    int G = mprt_group_size(F.group[i]);
    int64_t esize = F.wire[i] ? 2 : 4;
    if (F.wire[i]) mprt_bf16_unpack(F.buf[i], F.wire[i], count);
    free(F.wire[i]);
    F.wire[i] = NULL;
    mprt_stats_add(MPRT_ALLREDUCE, F.group[i], mprt_coll_bytes(MPRT_ALLREDUCE, G, esize * count),
                   now - F.t0[i]);
}

/* Posts call i's sum: of buf as floats, or under the bf16 wire of its packed bf16 copy. */
static void inflight_post(int i, MprtGroup g, float *buf, int n) {
    F.buf[i] = buf, F.wire[i] = NULL, F.req[i] = MPI_REQUEST_NULL;
    if (mprt__wire()) {
        F.wire[i] = malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
        if (!F.wire[i]) mprt_fatal("MPI_Iallreduce: out of memory");
        mprt_bf16_pack(F.wire[i], buf, n);
    }
    if (mprt_group_size(g) == 1) return;
    if (F.wire[i])
        check(MPI_Iallreduce(MPI_IN_PLACE, F.wire[i], n, MPI_UINT16_T, mprt__bf16_sum_op(),
                             R.comm[g], &F.req[i]),
              "MPI_Iallreduce", g);
    else
        check(MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, R.comm[g], &F.req[i]),
              "MPI_Iallreduce", g);
}

/* MPRT_GRAD_SYNC=blocking: every start is a blocking mprt_allreduce (the reference the e2e
 * test tests/e2e/overlap.py compares the overlapped run with). */
static bool blocking_sync(void) {
    static int mode = -1;
    if (mode < 0) {
        const char *v = getenv("MPRT_GRAD_SYNC");
        mode = v && strcmp(v, "blocking") == 0;
    }
    return mode == 1;
}

bool mprt__grad_sync_blocking(void) { return blocking_sync(); }

void mprt_allreduce_start(MprtGroup g, float *buf, int64_t count) {
    if (blocking_sync()) { /* all exposed: the reference the hidden share is measured from */
        double tb = MPI_Wtime();
        mprt_allreduce(g, buf, count);
        F.exposed += MPI_Wtime() - tb;
        return;
    }
    double t0 = MPI_Wtime();
    int n = to_int(count, "MPI_Iallreduce");
    inflight_grow();
    int i = F.n++;
    F.group[i] = valid(g);
    F.count[i] = -1; /* not tested until posted: packing the wire runs kernels, which progress */
    F.t0[i] = t0;
    inflight_post(i, g, buf, n);
    F.count[i] = count;
    F.exposed += MPI_Wtime() - t0;
}

void mprt_allreduce_progress(void) {
    if (F.n == 0) return;
    double t0 = MPI_Wtime();
    for (int i = 0; i < F.n; i++) {
        if (F.count[i] < 0) continue;
        int done = 0;
        check(MPI_Test(&F.req[i], &done, MPI_STATUS_IGNORE), "MPI_Test", F.group[i]);
        if (done) inflight_done(i, MPI_Wtime());
    }
    F.exposed += MPI_Wtime() - t0;
}

void mprt_allreduce_join(void) {
    double t0 = MPI_Wtime();
    for (int i = 0; i < F.n; i++) {
        if (F.count[i] < 0) continue;
        await(&F.req[i], "MPI_Iallreduce", F.group[i]);
        inflight_done(i, MPI_Wtime());
    }
    F.n = 0;
    F.exposed += MPI_Wtime() - t0;
}

double mprt_allreduce_exposed(void) { return F.exposed; }

void mprt_allgather(MprtGroup g, const float *local, float *full, int64_t outer, int64_t chunk,
                    int64_t inner) {
    if (mprt__wire()) {
        mprt__wire_allgather(g, local, full, outer, chunk, inner);
        return;
    }
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Allgather");
    double t0 = MPI_Wtime();
    if (G == 1) {
        memcpy(full, local, (size_t)blk * sizeof(float));
    } else {
        float *dst = outer == 1 ? full : mprt__scratch(blk * G); /* rank-major blocks */
        COLLECTIVE(g, MPI_Allgather, MPI_Iallgather, local, (int)blk, MPI_FLOAT, dst, (int)blk,
                   MPI_FLOAT, R.comm[g]);
        if (outer > 1)
            mprt__regroup(full, dst, G, outer, (size_t)(chunk * inner) * sizeof(float), false);
    }
    mprt_stats_add(MPRT_ALLGATHER, g, mprt_coll_bytes(MPRT_ALLGATHER, G, 4 * blk * G),
                   MPI_Wtime() - t0);
}

void mprt_reduce_scatter(MprtGroup g, const float *full, float *local, int64_t outer, int64_t chunk,
                         int64_t inner) {
    if (mprt__wire()) {
        mprt__wire_reduce_scatter(g, full, local, outer, chunk, inner);
        return;
    }
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Reduce_scatter_block");
    double t0 = MPI_Wtime();
    if (G == 1) {
        memcpy(local, full, (size_t)blk * sizeof(float));
    } else {
        const float *src = full;
        if (outer > 1) {
            float *tmp = mprt__scratch(blk * G);
            mprt__regroup(tmp, full, G, outer, (size_t)(chunk * inner) * sizeof(float), true);
            src = tmp;
        }
        COLLECTIVE(g, MPI_Reduce_scatter_block, MPI_Ireduce_scatter_block, src, local, (int)blk,
                   MPI_FLOAT, MPI_SUM, R.comm[g]);
    }
    mprt_stats_add(MPRT_REDUCESCATTER, g, mprt_coll_bytes(MPRT_REDUCESCATTER, G, 4 * blk * G),
                   MPI_Wtime() - t0);
}

/* ─────────────── ZeRO: parts of a flat tensor (uneven: the last ones short) ─────────────── */

static int64_t zero_len(int64_t count, int64_t shard, int r) {
    int64_t lo = shard * r, n = count - lo;
    return n < 0 ? 0 : n > shard ? shard : n;
}

int64_t mprt_zero_span(int64_t count, int64_t shard, int r, int64_t *lo) {
    *lo = shard * r < count ? shard * r : count;
    return zero_len(count, shard, r);
}

int64_t mprt_zero_part(MprtGroup g, int64_t count, int64_t shard, int64_t *lo) {
    return mprt_zero_span(count, shard, mprt_group_rank(g), lo);
}

/* The counts and displacements of the G parts, as MPI wants them (ints). */
static int *zero_counts(int G, int64_t count, int64_t shard, const char *call) {
    if (shard < 0 || shard > INT_MAX || shard * G < count || (int64_t)G * shard > INT_MAX)
        mprt_fatal("%s: bad ZeRO split of %lld floats into %d parts of %lld", call,
                   (long long)count, G, (long long)shard);
    int *c = malloc(2 * (size_t)G * sizeof *c);
    if (!c) mprt_fatal("out of memory");
    for (int r = 0; r < G; r++)
        c[r] = (int)zero_len(count, shard, r), c[G + r] = (int)(shard * r);
    return c;
}

void mprt_zero_reduce_scatter(MprtGroup g, float *full, float *out, int64_t count, int64_t shard,
                              bool add) {
    int G = mprt_group_size(g), me = mprt_group_rank(g);
    int *c = zero_counts(G, count, shard, "MPI_Reduce_scatter");
    double t0 = MPI_Wtime();
    bool wire = mprt__wire();
    if (wire) { /* bf16 on the wire (comm_bf16.c); in place: full was packed first */
        mprt__wire_zero_reduce_scatter(g, full, out ? out : full + c[G + me], count, c, out && add);
    } else if (!out) { /* in place: the part lands at the start of full, then at its place */
        check(MPI_Reduce_scatter(MPI_IN_PLACE, full, c, MPI_FLOAT, MPI_SUM, R.comm[g]),
              "MPI_Reduce_scatter", g);
        memmove(full + c[G + me], full, sizeof(float) * (size_t)c[me]);
    } else {
        float *dst = add ? mprt__scratch(shard > 0 ? shard : 1) : out;
        check(MPI_Reduce_scatter(full, dst, c, MPI_FLOAT, MPI_SUM, R.comm[g]), "MPI_Reduce_scatter",
              g);
        for (int i = 0; add && i < c[me]; i++)
            out[i] += dst[i];
    }
    mprt_stats_add(MPRT_REDUCESCATTER, g,
                   mprt_coll_bytes(MPRT_REDUCESCATTER, G, (wire ? 2 : 4) * shard * G),
                   MPI_Wtime() - t0);
    free(c);
}

void mprt_zero_allgather(MprtGroup g, float *full, int64_t count, int64_t shard) {
    int G = mprt_group_size(g);
    int *c = zero_counts(G, count, shard, "MPI_Allgatherv");
    double t0 = MPI_Wtime();
    bool wire = mprt__wire();
    if (wire)
        mprt__wire_zero_allgather(g, full, count, c);
    else
        check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, c, c + G, MPI_FLOAT,
                             R.comm[g]),
              "MPI_Allgatherv", g);
    mprt_stats_add(MPRT_ALLGATHER, g,
                   mprt_coll_bytes(MPRT_ALLGATHER, G, (wire ? 2 : 4) * shard * G),
                   MPI_Wtime() - t0);
    free(c);
}

/* The all-to-all exchange of G blocks of blk elements of type dt (comm_layout.c's). */
void mprt__alltoall(MprtGroup g, const void *src, void *dst, int64_t blk, MPI_Datatype dt) {
    COLLECTIVE(g, MPI_Alltoall, MPI_Ialltoall, src, (int)blk, dt, dst, (int)blk, dt, R.comm[g]);
}

void mprt_broadcast(MprtGroup g, float *buf, int64_t count, int root) {
    int n = to_int(count, "MPI_Bcast");
    int G = mprt_group_size(g);
    if (root < 0 || root >= G)
        mprt_fatal("MPI_Bcast: root %d outside the %s group of %d", root, mprt_group_name(g), G);
    double t0 = MPI_Wtime();
    if (G > 1) {
        MPI_Request rq;
        check(MPI_Ibcast(buf, n, MPI_FLOAT, root, R.comm[g], &rq), "MPI_Ibcast", g);
        await(&rq, "MPI_Bcast", g);
    }
    mprt_stats_add(MPRT_BROADCAST, g, mprt_coll_bytes(MPRT_BROADCAST, G, 4 * count),
                   MPI_Wtime() - t0);
}

static void metric(MprtGroup g, double *vals, int count, MPI_Op op) {
    int G = mprt_group_size(g);
    if (count < 0) mprt_fatal("MPI_Allreduce: negative count %d", count);
    double t0 = MPI_Wtime();
    if (G > 1) {
        MPI_Request rq;
        check(MPI_Iallreduce(MPI_IN_PLACE, vals, count, MPI_DOUBLE, op, R.comm[g], &rq),
              "MPI_Iallreduce", g);
        await(&rq, "MPI_Allreduce", g);
    }
    mprt_stats_add(MPRT_METRICS, g, mprt_coll_bytes(MPRT_METRICS, G, 8 * (int64_t)count),
                   MPI_Wtime() - t0);
}

void mprt_metric_sum(MprtGroup g, double *vals, int count) { metric(g, vals, count, MPI_SUM); }
void mprt_metric_max(MprtGroup g, double *vals, int count) { metric(g, vals, count, MPI_MAX); }

/* ───────────────────────────── point to point ───────────────────────────── */

static int peer(int dir, const char *call) {
    int s = mprt_group_rank(MPRT_PIPE) + dir;
    if ((dir != 1 && dir != -1) || s < 0 || s >= R.gsize[MPRT_PIPE])
        mprt_fatal("%s: no pipeline stage %d (direction %d from stage %d of %d)", call, s, dir,
                   R.grank[MPRT_PIPE], R.gsize[MPRT_PIPE]);
    return s;
}

static void recv_raw(int dir, void *buf, int64_t count, MPI_Datatype dt, int tag) {
    int from = peer(dir, "MPI_Recv"), n = to_int(count, "MPI_Recv");
    double t0 = MPI_Wtime();
    MPI_Request rq;
    check(MPI_Irecv(buf, n, dt, from, tag, R.comm[MPRT_PIPE], &rq), "MPI_Irecv", MPRT_PIPE);
    await(&rq, "MPI_Recv", MPRT_PIPE);
    mprt_stats_add(MPRT_SENDRECV, MPRT_PIPE, 0, MPI_Wtime() - t0);
}

void mprt_recv_bf16(int dir, uint16_t *buf, int64_t count, int tag) {
    recv_raw(dir, buf, count, MPI_UINT16_T, tag);
}

void mprt_recv(int dir, float *buf, int64_t count, int tag) {
    if (!mprt__wire()) {
        recv_raw(dir, buf, count, MPI_FLOAT, tag);
        return;
    }
    uint16_t *h = mprt__bf16_buf(0, count);
    mprt_recv_bf16(dir, h, count, tag);
    mprt_bf16_unpack(buf, h, count);
}

static MprtReq *new_req(const char *call, int64_t bytes) {
    MprtReq *r = malloc(sizeof *r);
    if (!r) mprt_fatal("%s: out of memory", call);
    r->t0 = MPI_Wtime();
    r->bytes = bytes;
    r->call = call;
    r->own = NULL;
    return r;
}

MprtReq *mprt_isend_bf16(int dir, const uint16_t *buf, int64_t count, int tag) {
    int to = peer(dir, "MPI_Isend"), n = to_int(count, "MPI_Isend");
    MprtReq *r = new_req("MPI_Isend", mprt_coll_bytes(MPRT_SENDRECV, 2, 2 * count));
    check(MPI_Isend(buf, n, MPI_UINT16_T, to, tag, R.comm[MPRT_PIPE], &r->req), "MPI_Isend",
          MPRT_PIPE);
    return r;
}

/* Under the bf16 wire the send owns a packed copy of buf until its wait. */
MprtReq *mprt_isend(int dir, const float *buf, int64_t count, int tag) {
    if (mprt__wire()) {
        uint16_t *h = malloc((size_t)(count > 0 ? count : 1) * sizeof *h);
        if (!h) mprt_fatal("MPI_Isend: out of memory");
        mprt_bf16_pack(h, buf, count);
        MprtReq *r = mprt_isend_bf16(dir, h, count, tag);
        r->own = h;
        return r;
    }
    int to = peer(dir, "MPI_Isend"), n = to_int(count, "MPI_Isend");
    MprtReq *r = new_req("MPI_Isend", mprt_coll_bytes(MPRT_SENDRECV, 2, 4 * count));
    check(MPI_Isend(buf, n, MPI_FLOAT, to, tag, R.comm[MPRT_PIPE], &r->req), "MPI_Isend",
          MPRT_PIPE);
    return r;
}

void mprt_wait(MprtReq *r) {
    if (!r) return;
    await(&r->req, r->call, MPRT_PIPE);
    mprt_stats_add(MPRT_SENDRECV, MPRT_PIPE, r->bytes, MPI_Wtime() - r->t0);
    free(r->own);
    free(r);
}

/* ───────────────────────────── agreeing on user errors ───────────────────────────── */

void mprt_exit_if_any(bool failed, const char *msg) {
    int mine = failed ? R.mesh.rank : INT_MAX, first = mine;
    if (R.inited && R.mesh.size > 1) {
        MPI_Request rq;
        check(MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, R.comm[MPRT_WORLD], &rq),
              "MPI_Iallreduce", MPRT_WORLD);
        await(&rq, "MPI_Allreduce", MPRT_WORLD);
    }
    if (first == INT_MAX) return;
    fflush(stdout);
    if (first == R.mesh.rank) {
        fprintf(stderr, "%s: %s\n", R.prog, msg ? msg : "error");
        fflush(stderr);
    }
    mprt_finalize();
    exit(1);
}

/* ───────────────────────────── gathering text (the profile) ───────────────────────────── */

char *mprt__gather_text(const char *mine, int *n) {
    MprtGroup w = valid(MPRT_WORLD);
    int size = R.gsize[w], root = R.grank[w] == 0;
    int len = to_int((int64_t)strlen(mine) + 1, "MPI_Gather");
    int *lens = root ? calloc((size_t)size, 2 * sizeof(int)) : NULL;
    if (root && !lens) mprt_fatal("out of memory gathering the profile");
    MPI_Request rq;
    check(MPI_Igather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, R.comm[w], &rq), "MPI_Igather", w);
    await(&rq, "MPI_Gather", w);
    char *all = NULL;
    int *displs = root ? lens + size : NULL;
    if (root) {
        int64_t total = 0;
        for (int i = 0; i < size; i++) {
            displs[i] = to_int(total, "MPI_Gatherv");
            total += lens[i];
        }
        all = malloc((size_t)to_int(total, "MPI_Gatherv"));
        if (!all) mprt_fatal("out of memory gathering the profile");
    }
    check(MPI_Igatherv(mine, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, R.comm[w], &rq),
          "MPI_Igatherv", w);
    await(&rq, "MPI_Gatherv", w);
    free(lens);
    *n = size;
    return all;
}
