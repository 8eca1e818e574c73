/*
 * trainer.c: the model-independent part of every generated trainer (mprt_trainer.h) — initial
 * weights, whole-tensor gathers, and the one checkpoint writer and reader.
 *
 * Checkpoints hold whole tensors so that any plan resumes any other plan's file: saving
 * gathers each shard over the tensor group of its stage and sends the tensor to world rank 0,
 * which writes the file; loading reads the whole tensor on every rank and keeps the slice that
 * rank holds. The gathers run while the byte counters are paused: they are not training
 * traffic, and the trainer's counted-vs-predicted check must not see them.
 *
 * A split that does not divide its dimension (an embedding of 101 rows over 2 tensor ranks
 * holds 51 rows per rank) makes the last rank's slice run past the tensor. Every whole-tensor
 * buffer here is therefore mprt_param_padded() floats, zeroed past the tensor, never
 * mprt_param_numel(): the gather writes parts·chunk rows, and the slice of the last rank reads
 * them (the padding rows of a shard are then zeros, which the kernels never read as tokens).
 * A split of a middle dimension (an LM head's classes: outer = its input features) pads every
 * outer row: gathers drop the padding (whole_unpad) and slices put it back (whole_pad), and
 * initial values are drawn at the unpadded index, so every plan starts from the same weights.
 */
#define _POSIX_C_SOURCE 200809L
#include "mprt_trainer.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { CKPT_TAG = 7 }; /* the point-to-point tag of checkpoint gathers */

int64_t mprt_param_numel(const MprtParam *p) {
    int64_t n = 1;
    for (int k = 0; k < p->ndim; k++)
        n *= p->shape[k];
    return n;
}

int64_t mprt_param_padded(const MprtParam *p) {
    int64_t n = p->outer * p->parts * p->chunk * p->inner, w = mprt_param_numel(p);
    return n > w ? n : w;
}

/* This rank's tensor rank in p's split (0 when p is whole on every rank). */
static int param_part(const MprtParam *p) { return p->parts > 1 ? mprt_mesh()->k : 0; }

/* Floats of one outer row of p's whole tensor (w) and of its gathered shards (g ≥ w: a split
 * that does not divide rounds the chunk up). */
static void row_floats(const MprtParam *p, int64_t *w, int64_t *g) {
    *w = mprt_param_numel(p) / p->outer;
    *g = (int64_t)p->parts * p->chunk * p->inner;
}

/* Gathered shards (outer rows of g floats) to the whole tensor (rows of w), in place: when the
 * split is a middle dimension (an LM head's classes, outer = its inputs) each row's padding
 * sits inside the buffer, not only at its end. */
static void whole_unpad(const MprtParam *p, float *buf) {
    int64_t w, g;
    row_floats(p, &w, &g);
    if (w == g) return;
    for (int64_t o = 1; o < p->outer; o++)
        memmove(buf + o * w, buf + o * g, sizeof(float) * (size_t)w);
}

/* The reverse, for slicing: rows of w floats spread to rows of g, each padded with zeros. */
static void whole_pad(const MprtParam *p, float *buf) {
    int64_t w, g;
    row_floats(p, &w, &g);
    if (w == g) return;
    for (int64_t o = p->outer - 1; o >= 0; o--) {
        memmove(buf + o * g, buf + o * w, sizeof(float) * (size_t)w);
        memset(buf + o * g + w, 0, sizeof(float) * (size_t)(g - w));
    }
}

/* Initial values of p's shard `part` into dst: each element drawn at its index in the whole
 * tensor, so every plan starts from the same weights. Under a split that does not divide, the
 * shard's padding past the tensor is zero. */
static void init_shard(MprtRng r, const MprtParam *p, int part, float *dst) {
    int64_t w, g;
    row_floats(p, &w, &g);
    bool uni = p->init == MPRT_INIT_UNIFORM;
    if (w == g) {
        if (uni)
            mprt_rng_shard_uniform(r, p->outer, p->chunk, p->inner, p->parts, part, p->a, p->b,
                                   dst);
        else
            mprt_rng_shard_normal(r, p->outer, p->chunk, p->inner, p->parts, part, 0.0f, p->b, dst);
        return;
    }
    int64_t row = p->chunk * p->inner, first = part * row;
    int64_t n = first >= w ? 0 : (w - first < row ? w - first : row);
    for (int64_t o = 0; o < p->outer; o++) {
        uint64_t at = (uint64_t)(o * w + first);
        float *d = dst + o * row;
        if (uni)
            mprt_rng_fill_uniform(r, at, n, p->a, p->b, d);
        else
            mprt_rng_fill_normal(r, at, n, 0.0f, p->b, d);
        memset(d + n, 0, sizeof(float) * (size_t)(row - n));
    }
}

void mprt_params_init(const MprtModel *m, float *arena, uint64_t seed) {
    const MprtMesh *mesh = mprt_mesh();
    for (int i = 0; i < m->nparams; i++) {
        const MprtParam *p = &m->params[i];
        if (p->stage != mesh->s) continue;
        MprtRng r = mprt_rng(seed, mprt_rng_name_id(p->name));
        float *dst = m->upload ? mprt_falloc(p->count) : arena + p->offset;
        int part = param_part(p);
        if (p->init == MPRT_INIT_UNIFORM || p->init == MPRT_INIT_NORMAL)
            init_shard(r, p, part, dst);
        else
            mprt_fill(dst, p->count, p->init == MPRT_INIT_CONST ? p->a : 0.0f);
        if (m->upload) {
            m->upload(arena + p->offset, dst, sizeof(float) * (size_t)p->count);
            free(dst);
        }
    }
}

/* p's shard of `arena` as a host pointer: the arena itself, or a downloaded copy (*copy). */
static const float *host_shard(const MprtModel *m, const MprtParam *p, const float *arena,
                               float **copy) {
    *copy = NULL;
    if (!m->download) return arena + p->offset;
    *copy = mprt_falloc(p->count);
    m->download(*copy, arena + p->offset, sizeof(float) * (size_t)p->count);
    return *copy;
}

static void check_mpi(int rc, const char *call) {
    if (rc != MPI_SUCCESS) mprt_fatal("%s of a checkpoint tensor failed (MPI error %d)", call, rc);
}

/* The stage's tensor to world rank 0, under the communication timeout (comm_wait.c). */
static void ckpt_transfer(bool send, float *whole, int64_t n, int peer) {
    MPI_Request rq;
    if (send)
        check_mpi(MPI_Isend(whole, (int)n, MPI_FLOAT, peer, CKPT_TAG, MPI_COMM_WORLD, &rq),
                  "MPI_Isend");
    else
        check_mpi(MPI_Irecv(whole, (int)n, MPI_FLOAT, peer, CKPT_TAG, MPI_COMM_WORLD, &rq),
                  "MPI_Irecv");
    check_mpi(mprt__wait(&rq, send ? "MPI_Send (checkpoint)" : "MPI_Recv (checkpoint)", "world"),
              send ? "MPI_Send" : "MPI_Recv");
}

float *mprt_param_gather(const MprtModel *m, const MprtParam *p, const float *arena) {
    const MprtMesh *mesh = mprt_mesh();
    int64_t n = mprt_param_numel(p);
    float *whole = NULL;
    if (mesh->s == p->stage) {
        float *copy;
        const float *shard = host_shard(m, p, arena, &copy);
        whole = mprt_falloc(mprt_param_padded(p));
        if (p->parts > 1) {
            mprt_allgather(MPRT_TENSOR, shard, whole, p->outer, p->chunk, p->inner);
            whole_unpad(p, whole);
        } else
            memcpy(whole, shard, sizeof(float) * (size_t)n);
        free(copy);
    }
    if (p->stage == 0) { /* world rank 0 is the first rank of stage 0 */
        if (mesh->rank != 0) free(whole), whole = NULL;
        return whole;
    }
    int owner = p->stage * m->d * m->t;
    if (mesh->rank == owner) ckpt_transfer(true, whole, n, 0);
    free(whole);
    if (mesh->rank != 0) return NULL;
    whole = mprt_falloc(mprt_param_padded(p));
    ckpt_transfer(false, whole, n, owner);
    return whole;
}

/* Tensor i of a checkpoint: parameter i % nparams, as itself (i < nparams) or as optimizer
 * state i / nparams - 1. Its name goes into buf. */
static const MprtParam *ckpt_tensor(const MprtModel *m, int i, char *buf, size_t n, int *which) {
    const MprtParam *p = &m->params[i % m->nparams];
    *which = i / m->nparams;
    if (*which == 0)
        snprintf(buf, n, "%s", p->name);
    else
        snprintf(buf, n, "optimizer.%s.%s", m->state_names[*which - 1], p->name);
    return p;
}

/* FNV-1a 64 of n bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001B3ull;
    return h;
}

void mprt_ckpt_fingerprint(const MprtModel *m, char out[MPRT_FINGERPRINT_LEN]) {
    uint64_t sum = 0;
    for (int i = 0; i < m->nparams; i++) {
        const MprtParam *p = &m->params[i];
        char dims[160];
        int n = snprintf(dims, sizeof dims, "|f32|%d", p->ndim);
        for (int k = 0; k < p->ndim && n > 0 && n < (int)sizeof dims; k++)
            n += snprintf(dims + n, sizeof dims - (size_t)n, ",%lld", (long long)p->shape[k]);
        uint64_t h = fnv(0xCBF29CE484222325ull, p->name, strlen(p->name) + 1);
        sum += mprt_mix64(fnv(h, dims, strlen(dims))); /* a sum: the table's order is free */
    }
    snprintf(out, MPRT_FINGERPRINT_LEN, "%016llx", (unsigned long long)sum);
}

/* ZeRO: whole optimizer-state arenas of this rank's stage in w[1..nstate] (w[0] the weights,
 * whole too under bf16's sharded master weights: mprt_zero_weights), gathered from the parts in
 * `arena` when `gather` (for a save), zeros otherwise (a load fills them); without ZeRO, w is
 * `arena` itself. free_whole releases what this made. */
static void whole_state(const MprtModel *m, MprtArenas arena, MprtArenas w, bool gather) {
    memcpy(w, arena, sizeof(MprtArenas));
    if (!m->zero) return;
    w[0] = mprt_zero_weights(m, arena[0], gather); /* bf16's sharded master weights */
    int64_t n = m->zero->stage_floats[mprt_mesh()->s] + 1;
    int64_t ns = mprt_zero_shard_floats(m->zero, mprt_mesh()->s);
    for (int i = 0; i < m->nstate; i++) {
        w[1 + i] = mprt_falloc(n);
        memset(w[1 + i], 0, sizeof(float) * (size_t)n);
        if (!gather) continue;
        const float *parts = arena[1 + i];
        float *copy = NULL; /* a device trainer's parts, downloaded */
        if (m->download) {
            copy = mprt_falloc(ns + 1);
            m->download(copy, parts, sizeof(float) * (size_t)ns);
            parts = copy;
        }
        mprt_zero_gather(m->zero, parts, w[1 + i]);
        free(copy);
    }
}

/* The model as the arena `which` is read and written in a checkpoint: whole_state's state
 * arenas are host memory even for a device trainer (ZeRO), so no download or upload. */
static const MprtModel *arena_model(const MprtModel *m, int which, MprtModel *host) {
    if (which == 0 || !m->zero || !m->download) return m;
    *host = *m;
    host->download = NULL, host->upload = NULL;
    return host;
}

/* After a load: this rank's parts of the whole state `full` into its shard arena `parts`
 * (device memory for a device trainer). */
static void take_state(const MprtModel *m, const float *full, float *parts) {
    if (!m->upload) {
        mprt_zero_take(m->zero, full, parts);
        return;
    }
    int64_t ns = mprt_zero_shard_floats(m->zero, mprt_mesh()->s);
    float *copy = mprt_falloc(ns + 1);
    mprt_zero_take(m->zero, full, copy);
    m->upload(parts, copy, sizeof(float) * (size_t)ns);
    free(copy);
}

static void free_whole(const MprtModel *m, MprtArenas w, MprtArenas sharded, bool put) {
    if (m->zero) mprt_zero_weights_done(m, w[0], sharded[0], put);
    for (int i = 0; m->zero && i < m->nstate; i++)
        free(w[1 + i]);
}

bool mprt_ckpt_save(const MprtModel *m, MprtArenas sharded, const char *path, int64_t step,
                    MprtErr *err) {
    MprtArenas arena;
    whole_state(m, sharded, arena, true);
    int nt = m->nparams * (1 + m->nstate);
    MprtTensorRef *refs = calloc((size_t)nt + 1, sizeof *refs);
    char **names = calloc((size_t)nt + 1, sizeof *names);
    float **data = calloc((size_t)nt + 1, sizeof *data);
    if (!refs || !names || !data) mprt_fatal("out of memory");
    mprt_stats_pause();
    for (int i = 0; i < nt; i++) {
        int which;
        size_t len = strlen(m->params[i % m->nparams].name) + 64;
        if (!(names[i] = malloc(len))) mprt_fatal("out of memory");
        const MprtParam *p = ckpt_tensor(m, i, names[i], len, &which);
        MprtModel host;
        data[i] = mprt_param_gather(arena_model(m, which, &host), p, arena[which]);
        refs[i] = (MprtTensorRef){names[i], MPRT_F32, p->ndim, {0}, data[i]};
        for (int k = 0; k < p->ndim; k++)
            refs[i].shape[k] = p->shape[k];
    }
    char stepstr[32];
    snprintf(stepstr, sizeof stepstr, "%lld", (long long)step);
    char fp[MPRT_FINGERPRINT_LEN];
    mprt_ckpt_fingerprint(m, fp);
    MprtMeta meta[4] = {
        {"step", stepstr}, {"model", m->name}, {"optimizer", m->optimizer}, {"params", fp}};
    bool ok = mprt_mesh()->rank != 0 || mprt_st_save(path, refs, nt, meta, 4, err);
    for (int i = 0; i < nt; i++)
        free(data[i]), free(names[i]);
    free(refs), free(names), free(data);
    mprt_stats_resume();
    free_whole(m, arena, sharded, false);
    return ok;
}

/* Reads tensor `name` whole and keeps this rank's slice of it in arena at p's offset. */
static bool read_shard(const MprtModel *m, MprtSt *f, const MprtParam *p, const char *name,
                       float *arena, MprtErr *err) {
    float *whole = mprt_falloc(mprt_param_padded(p));
    bool ok = mprt_st_read(f, name, MPRT_F32, p->ndim, p->shape, whole, err);
    float *shard = m->upload ? mprt_falloc(p->count) : arena + p->offset;
    if (ok) whole_pad(p, whole);
    if (ok) mprt_slice(whole, shard, p->outer, p->chunk, p->inner, p->parts, param_part(p));
    if (m->upload) {
        if (ok) m->upload(arena + p->offset, shard, sizeof(float) * (size_t)p->count);
        free(shard);
    }
    free(whole);
    return ok;
}

/* The metadata's step: a decimal integer in 0..MPRT_MAX_STEPS (the data loaders index with
 * step × batch, which must not overflow however the file was made). */
static bool read_step(MprtSt *f, const char *path, int64_t *step, MprtErr *err) {
    const char *s = mprt_st_meta(f, "step");
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || !*s || !end || *end || errno || v < 0 || v > MPRT_MAX_STEPS)
        return mprt__err(err, "%s: no valid step in the metadata (expected 0..%lld)", path,
                         (long long)MPRT_MAX_STEPS);
    *step = (int64_t)v;
    return true;
}

/* A file of another model, or of another parameter table under the same name, is refused
 * before any tensor is read: a superset of this model's names would otherwise load silently. */
static bool check_identity(const MprtModel *m, MprtSt *f, const char *path, MprtErr *err) {
    const char *model = mprt_st_meta(f, "model"), *fp = mprt_st_meta(f, "params");
    char want[MPRT_FINGERPRINT_LEN];
    mprt_ckpt_fingerprint(m, want);
    if (!model || strcmp(model, m->name))
        return mprt__err(err,
                         "%s: a checkpoint of model '%.80s', not of '%.80s' (to start from "
                         "the tensors that fit, deliberately: --init-partial)",
                         path, model ? model : "(none)", m->name);
    if (!fp || strcmp(fp, want))
        return mprt__err(err,
                         "%s: model '%.80s' with another parameter table (fingerprint %.20s, "
                         "expected %s: names, shapes or dtypes differ; to start from the tensors "
                         "that fit, deliberately: --init-partial)",
                         path, m->name, fp ? fp : "(none)", want);
    /* the file's own tensors, not only its word: its weights must be exactly the table's
     * (each is read below, so equal counts of unique names mean equal sets) */
    int weights = 0;
    for (int i = 0; i < mprt_st_count(f); i++)
        weights += strncmp(mprt_st_info(f, i).name, "optimizer.", 10) != 0;
    if (weights != m->nparams)
        return mprt__err(err,
                         "%s: holds %d parameter tensors, model '%.80s' has %d (to start from "
                         "the tensors that fit, deliberately: --init-partial)",
                         path, weights, m->name, m->nparams);
    return true;
}

bool mprt_ckpt_load(const MprtModel *m, MprtArenas sharded, const char *path, bool state,
                    int64_t *step, MprtErr *err) {
    MprtArenas arena;
    whole_state(m, sharded, arena, false);
    MprtSt *f = mprt_st_open(path, err);
    bool ok = f != NULL && check_identity(m, f, path, err);
    for (int i = 0; ok && i < m->nparams * (state ? 1 + m->nstate : 1); i++) {
        char name[512];
        int which;
        const MprtParam *p = ckpt_tensor(m, i, name, sizeof name, &which);
        MprtModel host;
        const MprtModel *am = arena_model(m, which, &host);
        if (p->stage == mprt_mesh()->s) ok = read_shard(am, f, p, name, arena[which], err);
    }
    if (ok && state) ok = read_step(f, path, step, err);
    if (f) mprt_st_close(f);
    for (int i = 0; ok && state && m->zero && i < m->nstate; i++)
        take_state(m, arena[1 + i], sharded[1 + i]);
    free_whole(m, arena, sharded, ok);
    return ok;
}

static bool st_has(const MprtSt *f, const char *name) {
    for (int i = 0; i < mprt_st_count(f); i++)
        if (!strcmp(mprt_st_info(f, i).name, name)) return true;
    return false;
}

bool mprt_ckpt_load_partial(const MprtModel *m, float *weights, const char *path, int *loaded,
                            MprtErr *err) {
    float *parts = weights; /* bf16 under ZeRO: the master weights' parts */
    weights = mprt_zero_weights(m, parts, true);
    MprtSt *f = mprt_st_open(path, err);
    bool ok = f != NULL;
    *loaded = 0;
    for (int i = 0; ok && i < m->nparams; i++) {
        const MprtParam *p = &m->params[i];
        if (!st_has(f, p->name)) continue;
        ++*loaded;
        if (p->stage == mprt_mesh()->s) ok = read_shard(m, f, p, p->name, weights, err);
    }
    if (ok && *loaded == 0)
        ok = mprt__err(err, "%s: holds none of model '%.80s''s %d parameter tensors", path, m->name,
                       m->nparams);
    if (f) mprt_st_close(f);
    mprt_zero_weights_done(m, weights, parts, ok);
    return ok;
}
