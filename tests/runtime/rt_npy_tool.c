/*
 * rt_npy_tool.c: a command-line window on the runtime's .npy code, so npy_numpy.py can check
 * it against numpy itself.
 *
 *   rt_npy_tool load FILE f32|i32|i64 NDIM D1 ... DN-1   prints "ok SHAPE... SUM" or the error
 *   rt_npy_tool save FILE f32|i64                         writes arange(12)/4 − 1 as f32[3, 4]
 *                                                         or arange(5)·2^33 as i64[5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"

static MprtDtype dtype_of(const char *s) {
    return strcmp(s, "i32") == 0 ? MPRT_I32 : strcmp(s, "i64") == 0 ? MPRT_I64 : MPRT_F32;
}

static int load(int argc, char **argv) {
    MprtDtype t = dtype_of(argv[3]);
    int ndim = atoi(argv[4]);
    int64_t shape[MPRT_MAX_DIMS] = {0};
    for (int i = 1; i < ndim && i < MPRT_MAX_DIMS && 4 + i < argc; i++)
        shape[i] = atoll(argv[4 + i]);
    MprtArray a;
    MprtErr err;
    if (!mprt_npy_load(argv[2], t, ndim, shape, 1, &a, &err)) {
        printf("error %s\n", err.msg);
        return 1;
    }
    double sum = 0;
    for (int64_t i = 0; i < a.numel; i++)
        sum += t == MPRT_F32   ? (double)((float *)a.data)[i]
               : t == MPRT_I32 ? (double)((int32_t *)a.data)[i]
                               : (double)((int64_t *)a.data)[i];
    printf("ok");
    for (int i = 0; i < a.ndim; i++)
        printf(" %lld", (long long)a.shape[i]);
    printf(" %.17g\n", sum);
    mprt_array_free(&a);
    return 0;
}

static int save(char **argv) {
    MprtErr err;
    bool ok;
    if (dtype_of(argv[3]) == MPRT_F32) {
        float v[12];
        for (int i = 0; i < 12; i++)
            v[i] = (float)i / 4.0f - 1.0f;
        ok = mprt_npy_save(argv[2], MPRT_F32, 2, (int64_t[]){3, 4}, v, &err);
    } else {
        int64_t v[5];
        for (int i = 0; i < 5; i++)
            v[i] = (int64_t)i << 33;
        ok = mprt_npy_save(argv[2], MPRT_I64, 1, (int64_t[]){5}, v, &err);
    }
    if (!ok) printf("error %s\n", err.msg);
    return !ok;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "load") == 0) return load(argc, argv);
    if (argc == 4 && strcmp(argv[1], "save") == 0) return save(argv);
    fprintf(stderr, "usage: rt_npy_tool load FILE DTYPE NDIM DIMS... | save FILE f32|i64\n");
    return 2;
}
