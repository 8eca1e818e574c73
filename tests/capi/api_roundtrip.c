/*
 * api_roundtrip.c: the C API's checkpoint round trip on a model whose embedding vocabulary
 * (101 rows) does not divide the tensor group (2 ranks), the case whose load once read past a
 * heap buffer: create, train, save, load, train, save. Built with -DAPI_ZERO it takes the API
 * of the same model planned with train.zero = 2 on a 1x2x2 mesh (prefix embz, 4 ranks): ZeRO
 * through the C API, whose checkpoints must be the standalone ZeRO-2 trainer's bytes too; with
 * -DAPI_ZERO_BF16 the same plan under bf16 (prefix embbz: the f32 master weights in parts, the
 * working copy rebuilt after a load); with -DAPI_ZERO3 the plan with train.zero = 3 (prefix
 * embz3: the weights themselves in parts, gathered per layer), with -DAPI_ZERO3_BF16 that under
 * bf16 (prefix embbz3: the 16-bit working weights in parts too).
 *
 *   mpirun -np 2 ./capi_roundtrip DIR
 *
 * writes DIR/tok.npy and DIR/next.npy (one batch, the trainer's --data/--labels files), takes
 * 2 steps on that batch, saves DIR/api2.safetensors, loads it back (resume), checks the weights
 * and the step survived, takes a third step and saves DIR/api3.safetensors. tests/CMakeLists.txt
 * then runs the standalone trainer of the same model on the same files and compares the
 * checkpoints byte for byte: both go through the runtime's one writer (mprt_ckpt_save).
 * Exit status: the number of failed checks.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined API_ZERO_BF16 /* ZeRO-2 under bf16 (prefix embbz): sharded f32 master weights */
#include "embbz.h"
#define API(x) embbz_##x
#define API_OK EMBBZ_OK
#elif defined API_ZERO3_BF16 /* ZeRO-3 under bf16 (prefix embbz3) */
#include "embbz3.h"
#define API(x) embbz3_##x
#define API_OK EMBBZ3_OK
#elif defined API_ZERO3 /* ZeRO-3 (prefix embz3): the weights in parts */
#include "embz3.h"
#define API(x) embz3_##x
#define API_OK EMBZ3_OK
#elif defined API_ZERO /* the same round trip through a ZeRO-2 plan's API (prefix embz) */
#include "embz.h"
#define API(x) embz_##x
#define API_OK EMBZ_OK
#else
#include "emb.h"
#define API(x) emb_##x
#define API_OK EMB_OK
#endif
#include "mprt.h"

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

typedef API(ctx) api_ctx;
typedef API(tensor_info) api_tensor_info;
static api_tensor_info ti, ni;
static int32_t *tok, *nxt;

/* One batch of token ids over the whole vocabulary (the last rows included), saved as .npy. */
static void make_batch(const char *dir) {
    tok = malloc(ti.count * sizeof *tok);
    nxt = malloc(ni.count * sizeof *nxt);
    if (!tok || !nxt) abort();
    for (size_t i = 0; i < ti.count; i++)
        tok[i] = (int32_t)((i * 37 + 100) % (size_t)ti.range);
    for (size_t i = 0; i < ni.count; i++)
        nxt[i] = (int32_t)((i * 11 + 3) % (size_t)ni.range);
    char path[1024];
    MprtErr err;
    snprintf(path, sizeof path, "%s/tok.npy", dir);
    CHECK(rank != 0 || mprt_npy_save(path, MPRT_I32, ti.ndim, ti.shape, tok, &err), "%s", err.msg);
    snprintf(path, sizeof path, "%s/next.npy", dir);
    CHECK(rank != 0 || mprt_npy_save(path, MPRT_I32, ni.ndim, ni.shape, nxt, &err), "%s", err.msg);
    MPI_Barrier(MPI_COMM_WORLD);
}

static double step(api_ctx *ctx) {
    double loss = NAN;
    int rc = API(step)(ctx, tok, ti.count, nxt, ni.count, &loss);
    CHECK(rc == API_OK && isfinite(loss), "step: rc %d, loss %g (%s)", rc, loss,
          API(last_error)(ctx));
    if (rank == 0) printf("api loss %lld %.7g\n", (long long)API(steps_done)(ctx), loss);
    return loss;
}

static void save(api_ctx *ctx, const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = API(save)(ctx, path);
    CHECK(rc == API_OK, "save %s: rc %d (%s)", path, rc, API(last_error)(ctx));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *dir = argc > 1 ? argv[1] : ".";
    API(config) cfg;
    API(config_default)(&cfg);
    cfg.threads = 1;
    api_ctx *ctx = NULL;
    int rc = API(create)(&cfg, &ctx);
    CHECK(rc == API_OK, "create: %d (%s)", rc, API(last_error)(NULL));
    if (rc == API_OK) {
        CHECK(API(data_info)(ctx, 0, &ti) == API_OK && API(data_info)(ctx, 1, &ni) == API_OK, "%s",
              API(last_error)(ctx));
        make_batch(dir);
        step(ctx);
        double before = step(ctx);
        save(ctx, dir, "api2.safetensors");
        char path[1024];
        snprintf(path, sizeof path, "%s/api2.safetensors", dir);
        rc = API(load)(ctx, path, 1);
        CHECK(rc == API_OK, "load %s: rc %d (%s)", path, rc, API(last_error)(ctx));
        CHECK(API(steps_done)(ctx) == 2, "steps after load: %lld", (long long)API(steps_done)(ctx));
        double after = step(ctx); /* the loaded weights: training goes on downhill */
        CHECK(after < before, "loss after the round trip %g, before %g", after, before);
        save(ctx, dir, "api3.safetensors");
    }
    API(destroy)(ctx);
    free(tok);
    free(nxt);
    if (rank == 0)
        printf(failures ? "capi_roundtrip: %d check(s) failed\n" : "capi_roundtrip: ok\n",
               failures);
    MPI_Finalize();
    return failures;
}
