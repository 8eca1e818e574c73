/*
 * trainer_guard.c: the non-finite guard (docs/runtime.md, "The non-finite guard").
 *
 * After every step the run checks the step's loss (already summed over the world, so every
 * rank sees the same value) and this rank's gradients, which the step leaves in the gradient
 * arena fully reduced (mprt_all_finite: one pass over the arena's bits, no arithmetic). One
 * metric all-reduce (not plan traffic) gives every rank the highest-numbered parameter whose
 * gradient holds a NaN or Inf on any rank. The parameter table runs in forward order and the
 * backward computes gradients from the last layer to the first, so that parameter is the
 * first one in backward order: the layer where the NaN/Inf entered the backward pass (every
 * layer before it inherits it). A bad loss or gradient ends the job with one line naming the
 * step, the loss and that parameter; the run stops before its validation, checkpoint and
 * profile, so the last checkpoint written (an earlier --save-every one) is the last good one
 * and no checkpoint of the poisoned weights exists.
 */
#include "mprt_kernels.h"
#include "mprt_trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The highest index of a parameter of this rank's stage whose gradient shard is not all
 * finite, or -1. The whole stage is checked in one pass first; the per-tensor passes run
 * only when it fails. */
static int last_bad(const MprtModel *m, const float *grad) {
    int s = mprt_mesh()->s;
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].stage == s && m->params[i].offset + m->params[i].count > n)
            n = m->params[i].offset + m->params[i].count;
    if (mprt_all_finite(grad, n)) return -1;
    for (int i = m->nparams - 1; i >= 0; i--) {
        const MprtParam *p = &m->params[i];
        if (p->stage == s && !mprt_all_finite(grad + p->offset, p->count)) return i;
    }
    return -1;
}

void mprt_guard(const MprtTrainer *t, int64_t step, double loss, const char *kept,
                int64_t kept_step) {
    double bad = t->grad && *t->grad ? (double)last_bad(t->model, *t->grad) : -1.0;
    mprt_metric_max(MPRT_WORLD, &bad, 1);
    if (isfinite(loss) && bad < 0) return;
    char where[200] = "", ckpt[300];
    if (bad >= 0)
        snprintf(where, sizeof where,
                 "; the first non-finite gradient in backward order is %.120s's",
                 t->model->params[(int)bad].name);
    else if (!t->grad)
        snprintf(where, sizeof where, " (this trainer checks the loss only)");
    else
        snprintf(where, sizeof where, "; every gradient is finite (the forward overflowed)");
    if (kept)
        snprintf(ckpt, sizeof ckpt, "%.200s (step %lld) is the last good checkpoint", kept,
                 (long long)kept_step);
    else
        snprintf(ckpt, sizeof ckpt, "no checkpoint was written");
    char msg[700];
    snprintf(msg, sizeof msg, "step %lld: non-finite %s (loss %g)%s; stopped: %s", (long long)step,
             isfinite(loss) ? "gradient" : "loss", loss, where, ckpt);
    mprt_exit_if_any(true, msg);
}
