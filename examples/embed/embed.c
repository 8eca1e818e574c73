/*
 * embed.c: a program that drives training itself through a generated trainer's C API.
 *
 *   mpirun -np 2 ./embed [STEPS [CHECKPOINT]]     (STEPS >= 10, default 60)
 *
 * The model (model.mp) is compiled by mpcc into mlp.c + mlp.h (mpcc_add_trainer(mlp model.mp
 * LIBRARY) in CMakeLists.txt, or the Makefile's rule with pkg-config). This program owns
 * MPI and the data: it builds a small synthetic classification task (a fixed random "teacher"
 * labels random points), feeds one batch per step, prints the loss, saves a checkpoint,
 * reloads it, and checks that training made progress. Every rank passes the same whole batch;
 * the plan decides which rows each rank uses (docs/embedding.md, "Step data").
 *
 * Exit status 0 when the loss went down, 1 otherwise or on any API error.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"

/* A deterministic value in [-1, 1) for (sample, feature): the same on every rank. */
static float feature(long sample, long f) {
    unsigned long long z = (unsigned long long)(sample * 1000003L + f) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 32;
    return (float)(z >> 40) / 8388608.0f - 1.0f;
}

/* The teacher: class = argmax_c sum_f x_f * sin(1.3 c + 0.7 f). */
static int32_t teacher(const float *x, long nfeat, long nclass) {
    int32_t best = 0;
    double bestv = -1e30;
    for (long c = 0; c < nclass; c++) {
        double v = 0;
        for (long f = 0; f < nfeat; f++)
            v += x[f] * sin(1.3 * (double)c + 0.7 * (double)f);
        if (v > bestv) bestv = v, best = (int32_t)c;
    }
    return best;
}

/* Batch `step` of a 512-sample data set: rows in x (batch × nfeat), their classes in y. */
static void make_batch(long step, const mlp_tensor_info *xi, const mlp_tensor_info *yi, float *x,
                       int32_t *y) {
    long batch = (long)xi->shape[0], nfeat = (long)(xi->count / (size_t)batch);
    for (long r = 0; r < batch; r++) {
        long sample = (step * batch + r) % 512;
        for (long f = 0; f < nfeat; f++)
            x[r * nfeat + f] = feature(sample, f);
        y[r] = teacher(x + r * nfeat, nfeat, (long)yi->range);
    }
}

static int fail(int rank, const char *what, const mlp_ctx *ctx) {
    if (rank == 0) fprintf(stderr, "embed: %s: %s\n", what, mlp_last_error(ctx));
    return 1;
}

static int train(int rank, long steps, const char *ckpt) {
    mlp_config cfg;
    mlp_config_default(&cfg); /* the .mp file's settings; override what you like */
    cfg.threads = 1;
    mlp_ctx *ctx = NULL;
    if (mlp_create(&cfg, &ctx) != MLP_OK) return fail(rank, "create", NULL);
    if (rank == 0) printf("%s", mlp_plan(ctx));

    mlp_tensor_info xi, yi;
    if (mlp_data_info(ctx, 0, &xi) != MLP_OK || mlp_data_info(ctx, 1, &yi) != MLP_OK) {
        mlp_destroy(ctx);
        return fail(rank, "data_info", NULL);
    }
    float *x = malloc(xi.count * sizeof *x);
    int32_t *y = malloc(yi.count * sizeof *y);
    double first = 0, last = 0, loss = 0; /* mean loss of the first and of the last 5 steps */
    int rc = x && y ? 0 : 1;
    for (long s = 0; !rc && s < steps; s++) {
        make_batch(s, &xi, &yi, x, y);
        if (mlp_step(ctx, x, xi.count, y, yi.count, &loss) != MLP_OK) rc = fail(rank, "step", ctx);
        if (s < 5) first += loss / 5;
        if (s >= steps - 5) last += loss / 5;
        if (!rc && rank == 0 && (s % 10 == 0 || s + 1 == steps))
            printf("step %ld loss %.6f\n", s + 1, loss);
    }
    if (!rc && mlp_save(ctx, ckpt) != MLP_OK) rc = fail(rank, "save", ctx);
    if (!rc && mlp_load(ctx, ckpt, 1) != MLP_OK) rc = fail(rank, "load", ctx);
    if (!rc && rank == 0)
        printf("embed: mean loss of the first 5 steps %.6f, of the last 5 %.6f; %lld steps; "
               "checkpoint %s\n",
               first, last, (long long)mlp_steps_done(ctx), ckpt);
    if (!rc && !(last < first)) rc = fail(rank, "the loss did not go down", ctx);
    free(x);
    free(y);
    mlp_destroy(ctx);
    return rc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv); /* the program owns MPI; the trainer uses MPI_COMM_WORLD */
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long steps = argc > 1 ? atol(argv[1]) : 60;
    int rc = train(rank, steps >= 10 ? steps : 60, argc > 2 ? argv[2] : "embed.safetensors");
    MPI_Finalize();
    return rc;
}
