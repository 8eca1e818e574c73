/*
 * calibrate.h: what the files of mpcc-calibrate share (tools/calibrate.c, calibrate_kern.c).
 */
#ifndef MPCC_CALIBRATE_H
#define MPCC_CALIBRATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* CLOCK_MONOTONIC seconds. */
double cal_now(void);
/* The mean of x over the ranks. */
double cal_mean(double x);
/* When `failed` (an allocation returned NULL): "mpcc-calibrate: out of memory for WHAT" and the
 * whole job aborted (every rank measures at once: one rank alone cannot go on). */
void cal_need(bool failed, const char *what);
/* The `ops` table of the preset: the runtime's memory-bound kernels measured. */
cJSON *cal_ops_table(bool quick);
/* The `optimizer` object of the preset: each optimizer's step measured. */
cJSON *cal_optimizer(bool quick);
/* The median of n > 0 times (sorts them). */
double cal_median(double *t, int n);
/* What the trainer's schedule hides of a gradient all-reduce run beside compute (ranks > 1): the
 * share of its wait removed, and the compute time it adds per second of all-reduce. */
typedef struct CalOverlap {
    double hidden, slowdown;
} CalOverlap;
CalOverlap cal_grad_overlap(void);

#endif
