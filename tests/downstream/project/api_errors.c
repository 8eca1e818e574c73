/*
 * api_errors.c: every error path of a generated trainer's C API (mlp.h, from model.mp).
 *
 *   mpirun -np 2 ./api_errors DIR     the plan's world size: every error path, each followed
 *                                      by a call that works (the context stays usable)
 *   mpirun -np 1 ./api_errors DIR     a world the plan does not fit: create fails cleanly
 *   mpirun -np 2 ./api_errors DIR CKPT   also: CKPT, written by the standalone trainer after
 *                                      3 steps, loads through the API and training goes on
 *
 * DIR is a scratch folder for checkpoints. Each check prints what failed; the exit status is
 * the number of failed checks (0: all passed). Every rank checks the same things.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

static int failures, rank;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "rank %d: FAIL %s:%d: %s: ", rank, __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* The code and a message containing `want`. */
static void expect(int got, int code, const mlp_ctx *ctx, const char *want, const char *what) {
    const char *msg = mlp_last_error(ctx);
    CHECK(got == code, "%s: returned %d, expected %d (%s)", what, got, code, msg);
    CHECK(msg && strstr(msg, want), "%s: message '%s' lacks '%s'", what, msg ? msg : "(null)",
          want);
    if (rank == 0 && got == code) printf("ok: %s -> %d: %s\n", what, got, msg);
}

static mlp_tensor_info xi, yi;
static float *x;
static int32_t *y;

static void fill(long step) {
    long nfeat = (long)(xi.count / (size_t)xi.shape[0]);
    for (size_t i = 0; i < xi.count; i++)
        x[i] = (float)sin(0.37 * (double)i + (double)step);
    for (long r = 0; r < (long)yi.count; r++)
        y[r] = (int32_t)((r * 7 + step) % yi.range);
    (void)nfeat;
}

static double good_step(mlp_ctx *ctx, long step, const char *after) {
    double loss = NAN;
    fill(step);
    int rc = mlp_step(ctx, x, xi.count, y, yi.count, &loss);
    CHECK(rc == MLP_OK && isfinite(loss), "a good step after %s: rc %d, loss %g (%s)", after, rc,
          loss, mlp_last_error(ctx));
    return loss;
}

static void create_errors(void) {
    mlp_config cfg;
    mlp_config_default(&cfg);
    mlp_ctx *ctx = (mlp_ctx *)&cfg; /* must be reset to NULL */
    expect(mlp_create(&cfg, NULL), MLP_ERR_ARG, NULL, "out is NULL", "create(out NULL)");
    cfg.lr = -1.0f;
    expect(mlp_create(&cfg, &ctx), MLP_ERR_ARG, NULL, "lr must be", "create(lr -1)");
    CHECK(ctx == NULL, "a failed create leaves *out NULL");
    mlp_config_default(&cfg);
    cfg.threads = -3;
    expect(mlp_create(&cfg, &ctx), MLP_ERR_ARG, NULL, "threads", "create(threads -3)");
}

static void config_errors(mlp_ctx *ctx) {
    mlp_config bad;
    mlp_config_default(&bad);
    bad.momentum = 1.5f;
    expect(mlp_configure(ctx, &bad), MLP_ERR_ARG, ctx, "momentum", "configure(momentum 1.5)");
    mlp_config_default(&bad);
    bad.eps = NAN;
    expect(mlp_configure(ctx, &bad), MLP_ERR_ARG, ctx, "eps", "configure(eps NaN)");
    expect(mlp_configure(ctx, NULL), MLP_ERR_ARG, ctx, "cfg is NULL", "configure(NULL)");
    mlp_ctx *second = NULL;
    expect(mlp_create(NULL, &second), MLP_ERR_BUSY, NULL, "another context",
           "create while one is live");
    good_step(ctx, 0, "bad configs");
    mlp_config ok;
    mlp_config_default(&ok);
    ok.lr *= 0.5f;
    ok.threads = 1;
    CHECK(mlp_configure(ctx, &ok) == MLP_OK, "configure(lr/2): %s", mlp_last_error(ctx));
}

static void step_errors(mlp_ctx *ctx) {
    double loss = 0;
    int64_t before = mlp_steps_done(ctx);
    fill(1);
    expect(mlp_step(ctx, NULL, xi.count, y, yi.count, &loss), MLP_ERR_ARG, ctx, "is NULL",
           "step(x NULL)");
    expect(mlp_step(ctx, x, xi.count - 1, y, yi.count, &loss), MLP_ERR_SIZE, ctx,
           "elements, the plan needs", "step(x count - 1)");
    expect(mlp_step(ctx, x, xi.count, y, yi.count + 5, &loss), MLP_ERR_SIZE, ctx,
           "elements, the plan needs", "step(y count + 5)");
    expect(mlp_step(ctx, x, xi.count, y, yi.count, NULL), MLP_ERR_ARG, ctx, "loss is NULL",
           "step(loss NULL)");
    y[3] = (int32_t)yi.range;
    expect(mlp_step(ctx, x, xi.count, y, yi.count, &loss), MLP_ERR_VALUE, ctx, "outside [0,",
           "step(label out of range)");
    fill(1);
    /* only rank 1 is wrong: every rank must still get the error (no rank left in a collective) */
    expect(mlp_step(ctx, x, rank == 1 ? 7 : xi.count, y, yi.count, &loss), MLP_ERR_SIZE, ctx,
           "has 7 elements", "step(wrong size on rank 1 only)");
    CHECK(mlp_steps_done(ctx) == before, "failed steps took no step: %lld -> %lld",
          (long long)before, (long long)mlp_steps_done(ctx));
    good_step(ctx, 1, "bad steps");
    CHECK(mlp_steps_done(ctx) == before + 1, "a good step counts: %lld",
          (long long)mlp_steps_done(ctx));
}

static void info_errors(mlp_ctx *ctx) {
    mlp_tensor_info t;
    expect(mlp_data_info(ctx, MLP_NUM_DATA, &t), MLP_ERR_ARG, ctx, "outside",
           "data_info(NUM_DATA)");
    expect(mlp_data_info(ctx, -1, &t), MLP_ERR_ARG, ctx, "outside", "data_info(-1)");
    expect(mlp_data_info(ctx, 0, NULL), MLP_ERR_ARG, ctx, "out is NULL", "data_info(out NULL)");
    CHECK(mlp_data_info(ctx, 0, &t) == MLP_OK && t.count == xi.count && !t.is_label,
          "data_info(0) after errors");
    CHECK(strstr(mlp_plan(ctx), "stage 0") != NULL, "plan names stage 0: %s", mlp_plan(ctx));
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Whether two files hold the same bytes (checked on rank 0, the answer on every rank). */
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

/* Copies the first `n` bytes of src to dst (a truncated checkpoint), on rank 0. */
static void truncate_copy(const char *src, const char *dst, long n) {
    if (rank == 0) {
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        for (long i = 0; in && out && i < n; i++)
            fputc(fgetc(in), out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void checkpoint_errors(mlp_ctx *ctx, const char *dir) {
    char good[512], again[512], bad[512], garbage[512], missing[512];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(again, sizeof again, "%s/again.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/truncated.safetensors", dir);
    snprintf(garbage, sizeof garbage, "%s/garbage.safetensors", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    expect(mlp_save(ctx, NULL), MLP_ERR_ARG, ctx, "no path", "save(NULL)");
    expect(mlp_save(ctx, missing), MLP_ERR_IO, ctx, "no/such/dir", "save(into a missing folder)");
    CHECK(mlp_save(ctx, good) == MLP_OK, "save after errors: %s", mlp_last_error(ctx));
    int64_t saved_step = mlp_steps_done(ctx);
    double next = good_step(ctx, 2, "save"); /* the loss right after the checkpoint */
    good_step(ctx, 3, "save");

    CHECK(mlp_save(ctx, again) == MLP_OK, "save before the failed loads: %s", mlp_last_error(ctx));
    expect(mlp_load(ctx, missing, 1), MLP_ERR_IO, ctx, "no/such/dir", "load(a missing file)");
    expect(mlp_load(ctx, NULL, 0), MLP_ERR_ARG, ctx, "no path", "load(NULL)");
    if (rank == 0) {
        FILE *f = fopen(garbage, "wb");
        fputs("this is not a safetensors file", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect(mlp_load(ctx, garbage, 1), MLP_ERR_IO, ctx, "garbage.safetensors", "load(garbage)");
    if (rank == 0) { /* a well-formed checkpoint of another model (one tensor) */
        static const char hdr[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                  "\"__metadata__\":{\"model\":\"other\",\"step\":\"1\"}}";
        unsigned char len[8] = {(unsigned char)(sizeof hdr - 1)};
        FILE *f = fopen(garbage, "wb");
        fwrite(len, 1, 8, f), fwrite(hdr, 1, sizeof hdr - 1, f), fwrite("\0\0\0\0", 1, 4, f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect(mlp_load(ctx, garbage, 0), MLP_ERR_IO, ctx, "a checkpoint of model 'other'",
           "load(another model's checkpoint)");
    truncate_copy(good, bad, file_size(good) - 100);
    expect(mlp_load(ctx, bad, 1), MLP_ERR_IO, ctx, "truncated.safetensors", "load(truncated)");
    CHECK(mlp_steps_done(ctx) == saved_step + 2, "failed loads kept the step: %lld",
          (long long)mlp_steps_done(ctx));

    /* failed loads changed nothing: a checkpoint now has the bytes of one before them */
    char after[512];
    snprintf(after, sizeof after, "%s/after.safetensors", dir);
    CHECK(mlp_save(ctx, after) == MLP_OK, "save after the failed loads: %s", mlp_last_error(ctx));
    CHECK(same_bytes(again, after), "failed loads changed the weights, optimizer state or step");
    /* and a good load restores the checkpoint exactly */
    CHECK(mlp_load(ctx, good, 1) == MLP_OK, "load(good) after failed loads: %s",
          mlp_last_error(ctx));
    CHECK(mlp_steps_done(ctx) == saved_step, "resume restores the step: %lld != %lld",
          (long long)mlp_steps_done(ctx), (long long)saved_step);
    double replay = good_step(ctx, 2, "load");
    CHECK(replay == next, "the step after a resume repeats the step after the save: %.9g != %.9g",
          replay, next);
}

/* A checkpoint the standalone trainer wrote (under a 1-device plan, 3 steps; the ctest
 * fixture capi/trainer_checkpoint makes it) loads into this 2-rank context and trains on. */
static void trainer_checkpoint(mlp_ctx *ctx, const char *path) {
    CHECK(mlp_load(ctx, path, 1) == MLP_OK, "load the trainer's checkpoint: %s",
          mlp_last_error(ctx));
    CHECK(mlp_steps_done(ctx) == 3, "the trainer's checkpoint resumes at step 3, not %lld",
          (long long)mlp_steps_done(ctx));
    good_step(ctx, 4, "loading the trainer's checkpoint");
    if (rank == 0 && failures == 0) printf("ok: the trainer's checkpoint loads and trains on\n");
}

/* -np 1 for a 2-rank plan: create fails with a message, and nothing is left initialised. */
static int wrong_world(void) {
    mlp_ctx *ctx = NULL;
    expect(mlp_create(NULL, &ctx), MLP_ERR_MPI, NULL, "this plan needs",
           "create on the wrong world size");
    CHECK(ctx == NULL, "no context on the wrong world size");
    return failures;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *dir = argc > 1 ? argv[1] : ".";
    const char *trainer_ckpt = argc > 2 ? argv[2] : NULL;
    if (size != MLP_WORLD_SIZE) {
        int f = wrong_world();
        MPI_Finalize();
        return f;
    }
    create_errors();
    mlp_config cfg;
    mlp_config_default(&cfg);
    cfg.threads = 1;
    mlp_ctx *ctx = NULL;
    CHECK(mlp_create(&cfg, &ctx) == MLP_OK, "create after failed creates: %s",
          mlp_last_error(NULL));
    if (ctx) {
        CHECK(mlp_data_info(ctx, 0, &xi) == MLP_OK && mlp_data_info(ctx, 1, &yi) == MLP_OK,
              "data_info");
        CHECK(xi.shape[0] == MLP_BATCH && yi.is_label && yi.is_int && yi.range > 1,
              "the buffers' shapes");
        x = malloc(xi.count * sizeof *x);
        y = malloc(yi.count * sizeof *y);
        config_errors(ctx);
        step_errors(ctx);
        info_errors(ctx);
        checkpoint_errors(ctx, dir);
        if (trainer_ckpt) trainer_checkpoint(ctx, trainer_ckpt);
        mlp_destroy(ctx);
        /* a destroyed context frees the runtime: a new one can be made */
        ctx = NULL;
        CHECK(mlp_create(&cfg, &ctx) == MLP_OK, "create after destroy: %s", mlp_last_error(NULL));
        if (ctx) good_step(ctx, 0, "re-create");
        mlp_destroy(ctx);
        free(x);
        free(y);
    }
    int total = failures;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("api_errors: %s (%d failed checks over all ranks)\n",
               total ? "FAILED" : "all checks passed", total);
    MPI_Finalize();
    return total ? 1 : 0;
}
