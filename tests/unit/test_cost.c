/*
 * test_cost.c: the collective formulas and layout transitions of passes/cost.c, checked
 * as exact integers (the runtime counts the same bytes, so "close" is not good enough).
 */
#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_) {                                                                     \
            fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

#define CHECK_NEAR(a, b)                                                                          \
    do {                                                                                          \
        double a_ = (a), b_ = (b);                                                                \
        if (fabs(a_ - b_) > 1e-12 * fmax(1.0, fabs(b_))) {                                        \
            fprintf(stderr, "%s:%d: %s == %.17g, want %.17g\n", __FILE__, __LINE__, #a, a_, b_); \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

static void test_bytes(void) {
    /* all-reduce 2(g−1)·n/g */
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 2, 2000000), 2000000);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 4, 1000), 1500);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 8, 4096), 7168);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 3, 1000), 1333); /* floor(4000/3) */
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 1, 1000), 0);
    /* all-gather and reduce-scatter (g−1)·n/g, n the full tensor */
    CHECK_EQ(cost_coll_bytes(COLL_ALLGATHER, 4, 1000), 750);
    CHECK_EQ(cost_coll_bytes(COLL_REDUCESCATTER, 4, 1000), 750);
    CHECK_EQ(cost_coll_bytes(COLL_ALLGATHER, 2, 256000), 128000);
    CHECK_EQ(cost_coll_bytes(COLL_REDUCESCATTER, 1, 1000), 0);
    /* all-to-all (g−1)·n/g² */
    CHECK_EQ(cost_coll_bytes(COLL_ALLTOALL, 4, 1600), 300);
    CHECK_EQ(cost_coll_bytes(COLL_ALLTOALL, 2, 1000), 250);
    /* send/recv n, whatever the group; slices and nothing cost nothing */
    CHECK_EQ(cost_coll_bytes(COLL_SENDRECV, 2, 1234), 1234);
    CHECK_EQ(cost_coll_bytes(COLL_SLICE, 4, 1234), 0);
    CHECK_EQ(cost_coll_bytes(COLL_NONE, 4, 1234), 0);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 4, 0), 0);
}

static void test_time(void) {
    double a = 1e-6, b = 1e9;
    CHECK_NEAR(cost_coll_time(COLL_ALLREDUCE, 4, 1000, a, b), 6 * a + 1500 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLGATHER, 4, 1000, a, b), 3 * a + 750 / b);
    CHECK_NEAR(cost_coll_time(COLL_REDUCESCATTER, 8, 8000, a, b), 7 * a + 7000 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLTOALL, 4, 1600, a, b), 3 * a + 300 / b);
    CHECK_NEAR(cost_coll_time(COLL_SENDRECV, 2, 1000, a, b), a + 1000 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLREDUCE, 1, 1000, a, b), 0);
    CHECK_NEAR(cost_coll_time(COLL_SLICE, 4, 1000, a, b), 0);
}

static void test_layouts(void) {
    /* forward: DESIGN.md §4 */
    static const CollKind fwd[4][4] = {
        /* to:      R               B                    F                    P */
        /* R */ {COLL_NONE, COLL_SLICE, COLL_SLICE, COLL__COUNT},
        /* B */ {COLL_ALLGATHER, COLL_NONE, COLL_ALLTOALL, COLL__COUNT},
        /* F */ {COLL_ALLGATHER, COLL_ALLTOALL, COLL_NONE, COLL__COUNT},
        /* P */ {COLL_ALLREDUCE, COLL_REDUCESCATTER, COLL_REDUCESCATTER, COLL_NONE},
    };
    /* backward duals: the gradient of P is R */
    static const CollKind bwd[4][4] = {
        /* R */ {COLL_NONE, COLL_ALLGATHER, COLL_ALLGATHER, COLL__COUNT},
        /* B */ {COLL_SLICE, COLL_NONE, COLL_ALLTOALL, COLL__COUNT},
        /* F */ {COLL_SLICE, COLL_ALLTOALL, COLL_NONE, COLL__COUNT},
        /* P */ {COLL_NONE, COLL_ALLGATHER, COLL_ALLGATHER, COLL_NONE},
    };
    for (int a = 0; a < 4; a++) {
        for (int b = 0; b < 4; b++) {
            CHECK_EQ(cost_layout_change((Layout)a, (Layout)b), fwd[a][b]);
            if (fwd[a][b] != COLL__COUNT)
                CHECK_EQ(cost_layout_change_bwd((Layout)a, (Layout)b), bwd[a][b]);
        }
    }
    CHECK_EQ(cost_grad_layout(LAYOUT_P), LAYOUT_R);
    CHECK_EQ(cost_grad_layout(LAYOUT_F), LAYOUT_F);
    /* a P→R all-reduce of a 128×500 f32 activation over 2 ranks: 256,000 bytes */
    CHECK_EQ(cost_coll_bytes(cost_layout_change(LAYOUT_P, LAYOUT_R), 2, 128 * 500 * 4), 256000);
}

static void test_names(void) {
    if (strcmp(plan_layout_name(LAYOUT_F), "F") || strcmp(plan_strategy_name(STRAT_COL), "tensor(col)") ||
        strcmp(cost_coll_name(COLL_ALLTOALL), "all-to-all") || strcmp(plan_group_name(GROUP_STAGE), "stage")) {
        fprintf(stderr, "names differ\n");
        failures++;
    }
}

int main(void) {
    test_bytes();
    test_time();
    test_layouts();
    test_names();
    if (failures) fprintf(stderr, "test_cost: %d failure(s)\n", failures);
    else printf("test_cost: ok\n");
    return failures != 0;
}
