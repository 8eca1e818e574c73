/*
 * test_rt_io.c: the .npy and safetensors readers and writers.
 *
 * Round trips first (what is written is read back bit for bit, metadata included), then
 * every bad-file case with the exact one-line message a user would see, files crafted
 * byte by byte here so each case breaks one thing. Last, the crash test of the atomic
 * writer: a child process saving a checkpoint over a good one is killed with SIGKILL in the
 * middle of writing (deterministically, right after the writer's first chunk: the test is
 * linked with -Wl,--wrap=write, so the runtime's write() calls land in __wrap_write below);
 * the old checkpoint must still load with its old contents.
 *
 * Files go to a fresh directory under $TMPDIR (or /tmp), removed at the end.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mprt.h"

#include "rt_check.h"

static char dir[256];

static const char *path_of(const char *name) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static size_t read_bytes(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f) fclose(f);
    return n;
}

/* ───────────────────────────── .npy ───────────────────────────── */

/* A .npy file with the given version, header text and payload. */
static const char *npy_raw(const char *name, int major, const char *hdr, const void *data,
                           size_t n) {
    static unsigned char buf[1 << 16];
    size_t h = strlen(hdr), off = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    buf[8] = (unsigned char)(h & 0xff), buf[9] = (unsigned char)(h >> 8);
    if (major != 1) buf[10] = (unsigned char)(h >> 16), buf[11] = (unsigned char)(h >> 24);
    memcpy(buf + off, hdr, h);
    if (n) memcpy(buf + off + h, data, n);
    const char *p = path_of(name);
    write_bytes(p, buf, off + h + n);
    return p;
}

/* Loads path expecting failure with exactly `want` as the message. */
static void npy_bad(const char *path, MprtDtype t, int ndim, const int64_t *shape, int64_t min_rows,
                    const char *want) {
    MprtArray a;
    MprtErr err = {""};
    bool ok = mprt_npy_load(path, t, ndim, shape, min_rows, &a, &err);
    CHECK(!ok, "%s loaded", path);
    if (ok) mprt_array_free(&a);
    char full[600];
    snprintf(full, sizeof full, "%s", want);
    if (strstr(want, "%s")) snprintf(full, sizeof full, want, path);
    CHECK(strcmp(err.msg, full) == 0, "\n  got  '%s'\n  want '%s'", err.msg, full);
    CHECK(!strchr(err.msg, '\n'), "multi-line message");
}

/* What numpy 1.x writes for np.save("x.npy", np.zeros((5, 3), np.float32)). */
#define NUMPY_HDR "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }"

static void test_npy_roundtrip(void) {
    float x[15];
    int32_t y[7];
    int64_t z[8];
    for (int i = 0; i < 15; i++)
        x[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 7; i++)
        y[i] = i * 3 - 9;
    for (int i = 0; i < 8; i++)
        z[i] = (int64_t)i << 33;
    int64_t sx[2] = {5, 3}, sy[1] = {7}, sz[2] = {4, 2};
    MprtErr err;
    CHECK(mprt_npy_save(path_of("x.npy"), MPRT_F32, 2, sx, x, &err), "%s", err.msg);
    CHECK(mprt_npy_save(path_of("y.npy"), MPRT_I32, 1, sy, y, &err), "%s", err.msg);
    CHECK(mprt_npy_save(path_of("z.npy"), MPRT_I64, 2, sz, z, &err), "%s", err.msg);
    unsigned char raw[256];
    size_t n = read_bytes(path_of("x.npy"), raw, sizeof raw);
    CHECK(n == 128 + 60 && memcmp(raw, "\x93NUMPY\x01\x00\x76\x00", 10) == 0 &&
              memcmp(raw + 10, NUMPY_HDR, sizeof NUMPY_HDR - 1) == 0 && raw[127] == '\n',
          "x.npy is not what numpy writes (%zu bytes)", n);
    MprtArray a;
    CHECK(mprt_npy_load(path_of("x.npy"), MPRT_F32, 2, sx, 5, &a, &err), "%s", err.msg);
    CHECK(a.ndim == 2 && a.shape[0] == 5 && a.numel == 15 && memcmp(a.data, x, sizeof x) == 0,
          "x round trip");
    mprt_array_free(&a);
    CHECK(mprt_npy_load(path_of("y.npy"), MPRT_I32, 1, sy, 1, &a, &err), "%s", err.msg);
    CHECK(a.numel == 7 && memcmp(a.data, y, sizeof y) == 0, "y round trip");
    mprt_array_free(&a);
    /* i32 labels read as i64, and i64 as i32 when the values fit */
    CHECK(mprt_npy_load(path_of("y.npy"), MPRT_I64, 1, sy, 1, &a, &err), "%s", err.msg);
    CHECK(a.dtype == MPRT_I64 && ((int64_t *)a.data)[0] == -9 && ((int64_t *)a.data)[6] == 9,
          "i32 -> i64");
    mprt_array_free(&a);
    int64_t small[3] = {1, -2, 2147483647}, ss[1] = {3};
    CHECK(mprt_npy_save(path_of("s.npy"), MPRT_I64, 1, ss, small, &err), "%s", err.msg);
    CHECK(mprt_npy_load(path_of("s.npy"), MPRT_I32, 1, ss, 1, &a, &err), "%s", err.msg);
    CHECK(a.dtype == MPRT_I32 && ((int32_t *)a.data)[1] == -2 &&
              ((int32_t *)a.data)[2] == 2147483647,
          "i64 -> i32");
    mprt_array_free(&a);
    npy_bad(path_of("z.npy"), MPRT_I32, 2, sz, 1,
            "%s: value 8589934592 at index 1 does not fit i32");
}

static void test_npy_versions(void) {
    float v[4] = {1, 2, 3, 4};
    int64_t s[2] = {2, 2};
    MprtErr err;
    MprtArray a;
    const char *hdr = "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}   \n";
    for (int major = 1; major <= 3; major++) {
        char name[32];
        snprintf(name, sizeof name, "v%d.npy", major);
        const char *p = npy_raw(name, major, hdr, v, sizeof v);
        CHECK(mprt_npy_load(p, MPRT_F32, 2, s, 2, &a, &err), "version %d: %s", major, err.msg);
        CHECK(memcmp(a.data, v, sizeof v) == 0, "version %d data", major);
        mprt_array_free(&a);
    }
    /* a 1-d shape is written "(4,)" */
    int64_t s1[1] = {4};
    const char *p =
        npy_raw("one.npy", 1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (4,), }\n",
                v, sizeof v);
    CHECK(mprt_npy_load(p, MPRT_F32, 1, s1, 4, &a, &err), "(4,): %s", err.msg);
    mprt_array_free(&a);
}

static void test_npy_errors(void) {
    float v[6] = {0};
    int64_t s23[2] = {2, 3}, s784[2] = {0, 784};
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    npy_bad(path_of("missing.npy"), MPRT_F32, 2, s23, 1,
            "%s: cannot open: No such file or directory");
    npy_bad(dir, MPRT_F32, 2, s23, 1, "%s: not a regular file");
    const char *p = npy_raw("magic.npy", 1, good, v, sizeof v);
    {
        unsigned char raw[256];
        size_t n = read_bytes(p, raw, sizeof raw);
        raw[1] = 'X';
        write_bytes(p, raw, n);
    }
    npy_bad(p, MPRT_F32, 2, s23, 1, "%s: not a .npy file (bad magic)");
    write_bytes(path_of("short.npy"), "\x93NUMPY\x01", 7);
    npy_bad(path_of("short.npy"), MPRT_F32, 2, s23, 1, "%s: not a .npy file (bad magic)");
    /* header cut short: the declared length runs past the end */
    write_bytes(path_of("trunc_hdr.npy"), "\x93NUMPY\x01\x00\x40\x00{'descr'", 18);
    npy_bad(path_of("trunc_hdr.npy"), MPRT_F32, 2, s23, 1,
            "%s: truncated .npy header (64 bytes declared, 8 present)");
    p = npy_raw("trunc.npy", 1, good, v, sizeof v - 4);
    npy_bad(p, MPRT_F32, 2, s23, 1,
            "%s: size mismatch: f32[2, 3] needs 24 data bytes, the file has 20");
    p = npy_raw("long.npy", 1, good, v, sizeof v);
    {
        FILE *f = fopen(p, "ab");
        fputc(0, f);
        fclose(f);
    }
    npy_bad(p, MPRT_F32, 2, s23, 1,
            "%s: size mismatch: f32[2, 3] needs 24 data bytes, the file has 25");
    p = npy_raw("ver.npy", 4, good, v, sizeof v);
    npy_bad(p, MPRT_F32, 2, s23, 1, "%s: unsupported .npy format version 4.0");
    p = npy_raw("huge.npy", 2, "", NULL, 0);
    {
        unsigned char raw[12];
        read_bytes(p, raw, 12);
        raw[10] = 0x20; /* 2 MiB */
        write_bytes(p, raw, 12);
    }
    npy_bad(p, MPRT_F32, 2, s23, 1, "%s: .npy header length 2097152 exceeds the 1 MiB limit");
    struct {
        const char *hdr, *msg;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n",
         "%s: Fortran-order arrays are not supported (save with numpy.ascontiguousarray)"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n",
         "%s: unsupported dtype '<f8' (mprt reads <f4, <i4 and <i8)"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }\n",
         "%s: unsupported dtype '>f4' (mprt reads <f4, <i4 and <i8)"},
        {"{'descr': '<f4', 'shape': (2, 3), }\n",
         "%s: bad .npy header: missing descr, fortran_order or shape"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n",
         "%s: bad .npy header: duplicate key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n",
         "%s: bad .npy header: unknown key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }\n",
         "%s: bad .npy header: expected a dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }\n",
         "%s: bad .npy header: expected ',' or ')' in shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }\n",
         "%s: bad .npy header: shape must be a tuple"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }\n",
         "%s: bad .npy header: fortran_order must be True or False"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
         "%s: bad .npy header: expected ':'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x\n",
         "%s: bad .npy header: text after the dictionary"},
        {"'descr': '<f4'\n", "%s: bad .npy header: expected '{'"},
        {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (2, 3), }\n",
         "%s: bad .npy header: control or non-ASCII character in a string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n",
         "%s: bad .npy header: more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3), }\n",
         "%s: bad .npy header: dimension too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n",
         "%s: .npy shape too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.npy", i);
        npy_bad(npy_raw(name, 1, bad[i].hdr, v, sizeof v), MPRT_F32, 2, s23, 1, bad[i].msg);
    }
    /* the file is fine, the model expects something else */
    p = npy_raw("shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 785), }\n",
                NULL, 0);
    {
        FILE *f = fopen(p, "ab");
        static float zeros[2 * 785];
        fwrite(zeros, 4, 2 * 785, f);
        fclose(f);
    }
    npy_bad(p, MPRT_F32, 2, s784, 0, "%s: expected f32[N, 784], got f32[2, 785]");
    int64_t s785[2] = {0, 785};
    npy_bad(p, MPRT_F32, 2, s785, 128, "%s: expected f32[N, 785] with N >= 128, got f32[2, 785]");
    npy_bad(p, MPRT_I32, 2, s785, 1, "%s: expected i32[N, 785], got f32[2, 785]");
    int64_t s3d[3] = {0, 2, 785};
    npy_bad(p, MPRT_F32, 3, s3d, 1, "%s: expected f32[N, 2, 785], got f32[2, 785]");
    p = npy_raw("int.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n", v,
                sizeof v);
    npy_bad(p, MPRT_F32, 2, s23, 1, "%s: expected f32[N, 3], got i32[2, 3]");
    /* the in-memory parser refuses a nonsensical expectation instead of reading past it */
    MprtArray a;
    MprtErr err;
    CHECK(!mprt_npy_parse("", 0, "mem", MPRT_F32, 0, s23, 0, &a, &err), "ndim 0 accepted");
}

/* ───────────────────────────── safetensors ───────────────────────────── */

static float w1[6] = {1, 2, 3, 4, 5, 6};
static int32_t w2[4] = {-1, 0, 1, 2};
static int64_t w3[4] = {1, (int64_t)1 << 40, 3, -4};

static bool save_three(const char *path, MprtErr *err) {
    MprtTensorRef t[3] = {
        {"fc1.weight", MPRT_F32, 2, {2, 3}, w1},
        {"step_counts", MPRT_I32, 1, {4}, w2},
        {"adam.t", MPRT_I64, 2, {2, 2}, w3},
    };
    MprtMeta meta[3] = {{"step", "10"}, {"optimizer", "adam"}, {"mpcc_version", MPRT_VERSION}};
    return mprt_st_save(path, t, 3, meta, 3, err);
}

static void test_st_roundtrip(void) {
    MprtErr err;
    const char *p = path_of("ck.safetensors");
    CHECK(save_three(p, &err), "%s", err.msg);
    unsigned char raw[1024];
    size_t n = read_bytes(p, raw, sizeof raw);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | raw[i];
    CHECK(hn % 8 == 0 && 8 + hn + 24 + 16 + 32 == n, "layout: header %llu, file %zu",
          (unsigned long long)hn, n);
    CHECK(raw[8] == '{', "header starts with JSON");
    MprtSt *f = mprt_st_open(p, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (!f) return;
    CHECK(mprt_st_count(f) == 3, "count %d", mprt_st_count(f));
    MprtTensorRef r = mprt_st_info(f, 2);
    CHECK(strcmp(r.name, "adam.t") == 0 && r.dtype == MPRT_I64 && r.ndim == 2 && r.shape[1] == 2,
          "info");
    CHECK(mprt_st_meta(f, "step") && strcmp(mprt_st_meta(f, "step"), "10") == 0, "meta step");
    CHECK(mprt_st_meta(f, "nope") == NULL, "meta missing");
    float g1[6];
    int32_t g2[4];
    int64_t g3[4], s1[2] = {2, 3}, s2[1] = {4}, s3[2] = {2, 2};
    CHECK(mprt_st_read(f, "fc1.weight", MPRT_F32, 2, s1, g1, &err), "%s", err.msg);
    CHECK(mprt_st_read(f, "step_counts", MPRT_I32, 1, s2, g2, &err), "%s", err.msg);
    CHECK(mprt_st_read(f, "adam.t", MPRT_I64, 2, s3, g3, &err), "%s", err.msg);
    CHECK(!memcmp(g1, w1, sizeof w1) && !memcmp(g2, w2, sizeof w2) && !memcmp(g3, w3, sizeof w3),
          "data round trip");
    int64_t wrong[2] = {3, 2};
    CHECK(!mprt_st_read(f, "fc1.weight", MPRT_F32, 2, wrong, g1, &err), "shape mismatch read");
    CHECK(strcmp(err.msg, "") != 0 &&
              strstr(err.msg, "tensor 'fc1.weight': expected f32[3, 2], found f32[2, 3]"),
          "%s", err.msg);
    CHECK(!mprt_st_read(f, "fc1.weight", MPRT_I32, 2, s1, g1, &err) &&
              strstr(err.msg, ": tensor 'fc1.weight': expected i32[2, 3], found f32[2, 3]"),
          "%s", err.msg);
    CHECK(!mprt_st_read(f, "fc2.weight", MPRT_F32, 2, s1, g1, &err) &&
              strstr(err.msg, ": tensor 'fc2.weight' is missing"),
          "%s", err.msg);
    mprt_st_close(f);
    /* the same bytes through the in-memory reader */
    MprtSt *m = mprt_st_open_mem(raw, n, "mem", &err);
    CHECK(m && mprt_st_read(m, "adam.t", MPRT_I64, 2, s3, g3, &err) && !memcmp(g3, w3, sizeof w3),
          "in-memory read");
    mprt_st_close(m);
    /* empty file with no tensors and no metadata is valid */
    CHECK(mprt_st_save(path_of("empty.safetensors"), NULL, 0, NULL, 0, &err), "%s", err.msg);
    f = mprt_st_open(path_of("empty.safetensors"), &err);
    CHECK(f && mprt_st_count(f) == 0, "empty");
    mprt_st_close(f);
    /* writer refuses duplicate names */
    MprtTensorRef dup[2] = {{"a", MPRT_F32, 1, {1}, w1}, {"a", MPRT_F32, 1, {1}, w1}};
    CHECK(!mprt_st_save(path_of("dup.safetensors"), dup, 2, NULL, 0, &err), "duplicate saved");
}

/* A safetensors file from a header text (padded to 8) and `data` bytes of payload. */
static const char *st_raw(const char *name, const char *json, size_t data) {
    static unsigned char buf[4096];
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(padded >> (8 * i));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    for (size_t i = 0; i < data; i++)
        buf[8 + padded + i] = (unsigned char)i;
    const char *p = path_of(name);
    write_bytes(p, buf, 8 + padded + data);
    return p;
}

static void st_bad(const char *path, const char *want) {
    MprtErr err = {""};
    MprtSt *f = mprt_st_open(path, &err);
    CHECK(!f, "%s opened", path);
    mprt_st_close(f);
    char full[600];
    snprintf(full, sizeof full, want, path);
    CHECK(strcmp(err.msg, full) == 0, "\n  got  '%s'\n  want '%s'", err.msg, full);
    CHECK(!strchr(err.msg, '\n'), "multi-line message");
}

static void test_st_errors(void) {
    MprtErr err;
    const char *good = path_of("good.safetensors");
    CHECK(save_three(good, &err), "%s", err.msg);
    unsigned char raw[1024];
    size_t n = read_bytes(good, raw, sizeof raw);
    write_bytes(path_of("t4.safetensors"), raw, 4);
    st_bad(path_of("t4.safetensors"), "%s: not a safetensors file (truncated: 4 bytes)");
    write_bytes(path_of("thdr.safetensors"), raw, 40);
    char want[200];
    snprintf(want, sizeof want, "%%s: safetensors header size %zu exceeds the file",
             (size_t)raw[0] | (size_t)raw[1] << 8);
    st_bad(path_of("thdr.safetensors"), want);
    write_bytes(path_of("tdata.safetensors"), raw, n - 3);
    st_bad(path_of("tdata.safetensors"),
           "%s: bad safetensors header: tensor 'adam.t': data_offsets beyond the end of the file");
    unsigned char big[16];
    memcpy(big, raw, 16);
    big[0] = 0, big[1] = 0xc2, big[2] = 0xeb, big[3] = 0x0b; /* 200 000 000 */
    write_bytes(path_of("big.safetensors"), big, 16);
    st_bad(path_of("big.safetensors"),
           "%s: safetensors header size 200000000 exceeds the 100 MB limit");
    {
        unsigned char extra[1024];
        memcpy(extra, raw, n);
        extra[n] = 0;
        write_bytes(path_of("extra.safetensors"), extra, n + 1);
    }
    st_bad(path_of("extra.safetensors"),
           "%s: bad safetensors header: tensors cover 72 of the 73 data bytes");
    struct {
        const char *json;
        size_t data;
        const char *msg;
    } bad[] = {
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", 8,
         "%s: bad safetensors header: invalid JSON near byte 71"},
        {"[1, 2]", 0, "%s: bad safetensors header: not a JSON object"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
         " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
         12, "%s: bad safetensors header: tensor 'b' overlaps another tensor"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
         "%s: bad safetensors header: tensor 'a' leaves a gap before it in the data"},
        {"{\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
         "%s: tensor 'a': unsupported dtype 'BF16' (mprt reads F32, I32, I64)"},
        {"{\"a\": {\"dtype\": 3, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
         "%s: bad safetensors header: tensor 'a': dtype must be a string"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
         "%s: bad safetensors header: tensor 'a': data_offsets span does not match dtype and "
         "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8,
         "%s: bad safetensors header: tensor 'a': shape dimensions must be integers >= 0"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", 8,
         "%s: bad safetensors header: tensor 'a': shape dimensions must be integers >= 0"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]}}",
         8,
         "%s: bad safetensors header: tensor 'a': shape must be an array of at most 8 dimensions"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
         "%s: bad safetensors header: tensor 'a': data_offsets must be [begin, end] with begin <= "
         "end"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8,
         "%s: bad safetensors header: tensor 'a': data_offsets must be [begin, end] with begin <= "
         "end"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": 1}}", 8,
         "%s: bad safetensors header: tensor 'a': expected an object with dtype, shape, "
         "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
         " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
         16, "%s: bad safetensors header: tensor 'a': appears twice"},
        {"{\"__metadata__\": {\"step\": 10}}", 0,
         "%s: bad safetensors header: __metadata__ values must be strings"},
        {"{\"__metadata__\": []}", 0, "%s: bad safetensors header: __metadata__ must be an object"},
        {"{\"a\\nb\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 9]}}", 9,
         "%s: bad safetensors header: tensor 'a?b': data_offsets span does not match dtype and "
         "shape"},
        {"{} x", 0, "%s: bad safetensors header: text after the JSON"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 1e300]}}", 8,
         "%s: bad safetensors header: tensor 'a': data_offsets must be [begin, end] with begin <= "
         "end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        st_bad(st_raw(name, bad[i].json, bad[i].data), bad[i].msg);
    }
    /* a hand-written valid file with a zero-size tensor and metadata */
    const char *p =
        st_raw("hand.safetensors",
               "{\"__metadata__\": {\"k\": \"v\"}, \"e\": {\"dtype\": \"I64\", \"shape\": [0, 3],"
               " \"data_offsets\": [0, 0]}, \"a\": {\"dtype\": \"I32\", \"shape\": [2],"
               " \"data_offsets\": [0, 8]}}",
               8);
    MprtSt *f = mprt_st_open(p, &err);
    CHECK(f && mprt_st_count(f) == 2 && strcmp(mprt_st_meta(f, "k"), "v") == 0, "hand-written: %s",
          f ? "" : err.msg);
    mprt_st_close(f);
}

/* ───────────────────────────── the atomic writer under SIGKILL ───────────────────────────── */

/* The runtime's write() (tests/runtime/CMakeLists.txt links this test with --wrap=write):
 * with die_after_write set, the process is killed after the first chunk it writes. */
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
static volatile sig_atomic_t die_after_write;
ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    ssize_t r = __real_write(fd, buf, n);
    if (die_after_write && r > 0) raise(SIGKILL);
    return r;
}

static void test_killed_mid_save(void) {
    const char *p = path_of("kill.safetensors");
    MprtErr err;
    CHECK(save_three(p, &err), "%s", err.msg);
    static float huge[1 << 20]; /* 4 MiB: written in several chunks */
    for (int i = 0; i < (1 << 20); i++)
        huge[i] = (float)i;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        die_after_write = 1; /* dies after the first chunk of the temp file */
        MprtTensorRef t = {"fc1.weight", MPRT_F32, 1, {1 << 20}, huge};
        mprt_st_save(p, &t, 1, NULL, 0, &err);
        _exit(0); /* not reached */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was not killed (status %d)",
          status);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)pid);
    struct stat st;
    CHECK(stat(tmp, &st) == 0 && st.st_size > 0 && st.st_size < 4 * (1 << 20),
          "the child did not die mid-write");
    unlink(tmp);
    MprtSt *f = mprt_st_open(p, &err);
    CHECK(f != NULL, "the old checkpoint is gone: %s", err.msg);
    float g1[6];
    int64_t s1[2] = {2, 3};
    CHECK(f && mprt_st_read(f, "fc1.weight", MPRT_F32, 2, s1, g1, &err) &&
              memcmp(g1, w1, sizeof w1) == 0,
          "old checkpoint's contents changed");
    mprt_st_close(f);
    /* an undisturbed save then replaces it completely */
    MprtTensorRef t = {"fc1.weight", MPRT_F32, 1, {1 << 20}, huge};
    CHECK(mprt_st_save(p, &t, 1, NULL, 0, &err), "%s", err.msg);
    f = mprt_st_open(p, &err);
    MprtTensorRef r = f ? mprt_st_info(f, 0) : (MprtTensorRef){0};
    CHECK(f && mprt_st_count(f) == 1 && r.shape[0] == (1 << 20), "new checkpoint");
    mprt_st_close(f);
    CHECK(stat(tmp, &st) != 0, "temporary file left after a good save");
}

static void cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mprt_io_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_npy_roundtrip();
    test_npy_versions();
    test_npy_errors();
    test_st_roundtrip();
    test_st_errors();
    test_killed_mid_save();
    cleanup();
    if (failures)
        fprintf(stderr, "test_rt_io: %d failures\n", failures);
    else
        printf("test_rt_io: ok\n");
    return failures != 0;
}
