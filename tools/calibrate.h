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
/* The `ops` table of the preset: the runtime's memory-bound kernels measured. */
cJSON *cal_ops_table(bool quick);
/* The share of a gradient all-reduce the trainer's schedule hides behind compute (ranks > 1). */
double cal_grad_overlap(void);

#endif
