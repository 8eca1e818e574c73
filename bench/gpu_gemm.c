/*
 * gpu_gemm.c: the GPU facts and GEMM throughput that scripts/gpu-check reports
 * (docs/cuda.md, "One command on a GPU machine").
 *
 *   gpu_gemm --info    one JSON object: device count, and for device 0 its name, compute
 *                      capability, SM count and memory, with the CUDA driver and runtime
 *                      versions; exit 0 even without a device (count 0)
 *   gpu_gemm [REPS]    one JSON object per line for each GEMM shape and precision: the shape,
 *                      fp32, tf32 or bf16, seconds per GEMM and achieved TFLOP/s; exit 77
 *                      without a device
 *
 * The GEMMs are the runtime's own (mprt_cu_gemm, cuBLAS behind it; bf16: mprt_cu_gemm_bf16,
 * bf16 operands with fp32 products and sums, what a bf16 trainer's forward runs), on the shapes the
 * generated trainer of examples/gpt.mp issues at one device (4 micro-batches of 4 × 1024
 * tokens: 4096 rows) in the forward (NN) and both backward orientations, plus one large square
 * product that shows the ceiling. Timing: each shape runs twice untimed (cuBLAS picks and
 * loads its kernel), then REPS times between two device synchronisations, timed on the host;
 * the runtime's compute stream is non-blocking, so events on the legacy default stream would
 * not bracket its work. A GEMM does 2·M·N·K floating-point operations.
 */
#include "mprt_cuda.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Shape {
    const char *name;
    bool ta, tb;
    int M, N, K;
} Shape;

/* GPT-2 small, one micro-batch of 4096 tokens: width 768, MLP 3072, vocabulary 50257. */
static const Shape shapes[] = {
    {"attn_proj_fwd", false, false, 4096, 768, 768},
    {"fc1_fwd", false, false, 4096, 3072, 768},
    {"fc2_fwd", false, false, 4096, 768, 3072},
    {"fc1_dx", false, true, 4096, 768, 3072},
    {"fc1_dW", true, false, 768, 3072, 4096},
    {"lm_head_fwd", false, false, 4096, 50257, 768},
    {"square_8192", false, false, 8192, 8192, 8192},
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int info(void) {
    int n = mprt_cu_device_count(), drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    printf("{\"devices\": %d", n);
    if (drv > 0) printf(", \"driver_cuda\": \"%d.%d\"", drv / 1000, drv % 1000 / 10);
    printf(", \"runtime_cuda\": \"%d.%d\"", rt / 1000, rt % 1000 / 10);
    struct cudaDeviceProp p;
    if (n > 0 && cudaGetDeviceProperties(&p, 0) == cudaSuccess)
        printf(", \"name\": \"%s\", \"cc\": \"%d.%d\", \"sms\": %d, \"memory_gib\": %.1f", p.name,
               p.major, p.minor, p.multiProcessorCount,
               (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    printf("}\n");
    return 0;
}

/* Fills n floats with a small pattern (the values do not change the time, only NaNs would). */
static float *device_pattern(size_t n) {
    float *h = malloc(n * sizeof *h), *d = mprt_cu_malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)((int)(i % 13) - 6) * 0.01f;
    mprt_cu_upload(d, h, n * sizeof *h);
    free(h);
    return d;
}

enum { FP32, TF32, BF16 };
static const char *const precision_names[] = {"fp32", "tf32", "bf16"};

/* The f32 pattern packed to bf16 (the bf16 GEMM's operands). */
static uint16_t *device_pattern_bf16(size_t n) {
    float *f = device_pattern(n);
    uint16_t *d = mprt_cu_malloc(n * sizeof *d);
    mprt_cu_bf16_pack(d, f, (int64_t)n);
    mprt_cu_sync();
    mprt_cu_free(f);
    return d;
}

static void gemm(const Shape *s, int prec, const void *A, int lda, const void *B, int ldb,
                 float *C) {
    if (prec == BF16)
        mprt_cu_gemm_bf16(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
    else
        mprt_cu_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
}

static void bench(const Shape *s, int prec, int reps) {
    size_t na = (size_t)s->M * (size_t)s->K, nb = (size_t)s->K * (size_t)s->N,
           nc = (size_t)s->M * (size_t)s->N;
    void *A = prec == BF16 ? (void *)device_pattern_bf16(na) : (void *)device_pattern(na);
    void *B = prec == BF16 ? (void *)device_pattern_bf16(nb) : (void *)device_pattern(nb);
    float *C = device_pattern(nc);
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    mprt_cu_set_tf32(prec == TF32);
    for (int i = 0; i < 2; i++)
        gemm(s, prec, A, lda, B, ldb, C);
    mprt_cu_sync();
    double t0 = now_s();
    for (int i = 0; i < reps; i++)
        gemm(s, prec, A, lda, B, ldb, C);
    mprt_cu_sync();
    double dt = (now_s() - t0) / reps, flop = 2.0 * s->M * (double)s->N * s->K;
    printf("{\"shape\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"ta\": %s, \"tb\": %s, "
           "\"precision\": \"%s\", "
           "\"seconds\": %.6e, \"tflops\": %.2f}\n",
           s->name, s->M, s->N, s->K, s->ta ? "true" : "false", s->tb ? "true" : "false",
           precision_names[prec], dt, flop / dt / 1e12);
    fflush(stdout);
    mprt_cu_free(A);
    mprt_cu_free(B);
    mprt_cu_free(C);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--info") == 0) return info();
    int reps = argc == 2 ? atoi(argv[1]) : 10;
    if (argc > 2 || reps < 1) {
        fprintf(stderr, "usage: gpu_gemm --info | gpu_gemm [REPS]\n");
        return 2;
    }
    if (!mprt_cu_init_local(0)) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    for (int prec = FP32; prec <= BF16; prec++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            bench(&shapes[i], prec, reps);
    mprt_cu_set_tf32(false);
    mprt_cu_finalize();
    return 0;
}
