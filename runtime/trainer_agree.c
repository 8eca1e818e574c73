/*
 * trainer_agree.c: at start-up every rank of a trainer checks, in one collective, that all
 * ranks run the same plan with the same flags (mprt_trainer.h, mprt_agree).
 *
 * Without it, an MPMD launch of two plans of one model (d = 2 on one rank, t = 2 on the other)
 * or a different --steps, --save or --profile on one rank hangs in the first collective one
 * rank makes and the other does not, and a different --seed or --data trains on silently,
 * each replica on other samples. Each rank hashes the plan (the model's name, its parameter
 * table with every stage, split and offset, the mesh, the batch, the optimizer and the bytes
 * every collective is predicted to move) and every flag that must match into a row of
 * 64-bit values; one MPI_Allgather gives every rank every row, and every rank finds the same
 * first difference (lowest rank, then first setting), so all stop together with one message
 * from rank 0 naming the rank and the setting.
 *
 * The C API's create and configure agree the same way on the plan and the config every rank
 * passed (mprt_agree_settings), but return the message instead of ending the job.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mprt_trainer.h"

/* FNV-1a 64 of n bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001B3ull;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) {
    return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "\xff", 1); /* NULL differs from "" */
}

static uint64_t fnv_i64(uint64_t h, int64_t v) { return fnv(h, &v, sizeof v); }

/* The plan: everything of the trainer's tables a rank's collectives depend on. */
static uint64_t plan_hash(const MprtTrainer *t) {
    const MprtModel *m = t->model;
    uint64_t h = fnv_str(0xCBF29CE484222325ull, m->name);
    h = fnv_str(fnv_str(h, m->optimizer), t->device ? "device" : "host");
    int64_t head[5] = {m->S, m->d, m->t, t->batch, m->nparams};
    for (int i = 0; i < 5; i++)
        h = fnv_i64(h, head[i]);
    for (int i = 0; i < m->nparams; i++) {
        const MprtParam *p = &m->params[i];
        int64_t v[8] = {p->stage, p->ndim,  p->offset, p->count,
                        p->outer, p->chunk, p->inner,  p->parts};
        h = fnv_str(h, p->name);
        for (int k = 0; k < 8; k++)
            h = fnv_i64(h, v[k]);
        for (int k = 0; k < p->ndim; k++)
            h = fnv_i64(h, p->shape[k]);
    }
    for (int i = 0; i < t->npredicted; i++) {
        const MprtPredicted *q = &t->predicted[i];
        int64_t v[4] = {q->stage, q->group, q->coll, q->bytes};
        for (int k = 0; k < 4; k++)
            h = fnv_i64(h, v[k]);
    }
    return h;
}

enum { NSET = 21 };
static const char *const set_names[NSET] = {
    "plan (mesh, parameter table, batch, optimizer or predicted traffic: another trainer?)",
    "--steps",
    "--seed",
    "--data",
    "--labels",
    "--init",
    "--init-partial",
    "--resume",
    "--save",
    "--save-every",
    "--log-every",
    "--profile",
    "--comm",
    "--val-data",
    "--val-labels",
    "--eval-every",
    "--val-batches",
    "--trace",
    "--trace-steps",
    "--generate",
    "--comm-timeout (or MPRT_COMM_TIMEOUT)"};

/* This rank's row: the plan's hash, then each setting's. */
static void row(const MprtTrainer *t, const MprtArgs *a, uint64_t v[NSET]) {
    const uint64_t h0 = 0xCBF29CE484222325ull;
    v[0] = plan_hash(t);
    v[1] = fnv_i64(h0, a->steps);
    v[2] = fnv(h0, &a->seed, sizeof a->seed);
    const char *const paths[6] = {a->data, a->labels, a->init, a->init_partial, a->resume, a->save};
    for (int i = 0; i < 6; i++)
        v[3 + i] = fnv_str(h0, paths[i]);
    v[9] = fnv_i64(h0, a->save_every);
    v[10] = fnv_i64(h0, a->log_every);
    v[11] = fnv_str(h0, a->profile);
    v[12] = fnv_str(h0, a->comm);
    v[13] = fnv_str(h0, a->val_data);
    v[14] = fnv_str(h0, a->val_labels);
    v[15] = fnv_i64(h0, a->eval_every);
    v[16] = fnv_i64(h0, a->val_batches);
    v[17] = fnv_str(h0, a->trace); /* the trace is gathered: a collective of its own */
    v[18] = fnv_i64(h0, a->trace ? a->trace_steps : 0);
    v[19] = fnv_i64(h0, a->generate);
    double timeout = mprt_comm_timeout(); /* a rank with none would not answer the others */
    v[20] = fnv(h0, &timeout, sizeof timeout);
}

/* Every rank's row of n hashes, gathered on every rank: the lowest rank whose row differs from
 * rank 0's, with the first setting it differs in (*set), or -1 when all agree. Collective over
 * the world; needs MPI only, not mprt_init (the C API agrees before it makes the mesh). */
static int first_difference(const uint64_t *mine, int n, int *set) {
    int size = 1, bad = -1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    uint64_t *all = calloc((size_t)size * (size_t)n, sizeof *all);
    if (!all) mprt_fatal("out of memory agreeing on the plan");
    MPI_Request rq;
    int rc = MPI_Iallgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, MPI_COMM_WORLD, &rq);
    if (rc == MPI_SUCCESS) rc = mprt__wait(&rq, "MPI_Allgather (start-up agreement)", "world");
    if (rc != MPI_SUCCESS) mprt_fatal("MPI_Allgather of the start-up agreement failed (%d)", rc);
    *set = -1;
    for (int r = 1; r < size && bad < 0; r++)
        for (int i = 0; i < n && bad < 0; i++)
            if (all[(size_t)r * (size_t)n + (size_t)i] != all[i]) bad = r, *set = i;
    free(all);
    return bad;
}

void mprt_agree(const MprtTrainer *t, const MprtArgs *a) {
    uint64_t mine[NSET];
    row(t, a, mine);
    int bad_set = -1, bad_rank = first_difference(mine, NSET, &bad_set);
    char msg[256] = "";
    if (bad_rank >= 0)
        snprintf(msg, sizeof msg,
                 "rank %d differs from rank 0 in %s; every rank must run the same plan with the "
                 "same flags",
                 bad_rank, set_names[bad_set]);
    mprt_exit_if_any(bad_rank >= 0, msg);
}

bool mprt_agree_settings(const MprtTrainer *t, const MprtSetting *set, int n, char *msg,
                         size_t len) {
    enum { MAX = 16 };
    uint64_t mine[1 + MAX];
    if (n < 0 || n > MAX) mprt_fatal("mprt_agree_settings: %d settings (at most %d)", n, MAX);
    mine[0] = plan_hash(t);
    for (int i = 0; i < n; i++)
        mine[1 + i] = fnv(0xCBF29CE484222325ull, set[i].value, set[i].size);
    int bad_set = -1, bad_rank = first_difference(mine, 1 + n, &bad_set);
    if (bad_rank < 0) return true;
    snprintf(msg, len, "rank %d differs from rank 0 in %s; every rank must pass the same settings",
             bad_rank, bad_set ? set[bad_set - 1].name : set_names[0]);
    return false;
}
