/*
 * trainer_eval.c: validation — `--val-data F [--val-labels F] [--eval-every N]
 * [--val-batches K]` (docs/runtime.md, "Validation").
 *
 * The validation set is opened and checked like the training data (mprt_data_open_named: a
 * token stream for a language model, else .npy files with their dtype, shape, row-count,
 * finite-value and label-range checks) into files of its own. An evaluation swaps them into
 * the first input's and first label's MprtDataFile, runs the forward program of the rank's
 * pipeline stage over every micro-batch (its training order with the backwards left out), for
 * K batches, and swaps the training files back. Batch k is read as step k's samples of the
 * validation files, so the K batches are the same samples whatever the plan and whenever the
 * evaluation runs; the loss is the training plan's own (each stage's forwards return their
 * share of the mean; the world sums them), averaged over the K batches. Dropout is off
 * (mprt_kernels_eval), the byte counters and layer timers are paused, and the progress line's
 * rates leave the evaluation's time out. Accuracy: the cross-entropy forward counts the rows
 * whose largest logit (the first of equals) is the label while an evaluation runs
 * (mprt__ce_counted); correct / counted over the world is the same share whether the rows are
 * split over ranks or repeated on every tensor rank.
 *
 * The CUDA trainer's forward keeps its loss on the device: validation is the C trainer's
 * (docs/cuda.md).
 */
#include "mprt_kernels.h"
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

static struct {
    MprtDataFile x, y; /* the validation files (swapped in while evaluating) */
    int64_t batches;   /* K */
    bool on, counting; /* armed; an evaluation is running (accuracy counts) */
    double correct, rows;
} V;

bool mprt_eval_open(const MprtTrainer *t, const MprtArgs *a, MprtErr *err) {
    static const char *const flags[2] = {"--val-data", "--val-labels"};
    if (!a->val_data) {
        const char *lone = a->val_labels    ? "--val-labels"
                           : a->eval_every  ? "--eval-every"
                           : a->val_batches ? "--val-batches"
                                            : NULL;
        if (lone) return mprt__err(err, "%s needs --val-data (the validation inputs)", lone);
        return true;
    }
    if (!t->input) return mprt__err(err, "this model has no input for --val-data");
    if (t->device)
        return mprt__err(err, "--val-data runs on the C trainer (mpcc --target c; docs/cuda.md)");
    MprtData x = *t->input, y = t->label ? *t->label : (MprtData){0};
    x.file = &V.x, y.file = &V.y;
    if (!mprt_data_open_named(&x, t->label ? &y : NULL, a->val_data, a->val_labels, flags, err))
        return false;
    if (t->label && !V.x.tokens && !V.y.array.data) {
        mprt_data_close(&x);
        return mprt__err(err, "--val-data %.200s needs --val-labels (the labels of its rows)",
                         a->val_data);
    }
    int64_t whole = V.x.tokens ? MPRT_VAL_BATCHES : V.x.array.shape[0] / t->batch;
    V.batches = a->val_batches             ? a->val_batches
                : whole < MPRT_VAL_BATCHES ? whole
                                           : MPRT_VAL_BATCHES;
    V.on = true;
    return true;
}

bool mprt_eval_due(const MprtArgs *a, int64_t step, int64_t last) {
    return V.on && (step == last || (a->eval_every > 0 && step % a->eval_every == 0));
}

/* While an evaluation runs, the cross-entropy forward's rows: how many, and how many of them
 * have the label as their largest logit. */
void mprt__ce_counted(const float *logits, const int32_t *labels, int M, int V_) {
    if (!V.counting) return;
    for (int m = 0; m < M; m++) {
        if (labels[m] < 0 || labels[m] >= V_) continue; /* ignored row */
        const float *row = logits + (size_t)m * (size_t)V_;
        int best = 0;
        for (int j = 1; j < V_; j++)
            if (row[j] > row[best]) best = j;
        V.correct += best == labels[m];
        V.rows += 1;
    }
}

/* The forwards of st's order (its micro-batches in training order), into fwd. */
static int forwards(const MprtStage *st, int *order) {
    int n = 0;
    for (int i = 0; i < st->norder; i++)
        if (!(st->order[i] & 1)) order[n++] = st->order[i];
    return n;
}

/* Swaps the validation files with the training ones in the model's data. */
static void swap_files(const MprtTrainer *t) {
    MprtDataFile x = *t->input->file;
    *t->input->file = V.x, V.x = x;
    if (t->label) {
        MprtDataFile y = *t->label->file;
        *t->label->file = V.y, V.y = y;
    }
}

void mprt_eval_run(const MprtTrainer *t, double *loss, double *acc) {
    MprtStage fwd = t->stages[mprt_mesh()->s];
    int *order = malloc(sizeof(int) * (size_t)(fwd.norder + 1));
    if (!order) mprt_fatal("out of memory (validation)");
    fwd.norder = forwards(&t->stages[mprt_mesh()->s], order), fwd.order = order;
    double t0 = mprt_now(), v[3] = {0, 0, 0};
    mprt_stats_pause(), mprt__timers_pause(true), mprt_kernels_eval(1);
    swap_files(t);
    V.correct = V.rows = 0, V.counting = true;
    for (int64_t k = 0; k < V.batches; k++) {
        v[0] += mprt_stage_run(&fwd, k);
        mprt_pipe_wait_all();
    }
    V.counting = false;
    swap_files(t);
    mprt_kernels_eval(0), mprt__timers_pause(false), mprt_stats_resume();
    free(order);
    v[1] = V.correct, v[2] = V.rows;
    mprt_metric_sum(MPRT_WORLD, v, 3);
    *loss = v[0] / (double)V.batches;
    *acc = v[2] > 0 ? v[1] / v[2] : -1;
    mprt_progress_exclude(mprt_now() - t0);
}

int64_t mprt_eval_batches(void) { return V.batches; }

void mprt_eval_close(void) {
    if (!V.on) return;
    MprtData x = {0}, y = {0};
    x.file = &V.x, y.file = &V.y;
    mprt_data_close(&x), mprt_data_close(&y);
    V.on = false;
}
