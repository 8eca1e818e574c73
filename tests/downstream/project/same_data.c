/*
 * same_data.c: the C API and the stand-alone trainer, given the same data, train the same
 * model. Writes one batch as DIR/x.npy and DIR/y.npy (the trainer's --data/--labels files),
 * then takes STEPS steps on that batch through mlp_step and prints each loss:
 *
 *   mpirun -np 2 ./same_data DIR STEPS      ->  "api loss 1 2.0712345" ...
 *
 * tests/downstream/run.sh runs the trainer on the files (a data set of exactly one batch, so
 * every step reads it) and compares the two loss curves.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"
#include "mprt.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *dir = argc > 1 ? argv[1] : ".";
    long steps = argc > 2 ? atol(argv[2]) : 5;
    mlp_config cfg;
    mlp_config_default(&cfg);
    cfg.threads = 1;
    mlp_ctx *ctx = NULL;
    int rc = mlp_create(&cfg, &ctx) == MLP_OK ? 0 : 1;
    mlp_tensor_info xi, yi;
    if (!rc) rc = mlp_data_info(ctx, 0, &xi) || mlp_data_info(ctx, 1, &yi);
    float *x = rc ? NULL : malloc(xi.count * sizeof *x);
    int32_t *y = rc ? NULL : malloc(yi.count * sizeof *y);
    if (!rc) {
        for (size_t i = 0; i < xi.count; i++) x[i] = (float)cos(0.11 * (double)(i * i % 97));
        for (size_t i = 0; i < yi.count; i++) y[i] = (int32_t)((i * 5 + 1) % (size_t)yi.range);
        char path[512];
        MprtErr err;
        snprintf(path, sizeof path, "%s/x.npy", dir);
        if (rank == 0 && !mprt_npy_save(path, MPRT_F32, xi.ndim, xi.shape, x, &err)) rc = 1;
        snprintf(path, sizeof path, "%s/y.npy", dir);
        if (rank == 0 && !mprt_npy_save(path, MPRT_I32, yi.ndim, yi.shape, y, &err)) rc = 1;
    }
    for (long s = 0; !rc && s < steps; s++) {
        double loss = 0;
        rc = mlp_step(ctx, x, xi.count, y, yi.count, &loss) != MLP_OK;
        if (!rc && rank == 0) printf("api loss %ld %.7g\n", s + 1, loss);
    }
    if (rc && rank == 0) fprintf(stderr, "same_data: %s\n", mlp_last_error(ctx));
    free(x);
    free(y);
    mlp_destroy(ctx);
    MPI_Finalize();
    return rc;
}
