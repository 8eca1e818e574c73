/*
 * rt_check.h: the CHECK macro of the single-process runtime tests (test_rt_io, test_rt_rng):
 * a failed condition prints file:line, the condition and a printf-style message, and is
 * counted in `failures`, which the test's main returns.
 */
#ifndef MPCC_RT_CHECK_H
#define MPCC_RT_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#endif /* MPCC_RT_CHECK_H */
