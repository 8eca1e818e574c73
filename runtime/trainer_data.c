/*
 * trainer_data.c: a generated trainer's inputs and labels (MprtData in mprt_trainer.h), and
 * its host allocations.
 *
 * A step reads BATCH samples of a data set; the trainer asks for the rows of one micro-batch
 * of its replica as a run of consecutive sample indices (step·BATCH + the run's first row of
 * the global batch), so the same sample lands in the same place of the global batch whatever
 * the plan. A data set is one of:
 *   - the .npy files of --data and --labels, checked on opening against the model (dtype and
 *     per-sample dims, at least one batch of rows, the same rows in both, finite floats,
 *     integers in range); sample i is row i modulo the rows;
 *   - a token stream (--data train.bin, io_tokens.c) for a model whose first input and label
 *     are token sequences i32[batch, T]: sample i is the window of T tokens starting at a
 *     position drawn from (seed, "data.tokens", i), its label the same window one token on;
 *   - without a file, fresh synthetic samples every step from a seeded random teacher
 *     (trainer_teacher.c), every element drawn from its sample index.
 * Each is a function of the sample index and the seed alone, so any plan sees the same numbers.
 */
#define _POSIX_C_SOURCE 200809L
#include "mprt_trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The index of the first element of a that d cannot take, or a->numel. A plain scan: the C
 * API runs it on every step's buffers. */
static int64_t first_bad(const MprtData *d, const MprtArray *a) {
    int64_t i = 0;
    if (d->dtype == MPRT_F32) {
        const float *v = a->data;
        while (i < a->numel && isfinite(v[i]))
            i++;
    } else if (d->range > 0) {
        const int32_t *v = a->data;
        while (i < a->numel && v[i] >= 0 && v[i] < d->range)
            i++;
    } else {
        i = a->numel;
    }
    return i;
}

bool mprt_data_check(const MprtData *d, const MprtArray *a, const char *path, MprtErr *err) {
    int64_t row = mprt_data_row(d), i = first_bad(d, a);
    if (i == a->numel) return true;
    char what[64];
    if (d->dtype == MPRT_F32)
        snprintf(what, sizeof what, "non-finite value %g", (double)((const float *)a->data)[i]);
    else
        snprintf(what, sizeof what, "value %d", (int)((const int32_t *)a->data)[i]);
    snprintf(err->msg, sizeof err->msg, "%s: %s at row %lld, element %lld%s", path, what,
             (long long)(i / row), (long long)(i % row),
             d->dtype == MPRT_F32 ? " (inputs must be finite)" : "");
    if (d->dtype != MPRT_F32)
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                 " is outside [0, %lld)", (long long)d->range);
    return false;
}

bool mprt_data_open(const MprtData *d, const char *path, MprtErr *err) {
    if (!mprt_npy_load(path, d->dtype, d->ndim, d->shape, d->shape[0], &d->file->array, err))
        return false;
    if (mprt_data_check(d, &d->file->array, path, err)) return true;
    mprt_array_free(&d->file->array);
    return false;
}

/* Whether x and y are token sequences, i32[batch, T] alike, and `path` is not a .npy file. */
static bool token_stream(const MprtData *x, const MprtData *y, const char *path) {
    if (!x || !y || x->dtype != MPRT_I32 || y->dtype != MPRT_I32 || x->ndim != 2 || y->ndim != 2 ||
        x->shape[1] != y->shape[1])
        return false;
    char magic[6] = {0};
    int fd =
        mprt__open_regular(path, NULL, NULL); /* never waits on a FIFO; errors come from below */
    if (fd < 0) return false;
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return !(n == (ssize_t)sizeof magic && !memcmp(magic, "\x93NUMPY", 6));
}

/* --data as a token stream feeding x (shift 0) and y (shift 1). */
static bool open_tokens(const MprtData *x, const MprtData *y, const char *path, MprtErr *err) {
    int64_t vocab = x->range > 0 && (y->range <= 0 || x->range < y->range) ? x->range : y->range;
    MprtTokens *t = calloc(1, sizeof *t);
    if (!t) return snprintf(err->msg, sizeof err->msg, "%s: out of memory", path), false;
    if (!mprt_tokens_open(path, vocab, x->shape[1], t, err)) {
        free(t);
        return false;
    }
    x->file->tokens = y->file->tokens = t;
    x->file->shift = 0, y->file->shift = 1;
    return true;
}

bool mprt_data_open_named(const MprtData *x, const MprtData *y, const char *data,
                          const char *labels, const char *const flags[2], MprtErr *err) {
    if (data && !x)
        return snprintf(err->msg, sizeof err->msg, "this model has no input for %s", flags[0]),
               false;
    if (labels && !y)
        return snprintf(err->msg, sizeof err->msg, "this model has no label for %s", flags[1]),
               false;
    if (data && token_stream(x, y, data)) {
        if (labels)
            return snprintf(err->msg, sizeof err->msg,
                            "%s %.200s: the token stream %.200s holds the labels (each "
                            "window's next tokens); drop %s",
                            flags[1], labels, data, flags[1]),
                   false;
        return open_tokens(x, y, data, err);
    }
    if (data && !mprt_data_open(x, data, err)) return false;
    if (labels && !mprt_data_open(y, labels, err)) return false;
    if (data && labels && x->file->array.shape[0] != y->file->array.shape[0])
        return snprintf(err->msg, sizeof err->msg,
                        "%.200s has %lld rows but %.200s has %lld: inputs and labels pair row by "
                        "row",
                        data, (long long)x->file->array.shape[0], labels,
                        (long long)y->file->array.shape[0]),
               false;
    return true;
}

bool mprt_data_open_files(const MprtData *x, const MprtData *y, const char *data,
                          const char *labels, MprtErr *err) {
    static const char *const flags[2] = {"--data", "--labels"};
    return mprt_data_open_named(x, y, data, labels, flags, err);
}

int64_t mprt_data_row(const MprtData *d) {
    int64_t row = 1;
    for (int k = 1; k < d->ndim; k++)
        row *= d->shape[k];
    return row;
}

/* Windows of the token stream: sample i starts at a position drawn from (seed, i) in
 * [0, count - T), so its label window (shift 1) fits too. */
static void token_rows(const MprtData *d, uint64_t seed, int64_t first, int64_t n, int32_t *dst) {
    const MprtTokens *t = d->file->tokens;
    int64_t T = d->shape[1];
    MprtRng r = mprt_rng(seed, mprt_rng_name_id("data.tokens"));
    for (int64_t q = 0; q < n; q++) {
        int64_t start =
            (int64_t)(mprt_rng_bits(r, (uint64_t)(first + q)) % (uint64_t)(t->count - T));
        for (int64_t c = 0; c < T; c++)
            dst[q * T + c] = (int32_t)mprt_tokens_at(t, start + d->file->shift + c);
    }
}

void mprt_data_rows(const MprtData *d, uint64_t seed, int64_t first, int64_t n, void *dst) {
    if (d->file->tokens) {
        token_rows(d, seed, first, n, dst);
        return;
    }
    if (!d->file->array.data) {
        mprt_synthetic_rows(d, seed, first, n, dst); /* trainer_teacher.c */
        return;
    }
    int64_t row = mprt_data_row(d), rows = d->file->array.shape[0];
    size_t bytes = mprt_dtype_size(d->dtype) * (size_t)row;
    for (int64_t q = 0; q < n; q++)
        memcpy((char *)dst + (size_t)q * bytes,
               (const char *)d->file->array.data + (size_t)((first + q) % rows) * bytes, bytes);
}

void mprt_data_close(const MprtData *d) {
    mprt_array_free(&d->file->array);
    if (d->file->tokens && d->file->shift == 0) {
        mprt_tokens_close(d->file->tokens);
        free(d->file->tokens);
    }
    d->file->tokens = NULL;
}

/* n zeroed elements of `size` bytes (at least one); an allocation failure ends the job. */
static void *zeroed(int64_t n, size_t size, const char *what) {
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (!p) mprt_fatal("out of memory (%lld %s)", (long long)n, what);
    return p;
}

float *mprt_falloc(int64_t n) { return zeroed(n, sizeof(float), "floats"); }
int32_t *mprt_ialloc(int64_t n) { return zeroed(n, sizeof(int32_t), "ints"); }
uint16_t *mprt_halloc(int64_t n) { return zeroed(n, sizeof(uint16_t), "bf16 values"); }
