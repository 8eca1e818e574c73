/*
 * trainer_data.c: a generated trainer's inputs and labels (MprtData in mprt_trainer.h), and
 * its host allocations.
 *
 * A step reads BATCH consecutive samples of a data set, wrapping around its end; the trainer
 * asks for the rows of one micro-batch of its replica as a run of consecutive sample indices
 * (step·BATCH + the run's first row of the global batch), so the same sample lands in the same
 * place of the global batch whatever the plan. A data set is either the .npy file of --data
 * or --labels, checked against the model's shape on opening, or, without one, fresh synthetic
 * samples every step from a seeded random teacher (trainer_teacher.c), every element drawn
 * from its sample index so that any plan sees the same numbers.
 */
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

bool mprt_data_open(const MprtData *d, const char *path, MprtErr *err) {
    if (!mprt_npy_load(path, d->dtype, d->ndim, d->shape, 1, d->file, err)) return false;
    if (d->dtype != MPRT_I32 || d->range <= 0) return true;
    const int32_t *v = (const int32_t *)d->file->data;
    for (int64_t i = 0; i < d->file->numel; i++)
        if (v[i] < 0 || v[i] >= d->range) {
            snprintf(err->msg, sizeof err->msg, "%s: value %d at index %lld is outside [0, %d)",
                     path, (int)v[i], (long long)i, (int)d->range);
            return false;
        }
    return true;
}

int64_t mprt_data_row(const MprtData *d) {
    int64_t row = 1;
    for (int k = 1; k < d->ndim; k++)
        row *= d->shape[k];
    return row;
}

void mprt_data_rows(const MprtData *d, uint64_t seed, int64_t first, int64_t n, void *dst) {
    if (!d->file->data) {
        mprt_synthetic_rows(d, seed, first, n, dst); /* trainer_teacher.c */
        return;
    }
    int64_t row = mprt_data_row(d), rows = d->file->shape[0];
    size_t bytes = mprt_dtype_size(d->dtype) * (size_t)row;
    for (int64_t q = 0; q < n; q++)
        memcpy((char *)dst + (size_t)q * bytes,
               (const char *)d->file->data + (size_t)((first + q) % rows) * bytes, bytes);
}

void mprt_data_close(const MprtData *d) { mprt_array_free(d->file); }

/* n zeroed elements of `size` bytes (at least one); an allocation failure ends the job. */
static void *zeroed(int64_t n, size_t size, const char *what) {
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (!p) mprt_fatal("out of memory (%lld %s)", (long long)n, what);
    return p;
}

float *mprt_falloc(int64_t n) { return zeroed(n, sizeof(float), "floats"); }
int32_t *mprt_ialloc(int64_t n) { return zeroed(n, sizeof(int32_t), "ints"); }
