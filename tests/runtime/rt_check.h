/*
 * rt_check.h: the CHECK macro of the runtime tests: a failed condition prints file:line, the
 * condition and a printf-style message, and is counted in `failures`, which the test's main
 * returns. Tests that run on several ranks define RT_CHECK_RANK (an int expression, e.g.
 * `mprt_mesh()->rank`) before including this, and every failure starts with "rank N: ".
 */
#ifndef MPCC_RT_CHECK_H
#define MPCC_RT_CHECK_H

#include <stdio.h>

#ifdef RT_CHECK_RANK
#define RT_CHECK_WHO() fprintf(stderr, "rank %d: ", (RT_CHECK_RANK))
#else
#define RT_CHECK_WHO() ((void)0)
#endif

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            RT_CHECK_WHO();                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#endif /* MPCC_RT_CHECK_H */
