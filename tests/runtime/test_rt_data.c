/*
 * test_rt_data.c: a trainer's data files (runtime/trainer_data.c, runtime/io_tokens.c), no MPI.
 *
 * Token streams: both layouts (nanoGPT's flat uint16 file, llm.c's header of 256 int32s with
 * uint16 or uint32 tokens) parse to the same tokens, and every broken file gives its exact
 * one-line message: odd length, a header cut short, a count the data does not match either
 * way, an unknown version, too few tokens for a window, a token outside the vocabulary. A
 * model whose input and label are i32[batch, T] reads windows of the stream, the label the
 * input shifted by one, the same windows for the same sample whatever run of rows asks.
 * Checked .npy: too few rows, rows of inputs and labels that differ, NaN and Inf (with the
 * row), integers out of range, the wrong dtype, and --labels beside a token stream.
 *
 * Files go to a fresh directory under $TMPDIR (or /tmp), removed at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprt_trainer.h"

#include "rt_check.h"

static char dir[256];

static const char *path_of(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void put(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "writing %s", path);
    if (f) fclose(f);
}

/* An llm.c file: header (magic, version, count) then `count` tokens of 2 or 4 bytes. */
static size_t llmc(unsigned char *buf, uint32_t version, uint32_t count, const int *tok, int n) {
    memset(buf, 0, 1024);
    uint32_t h[3] = {20240520u, version, count};
    memcpy(buf, h, sizeof h); /* the test runs on little-endian hosts, as the files are */
    size_t w = version == 2 ? 4 : 2, at = 1024;
    for (int i = 0; i < n; i++, at += w) {
        uint32_t v = (uint32_t)tok[i];
        memcpy(buf + at, &v, w);
    }
    return at;
}

static void tokens_ok(void) {
    int tok[12] = {5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 0};
    uint16_t flat[12];
    for (int i = 0; i < 12; i++)
        flat[i] = (uint16_t)tok[i];
    static unsigned char buf[1024 + 64];
    MprtTokens t;
    MprtErr err = {{0}};
    CHECK(mprt_tokens_parse(flat, sizeof flat, "flat.bin", 12, 4, &t, &err), "%s", err.msg);
    CHECK(t.count == 12 && t.width == 2 && mprt_tokens_at(&t, 0) == 5 &&
              mprt_tokens_at(&t, 10) == 11,
          "flat");
    for (uint32_t v = 1; v <= 2; v++) {
        size_t n = llmc(buf, v, 12, tok, 12);
        CHECK(mprt_tokens_parse(buf, n, "llmc.bin", 12, 11, &t, &err), "v%u: %s", v, err.msg);
        CHECK(t.count == 12 && t.width == (int)v * 2 && mprt_tokens_at(&t, 9) == 10, "v%u", v);
    }
    put(path_of("flat.bin"), flat, sizeof flat);
    CHECK(mprt_tokens_open(path_of("flat.bin"), 12, 4, &t, &err) && t.map && t.count == 12 &&
              mprt_tokens_at(&t, 11) == 0,
          "open: %s", err.msg);
    mprt_tokens_close(&t);
    CHECK(!t.map && !t.tok, "close zeroes");
}

/* buf must be refused with exactly "NAME: want". */
static void tokens_bad(const void *buf, size_t n, int64_t vocab, int64_t window, const char *want) {
    MprtTokens t;
    MprtErr err = {{0}};
    char full[600];
    snprintf(full, sizeof full, "t.bin: %s", want);
    CHECK(!mprt_tokens_parse(buf, n, "t.bin", vocab, window, &t, &err) && !strcmp(err.msg, full),
          "want '%s', got '%s'", full, err.msg);
}

static void tokens_errors(void) {
    int tok[8] = {1, 2, 3, 4, 5, 6, 7, 40};
    uint16_t flat[8] = {1, 2, 3, 4, 5, 6, 7, 40};
    static unsigned char buf[1024 + 64];
    tokens_bad(flat, 15, 0, 1, "odd length (15 bytes): not a stream of uint16 tokens");
    tokens_bad(flat, sizeof flat, 30, 4,
               "token 40 at position 7 is outside the vocabulary [0, 30)");
    tokens_bad(flat, sizeof flat, 0, 8,
               "8 tokens, fewer than one window of the model's 8 plus the next token");
    size_t n = llmc(buf, 1, 8, tok, 8);
    tokens_bad(buf, 512, 0, 1, "truncated llm.c token header (512 of 1024 bytes)");
    tokens_bad(buf, n - 2, 0, 1,
               "truncated: the header declares 8 tokens (16 bytes), the file has 14 bytes of "
               "tokens");
    n = llmc(buf, 1, 6, tok, 8);
    tokens_bad(buf, n, 0, 1,
               "oversized: the header declares 6 tokens (12 bytes), the file has 16 bytes of "
               "tokens");
    n = llmc(buf, 3, 8, tok, 8);
    tokens_bad(buf, n, 0, 1,
               "unsupported llm.c token file version 3 (mprt reads 1: uint16, 2: uint32)");
    n = llmc(buf, 1, 0x80000000u, tok, 8);
    tokens_bad(buf, n, 0, 1, "bad llm.c header: negative token count");
    MprtTokens t;
    MprtErr err = {{0}};
    put(path_of("empty.bin"), "", 0);
    CHECK(!mprt_tokens_open(path_of("empty.bin"), 0, 1, &t, &err) &&
              strstr(err.msg, "empty.bin: empty token file"),
          "empty: '%s'", err.msg);
    CHECK(!mprt_tokens_open(path_of("none.bin"), 0, 1, &t, &err) &&
              strstr(err.msg, "none.bin: cannot open: No such file or directory"),
          "missing: '%s'", err.msg);
}

/* A GPT-like model: tok i32[4, 3] and next i32[4, 3], vocabulary 20. */
static MprtDataFile xf, yf;
static const MprtData X = {"data.tok", MPRT_I32, 2, {4, 3}, 20, &xf, NULL};
static const MprtData Y = {"data.next", MPRT_I32, 2, {4, 3}, 20, &yf, NULL};

static void windows(void) {
    uint16_t flat[50];
    for (int i = 0; i < 50; i++)
        flat[i] = (uint16_t)(i % 20);
    put(path_of("train.bin"), flat, sizeof flat);
    MprtErr err = {{0}};
    CHECK(mprt_data_open_files(&X, &Y, path_of("train.bin"), NULL, &err), "%s", err.msg);
    int32_t x[6][3], y[6][3], one[3];
    mprt_data_rows(&X, 7, 10, 6, x);
    mprt_data_rows(&Y, 7, 10, 6, y);
    int distinct = 0;
    for (int q = 0; q < 6; q++) {
        for (int c = 0; c < 3; c++) /* consecutive tokens; the label one token on */
            CHECK(x[q][c] == (x[q][0] + c) % 20 && y[q][c] == (x[q][c] + 1) % 20,
                  "window %d: %d %d", q, x[q][c], y[q][c]);
        mprt_data_rows(&X, 7, 10 + q, 1, one);
        CHECK(!memcmp(one, x[q], sizeof one), "sample %d read alone", q);
        distinct += q > 0 && x[q][0] != x[q - 1][0];
    }
    CHECK(distinct >= 3, "windows start at random places (%d changes)", distinct);
    mprt_data_rows(&X, 8, 10, 1, one);
    int32_t again[3];
    mprt_data_rows(&X, 8, 10, 1, again);
    CHECK(!memcmp(one, again, sizeof one), "deterministic");
    mprt_data_close(&X);
    mprt_data_close(&Y);
    CHECK(!xf.tokens && !yf.tokens, "closed");
    CHECK(!mprt_data_open_files(&X, &Y, path_of("train.bin"), path_of("y.npy"), &err) &&
              strstr(err.msg, "holds the labels (each window's next tokens); drop --labels"),
          "--labels with a stream: '%s'", err.msg);
    flat[17] = 20;
    put(path_of("bad.bin"), flat, sizeof flat);
    CHECK(!mprt_data_open_files(&X, &Y, path_of("bad.bin"), NULL, &err) &&
              strstr(err.msg, "bad.bin: token 20 at position 17 is outside the vocabulary [0, 20)"),
          "vocab: '%s'", err.msg);
}

/* The checked .npy files of an MLP-like model: x f32[4, 2], y i32[4], 3 classes. */
static MprtDataFile af, bf;
static const MprtData A = {"data.x", MPRT_F32, 2, {4, 2}, 0, &af, NULL};
static const MprtData B = {"data.y", MPRT_I32, 1, {4}, 3, &bf, NULL};

static void npy_bad(const char *x, const char *y, const char *want) {
    MprtErr err = {{0}};
    bool ok = mprt_data_open_files(&A, &B, x ? path_of(x) : NULL, y ? path_of(y) : NULL, &err);
    CHECK(!ok && strstr(err.msg, want) && !strchr(err.msg, '\n'), "want '%s', got '%s'", want,
          err.msg);
    mprt_data_close(&A);
    mprt_data_close(&B);
}

static void npy_checks(void) {
    float x[6][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}};
    int32_t y[6] = {0, 1, 2, 0, 1, 2};
    MprtErr err = {{0}};
    CHECK(mprt_npy_save(path_of("x6.npy"), MPRT_F32, 2, (int64_t[]){6, 2}, x, &err), "%s", err.msg);
    CHECK(mprt_npy_save(path_of("x3.npy"), MPRT_F32, 2, (int64_t[]){3, 2}, x, &err), "%s", err.msg);
    CHECK(mprt_npy_save(path_of("y6.npy"), MPRT_I32, 1, (int64_t[]){6}, y, &err), "%s", err.msg);
    CHECK(mprt_npy_save(path_of("y5.npy"), MPRT_I32, 1, (int64_t[]){5}, y, &err), "%s", err.msg);
    CHECK(mprt_data_open_files(&A, &B, path_of("x6.npy"), path_of("y6.npy"), &err), "%s", err.msg);
    mprt_data_close(&A);
    mprt_data_close(&B);
    npy_bad("x6.npy", "y5.npy", "x6.npy has 6 rows but ");
    npy_bad("x6.npy", "y5.npy", "y5.npy has 5: inputs and labels pair row by row");
    npy_bad("x3.npy", NULL, "x3.npy: expected f32[N, 2] with N >= 4, got f32[3, 2]");
    npy_bad(NULL, "x6.npy", "x6.npy: expected i32[N] with N >= 4, got f32[6, 2]");
    x[4][1] = NAN;
    CHECK(mprt_npy_save(path_of("xnan.npy"), MPRT_F32, 2, (int64_t[]){6, 2}, x, &err), "%s",
          err.msg);
    npy_bad("xnan.npy", "y6.npy",
            "xnan.npy: non-finite value nan at row 4, element 1 (inputs must be finite)");
    x[4][1] = 0, x[1][0] = -INFINITY;
    CHECK(mprt_npy_save(path_of("xinf.npy"), MPRT_F32, 2, (int64_t[]){6, 2}, x, &err), "%s",
          err.msg);
    npy_bad("xinf.npy", NULL, "xinf.npy: non-finite value -inf at row 1, element 0");
    y[5] = 3;
    CHECK(mprt_npy_save(path_of("y3.npy"), MPRT_I32, 1, (int64_t[]){6}, y, &err), "%s", err.msg);
    npy_bad(NULL, "y3.npy", "y3.npy: value 3 at row 5, element 0 is outside [0, 3)");
    CHECK(!mprt_data_open_files(NULL, &B, path_of("x6.npy"), NULL, &err) &&
              !strcmp(err.msg, "this model has no input for --data"),
          "no input: '%s'", err.msg);
    /* A .npy file for a token model is read as .npy, not as a stream of its bytes. */
    CHECK(!mprt_data_open_files(&X, &Y, path_of("x6.npy"), NULL, &err) &&
              strstr(err.msg, "x6.npy: expected i32[N, 3]"),
          "npy for a token model: '%s'", err.msg);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mprt_data_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    tokens_ok();
    tokens_errors();
    windows();
    npy_checks();
    const char *names[] = {"flat.bin", "empty.bin", "train.bin", "bad.bin",  "x6.npy", "x3.npy",
                           "y6.npy",   "y5.npy",    "xnan.npy",  "xinf.npy", "y3.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_of(names[i]));
    rmdir(dir);
    printf("test_rt_data: %s\n", failures ? "FAILED" : "ok");
    return failures != 0;
}
