/*
 * test_rt_teacher.c: the synthetic data of a trainer without --data (runtime/trainer_teacher.c)
 * — any split of a run of samples gives the same rows (so every plan trains on the same data),
 * samples are fresh (no wrapping at the batch), a token label is its input one token on and
 * the tokens follow a Markov chain far from uniform, a class label and a float target are
 * functions of their input's samples, in range and not constant.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt_trainer.h"

#include "rt_check.h"

enum { V = 50, T = 16, N = 400 };

static MprtDataFile none = {{MPRT_I32, 0, {0}, 0, NULL}, NULL, 0};

/* rows first .. first + n of d in one call, and in two calls split at `cut`, agree. */
static void check_split(const MprtData *d, int64_t first, int64_t n, int64_t cut) {
    size_t bytes = mprt_dtype_size(d->dtype) * (size_t)mprt_data_row(d);
    char *one = malloc(bytes * (size_t)n), *two = malloc(bytes * (size_t)n);
    mprt_data_rows(d, 5, first, n, one);
    mprt_data_rows(d, 5, first, cut, two);
    mprt_data_rows(d, 5, first + cut, n - cut, two + bytes * (size_t)cut);
    CHECK(!memcmp(one, two, bytes * (size_t)n), "%s: split at %lld differs", d->stream,
          (long long)cut);
    free(one), free(two);
}

static void test_tokens(void) {
    MprtData x = {"data.tok", MPRT_I32, 2, {8, T}, V, &none, NULL};
    MprtData y = {"data.next", MPRT_I32, 2, {8, T}, V, &none, &x};
    CHECK(!mprt_data_teacher(&x) && mprt_data_teacher(&y), "token label answers its input");
    check_split(&x, 3, 9, 4), check_split(&y, 3, 9, 5);
    int32_t *in = malloc(sizeof(int32_t) * N * T), *out = malloc(sizeof(int32_t) * N * T);
    static int count[V][V];
    mprt_data_rows(&x, 1, 0, N, in), mprt_data_rows(&y, 1, 0, N, out);
    for (int s = 0; s < N; s++)
        for (int c = 0; c < T; c++) {
            int32_t a = in[s * T + c], b = out[s * T + c];
            CHECK(a >= 0 && a < V && b >= 0 && b < V, "token %d %d", a, b);
            if (c + 1 < T) CHECK(b == in[s * T + c + 1], "label is the next token at %d.%d", s, c);
            count[a][b]++;
        }
    /* the likeliest successor of each token takes about half its transitions (uniform: 2%) */
    int top = 0, all = 0;
    for (int a = 0; a < V; a++) {
        int best = 0;
        for (int b = 0; b < V; b++)
            best = count[a][b] > best ? count[a][b] : best, all += count[a][b];
        top += best;
    }
    CHECK(top > all / 3 && top < all * 3 / 4, "top successors %d of %d", top, all);
    CHECK(memcmp(in, in + 8 * T, sizeof(int32_t) * 8 * T), "step 1's batch is fresh");
    free(in), free(out);
}

static void test_classes(void) {
    MprtData x = {"data.x", MPRT_F32, 2, {8, 20}, 0, &none, NULL};
    MprtData y = {"data.y", MPRT_I32, 1, {8}, 10, &none, &x};
    check_split(&y, 7, 11, 3);
    int32_t lab[N];
    int seen[10] = {0}, kinds = 0;
    mprt_data_rows(&y, 2, 0, N, lab);
    for (int s = 0; s < N; s++) {
        CHECK(lab[s] >= 0 && lab[s] < 10, "class %d", lab[s]);
        kinds += lab[s] >= 0 && lab[s] < 10 && !seen[lab[s]]++;
    }
    CHECK(kinds >= 5, "only %d classes drawn", kinds);
    /* the answer depends on the input: another seed draws other inputs, so other labels */
    int32_t other[N];
    int same = 0;
    mprt_data_rows(&y, 3, 0, N, other);
    for (int s = 0; s < N; s++)
        same += other[s] == lab[s];
    CHECK(same < N / 2, "labels of other inputs agree %d times of %d", same, N);
}

static void test_targets(void) {
    MprtData x = {"data.seq", MPRT_F32, 3, {4, 6, 12}, 0, &none, NULL};
    MprtData y = {"data.target", MPRT_F32, 3, {4, 6, 12}, 0, &none, &x};
    check_split(&y, 0, 7, 2);
    float t[8 * 72];
    double sum = 0, sq = 0;
    mprt_data_rows(&y, 4, 0, 8, t);
    for (int i = 0; i < 8 * 72; i++) {
        CHECK(isfinite(t[i]), "target %d", i);
        sum += t[i], sq += (double)t[i] * t[i];
    }
    double var = sq / (8 * 72) - (sum / (8 * 72)) * (sum / (8 * 72));
    CHECK(var > 0.05 && var < 4, "target variance %g", var);
    /* a file-backed input has no teacher: its label is drawn on its own */
    float one = 0;
    MprtDataFile file = {{MPRT_F32, 1, {1}, 1, &one}, NULL, 0};
    MprtData fx = {"data.seq", MPRT_F32, 3, {4, 6, 12}, 0, &file, NULL};
    MprtData fy = {"data.target", MPRT_F32, 3, {4, 6, 12}, 0, &none, &fx};
    CHECK(!mprt_data_teacher(&fy), "a label of a file's input is not the teacher's");
}

int main(void) {
    test_tokens();
    test_classes();
    test_targets();
    if (!failures) printf("test_rt_teacher: ok\n");
    return failures != 0;
}
