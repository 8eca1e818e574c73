/*
 * api_misuse.c: a generated trainer's C API (mlp.h, from tests/downstream/project/model.mp)
 * used wrongly, the way issue 13 found it: every case must be an error code and a one-line
 * message, on every rank, without a crash, a hang or a read of freed memory (the sanitizer
 * build runs this too), and must leave a live context working.
 *
 *   mpirun -np 2 ./capi_misuse handles DIR     NULL pointers on every entry point, a step
 *       before create, a forged handle, a second destroy, every call on a destroyed context
 *       (also on one rank only while a new context is live), NAME_main while a context is live
 *   mpirun -np 2 ./capi_misuse nan DIR         NaN and Inf in a step's batch (also on one rank
 *       only): ERR_VALUE naming the row, no step taken, the weights byte-for-byte unchanged
 *   mpirun -np 2 ./capi_misuse config DIR      another seed, lr or eps on rank 1 at create and
 *       at configure: ERR_ARG naming rank 1 and the setting on every rank; threads may differ
 *   mpirun -np 2 ./capi_misuse finalize DIR    create before MPI_Init and after MPI_Finalize,
 *       and the calls on a context destroyed before MPI_Finalize
 *   mpirun -np 2 ./capi_misuse finalize_live DIR   MPI_Finalize under a live context: its calls
 *       are ERR_MPI, destroy frees it all the same (the leak checker sees no leak)
 *
 * Each rank counts its failed checks; the exit status is nonzero when one failed, and rank 0
 * prints "api_misuse MODE: all checks passed" when none did on any rank it can ask.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

static int failures, checks, rank;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "rank %d: FAIL %s:%d: %s: ", rank, __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* The code and a message (of mlp_last_error(ctx)) containing `want`. */
static void expect(int got, int code, const mlp_ctx *ctx, const char *want, const char *what) {
    const char *msg = mlp_last_error(ctx);
    CHECK(got == code, "%s: returned %d, expected %d (%s)", what, got, code, msg ? msg : "");
    CHECK(msg && strstr(msg, want), "%s: message '%s' lacks '%s'", what, msg ? msg : "(null)",
          want);
    CHECK(msg && !strchr(msg, '\n'), "%s: the message is not one line", what);
    if (rank == 0 && got == code) printf("ok: %s -> %d: %s\n", what, got, msg ? msg : "");
}

static mlp_tensor_info xi, yi;
static float *x;
static int32_t *y;
static long nfeat;

static void fill(long step) {
    for (size_t i = 0; i < xi.count; i++)
        x[i] = (float)sin(0.37 * (double)i + (double)step);
    for (long r = 0; r < (long)yi.count; r++)
        y[r] = (int32_t)((r * 7 + step) % yi.range);
}

static mlp_ctx *create(void) {
    mlp_config cfg;
    mlp_config_default(&cfg);
    cfg.threads = 1;
    mlp_ctx *ctx = NULL;
    CHECK(mlp_create(&cfg, &ctx) == MLP_OK && ctx, "create: %s", mlp_last_error(NULL));
    return ctx;
}

static double good_step(mlp_ctx *ctx, long step, const char *after) {
    double loss = NAN;
    fill(step);
    int rc = mlp_step(ctx, x, xi.count, y, yi.count, &loss);
    CHECK(rc == MLP_OK && isfinite(loss), "a good step after %s: rc %d, loss %g (%s)", after, rc,
          loss, mlp_last_error(ctx));
    return loss;
}

static void setup_buffers(void) {
    CHECK(mlp_data_info(NULL, 0, &xi) == MLP_OK && mlp_data_info(NULL, 1, &yi) == MLP_OK,
          "data_info with no context");
    nfeat = (long)(xi.count / (size_t)xi.shape[0]);
    x = malloc(xi.count * sizeof *x);
    y = malloc(yi.count * sizeof *y);
}

/* Every call on `bad` (NULL, forged or destroyed) fails with `code` and `want`. */
static void every_call(mlp_ctx *bad, int code, const char *want, const char *what) {
    char w[128];
    double loss = 0;
    mlp_config cfg;
    mlp_tensor_info t;
    mlp_config_default(&cfg);
    fill(0);
    snprintf(w, sizeof w, "step(%s)", what);
    expect(mlp_step(bad, x, xi.count, y, yi.count, &loss), code, bad, want, w);
    snprintf(w, sizeof w, "configure(%s)", what);
    expect(mlp_configure(bad, &cfg), code, bad, want, w);
    snprintf(w, sizeof w, "save(%s)", what);
    expect(mlp_save(bad, "never.safetensors"), code, bad, want, w);
    snprintf(w, sizeof w, "load(%s)", what);
    expect(mlp_load(bad, "never.safetensors", 1), code, bad, want, w);
    CHECK(mlp_steps_done(bad) == -1, "steps_done(%s) is -1", what);
    if (bad) {
        snprintf(w, sizeof w, "data_info(%s)", what);
        expect(mlp_data_info(bad, 0, &t), code, bad, want, w);
        CHECK(mlp_plan(bad) == NULL, "plan(%s) is NULL", what);
        snprintf(w, sizeof w, "destroy(%s)", what);
        expect(mlp_destroy(bad), code, bad, want, w);
    }
}

/* NULL for every pointer argument of a live context's calls: ERR_ARG, the context works on. */
static void null_pointers(mlp_ctx *ctx) {
    double loss = 0;
    mlp_ctx *second = NULL;
    expect(mlp_config_default(NULL), MLP_ERR_ARG, NULL, "cfg is NULL", "config_default(NULL)");
    expect(mlp_create(NULL, NULL), MLP_ERR_ARG, NULL, "out is NULL", "create(out NULL)");
    expect(mlp_create(NULL, &second), MLP_ERR_BUSY, NULL, "another context is live",
           "create while one is live");
    CHECK(second == NULL, "a failed create leaves *out NULL");
    expect(mlp_configure(ctx, NULL), MLP_ERR_ARG, ctx, "cfg is NULL", "configure(cfg NULL)");
    fill(1);
    expect(mlp_step(ctx, NULL, xi.count, y, yi.count, &loss), MLP_ERR_ARG, ctx,
           "buffer 0 (x) is NULL", "step(x NULL)");
    expect(mlp_step(ctx, x, xi.count, NULL, yi.count, &loss), MLP_ERR_ARG, ctx,
           "buffer 1 (y) is NULL", "step(y NULL)");
    expect(mlp_step(ctx, x, xi.count, y, yi.count, NULL), MLP_ERR_ARG, ctx, "loss is NULL",
           "step(loss NULL)");
    expect(mlp_save(ctx, NULL), MLP_ERR_ARG, ctx, "no path", "save(path NULL)");
    expect(mlp_load(ctx, NULL, 1), MLP_ERR_ARG, ctx, "no path", "load(path NULL)");
    expect(mlp_data_info(ctx, 0, NULL), MLP_ERR_ARG, ctx, "out is NULL", "data_info(out NULL)");
    CHECK(mlp_destroy(NULL) == MLP_OK, "destroy(NULL) is nothing, like free(NULL)");
    CHECK(mlp_steps_done(ctx) == 0, "no failed call took a step: %lld",
          (long long)mlp_steps_done(ctx));
    good_step(ctx, 1, "NULL pointers");
}

/* The trainer's own run while a context is live: refused, and the context works on. */
static void main_while_live(mlp_ctx *ctx) {
    char prog[] = "train", steps[] = "--steps", one[] = "1", threads[] = "--threads";
    char *argv[] = {prog, steps, one, threads, one, NULL};
    expect(mlp_main(5, argv), MLP_ERR_BUSY, NULL, "a context is live", "main while live");
    good_step(ctx, 2, "main refused");
}

/* A destroyed context on rank 1 only, while rank 0 passes the live one: every rank fails
 * (nobody left waiting in a collective), and the live context works on. */
static void stale_on_one_rank(mlp_ctx *stale, mlp_ctx *live) {
    double loss = 0;
    int64_t before = mlp_steps_done(live);
    mlp_ctx *mine = rank == 1 ? stale : live;
    fill(3);
    int rc = mlp_step(mine, x, xi.count, y, yi.count, &loss);
    CHECK(rc == MLP_ERR_HANDLE, "step(destroyed on rank 1 only): %d (%s)", rc,
          mlp_last_error(mine));
    CHECK(strstr(mlp_last_error(mine), "was destroyed"), "rank 1's message everywhere: '%s'",
          mlp_last_error(mine));
    rc = mlp_destroy(mine);
    CHECK(rc == MLP_ERR_HANDLE, "destroy(destroyed on rank 1 only): %d", rc);
    CHECK(mlp_steps_done(live) == before, "the live context took no step");
    good_step(live, 3, "a stale handle on one rank");
}

static void mode_handles(void) {
    mlp_config cfg;
    mlp_config_default(&cfg);
    mlp_ctx *forged = (mlp_ctx *)&cfg; /* an address, never a context */
    setup_buffers();
    /* before any create */
    every_call(NULL, MLP_ERR_ARG, "ctx is NULL", "NULL before create");
    every_call(forged, MLP_ERR_HANDLE, "not a context made by mlp_create", "forged");
    mlp_ctx *a = create();
    if (!a) return;
    null_pointers(a);
    main_while_live(a);
    every_call(forged, MLP_ERR_HANDLE, "not a context made by mlp_create", "forged, one live");
    CHECK(mlp_destroy(a) == MLP_OK, "destroy: %s", mlp_last_error(a));
    expect(mlp_destroy(a), MLP_ERR_HANDLE, a, "was destroyed", "a second destroy");
    every_call(a, MLP_ERR_HANDLE, "was destroyed", "destroyed");
    mlp_ctx *b = create(); /* a new context: the old handle stays dead */
    if (!b) return;
    CHECK(b != a, "a new context has a new handle");
    every_call(a, MLP_ERR_HANDLE, "was destroyed", "destroyed, another live");
    stale_on_one_rank(a, b);
    CHECK(mlp_destroy(b) == MLP_OK, "destroy the second context: %s", mlp_last_error(b));
    /* with no context live, the trainer's own run works (and the API after it) */
    char prog[] = "train", steps[] = "--steps", two[] = "2", threads[] = "--threads", one[] = "1";
    char *argv[] = {prog, steps, two, threads, one, NULL};
    CHECK(mlp_main(5, argv) == 0, "main after destroy: %s", mlp_last_error(NULL));
    mlp_ctx *c = create();
    if (c) good_step(c, 4, "main");
    CHECK(mlp_destroy(c) == MLP_OK, "destroy the third context");
}

/* Whether two files hold the same bytes (read on rank 0, the answer on every rank). */
static int same_bytes(const char *a, const char *b) {
    int same = 0;
    if (rank == 0) {
        FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
        same = f && g;
        for (int c = 0, d = 0; same && (c != EOF || d != EOF);) {
            c = fgetc(f), d = fgetc(g);
            same = c == d;
        }
        if (f) fclose(f);
        if (g) fclose(g);
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return same;
}

static void mode_nan(const char *dir) {
    char before[512], after[512];
    snprintf(before, sizeof before, "%s/nan_before.safetensors", dir);
    snprintf(after, sizeof after, "%s/nan_after.safetensors", dir);
    setup_buffers();
    mlp_ctx *ctx = create();
    if (!ctx) return;
    good_step(ctx, 0, "create");
    CHECK(mlp_save(ctx, before) == MLP_OK, "save: %s", mlp_last_error(ctx));
    double loss = 0;
    fill(1);
    x[5 * nfeat + 3] = NAN;
    expect(mlp_step(ctx, x, xi.count, y, yi.count, &loss), MLP_ERR_VALUE, ctx,
           "buffer 0 (x): non-finite value nan at row 5, element 3", "step(NaN at row 5)");
    fill(1);
    x[(long)xi.count - 1] = -INFINITY;
    expect(mlp_step(ctx, x, xi.count, y, yi.count, &loss), MLP_ERR_VALUE, ctx,
           "non-finite value -inf at row 15", "step(-Inf in the last row)");
    fill(1);
    if (rank == 1) x[7 * nfeat] = INFINITY;
    expect(mlp_step(ctx, x, xi.count, y, yi.count, &loss), MLP_ERR_VALUE, ctx,
           "non-finite value inf at row 7, element 0", "step(Inf at row 7 on rank 1 only)");
    CHECK(mlp_steps_done(ctx) == 1, "the rejected batches took no step: %lld",
          (long long)mlp_steps_done(ctx));
    CHECK(mlp_save(ctx, after) == MLP_OK, "save: %s", mlp_last_error(ctx));
    CHECK(same_bytes(before, after), "the rejected batches changed the weights or the state");
    good_step(ctx, 1, "the rejected batches");
    CHECK(mlp_destroy(ctx) == MLP_OK, "destroy");
}

static void mode_config(void) {
    setup_buffers();
    mlp_config cfg;
    mlp_ctx *ctx = (mlp_ctx *)&cfg;
    mlp_config_default(&cfg);
    if (rank == 1) cfg.seed += 1;
    expect(mlp_create(&cfg, &ctx), MLP_ERR_ARG, NULL, "rank 1 differs from rank 0 in config.seed",
           "create(another seed on rank 1)");
    CHECK(ctx == NULL, "no context after a disagreement");
    mlp_config_default(&cfg);
    if (rank == 1) cfg.lr *= 2.0f;
    expect(mlp_create(&cfg, &ctx), MLP_ERR_ARG, NULL, "rank 1 differs from rank 0 in config.lr",
           "create(another lr on rank 1)");
    mlp_config_default(&cfg);
    cfg.threads = 1 + rank; /* threads per rank may differ */
    CHECK(mlp_create(&cfg, &ctx) == MLP_OK, "create(threads differ): %s", mlp_last_error(NULL));
    if (!ctx) return;
    good_step(ctx, 0, "create");
    mlp_config other = cfg;
    if (rank == 1) other.eps *= 10.0f;
    expect(mlp_configure(ctx, &other), MLP_ERR_ARG, ctx, "rank 1 differs from rank 0 in config.eps",
           "configure(another eps on rank 1)");
    good_step(ctx, 1, "a refused configure");
    CHECK(mlp_destroy(ctx) == MLP_OK, "destroy");
}

static void mode_finalize(void) {
    mlp_ctx *a = create();
    setup_buffers();
    if (a) good_step(a, 0, "create");
    CHECK(mlp_destroy(a) == MLP_OK, "destroy");
    MPI_Finalize();
    mlp_ctx *ctx = (mlp_ctx *)&ctx;
    expect(mlp_create(NULL, &ctx), MLP_ERR_MPI, NULL, "MPI has been finalised",
           "create after MPI_Finalize");
    CHECK(ctx == NULL, "no context after MPI_Finalize");
    every_call(a, MLP_ERR_HANDLE, "was destroyed", "destroyed, after MPI_Finalize");
    every_call(NULL, MLP_ERR_ARG, "ctx is NULL", "NULL, after MPI_Finalize");
    CHECK(mlp_destroy(NULL) == MLP_OK, "destroy(NULL) after MPI_Finalize");
    char prog[] = "train", steps[] = "--steps", one[] = "1";
    char *argv[] = {prog, steps, one, NULL};
    expect(mlp_main(3, argv), MLP_ERR_MPI, NULL, "MPI has been finalised", "main after finalize");
}

static void mode_finalize_live(void) {
    mlp_ctx *a = create();
    setup_buffers();
    if (!a) return;
    good_step(a, 0, "create");
    MPI_Finalize();
    double loss = 0;
    fill(1);
    expect(mlp_step(a, x, xi.count, y, yi.count, &loss), MLP_ERR_MPI, a,
           "MPI was finalised while the context was live", "step after MPI_Finalize");
    expect(mlp_save(a, "never.safetensors"), MLP_ERR_MPI, a, "MPI was finalised",
           "save after MPI_Finalize");
    CHECK(mlp_steps_done(a) == 1, "steps_done is local: %lld", (long long)mlp_steps_done(a));
    expect(mlp_destroy(a), MLP_ERR_MPI, a, "MPI was finalised", "destroy after MPI_Finalize");
    expect(mlp_destroy(a), MLP_ERR_HANDLE, a, "was destroyed", "destroy again");
    expect(mlp_create(NULL, &a), MLP_ERR_MPI, NULL, "MPI has been finalised",
           "create after MPI_Finalize");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "", *dir = argc > 2 ? argv[2] : ".";
    if (!strcmp(mode, "finalize")) { /* before MPI_Init: no MPI to use */
        mlp_ctx *ctx = NULL;
        expect(mlp_create(NULL, &ctx), MLP_ERR_MPI, NULL, "MPI is not initialised",
               "create before MPI_Init");
    }
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == MLP_WORLD_SIZE, "run on %d ranks", MLP_WORLD_SIZE);
    int finalized = !strcmp(mode, "finalize") || !strcmp(mode, "finalize_live");
    if (!strcmp(mode, "handles"))
        mode_handles();
    else if (!strcmp(mode, "nan"))
        mode_nan(dir);
    else if (!strcmp(mode, "config"))
        mode_config();
    else if (!strcmp(mode, "finalize"))
        mode_finalize();
    else if (!strcmp(mode, "finalize_live"))
        mode_finalize_live();
    else
        CHECK(0, "unknown mode '%s' (handles, nan, config, finalize, finalize_live)", mode);
    free(x);
    free(y);
    int total = failures;
    if (!finalized) { /* MPI is still there to sum every rank's failures */
        MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Finalize();
    }
    if (rank == 0 && !total && checks > 10)
        printf("api_misuse %s: all checks passed (%d on rank 0)\n", mode, checks);
    return total ? 1 : 0;
}
