/*
 * bf16_convert.c: what a bf16 C trainer's conversions cost (docs/benchmarks.md, "bf16 weights
 * stored in 16 bits"). A bf16 trainer unpacks each layer's bf16 weights into f32 before its
 * forward and its backward, every micro-batch (mprt_bf16_layer), and rounds every activation
 * it stores (mprt_bf16_round); this times mprt_bf16_unpack, mprt_bf16_pack and
 * mprt_bf16_round over n values on one thread, best of `reps`.
 *
 *   mpirun -np 1 build/bench/bench_bf16_convert [n (default 2^20)] [reps (default 20)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mprt.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    mprt_init(&argc, &argv, 1, 1, 1);
    mprt_set_threads(1);
    int64_t n = argc > 1 ? atoll(argv[1]) : (int64_t)1 << 20;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || reps < 1) mprt_fatal("usage: bench_bf16_convert [n >= 1] [reps >= 1]");
    float *f = malloc((size_t)n * sizeof *f), *g = malloc((size_t)n * sizeof *g);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    if (!f || !g || !h) mprt_fatal("out of memory");
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)(i % 1000) * 0.37f - 100.0f;
    const char *name[3] = {"unpack (bf16 -> f32)", "pack (f32 -> bf16)", "round (f32 -> f32)"};
    for (int k = 0; k < 3; k++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = now();
            if (k == 0) mprt_bf16_unpack(g, h, n);
            if (k == 1) mprt_bf16_pack(h, f, n);
            if (k == 2) mprt_bf16_round(g, f, n);
            t = now() - t;
            best = t < best ? t : best;
        }
        printf("%-22s %8.3f ns per value (%lld values, best of %d)\n", name[k],
               best / (double)n * 1e9, (long long)n, reps);
    }
    free(f), free(g), free(h);
    mprt_finalize();
    return 0;
}
