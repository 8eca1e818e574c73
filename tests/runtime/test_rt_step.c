/*
 * test_rt_step.c: the step's runtime (runtime/trainer_step.c) on two pipeline stages of one
 * rank each — a stage's 1F1B order, timer slots, the device's timing mode, the stage's busy
 * time, and pipeline sends tracked until their slot is reused.
 *
 *   mpirun -np 2 test_rt_step DIR
 *
 * Timers are checked by their call counts in the profile (never by their durations): each
 * stage times only its own layers, a slot of a layer maps to that layer's "fwd.NAME" or
 * "bwd.NAME", and a device run without --profile times nothing while still making the call.
 * Sends are checked twice: with fake requests, for the order the waits complete them in, and
 * as real messages between the stages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mprt_trainer.h"

#define RT_CHECK_RANK (mprt_mesh()->rank)
#include "rt_check.h"

/* Layer i runs on stage LAYERS[i].stage; "b" is stage 1's, "a" and "c" stage 0's; the plan's
 * predicted seconds per micro-batch go into the profile's "layers" beside the measured ones. */
static const MprtLayer LAYERS[3] = {
    {"a", 0, 1e-3, 2e-3}, {"b", 1, 3e-3, 4e-3}, {"c", 0, 5e-3, 6e-3}};

static int syncs;
static void count_sync(void) { syncs++; }

/* Times this stage's layers: first layer forward 3 times (once under the device's profile,
 * plus once untimed without it), every layer forward twice and backward once otherwise. */
static void time_layers(void) {
    int s = mprt_mesh()->s, first = -1, work = 0, want = 0;
    mprt_layer_timers(LAYERS, 3);
    for (int i = 0; i < 3; i++) {
        if (LAYERS[i].stage != s) continue;
        if (first < 0) first = i;
        MPRT_TIMED(MPRT_FWD(i), work++);
        MPRT_TIMED(MPRT_FWD(i), work++);
        MPRT_TIMED(MPRT_BWD(i), work++);
        want += 3;
    }
    mprt_busy_start();
    MPRT_TIMED(MPRT_IDLE, work++);
    MPRT_TIMED(MPRT_OPTIMIZER, work++);
    mprt_busy_stop();
    mprt_timed_device(count_sync, true); /* --profile on a device: a sync either side */
    MPRT_TIMED(MPRT_FWD(first), work++);
    CHECK(syncs == 2, "a profiled device call synchronised %d times", syncs);
    mprt_timed_device(count_sync, false); /* no --profile: the call runs, untimed */
    MPRT_TIMED(MPRT_FWD(first), work++);
    CHECK(syncs == 2, "an unprofiled device call synchronised (%d)", syncs);
    mprt_timed_device(NULL, true);
    CHECK(work == want + 4, "%d calls ran, expected %d", work, want + 4);
}

/* The call count of timer `name` in one rank's profile entry; -1 when it has no such timer. */
static double calls_of(cJSON *rank, const char *name) {
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(rank, "timers")) {
        if (!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name))
            return cJSON_GetObjectItem(e, "calls")->valuedouble;
    }
    return -1;
}

/* Rank entry r's "layers" in the profile: the names of its stage's layers in order, each
 * with the plan's predictions and a measured time per call over its calls (no warm-up mark:
 * every call counts). */
static void check_layers(cJSON *r, const char *names, int ncalls) {
    cJSON *arr = cJSON_GetObjectItem(r, "layers"), *e;
    int i = 0;
    cJSON_ArrayForEach(e, arr) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const MprtLayer *l = &LAYERS[name[0] - 'a'];
        CHECK(name[0] == names[i], "layer %d is %s, expected %c", i, name, names[i]);
        CHECK(cJSON_GetObjectItem(e, "predicted_fwd_s")->valuedouble == l->fwd_s &&
                  cJSON_GetObjectItem(e, "predicted_bwd_s")->valuedouble == l->bwd_s,
              "%s: predicted times", name);
        CHECK(cJSON_GetObjectItem(e, "measured_fwd_s")->valuedouble >= 0 &&
                  cJSON_GetObjectItem(e, "measured_bwd_s")->valuedouble >= 0,
              "%s: measured times", name);
        int calls = (int)cJSON_GetObjectItem(e, "steady_calls")->valuedouble;
        CHECK(calls == (i == 0 ? ncalls : 2), "%s: %d steady forward calls", name, calls);
        i++;
    }
    CHECK(i == (int)strlen(names), "%d layers in the profile, expected %s", i, names);
}

static void check_profile(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/step_profile.json", dir);
    MprtErr err = {{0}};
    CHECK(mprt_profile_write(path, &err), "profile: %s", err.msg);
    if (mprt_mesh()->rank != 0) return;
    FILE *f = fopen(path, "rb");
    static char text[1 << 16];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text), *ranks = cJSON_GetObjectItem(root, "ranks");
    CHECK(cJSON_GetArraySize(ranks) == 2, "profile ranks");
    cJSON *r0 = cJSON_GetArrayItem(ranks, 0), *r1 = cJSON_GetArrayItem(ranks, 1);
    CHECK(calls_of(r0, "fwd.a") == 3 && calls_of(r0, "bwd.a") == 1, "stage 0's first layer");
    CHECK(calls_of(r0, "fwd.c") == 2 && calls_of(r0, "bwd.c") == 1, "stage 0's second layer");
    CHECK(calls_of(r0, "fwd.b") < 0 && calls_of(r1, "fwd.a") < 0, "a layer of another stage");
    CHECK(calls_of(r1, "fwd.b") == 3 && calls_of(r1, "bwd.b") == 1, "stage 1's layer");
    check_layers(r0, "ac", 3);
    check_layers(r1, "b", 3);
    for (int k = 0; k < 2; k++) {
        cJSON *r = k ? r1 : r0;
        CHECK(calls_of(r, "stage.busy") == 1 && calls_of(r, "stage.idle") == 1 &&
                  calls_of(r, "optimizer") == 1,
              "rank %d: busy, idle and optimizer", k);
    }
    cJSON_Delete(root);
    remove(path);
}

/* Fake requests: each records its number in `done` when waited. */
static int done[8], ndone;
static void fake_wait(void *req) { done[ndone++] = *(int *)req; }

static void order(void) {
    static int r[5] = {1, 2, 3, 4, 5};
    mprt_pipe_track(0, &r[0], fake_wait);
    mprt_pipe_track(1, &r[1], fake_wait);
    mprt_pipe_track(MPRT_PIPE_GRAD, &r[2], fake_wait);
    mprt_pipe_track(0, &r[3], fake_wait);
    mprt_pipe_wait(0); /* slot 0's sends in order, then the backward sends */
    CHECK(ndone == 3 && done[0] == 1 && done[1] == 4 && done[2] == 3, "wait(0): %d done", ndone);
    mprt_pipe_track(2, &r[4], fake_wait);
    mprt_pipe_wait_all(); /* slot by slot */
    CHECK(ndone == 5 && done[3] == 2 && done[4] == 5, "wait_all: %d done", ndone);
    mprt_pipe_wait_all();
    CHECK(ndone == 5, "a request was waited twice");
}

/* A stage's order, run by the runtime: items 2·micro (forward) and 2·micro + 1 (backward). */
static int trace[8], ntrace;
static double fwd(int64_t step, int micro) {
    trace[ntrace++] = 10 * (int)step + 2 * micro;
    return micro + 0.5;
}
static void bwd(int64_t step, int micro) { trace[ntrace++] = 10 * (int)step + 2 * micro + 1; }

static void stage_order(void) {
    static const int order[4] = {0, 2, 1, 3};
    const MprtStage st = {NULL, fwd, bwd, order, 4};
    double loss = mprt_stage_run(&st, 3);
    CHECK(loss == 0.5 + 1.5, "loss %g", loss);
    CHECK(ntrace == 4 && trace[0] == 30 && trace[1] == 32 && trace[2] == 31 && trace[3] == 33,
          "order: %d items, %d %d %d %d", ntrace, trace[0], trace[1], trace[2], trace[3]);
}

/* Real sends: stage 0 sends two micro-batches forward, stage 1 one gradient back. */
static void messages(void) {
    float x[4] = {1, 2, 3, 4}, y[4] = {5, 6, 7, 8}, g[4] = {-1, -2, -3, -4}, in[3][4] = {{0}};
    if (mprt_mesh()->s == 0) {
        mprt_pipe_send(0, 1, x, 4, 10);
        mprt_pipe_send(1, 1, y, 4, 11);
        mprt_recv(1, in[2], 4, 12);
        mprt_pipe_wait_all();
        CHECK(!memcmp(in[2], g, sizeof g), "the gradient");
    } else {
        mprt_recv(-1, in[0], 4, 10);
        mprt_recv(-1, in[1], 4, 11);
        mprt_pipe_send(MPRT_PIPE_GRAD, -1, g, 4, 12);
        mprt_pipe_wait(0);
        CHECK(!memcmp(in[0], x, sizeof x) && !memcmp(in[1], y, sizeof y), "the activations");
    }
    int32_t *z = mprt_ialloc(3);
    CHECK(z[0] == 0 && z[2] == 0, "ialloc zeroes");
    free(z);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    mprt_init(&argc, &argv, 2, 1, 1);
    time_layers();
    check_profile(dir);
    order();
    stage_order();
    messages();
    double bad = failures;
    mprt_metric_sum(MPRT_WORLD, &bad, 1);
    if (mprt_mesh()->rank == 0) printf("test_rt_step: %s\n", bad != 0 ? "FAILED" : "ok");
    mprt_finalize();
    return failures != 0;
}
