/*
 * fuzz_safetensors.c: libFuzzer target for the runtime's safetensors reader
 * (runtime/io_safetensors.c).
 *
 * Each input is a whole file, opened with mprt_st_open_mem — the same validation as
 * mprt_st_open, over memory. When the header is accepted, every tensor is read back with
 * the dtype and shape the file declares (the reads must succeed: validation promised the
 * bytes are there), one read with a wrong shape and one of a missing name must fail with
 * a one-line message, and the metadata is looked up. Findings: crashes, sanitizer reports,
 * leaks, or any broken promise above.
 *
 * Built with -DMPCC_FUZZ=ON under clang; docs/testing.md ("runtime fuzzing") shows how to run it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const MprtErr *err) {
    if (err->msg[0] == '\0' || strchr(err->msg, '\n')) abort();
}

static void read_all(MprtSt *f, size_t size) {
    for (int i = 0; i < mprt_st_count(f); i++) {
        MprtTensorRef r = mprt_st_info(f, i);
        size_t n = mprt_dtype_size(r.dtype);
        for (int d = 0; d < r.ndim; d++)
            n *= (size_t)r.shape[d];
        if (n > size) /* validation bounds every tensor by the file */
            abort();
        void *buf = malloc(n ? n : 1);
        MprtErr err = {""};
        if (!buf || !mprt_st_read(f, r.name, r.dtype, r.ndim, r.shape, buf, &err)) abort();
        int64_t wrong[MPRT_MAX_DIMS + 1];
        memcpy(wrong, r.shape, sizeof r.shape);
        wrong[0] = r.ndim ? r.shape[0] + 1 : 1;
        if (mprt_st_read(f, r.name, r.dtype, r.ndim ? r.ndim : 1, wrong, buf, &err)) abort();
        one_line(&err);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    MprtErr err = {""};
    MprtSt *f = mprt_st_open_mem(data, size, "fuzz.safetensors", &err);
    if (!f) {
        one_line(&err);
        return 0;
    }
    read_all(f, size);
    float x;
    int64_t one[1] = {1};
    if (mprt_st_read(f, "\x01no such tensor", MPRT_F32, 1, one, &x, &err)) abort();
    one_line(&err);
    volatile size_t sink = 0;
    const char *v = mprt_st_meta(f, "step");
    sink += v ? strlen(v) : 0;
    (void)sink;
    mprt_st_close(f);
    return 0;
}
