/*
 * test_rt_comm.c: the runtime's mesh, groups and collectives over real MPI ranks.
 *
 *   mpirun -np N test_rt_comm S d t [mode]
 *
 * Mode "all" (default) checks, on the mesh S × d × t, every group's size and rank against
 * r = (s·d + j)·t + k, then every collective against values computed here from the global
 * formula of each rank's data (exact small integers in float), and after each call that
 * the byte counter grew by exactly the integer formula of passes.h (written out again here,
 * independently of mprt_coll_bytes). Then pause/reset, the profile JSON and the progress
 * line. Other modes exercise the error paths; tests/runtime/CMakeLists.txt checks their
 * output and exit status with expect.py:
 *   fail    rank 1 (or 0) reports a user error through mprt_exit_if_any: one line, exit 1
 *   mpierr  rank 0 sends with an invalid tag: MPI's error is named and the job aborts while
 *           rank 1 waits in a collective (no hang)
 *   uneven  an all-to-all whose batch does not divide by the group: a fatal error, not a
 *           silently wrong shard
 *   stuck   rank 2 sleeps outside MPI (as a stopped rank would) while the others wait in an
 *           all-reduce: after the communication timeout (MPRT_COMM_TIMEOUT, set by the test)
 *           rank 0 names rank 2 in one line and the job aborts (comm_wait.c)
 *   deadlock  both ranks of a 2-stage pipe receive from each other: the timeout finds both
 *           answering and says it is a deadlock (timeout set with mprt_set_comm_timeout)
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprt.h"
#include "mprt_kernels.h"

#define RT_CHECK_RANK (mprt_mesh()->rank)
#include "rt_check.h"

/* The world rank of group member `m` of group g seen from this rank. */
static int member(MprtGroup g, int m) {
    const MprtMesh *M = mprt_mesh();
    int s = M->s, j = M->j, k = M->k;
    switch (g) {
    case MPRT_TENSOR: k = m; break;
    case MPRT_DATA: j = m; break;
    case MPRT_STAGE: j = m / M->t, k = m % M->t; break;
    case MPRT_PIPE: s = m; break;
    default: return m;
    }
    return (s * M->d + j) * M->t + k;
}

/* Value rank r holds at position i (exact in float). */
static float val(int r, int64_t i) { return (float)(r * 1000 + i % 997); }

/* The counter for (k, g) must have grown by `want` bytes and one call since *before. */
static void expect_bytes(MprtColl k, MprtGroup g, MprtCommStat *before, int64_t want,
                         const char *what) {
    MprtCommStat now = mprt_stats_get(k, g);
    CHECK(now.bytes - before->bytes == want, "%s on %s: counted %lld bytes, formula %lld", what,
          mprt_group_name(g), (long long)(now.bytes - before->bytes), (long long)want);
    CHECK(now.calls - before->calls == 1, "%s: %lld calls", what,
          (long long)(now.calls - before->calls));
    *before = now;
}

static void test_mesh(int S, int d, int t) {
    const MprtMesh *m = mprt_mesh();
    CHECK(m->S == S && m->d == d && m->t == t, "mesh %d %d %d", m->S, m->d, m->t);
    CHECK(m->rank == (m->s * d + m->j) * t + m->k, "coords %d %d %d of rank %d", m->s, m->j, m->k,
          m->rank);
    CHECK(mprt_group_size(MPRT_TENSOR) == t && mprt_group_rank(MPRT_TENSOR) == m->k, "tensor");
    CHECK(mprt_group_size(MPRT_DATA) == d && mprt_group_rank(MPRT_DATA) == m->j, "data");
    CHECK(mprt_group_size(MPRT_STAGE) == d * t && mprt_group_rank(MPRT_STAGE) == m->j * t + m->k,
          "stage");
    CHECK(mprt_group_size(MPRT_PIPE) == S && mprt_group_rank(MPRT_PIPE) == m->s, "pipe");
    CHECK(mprt_group_size(MPRT_WORLD) == S * d * t, "world");
}

static void test_allreduce(MprtGroup g) {
    int G = mprt_group_size(g);
    int64_t n = 1001;
    float *buf = malloc((size_t)n * sizeof *buf);
    for (int64_t i = 0; i < n; i++)
        buf[i] = val(mprt_mesh()->rank, i);
    MprtCommStat c = mprt_stats_get(MPRT_ALLREDUCE, g);
    mprt_allreduce(g, buf, n);
    expect_bytes(MPRT_ALLREDUCE, g, &c, 2 * (G - 1) * (4 * n) / G, "allreduce");
    for (int64_t i = 0; i < n; i++) {
        float want = 0;
        for (int r = 0; r < G; r++)
            want += val(member(g, r), i);
        if (buf[i] != want) {
            CHECK(buf[i] == want, "allreduce[%lld] = %g, want %g", (long long)i, buf[i], want);
            break;
        }
    }
    free(buf);
}

/* Non-blocking gradient all-reduces on two groups at once, progressed and joined: the sums are
 * bit for bit those of the blocking mprt_allreduce (values whose sum depends on the order),
 * each call is counted once with the blocking call's bytes, and a join with nothing in
 * flight is a no-op. */
static void test_allreduce_overlap(MprtGroup g, MprtGroup h) {
    enum { N = 3001 };
    static float a[N], b[N], ra[N], rb[N];
    for (int64_t i = 0; i < N; i++) {
        a[i] = ra[i] = 0.1f * val(mprt_mesh()->rank, i) + 1.0f / 3.0f;
        b[i] = rb[i] = 1.0f / (1.0f + val(mprt_mesh()->rank, i));
    }
    mprt_allreduce(g, ra, N);
    mprt_allreduce(h, rb, N);
    MprtCommStat cg = mprt_stats_get(MPRT_ALLREDUCE, g), ch = mprt_stats_get(MPRT_ALLREDUCE, h);
    double e0 = mprt_allreduce_exposed();
    mprt_allreduce_start(g, a, N);
    mprt_allreduce_progress();
    mprt_allreduce_start(h, b, N);
    for (int k = 0; k < 3; k++)
        mprt_allreduce_progress();
    mprt_allreduce_join();
    mprt_allreduce_join();
    int64_t bg = 2 * (mprt_group_size(g) - 1) * (4 * N) / mprt_group_size(g);
    int64_t bh = 2 * (mprt_group_size(h) - 1) * (4 * N) / mprt_group_size(h);
    if (g == h) {
        MprtCommStat now = mprt_stats_get(MPRT_ALLREDUCE, g);
        CHECK(now.calls - cg.calls == 2 && now.bytes - cg.bytes == bg + bh, "overlap counts");
    } else {
        expect_bytes(MPRT_ALLREDUCE, g, &cg, bg, "allreduce_start");
        expect_bytes(MPRT_ALLREDUCE, h, &ch, bh, "allreduce_start");
    }
    CHECK(mprt_allreduce_exposed() >= e0, "exposed time went back");
    CHECK(memcmp(a, ra, sizeof a) == 0, "allreduce_start on %s differs from allreduce",
          mprt_group_name(g));
    CHECK(memcmp(b, rb, sizeof b) == 0, "allreduce_start on %s differs from allreduce",
          mprt_group_name(h));
}

/* A layer's kernels progress the all-reduces in flight (mprt__parallel_for's hook, set by
 * mprt_init): a call started and never progressed or joined by hand completes (is counted)
 * while this rank only runs kernels; under the bf16 wire too, whose packing and unpacking are
 * kernels themselves (a call must not be completed half packed, nor unpacked twice). The
 * sums equal the blocking call's (small integers: exact in bf16). */
static void test_kernels_progress(MprtGroup g, bool wire) {
    enum { N = 1 << 16, M = 4096 };
    static float a[N], ra[N], x[M], y[M];
    for (int64_t i = 0; i < N; i++)
        a[i] = ra[i] = (float)((mprt_mesh()->rank + i) % 5);
    for (int i = 0; i < M; i++)
        x[i] = (float)(i % 7) - 3.0f;
    mprt_set_wire_bf16(wire);
    mprt_allreduce(g, ra, N);
    int64_t before = mprt_stats_get(MPRT_ALLREDUCE, g).calls;
    mprt_allreduce_start(g, a, N);
    for (double t0 = mprt_now();
         mprt_stats_get(MPRT_ALLREDUCE, g).calls == before && mprt_now() - t0 < 10.0;)
        mprt_relu_forward(y, x, M);
    CHECK(mprt_stats_get(MPRT_ALLREDUCE, g).calls == before + 1,
          "an all-reduce on %s (%s) never completed while the rank ran kernels", mprt_group_name(g),
          wire ? "bf16 wire" : "f32");
    mprt_allreduce_join();
    mprt_set_wire_bf16(false);
    CHECK(memcmp(a, ra, sizeof a) == 0, "the all-reduce progressed by kernels on %s (%s) differs",
          mprt_group_name(g), wire ? "bf16 wire" : "f32");
}

/* Gathers a [outer, G·chunk, inner] tensor, then reduce-scatters it back. */
static void test_gather_scatter(MprtGroup g, int64_t outer, int64_t chunk, int64_t inner) {
    int G = mprt_group_size(g), me = mprt_group_rank(g);
    int64_t blk = outer * chunk * inner, full_n = blk * G;
    float *local = malloc((size_t)blk * 4), *full = malloc((size_t)full_n * 4);
    float *back = malloc((size_t)blk * 4);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < chunk; c++)
            for (int64_t i = 0; i < inner; i++)
                local[(o * chunk + c) * inner + i] = val(me, (o * chunk + c) * inner + i);
    MprtCommStat cg = mprt_stats_get(MPRT_ALLGATHER, g);
    mprt_allgather(g, local, full, outer, chunk, inner);
    expect_bytes(MPRT_ALLGATHER, g, &cg, (G - 1) * (4 * full_n) / G, "allgather");
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int r = 0; r < G; r++)
            for (int64_t c = 0; c < chunk; c++)
                for (int64_t i = 0; i < inner; i++) {
                    float got = full[((o * G + r) * chunk + c) * inner + i];
                    bad += got != val(r, (o * chunk + c) * inner + i);
                }
    CHECK(bad == 0, "allgather %lldx%lldx%lld: %d wrong elements", (long long)outer,
          (long long)chunk, (long long)inner, bad);
    /* full is identical on every rank: reduce-scatter gives G × this rank's slice */
    MprtCommStat cr = mprt_stats_get(MPRT_REDUCESCATTER, g);
    mprt_reduce_scatter(g, full, back, outer, chunk, inner);
    expect_bytes(MPRT_REDUCESCATTER, g, &cr, (G - 1) * (4 * full_n) / G, "reducescatter");
    bad = 0;
    for (int64_t e = 0; e < blk; e++)
        bad += back[e] != (float)G * local[e];
    CHECK(bad == 0, "reduce-scatter: %d wrong elements", bad);
    mprt_slice(full, back, outer, chunk, inner, G, me);
    CHECK(memcmp(back, local, (size_t)blk * 4) == 0, "slice of the gathered tensor");
    free(local), free(full), free(back);
}

/* Reduce-scatter of per-rank different data: local = Σ_r slice_me(full_r). */
static void test_reduce_scatter_sum(MprtGroup g) {
    int G = mprt_group_size(g), me = mprt_group_rank(g);
    int64_t outer = 3, chunk = 2, inner = 4, row = G * chunk * inner;
    float *full = malloc((size_t)(outer * row) * 4),
          *local = malloc((size_t)(outer * chunk * inner) * 4);
    for (int64_t e = 0; e < outer * row; e++)
        full[e] = val(mprt_mesh()->rank, e);
    mprt_reduce_scatter(g, full, local, outer, chunk, inner);
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < chunk * inner; c++) {
            float want = 0;
            for (int r = 0; r < G; r++)
                want += val(member(g, r), o * row + me * chunk * inner + c);
            bad += local[o * chunk * inner + c] != want;
        }
    CHECK(bad == 0, "reduce-scatter sum: %d wrong elements", bad);
    free(full), free(local);
}

/* B ↔ F all-to-all of a global tensor T[b][m][f][i] = b·10^4 + m·10^3 + f·10 + i. */
static float tval(int64_t b, int64_t m, int64_t f, int64_t i) {
    return (float)(b * 10000 + m * 1000 + f * 10 + i);
}

static void test_alltoall(MprtGroup g, int64_t B, int64_t M, int64_t F, int64_t I) {
    int G = mprt_group_size(g), me = mprt_group_rank(g);
    int64_t bl = B / G, fc = F / G, n = B * M * F * I / G;
    float *bx = malloc((size_t)n * 4), *fx = malloc((size_t)n * 4), *back = malloc((size_t)n * 4);
    for (int64_t b = 0; b < bl; b++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t f = 0; f < F; f++)
                for (int64_t i = 0; i < I; i++)
                    bx[((b * M + m) * F + f) * I + i] = tval(me * bl + b, m, f, i);
    MprtCommStat c = mprt_stats_get(MPRT_ALLTOALL, g);
    mprt_alltoall_b2f(g, bx, fx, B, M, F, I);
    expect_bytes(MPRT_ALLTOALL, g, &c, (G - 1) * (4 * B * M * F * I) / (G * G), "alltoall b2f");
    int bad = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t f = 0; f < fc; f++)
                for (int64_t i = 0; i < I; i++)
                    bad += fx[((b * M + m) * fc + f) * I + i] != tval(b, m, me * fc + f, i);
    CHECK(bad == 0, "alltoall b2f %lldx%lldx%lldx%lld: %d wrong", (long long)B, (long long)M,
          (long long)F, (long long)I, bad);
    mprt_alltoall_f2b(g, fx, back, B, M, F, I);
    expect_bytes(MPRT_ALLTOALL, g, &c, (G - 1) * (4 * B * M * F * I) / (G * G), "alltoall f2b");
    CHECK(memcmp(back, bx, (size_t)n * 4) == 0, "alltoall f2b does not invert b2f");
    free(bx), free(fx), free(back);
}

static void test_broadcast_metrics(void) {
    int G = mprt_group_size(MPRT_STAGE);
    float b[5];
    for (int i = 0; i < 5; i++)
        b[i] = val(mprt_group_rank(MPRT_STAGE), i);
    MprtCommStat c = mprt_stats_get(MPRT_BROADCAST, MPRT_STAGE);
    mprt_broadcast(MPRT_STAGE, b, 5, G - 1);
    expect_bytes(MPRT_BROADCAST, MPRT_STAGE, &c, (G - 1) * 20 / G, "broadcast");
    for (int i = 0; i < 5; i++)
        CHECK(b[i] == val(G - 1, i), "broadcast[%d] = %g", i, b[i]);
    int W = mprt_mesh()->size;
    double v[2] = {mprt_mesh()->rank, 1.0};
    int64_t plan = mprt_stats_plan_bytes();
    MprtCommStat cm = mprt_stats_get(MPRT_METRICS, MPRT_WORLD);
    mprt_metric_sum(MPRT_WORLD, v, 2);
    expect_bytes(MPRT_METRICS, MPRT_WORLD, &cm, 2 * (W - 1) * 16 / W, "metric_sum");
    CHECK(v[0] == W * (W - 1) / 2.0 && v[1] == W, "metric_sum %g %g", v[0], v[1]);
    v[0] = mprt_mesh()->rank;
    mprt_metric_max(MPRT_WORLD, v, 1);
    CHECK(v[0] == W - 1, "metric_max %g", v[0]);
    CHECK(mprt_stats_plan_bytes() == plan, "metrics counted as plan traffic");
}

/* Stage s sends s·100 + i to s+1 (waiting for the send at once) and back to s−1 (waiting
 * after its own receive). */
static void test_sendrecv(void) {
    const MprtMesh *m = mprt_mesh();
    if (m->S == 1) return;
    float out[64], in[64];
    for (int i = 0; i < 64; i++)
        out[i] = (float)(m->s * 100 + i);
    MprtCommStat c = mprt_stats_get(MPRT_SENDRECV, MPRT_PIPE);
    if (m->s + 1 < m->S) {
        mprt_wait(mprt_isend(+1, out, 64, 7));
        expect_bytes(MPRT_SENDRECV, MPRT_PIPE, &c, 256, "send");
    }
    if (m->s > 0) {
        mprt_recv(-1, in, 64, 7);
        expect_bytes(MPRT_SENDRECV, MPRT_PIPE, &c, 0, "recv");
        for (int i = 0; i < 64; i++)
            CHECK(in[i] == (float)((m->s - 1) * 100 + i), "recv[%d] = %g", i, in[i]);
    }
    MprtReq *rs = m->s > 0 ? mprt_isend(-1, out, 64, 9) : NULL;
    bool rr = m->s + 1 < m->S;
    if (rr) mprt_recv(+1, in, 64, 9);
    mprt_wait(rs);
    MprtCommStat now = mprt_stats_get(MPRT_SENDRECV, MPRT_PIPE);
    CHECK(now.bytes - c.bytes == (rs ? 256 : 0), "isend bytes %lld",
          (long long)(now.bytes - c.bytes));
    if (rr)
        for (int i = 0; i < 64; i++)
            CHECK(in[i] == (float)((m->s + 1) * 100 + i), "recv[%d] = %g", i, in[i]);
}

static void test_pause_reset(void) {
    float b[8] = {0};
    MprtCommStat c = mprt_stats_get(MPRT_ALLREDUCE, MPRT_DATA);
    mprt_stats_pause();
    mprt_allreduce(MPRT_DATA, b, 8);
    mprt_stats_resume();
    MprtCommStat now = mprt_stats_get(MPRT_ALLREDUCE, MPRT_DATA);
    CHECK(now.calls == c.calls && now.bytes == c.bytes, "paused call was counted");
}

/* The profile: rank 0 reads it back and checks its own entries against the counters. */
static void test_profile(int S, int d, int t) {
    char path[64];
    snprintf(path, sizeof path, "rt_profile_%d%d%d.json", S, d, t);
    int id = mprt_timer("fwd.fc1");
    mprt_timer_add(id, 0.25);
    CHECK(mprt_timer("fwd.fc1") == id && mprt_timer_seconds(id) == 0.25, "timer");
    MprtErr err;
    CHECK(mprt_profile_write(path, &err), "profile: %s", err.msg);
    if (mprt_mesh()->rank != 0) return;
    FILE *f = fopen(path, "rb");
    char text[65536] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    cJSON *ranks = cJSON_GetObjectItem(root, "ranks");
    CHECK(cJSON_GetArraySize(ranks) == S * d * t, "profile ranks");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "mesh"), "t")->valuedouble == t, "mesh.t");
    cJSON *r0 = cJSON_GetArrayItem(ranks, 0), *e;
    int found = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(r0, "comm")) {
        const char *k = cJSON_GetObjectItem(e, "kind")->valuestring;
        const char *g = cJSON_GetObjectItem(e, "group")->valuestring;
        if (strcmp(k, "all-reduce") == 0 && strcmp(g, "tensor") == 0) {
            found = 1;
            CHECK(cJSON_GetObjectItem(e, "bytes")->valuedouble ==
                      (double)mprt_stats_get(MPRT_ALLREDUCE, MPRT_TENSOR).bytes,
                  "profile bytes");
        }
    }
    CHECK(found, "profile lacks all-reduce/tensor");
    cJSON *tm = cJSON_GetArrayItem(cJSON_GetObjectItem(r0, "timers"), 0);
    CHECK(tm && strcmp(cJSON_GetObjectItem(tm, "name")->valuestring, "fwd.fc1") == 0, "timer");
    cJSON_Delete(root);
    remove(path);
}

static void run_all(int S, int d, int t) {
    test_mesh(S, d, t);
    for (int g = 0; g < MPRT_GROUP__COUNT; g++) {
        test_allreduce((MprtGroup)g);
        test_gather_scatter((MprtGroup)g, 1, 3, 5);
        test_gather_scatter((MprtGroup)g, 4, 3, 1);
        test_gather_scatter((MprtGroup)g, 3, 2, 7);
        test_reduce_scatter_sum((MprtGroup)g);
        int G = mprt_group_size((MprtGroup)g);
        test_alltoall((MprtGroup)g, 2 * G, 1, 3 * G, 1);
        test_alltoall((MprtGroup)g, G, 3, G, 4);
    }
    test_allreduce_overlap(MPRT_DATA, MPRT_STAGE);
    test_allreduce_overlap(MPRT_TENSOR, MPRT_TENSOR);
    test_allreduce_overlap(MPRT_WORLD, MPRT_DATA);
    test_kernels_progress(MPRT_WORLD, false);
    test_kernels_progress(MPRT_DATA, true);
    test_broadcast_metrics();
    test_sendrecv();
    test_pause_reset();
    test_profile(S, d, t);
    /* a line at step 3 (--log-every 3) and at the last; step 1 is the warm-up */
    MprtForecast f = {1e-3, 2e9, 1e12, 0};
    mprt_progress_start(0, 4, 32, 3, &f);
    for (int s = 1; s <= 4; s++)
        mprt_progress_step(s, 2.302585);
    mprt_progress_finish(1.5);
    CHECK(mprt_progress_warmup() == 1 && mprt_progress_measured() > 0, "steady state: %lld, %g",
          (long long)mprt_progress_warmup(), mprt_progress_measured());
    mprt_stats_reset();
    CHECK(mprt_stats_plan_bytes() == 0, "reset");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_rt_comm S d t [all|fail|mpierr|uneven]\n");
        return 2;
    }
    int S = atoi(argv[1]), d = atoi(argv[2]), t = atoi(argv[3]);
    const char *mode = argc > 4 ? argv[4] : "all";
    if (strcmp(mode, "deadlock") == 0) mprt_set_comm_timeout(3);
    mprt_init(&argc, &argv, S, d, t);
    int rank = mprt_mesh()->rank, size = mprt_mesh()->size;
    if (strcmp(mode, "fail") == 0) {
        int who = size > 1 ? 1 : 0;
        mprt_exit_if_any(rank >= who, rank == who ? "data.npy: the first failing rank says so"
                                                  : "a later rank says so too");
        fprintf(stderr, "mprt_exit_if_any returned\n");
        return 0;
    }
    if (strcmp(mode, "mpierr") == 0) {
        float x[4] = {0};
        if (rank == 0) mprt_wait(mprt_isend(+1, x, 4, -5)); /* negative tags are invalid */
        double v = 0;
        mprt_metric_sum(MPRT_WORLD, &v, 1); /* rank 1 waits here until the abort */
        mprt_recv(-1, x, 4, 0);
        return 0;
    }
    if (strcmp(mode, "stuck") == 0 || strcmp(mode, "deadlock") == 0) {
        float x[4] = {0};
        if (strcmp(mode, "deadlock") == 0) mprt_recv(rank == 0 ? +1 : -1, x, 4, 0);
        if (rank == 2) sleep(100); /* the abort ends it */
        mprt_allreduce(MPRT_WORLD, x, 4);
        fprintf(stderr, "the wait returned\n");
        return 0;
    }
    if (strcmp(mode, "uneven") == 0) { /* shards must divide: a 3-row batch over 2 ranks */
        float in[12] = {0}, out[12];
        mprt_alltoall_b2f(MPRT_TENSOR, in, out, 3, 1, 4, 1);
        return 0;
    }
    run_all(S, d, t);
    double f = failures;
    mprt_metric_sum(MPRT_WORLD, &f, 1);
    if (rank == 0) printf("test_rt_comm %d x %d x %d: %s\n", S, d, t, f == 0 ? "ok" : "FAILED");
    mprt_finalize();
    return f == 0 ? 0 : 1;
}
