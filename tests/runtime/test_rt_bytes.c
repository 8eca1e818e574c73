/*
 * test_rt_bytes.c: the runtime's byte formula (mprt_coll_bytes, runtime/log.c) and the cost
 * model's (cost_coll_bytes, passes/cost.c) are two copies of one rule — the runtime does not
 * link the compiler — so predicted and counted traffic can only be equal if the copies agree
 * exactly. This checks them (and that both name kinds and groups alike) on every plan collective
 * kind, over group sizes 1..64 and a spread of byte counts (small, odd, powers of two and
 * neighbours, large), and that the enum values the generated code casts between are the same.
 */
#include <stdio.h>
#include <string.h>

#include "mprt.h"
#include "passes.h"

int main(void) {
    _Static_assert((int)MPRT_ALLREDUCE == (int)COLL_ALLREDUCE, "CollKind numbering");
    _Static_assert((int)MPRT_ALLGATHER == (int)COLL_ALLGATHER, "CollKind numbering");
    _Static_assert((int)MPRT_REDUCESCATTER == (int)COLL_REDUCESCATTER, "CollKind numbering");
    _Static_assert((int)MPRT_ALLTOALL == (int)COLL_ALLTOALL, "CollKind numbering");
    _Static_assert((int)MPRT_SENDRECV == (int)COLL_SENDRECV, "CollKind numbering");
    _Static_assert((int)MPRT_TENSOR == (int)GROUP_TENSOR && (int)MPRT_DATA == (int)GROUP_DATA &&
                       (int)MPRT_STAGE == (int)GROUP_STAGE && (int)MPRT_PIPE == (int)GROUP_PIPE,
                   "GroupKind numbering");
    static const int64_t ns[] = {0,
                                 1,
                                 3,
                                 4,
                                 7,
                                 63,
                                 64,
                                 65,
                                 1000,
                                 1023,
                                 1024,
                                 1025,
                                 4096 * 3 + 1,
                                 999999937,
                                 (int64_t)1 << 32,
                                 ((int64_t)1 << 40) + 12345,
                                 -4};
    long checked = 0, bad = 0;
    for (int k = COLL_NONE; k < COLL__COUNT; k++)
        for (int64_t g = 1; g <= 64; g++)
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                int64_t want = cost_coll_bytes((CollKind)k, g, ns[i]);
                int64_t got = mprt_coll_bytes((MprtColl)k, g, ns[i]);
                checked++;
                if (got != want && bad++ < 10)
                    fprintf(stderr, "%s g=%lld n=%lld: runtime %lld, cost model %lld\n",
                            cost_coll_name((CollKind)k), (long long)g, (long long)ns[i],
                            (long long)got, (long long)want);
            }
    /* a spot check against the formula written out: 2(g−1)·n/g for g = 3, n = 1000 */
    if (mprt_coll_bytes(MPRT_ALLREDUCE, 3, 1000) != 1333 ||
        mprt_coll_bytes(MPRT_ALLTOALL, 4, 1000) != 187) {
        fprintf(stderr, "formula spot check failed\n");
        bad++;
    }
    for (int k = COLL_NONE; k < COLL__COUNT; k++)
        if (strcmp(mprt_coll_name((MprtColl)k), cost_coll_name((CollKind)k)) != 0) {
            fprintf(stderr, "kind %d: runtime calls it %s, the cost model %s\n", k,
                    mprt_coll_name((MprtColl)k), cost_coll_name((CollKind)k));
            bad++;
        }
    for (int g = GROUP_TENSOR; g < GROUP__COUNT; g++)
        if (strcmp(mprt_group_name((MprtGroup)g), plan_group_name((GroupKind)g)) != 0) {
            fprintf(stderr, "group %d: runtime calls it %s, the plan %s\n", g,
                    mprt_group_name((MprtGroup)g), plan_group_name((GroupKind)g));
            bad++;
        }
    printf("test_rt_bytes: %ld cases, %ld disagreements\n", checked, bad);
    return bad != 0;
}
