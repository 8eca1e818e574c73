/*
 * test_rt_vocab.c: the vocabulary-parallel cross-entropy (runtime/kernels_vocab.c) over real
 * MPI ranks against the whole-row kernel (mprt_cross_entropy_forward/backward).
 *
 *   mpirun -np T test_rt_vocab T
 *
 * On the mesh 1 × 1 × T every rank builds the same logits [M, V] and labels (one row ignored
 * with −100, labels owned by every rank), keeps its classes [k·V/T, (k+1)·V/T), and checks:
 * the loss every rank returns equals the whole-row loss (1e-5 relative), its gradient slice
 * equals the slice of the whole-row gradient (1e-6 absolute), and the runtime counted exactly
 * three all-reduces of 4·M bytes on the tensor group (what the planner predicts, rules.c
 * own_fwd). Then a vocabulary that does not divide T (23 classes: every rank holds ceil(23/T)
 * columns, the last rank's extra ones padding filled with a huge logit): the same loss and
 * gradient as the whole 23-class row, the padding's gradient untouched (0). Prints
 * "test_rt_vocab T: ok".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mprt.h"
#include "mprt_kernels.h"

#define RT_CHECK_RANK (mprt_mesh()->rank)
#include "rt_check.h"

enum { M = 7, V = 24 };

/* Deterministic logits with a wide range (so the row maximum matters) and labels. */
static void make_data(float *logits, int32_t *labels) {
    for (int i = 0; i < M * V; i++)
        logits[i] = (float)((i * 37 % 101) - 50) * 0.31f;
    for (int m = 0; m < M; m++)
        labels[m] = (int32_t)((m * 5 + 3) % V);
    labels[2] = -100; /* ignored */
}

static void check_loss(double got, double want) {
    CHECK(fabs(got - want) <= 1e-5 * fabs(want), "loss %.9g, whole-row %.9g", got, want);
}

static void check_grad(const float *dl, const float *dfull, int Vl, int v0) {
    for (int m = 0; m < M; m++)
        for (int j = 0; j < Vl; j++) {
            float a = dl[m * Vl + j], b = dfull[m * V + v0 + j];
            CHECK(fabsf(a - b) <= 1e-6f, "dlogits[%d, %d]: %g, whole-row %g", m, v0 + j, a, b);
        }
}

static void check_bytes(MprtCommStat before, int t) {
    MprtCommStat now = mprt_stats_get(MPRT_ALLREDUCE, MPRT_TENSOR);
    int64_t want = 3 * mprt_coll_bytes(MPRT_ALLREDUCE, t, 4 * M);
    int64_t fb = 2 * (int64_t)(t - 1) * (4 * M) / t; /* passes.h's formula, written out */
    CHECK(want == 3 * fb, "mprt_coll_bytes %lld, formula %lld", (long long)want,
          (long long)(3 * fb));
    CHECK(now.bytes - before.bytes == want, "counted %lld bytes, predicted %lld",
          (long long)(now.bytes - before.bytes), (long long)want);
    CHECK(now.calls - before.calls == 3, "%lld all-reduces", (long long)(now.calls - before.calls));
}

/* The padded case: classes [0, VP) of the same logits, VP not divisible by t. */
enum { VP = 23 };
static void check_padded(const float *logits, const int32_t *labels, int t, int k) {
    int Vl = (VP + t - 1) / t, v0 = k * Vl;
    float whole[M * VP], dfull[M * VP] = {0}, mine[M * V], dl[M * V] = {0}, stash[3 * M];
    int32_t lab[M];
    for (int m = 0; m < M; m++) {
        lab[m] = labels[m] < 0 ? labels[m] : labels[m] % VP;
        for (int j = 0; j < VP; j++)
            whole[m * VP + j] = logits[m * V + j];
        for (int j = 0; j < Vl; j++) /* padding: a logit that would dominate any softmax */
            mine[m * Vl + j] = v0 + j < VP ? whole[m * VP + v0 + j] : 1e4f;
    }
    float scale = 1.0f / (float)M;
    double want = mprt_cross_entropy_forward(whole, lab, M, VP, scale);
    mprt_cross_entropy_backward(dfull, whole, lab, M, VP, scale);
    double got = mprt_vocab_ce_forward(mine, lab, stash, M, Vl, v0, VP, scale);
    mprt_vocab_ce_backward(dl, mine, lab, stash, M, Vl, v0, VP, scale);
    check_loss(got, want);
    for (int m = 0; m < M; m++)
        for (int j = 0; j < Vl; j++) {
            float a = dl[m * Vl + j], b = v0 + j < VP ? dfull[m * VP + v0 + j] : 0.0f;
            CHECK(fabsf(a - b) <= 1e-6f, "padded dlogits[%d, %d]: %g, expected %g", m, v0 + j, a,
                  b);
        }
}

int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 1;
    mprt_init(&argc, &argv, 1, 1, t);
    int k = mprt_mesh()->k, Vl = V / t, v0 = k * Vl;
    float logits[M * V], dfull[M * V] = {0}, mine[M * V], dl[M * V] = {0}, stash[3 * M];
    int32_t labels[M];
    make_data(logits, labels);
    for (int m = 0; m < M; m++)
        for (int j = 0; j < Vl; j++)
            mine[m * Vl + j] = logits[m * V + v0 + j];
    float scale = 1.0f / (float)M;
    double want = mprt_cross_entropy_forward(logits, labels, M, V, scale);
    mprt_cross_entropy_backward(dfull, logits, labels, M, V, scale);
    MprtCommStat before = mprt_stats_get(MPRT_ALLREDUCE, MPRT_TENSOR);
    double got = mprt_vocab_ce_forward(mine, labels, stash, M, Vl, v0, V, scale);
    check_bytes(before, t);
    mprt_vocab_ce_backward(dl, mine, labels, stash, M, Vl, v0, V, scale);
    check_loss(got, want);
    check_grad(dl, dfull, Vl, v0);
    check_padded(logits, labels, t, k);
    if (k == 0 && failures == 0) printf("test_rt_vocab %d: ok\n", t);
    mprt_finalize();
    return failures ? 1 : 0;
}
