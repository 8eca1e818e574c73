/*
 * test_rt_trainer.c: the runtime's trainer functions (runtime/trainer.c) over a parameter
 * table like the one a generated trainer holds, on real MPI ranks.
 *
 *   mpirun -np N test_rt_trainer S t DIR
 *
 * The table has an embedding of 101 rows split by rows over the t tensor ranks (51 rows each
 * when t = 2: the last rank's slice runs one row past the table, the case that once overflowed
 * a buffer) and a bias held whole, on the last stage (so with S = 2 the gather crosses stages).
 * Every rank fills its shards with values computed from the whole-tensor index; the test
 * saves a checkpoint (weights and two optimizer states), checks every tensor of the file on
 * rank 0 against the formula, zeroes the arenas, loads the file back and checks every shard,
 * then the error paths: a missing file, a checkpoint of another shape, of a superset of the
 * table's names or of another model (refused; --init-partial's load takes what fits). Run it under
 * ASan (tests/runtime/CMakeLists.txt) for the padding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt_trainer.h"

#define RT_CHECK_RANK (mprt_mesh()->rank)
#include "rt_check.h"

enum { VOCAB = 101, DIM = 8, NBIAS = 10 };

static MprtParam params[2];
static const char *const state_names[2] = {"m", "v"};
static MprtModel model = {"toy", 1, 1, 1, params, 2, "adam", 2, state_names, NULL, NULL, NULL};

/* The table of the plan S × 1 × t: the embedding on stage 0, the bias on stage S - 1. */
static void make_table(int S, int t) {
    int64_t chunk = (VOCAB + t - 1) / t;
    params[0] = (MprtParam){"emb.weight", 0,   2, {VOCAB, DIM},     0,    chunk * DIM, 1,
                            chunk,        DIM, t, MPRT_INIT_NORMAL, 0.0f, 0.02f};
    params[1] = (MprtParam){"out.bias",      S - 1, 1,     {NBIAS}, S == 1 ? chunk * DIM : 0,
                            NBIAS,           1,     NBIAS, 1,       1,
                            MPRT_INIT_CONST, 0.5f,  0.0f};
    model.S = S, model.t = t;
}

/* Element e of the whole tensor p in arena a: distinct for every tensor and arena. */
static float value(int p, int a, int64_t e) { return (float)(1000 * (3 * p + a) + e + 1); }

/* Fills (or with check, compares) this rank's shards in the three arenas; rows past the
 * whole tensor are zero after a load. */
static void shards(MprtArenas arena, bool check) {
    const MprtMesh *m = mprt_mesh();
    for (int i = 0; i < 2; i++) {
        const MprtParam *p = &params[i];
        if (p->stage != m->s) continue;
        int part = p->parts > 1 ? m->k : 0;
        for (int a = 0; a < 3; a++)
            for (int64_t r = 0; r < p->chunk; r++)
                for (int64_t c = 0; c < p->inner; c++) {
                    int64_t row = part * p->chunk + r, e = row * p->inner + c;
                    float *x = arena[a] + p->offset + r * p->inner + c;
                    float want = e < mprt_param_numel(p) ? value(i, a, e) : 0.0f;
                    if (!check)
                        *x = want;
                    else
                        CHECK(*x == want, "%s arena %d row %lld: %g, expected %g", p->name, a,
                              (long long)row, (double)*x, (double)want);
                }
    }
}

/* Rank 0: every tensor of the file against the formula, and the metadata. */
static void check_file(const char *path) {
    MprtErr err = {{0}};
    MprtSt *f = mprt_st_open(path, &err);
    CHECK(f != NULL, "%s", err.msg);
    if (!f) return;
    CHECK(mprt_st_count(f) == 6, "%d tensors", mprt_st_count(f));
    const char *names[3] = {"", "optimizer.m.", "optimizer.v."};
    for (int i = 0; i < 2; i++)
        for (int a = 0; a < 3; a++) {
            const MprtParam *p = &params[i];
            char name[128];
            snprintf(name, sizeof name, "%s%s", names[a], p->name);
            float whole[VOCAB * DIM];
            CHECK(mprt_st_read(f, name, MPRT_F32, p->ndim, p->shape, whole, &err), "%s", err.msg);
            for (int64_t e = 0; e < mprt_param_numel(p); e++)
                CHECK(whole[e] == value(i, a, e), "%s[%lld] = %g", name, (long long)e,
                      (double)whole[e]);
        }
    const char *step = mprt_st_meta(f, "step"), *opt = mprt_st_meta(f, "optimizer");
    CHECK(step && !strcmp(step, "42"), "step %s", step ? step : "(none)");
    CHECK(opt && !strcmp(opt, "adam"), "optimizer %s", opt ? opt : "(none)");
    CHECK(mprt_st_meta(f, "model") && !strcmp(mprt_st_meta(f, "model"), "toy"), "model");
    char fp[MPRT_FINGERPRINT_LEN];
    mprt_ckpt_fingerprint(&model, fp);
    CHECK(mprt_st_meta(f, "params") && !strcmp(mprt_st_meta(f, "params"), fp), "params");
    mprt_st_close(f);
}

static void round_trip(MprtArenas arena, int64_t n, const char *path) {
    shards(arena, false);
    MprtErr err = {{0}};
    CHECK(mprt_ckpt_save(&model, arena, path, 42, &err), "save: %s", err.msg);
    mprt_exit_if_any(false, ""); /* collective: the file is written before anyone reads it */
    if (mprt_mesh()->rank == 0) check_file(path);
    for (int a = 0; a < 3; a++)
        memset(arena[a], 0, sizeof(float) * (size_t)n);
    int64_t step = -1;
    CHECK(mprt_ckpt_load(&model, arena, path, true, &step, &err), "load: %s", err.msg);
    CHECK(step == 42, "step %lld", (long long)step);
    shards(arena, true);
    /* weights only: the optimizer arenas and the step stay as they are */
    memset(arena[1], 0, sizeof(float) * (size_t)n);
    step = -1;
    CHECK(mprt_ckpt_load(&model, arena, path, false, &step, &err), "load: %s", err.msg);
    CHECK(step == -1 && arena[1][0] == 0.0f, "a weights-only load touched the state");
}

static void errors(MprtArenas arena, const char *dir) {
    char path[1024];
    MprtErr err = {{0}};
    int64_t step = 0;
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK(!mprt_ckpt_load(&model, arena, path, true, &step, &err) && strstr(err.msg, path),
          "a missing file: '%s'", err.msg);
    /* the file of this table under a model whose bias has another length: refused by the
     * fingerprint on every rank before a tensor is read; a partial start reads the bias and
     * stops at its shape, on the rank that holds it */
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    params[1].shape[0] = NBIAS + 1;
    err.msg[0] = 0;
    bool ok = mprt_ckpt_load(&model, arena, path, false, &step, &err);
    CHECK(!ok && strstr(err.msg, "with another parameter table") && !strchr(err.msg, '\n'),
          "a shape mismatch: '%s'", err.msg);
    int loaded = -1;
    ok = mprt_ckpt_load_partial(&model, arena[0], path, &loaded, &err);
    bool holds = params[1].stage == mprt_mesh()->s; /* only its stage reads the bias */
    CHECK(holds ? !ok && strstr(err.msg, "out.bias") : ok, "partial, bad shape: '%s'", err.msg);
    params[1].shape[0] = NBIAS;
    /* a model whose names are a subset of the file's (the embedding only) is refused: the file
     * would otherwise load silently; a deliberate partial start loads its one tensor */
    MprtModel sub = model;
    sub.nparams = 1;
    ok = mprt_ckpt_load(&sub, arena, path, true, &step, &err);
    CHECK(!ok && strstr(err.msg, "another parameter table"), "a superset file: '%s'", err.msg);
    ok = mprt_ckpt_load_partial(&sub, arena[0], path, &loaded, &err);
    CHECK(ok && loaded == 1, "partial: %d loaded, '%s'", loaded, err.msg);
    /* another model's name, with the same table */
    sub = model;
    sub.name = "other";
    ok = mprt_ckpt_load(&sub, arena, path, false, &step, &err);
    CHECK(!ok && strstr(err.msg, "a checkpoint of model 'toy', not of 'other'"), "name: '%s'",
          err.msg);
    /* the fingerprint: in the file, the same for every plan (order and splits left out),
     * different for another shape */
    char fp[MPRT_FINGERPRINT_LEN], fp2[MPRT_FINGERPRINT_LEN];
    mprt_ckpt_fingerprint(&model, fp);
    MprtParam swapped[2] = {params[1], params[0]};
    swapped[0].stage = 7, swapped[1].parts = 3, swapped[1].offset = 99;
    sub = model;
    sub.params = swapped;
    mprt_ckpt_fingerprint(&sub, fp2);
    CHECK(strlen(fp) == 16 && !strcmp(fp, fp2), "plan-independent: %s vs %s", fp, fp2);
    swapped[0].shape[0] = NBIAS + 1;
    mprt_ckpt_fingerprint(&sub, fp2);
    CHECK(strcmp(fp, fp2) != 0, "a shape must change the fingerprint");
}

static void counts(int t) {
    CHECK(mprt_param_numel(&params[0]) == VOCAB * DIM, "numel");
    int64_t padded = (int64_t)((VOCAB + t - 1) / t) * t * DIM;
    CHECK(mprt_param_padded(&params[0]) == padded, "padded %lld",
          (long long)mprt_param_padded(&params[0]));
    CHECK(mprt_param_padded(&params[1]) == NBIAS, "padded bias");
}

/* Initial values: the constant bias, and the embedding's shard equal to its slice of the
 * whole tensor drawn on one rank. */
static void init(float *arena) {
    const MprtMesh *m = mprt_mesh();
    mprt_params_init(&model, arena, 5);
    const MprtParam *b = &params[1], *w = &params[0];
    if (b->stage == m->s)
        for (int i = 0; i < NBIAS; i++)
            CHECK(arena[b->offset + i] == 0.5f, "bias %d", i);
    if (w->stage != m->s) return;
    float *whole = calloc((size_t)mprt_param_padded(w), sizeof(float));
    MprtRng r = mprt_rng(5, mprt_rng_name_id(w->name));
    mprt_rng_fill_normal(r, 0, VOCAB * DIM, 0.0f, 0.02f, whole);
    int part = w->parts > 1 ? m->k : 0;
    for (int64_t e = 0; e < w->count; e++) {
        int64_t g = part * w->count + e;
        float want = g < VOCAB * DIM ? whole[g] : arena[w->offset + e];
        CHECK(arena[w->offset + e] == want, "init %lld", (long long)e);
    }
    free(whole);
}

/* The command line: defaults, every flag kind, the one-line errors, the device's flags. */
static void args(void) {
    MprtTrainer t = {.model = &model, .batch = 8, .default_steps = 20, .default_seed = 7};
    MprtArgs a;
    char err[256];
    char *ok[] = {"train", "--steps",   "5",     "--seed", "9",    "--log-every",
                  "0",     "--threads", "99999", "--save", "c.st", NULL};
    CHECK(!mprt_args_parse(&t, 11, ok, &a, err, sizeof err), "%s", err);
    CHECK(a.steps == 5 && a.seed == 9 && a.log_every == 1 && a.threads == 4096 && a.save &&
              !strcmp(a.save, "c.st") && !a.data && !a.help,
          "parsed %lld %llu %lld %d", (long long)a.steps, (unsigned long long)a.seed,
          (long long)a.log_every, a.threads);
    char *none[] = {"train", NULL};
    CHECK(!mprt_args_parse(&t, 1, none, &a, err, sizeof err) && a.steps == 20 && a.seed == 7,
          "defaults");
    char *bad[][3] = {{"train", "--bogus", NULL},
                      {"train", "--steps", "x"},
                      {"train", "--save", NULL},
                      {"train", "--tf32", NULL},
                      {"train", "--comm", "mpi"}};
    const char *want[] = {"unknown flag '--bogus' (try --help)",
                          "--steps needs a non-negative integer", "--save needs a file name",
                          "unknown flag '--tf32' (try --help)",
                          "unknown flag '--comm' (try --help)"};
    for (int i = 0; i < 5; i++) {
        const char *msg = mprt_args_parse(&t, bad[i][2] ? 3 : 2, bad[i], &a, err, sizeof err);
        CHECK(msg && !strcmp(msg, want[i]), "case %d: '%s'", i, msg ? msg : "(none)");
    }
    t.device = true; /* the CUDA trainer's flags */
    char *dev[] = {"train", "--tf32", "--comm", "mpi", "-h", NULL};
    CHECK(!mprt_args_parse(&t, 5, dev, &a, err, sizeof err) && a.tf32 && a.help && a.comm &&
              !strcmp(a.comm, "mpi"),
          "device flags");
}

/* Inputs (trainer_data.c): rows of a file wrap around its end; integers outside the range
 * are refused with the file, the value and its index; synthetic samples depend only on their
 * index in the data set (so a run of rows equals the same rows drawn one by one). */
static void data(const char *dir) {
    char path[1024];
    MprtErr err = {0};
    snprintf(path, sizeof path, "%s/labels%d.npy", dir, mprt_mesh()->rank);
    int32_t y[5] = {0, 1, 2, 3, 4}, got[7];
    int64_t yshape[1] = {5};
    CHECK(mprt_npy_save(path, MPRT_I32, 1, yshape, y, &err), "%s", err.msg);
    MprtDataFile file = {{MPRT_I32, 0, {0}, 0, NULL}, NULL, 0};
    MprtData d = {"data.y", MPRT_I32, 1, {4}, 5, &file, NULL};
    CHECK(mprt_data_open(&d, path, &err), "%s", err.msg);
    CHECK(mprt_data_row(&d) == 1, "row %lld", (long long)mprt_data_row(&d));
    mprt_data_rows(&d, 1, 3, 7, got); /* samples 3, 4, 0, 1, ... of the 5 in the file */
    for (int q = 0; q < 7; q++)
        CHECK(got[q] == (3 + q) % 5, "file row %d: %d", q, got[q]);
    mprt_data_close(&d);
    d.range = 4; /* the file holds a 4 */
    CHECK(!mprt_data_open(&d, path, &err) && strstr(err.msg, path) &&
              strstr(err.msg, "value 4 at row 4, element 0 is outside [0, 4)"),
          "range: '%s'", err.msg);
    mprt_data_close(&d);
    float x[2][3], one[3];
    MprtData dx = {"data.x", MPRT_F32, 2, {8, 3}, 0, &file, NULL};
    mprt_data_rows(&dx, 9, 14, 2, x); /* samples 14 and 15: fresh every step, no wrapping */
    for (int q = 0; q < 2; q++) {
        mprt_data_rows(&dx, 9, 14 + q, 1, one);
        CHECK(!memcmp(x[q], one, sizeof one) && x[q][0] != x[q][1], "synthetic row %d", q);
    }
    int32_t syn[8];
    d.range = 3;
    mprt_data_rows(&d, 2, 0, 8, syn);
    for (int q = 0; q < 8; q++)
        CHECK(syn[q] >= 0 && syn[q] < 3, "synthetic %d",
              q); /* trainer_teacher.c: test_rt_teacher */
    float *z = mprt_falloc(4);
    CHECK(z[0] == 0.0f && z[3] == 0.0f, "falloc zeroes");
    free(z);
}

int main(int argc, char **argv) {
    int S = argc > 2 ? atoi(argv[1]) : 1, t = argc > 2 ? atoi(argv[2]) : 1;
    const char *dir = argc > 3 ? argv[3] : ".";
    mprt_init(&argc, &argv, S, 1, t);
    make_table(S, t);
    int64_t n = params[0].count + params[1].count + 1;
    MprtArenas arena;
    for (int a = 0; a < 3; a++)
        arena[a] = calloc((size_t)n, sizeof(float));
    char path[1024];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    counts(t);
    args();
    data(dir);
    round_trip(arena, n, path);
    errors(arena, dir);
    init(arena[0]);
    for (int a = 0; a < 3; a++)
        free(arena[a]);
    double bad = failures;
    mprt_metric_sum(MPRT_WORLD, &bad, 1);
    if (mprt_mesh()->rank == 0)
        printf("test_rt_trainer %d x 1 x %d: %s\n", S, t, bad != 0 ? "FAILED" : "ok");
    mprt_finalize();
    return failures != 0;
}
