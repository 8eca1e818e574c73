/*
 * fuzz_npy.c: libFuzzer target for the runtime's .npy reader (runtime/io_npy.c).
 *
 * Input layout: byte 0 selects what the "model" expects (dtype = b % 3, ndim = 1 + b / 3 % 8),
 * bytes 1..8 are the expected trailing dimensions, and the rest is the .npy file, parsed with
 * mprt_npy_parse — the code mprt_npy_load runs after reading the file. Every expectation
 * (including i32 ↔ i64 conversion) is reachable, and on success every element is read so
 * ASan sees any buffer the parser sized wrongly. Findings: crashes, sanitizer reports,
 * leaks, a message with a newline (errors must be one line), or an array whose shape
 * differs from the expectation.
 *
 * Built with -DMPCC_FUZZ=ON under clang; docs/testing.md ("runtime fuzzing") shows how to run it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 9) return 0;
    MprtDtype want = (MprtDtype)(data[0] % 3);
    int ndim = 1 + data[0] / 3 % 8;
    int64_t shape[MPRT_MAX_DIMS] = {0};
    for (int i = 1; i < ndim; i++)
        shape[i] = data[i];
    MprtArray a;
    MprtErr err = {""};
    if (!mprt_npy_parse(data + 9, size - 9, "fuzz.npy", want, ndim, shape, 1, &a, &err)) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n')) abort();
        return 0;
    }
    if (a.dtype != want || a.ndim != ndim || a.shape[0] < 1) abort();
    for (int i = 1; i < ndim; i++)
        if (a.shape[i] != shape[i]) abort();
    volatile unsigned char sink = 0;
    const unsigned char *p = a.data;
    for (size_t i = 0; i < (size_t)a.numel * mprt_dtype_size(want); i++)
        sink ^= p[i];
    (void)sink;
    mprt_array_free(&a);
    return 0;
}
