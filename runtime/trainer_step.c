/*
 * trainer_step.c: what a generated trainer's step does the same way for every model — run the
 * stage's micro-batches in its 1F1B order, time its layers into named timers by slot
 * (--profile), keep the stage's busy time, and track the pipeline sends it posts until their
 * buffers are reused. mprt_trainer.h documents the calls;
 * docs/runtime.md "The step" describes them and docs/codegen.md shows the generated side.
 *
 * State is per process (one rank of one trainer), like the runtime's other registries.
 */
#include "internal.h"
#include "mprt_trainer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── the stage's order ───────────────────────────── */

double mprt_stage_run(const MprtStage *st, int64_t step) {
    double loss = 0;
    for (int i = 0; i < st->norder; i++) {
        int item = st->order[i];
        if (item & 1)
            st->backward(step, item >> 1);
        else
            loss += st->forward(step, item >> 1);
    }
    return loss;
}

/* ───────────────────────────── timers ───────────────────────────── */

static struct {
    int *ids;                /* [2 * n] the mprt_timer id of each layer slot; -1: not here */
    int n;                   /* layer slots */
    const MprtLayer *layers; /* [n / 2]: names and the plan's predicted times */
    int busy, idle;          /* "stage.busy", "stage.idle" */
    int opt;                 /* "optimizer", created at its first use; -1 before */
    void (*sync)(void);      /* the device's: waits for its queued work (mprt_timed_device) */
    bool off;                /* a device run without --profile: nothing is timed */
    bool paused;             /* a validation runs (mprt__timers_pause): nothing is timed */
    double t0, idle0;        /* mprt_busy_start's clock and idle time */
} T = {.busy = -1, .idle = -1, .opt = -1};

static int slot_id(int slot) {
    if (slot == MPRT_OPTIMIZER && T.opt < 0) T.opt = mprt_timer("optimizer");
    int id = slot == MPRT_IDLE ? T.idle : slot == MPRT_OPTIMIZER ? T.opt : -1;
    if (slot >= 0 && slot < T.n) id = T.ids[slot];
    if (id < 0) mprt_fatal("timer slot %d is not a timer of this rank's stage", slot);
    return id;
}

void mprt_layer_timers(const MprtLayer *layers, int n) {
    T.busy = mprt_timer("stage.busy"), T.idle = mprt_timer("stage.idle"), T.opt = -1;
    free(T.ids);
    T.ids = malloc(sizeof(int) * (size_t)(2 * n + 1));
    if (!T.ids) mprt_fatal("out of memory for %d layer timers", n);
    T.n = 2 * n, T.layers = layers;
    for (int i = 0; i < n; i++) {
        T.ids[MPRT_FWD(i)] = T.ids[MPRT_BWD(i)] = -1;
        if (layers[i].stage != mprt_mesh()->s) continue;
        size_t len = strlen(layers[i].name) + 8;
        char *name = malloc(len);
        if (!name) mprt_fatal("out of memory");
        snprintf(name, len, "fwd.%s", layers[i].name);
        T.ids[MPRT_FWD(i)] = mprt_timer(name);
        snprintf(name, len, "bwd.%s", layers[i].name);
        T.ids[MPRT_BWD(i)] = mprt_timer(name);
        free(name);
    }
}

/* Seconds per call of timer `id` in the steady state (the calls after the run's warm-up,
 * mprt_progress_start), and that call count. */
static double per_call(int id, int64_t *calls) {
    double s;
    mprt_timer_steady(id, &s, calls);
    return *calls > 0 ? s / (double)*calls : 0.0;
}

void mprt__layers_json(struct cJSON *rank) {
    cJSON *arr = cJSON_AddArrayToObject(rank, "layers");
    for (int i = 0; i < T.n / 2; i++) {
        if (T.ids[MPRT_FWD(i)] < 0) continue;
        int64_t nf, nb;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", T.layers[i].name);
        cJSON_AddNumberToObject(e, "predicted_fwd_s", T.layers[i].fwd_s);
        cJSON_AddNumberToObject(e, "predicted_bwd_s", T.layers[i].bwd_s);
        cJSON_AddNumberToObject(e, "measured_fwd_s", per_call(T.ids[MPRT_FWD(i)], &nf));
        cJSON_AddNumberToObject(e, "measured_bwd_s", per_call(T.ids[MPRT_BWD(i)], &nb));
        cJSON_AddNumberToObject(e, "steady_calls", (double)nf);
        cJSON_AddItemToArray(arr, e);
    }
}

void mprt_timed_device(void (*sync)(void), bool profile) { T.sync = sync, T.off = !profile; }

void mprt__timers_pause(bool on) { T.paused = on; }

/* The gradient all-reduces and ZeRO-2's reduce-scatters (trainer_zero2.c) in flight progress
 * (MPI advances a non-blocking collective only inside MPI calls; comm_mpi.c): between two
 * layers (mprt_timed_start) and before every kernel's job inside a layer (the hook of
 * mprt__parallel_for, set by mprt_init), so that a layer of many kernels (attention's heads,
 * a convolution's samples) progresses them many times, not once. Completing a call may run
 * kernels (the bf16 wire's unpacking), whose jobs must not reenter. */
void mprt__progress_inflight(void) {
    static bool busy;
    if (busy) return;
    busy = true;
    mprt_allreduce_progress();
    mprt_zero2_progress();
    busy = false;
}

/* Between two layers: the progress point above, and the layer's timer. */
void mprt_timed_start(int slot) {
    mprt__progress_inflight();
    if (T.off || T.paused) return;
    if (T.sync) T.sync();
    mprt_timer_start(slot_id(slot));
}

void mprt_timed_stop(int slot) {
    if (T.off || T.paused) return;
    if (T.sync) T.sync();
    int id = slot_id(slot);
    mprt_timer_stop(id);
    if (mprt__tracing())
        mprt__trace_compute(slot, mprt__timer_name(id), mprt__timer_started(id), mprt_now());
}

void mprt_busy_start(void) { T.t0 = mprt_now(), T.idle0 = mprt_timer_seconds(T.idle); }

void mprt_busy_stop(void) {
    mprt_timer_add(T.busy, mprt_now() - T.t0 - (mprt_timer_seconds(T.idle) - T.idle0));
}

/* ───────────────────────────── pipeline sends ───────────────────────────── */

typedef struct Pending {
    int slot;
    void *req;
    void (*wait)(void *req);
} Pending;

static struct {
    Pending *p;
    int n, cap;
} Q;

void mprt_pipe_track(int slot, void *req, void (*wait)(void *req)) {
    if (Q.n == Q.cap) {
        int cap = Q.cap ? 2 * Q.cap : 16;
        Pending *p = realloc(Q.p, sizeof *p * (size_t)cap);
        if (!p) mprt_fatal("out of memory for %d pipeline sends", cap);
        Q.p = p, Q.cap = cap;
    }
    Q.p[Q.n++] = (Pending){slot, req, wait};
}

/* Completes the sends of `slot`, in the order they were posted, and drops them. */
static void complete(int slot) {
    int kept = 0;
    for (int i = 0; i < Q.n; i++)
        if (Q.p[i].slot == slot)
            Q.p[i].wait(Q.p[i].req);
        else
            Q.p[kept++] = Q.p[i];
    Q.n = kept;
}

void mprt_pipe_wait(int slot) {
    if (slot != MPRT_PIPE_GRAD) complete(slot);
    complete(MPRT_PIPE_GRAD);
}

void mprt_pipe_wait_all(void) {
    int last = MPRT_PIPE_GRAD;
    for (int i = 0; i < Q.n; i++)
        if (Q.p[i].slot > last) last = Q.p[i].slot;
    for (int slot = 0; slot <= last; slot++)
        mprt_pipe_wait(slot);
    complete(MPRT_PIPE_GRAD);
}

static void wait_host(void *req) { mprt_wait(req); }

void mprt_pipe_send(int slot, int dir, const float *buf, int64_t count, int tag) {
    mprt_pipe_track(slot, mprt_isend(dir, buf, count, tag), wait_host);
}

void mprt_pipe_send_bf16(int slot, int dir, const uint16_t *buf, int64_t count, int tag) {
    mprt_pipe_track(slot, mprt_isend_bf16(dir, buf, count, tag), wait_host);
}
