/*
 * brute.h: the exhaustive oracle of the plan search (brute.c), for the tests only.
 */
#ifndef MPCC_TESTS_BRUTE_H
#define MPCC_TESTS_BRUTE_H

#include "passes.h"

/* The best predicted step time over the whole plan space by exhaustive enumeration of meshes,
 * m, stage cuts and per-layer modes (small graphs only: it is exponential); INFINITY when no
 * plan fits. tests/unit/test_search.c checks pass_plan against it. */
double plan_brute_force(IrGraph *g, Diag *d);

#endif /* MPCC_TESTS_BRUTE_H */
