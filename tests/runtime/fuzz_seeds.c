/*
 * fuzz_seeds.c: writes the seed corpora of the runtime's fuzz targets into DIR/npy,
 * DIR/safetensors and DIR/tokens — valid files of every dtype, format version and layout the
 * readers accept, made by the runtime's own writers, so libFuzzer starts from inputs that get past
 * the headers. A ctest fixture runs it before the fuzz tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mprt.h"

static char dir[4096];

static void die(const char *what) {
    fprintf(stderr, "fuzz_seeds: %s\n", what);
    exit(1);
}

/* A .npy seed: selector byte, 8 expected dims, then the file written by mprt_npy_save. */
static void npy_seed(const char *name, MprtDtype t, int ndim, const int64_t *shape) {
    static unsigned char data[4096], file[8192];
    char tmp[4200], out[4200];
    snprintf(tmp, sizeof tmp, "%s/tmp.npy", dir);
    snprintf(out, sizeof out, "%s/npy/%s", dir, name);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    MprtErr err;
    if (!mprt_npy_save(tmp, t, ndim, shape, data, &err)) die(err.msg);
    FILE *f = fopen(tmp, "rb");
    size_t n = f ? fread(file + 9, 1, sizeof file - 9, f) : 0;
    if (f) fclose(f);
    remove(tmp);
    file[0] = (unsigned char)((int)t + 3 * (ndim - 1));
    for (int i = 1; i < 9; i++)
        file[i] = (unsigned char)(i < ndim ? shape[i] : 0);
    f = fopen(out, "wb");
    if (!f || fwrite(file, 1, n + 9, f) != n + 9) die("cannot write a seed");
    fclose(f);
}

/* A token-stream seed: the vocabulary and window selector bytes (vocab 1 + 2·257, window 4),
 * then nanoGPT's flat uint16 layout or llm.c's header (magic, version 1 or 2, count) first. */
static void tokens_seed(const char *name, int llmc_version, int n) {
    char out[4200];
    snprintf(out, sizeof out, "%s/tokens/%s", dir, name);
    FILE *f = fopen(out, "wb");
    if (!f) die("cannot write a seed");
    unsigned char sel[2] = {2, 3};
    fwrite(sel, 1, 2, f);
    if (llmc_version) {
        int32_t head[256] = {20240520, llmc_version, n};
        for (int i = 0; i < 3; i++) /* little-endian whatever the host */
            for (int b = 0; b < 4; b++)
                fputc((int)((uint32_t)head[i] >> (8 * b) & 0xff), f);
        for (int i = 3 * 4; i < 256 * 4; i++)
            fputc(0, f);
    }
    int width = llmc_version == 2 ? 4 : 2;
    for (int i = 0; i < n; i++)
        for (int b = 0; b < width; b++)
            fputc(b == 0 ? (i * 37) % 251 : b == 1 ? i % 2 : 0, f);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: rt_fuzz_seeds DIR");
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char sub[4200];
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/npy", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/safetensors", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/tokens", dir);
    mkdir(sub, 0755);
    tokens_seed("flat", 0, 16);
    tokens_seed("llmc_u16", 1, 16);
    tokens_seed("llmc_u32", 2, 16);
    int64_t s2[2] = {4, 3}, s1[1] = {5}, s3[3] = {2, 2, 2}, s0[2] = {0, 7};
    npy_seed("f32_2d", MPRT_F32, 2, s2);
    npy_seed("i32_1d", MPRT_I32, 1, s1);
    npy_seed("i64_3d", MPRT_I64, 3, s3);
    npy_seed("empty", MPRT_F32, 2, s0);
    float w[6] = {1, 2, 3, 4, 5, 6};
    int32_t l[5] = {0, 1, 2, 3, 4};
    int64_t c[2] = {7, 8};
    MprtTensorRef t[4] = {{"fc1.weight", MPRT_F32, 2, {2, 3}, w},
                          {"labels", MPRT_I32, 1, {5}, l},
                          {"adam.step", MPRT_I64, 1, {2}, c},
                          {"empty", MPRT_F32, 2, {0, 4}, w}};
    MprtMeta meta[2] = {{"step", "10"}, {"optimizer", "adam"}};
    MprtErr err;
    char path[4300];
    snprintf(path, sizeof path, "%s/safetensors/ckpt", dir);
    if (!mprt_st_save(path, t, 4, meta, 2, &err)) die(err.msg);
    snprintf(path, sizeof path, "%s/safetensors/one", dir);
    if (!mprt_st_save(path, t, 1, NULL, 0, &err)) die(err.msg);
    snprintf(path, sizeof path, "%s/safetensors/none", dir);
    if (!mprt_st_save(path, NULL, 0, meta, 1, &err)) die(err.msg);
    return 0;
}
