/*
 * trainer_generate.c: `./train --generate N` — sampling tokens from a trained language model
 * with the training plan's own forward pass (docs/runtime.md, "Text generation").
 *
 * A model qualifies when its first input and first label are token sequences i32[batch, T]
 * over a vocabulary (codegen hands the input over as MprtTrainer.tokens). For each new token
 * the context (the prompt and the tokens so far, its last T of them) is written into every
 * sample of the input, zeros after it; every rank runs micro-batch 0's forward of its
 * pipeline stage (the stage's forward program alone: no backward, no optimizer, dropout off),
 * and the cross-entropy forward on the rank at stage S-1, replica 0, tensor rank 0 copies the
 * logits of sample 0 at the context's last position (mprt_logits_capture; its rows start at
 * sample 0 whatever the plan). That rank draws the token (mprt_sample_token) and the world
 * sums it in (a metric, not plan traffic), so every plan produces the same tokens from the
 * same checkpoint and seed. Causal attention makes the zeros after the context irrelevant.
 * Cost: one micro-batch forward of MB·T positions per token (no cache of keys and values).
 * With --logits F.npy that rank also writes the logits of every draw, [N, vocab] (the
 * reference the GPT-2 export is checked against: tests/e2e/hf_export.py).
 */
#include "mprt_ew.h"
#include "mprt_kernels.h"
#include "mprt_trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ─────────────── the logits capture the cross-entropy forward serves ─────────────── */

static struct {
    int64_t row, V; /* row < 0: not armed */
    float *dst;
} capture = {-1, 0, NULL};

void mprt_logits_capture(int64_t row, float *dst, int64_t V) {
    capture.row = row, capture.dst = dst, capture.V = V;
}

int mprt_logits_capture_pending(void) {
    int pending = capture.row >= 0;
    capture.row = -1;
    return pending;
}

void mprt__logits_captured(const float *logits, int M, int V) {
    if (capture.row < 0 || capture.row >= M || V != capture.V) return;
    memcpy(capture.dst, logits + capture.row * V, sizeof(float) * (size_t)V);
    capture.row = -1;
}

/* ─────────────── sampling ─────────────── */

int32_t mprt_sample_token(const float *logits, int64_t V, double temperature, int64_t top_k,
                          float u) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature <= 0 || top_k == 1) return (int32_t)best;
    /* the k-th largest logit: candidates are those at least as large (ties may add a few) */
    float floor_k = -INFINITY;
    if (top_k > 0 && top_k < V) {
        float *sorted = malloc(sizeof(float) * (size_t)V);
        if (!sorted) mprt_fatal("out of memory (sampling)");
        memcpy(sorted, logits, sizeof(float) * (size_t)V);
        for (int64_t i = 0; i < top_k; i++) /* partial selection: the k largest first */
            for (int64_t j = i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) {
                    float x = sorted[i];
                    sorted[i] = sorted[j], sorted[j] = x;
                }
        floor_k = sorted[top_k - 1];
        free(sorted);
    }
    double sum = 0;
    for (int64_t v = 0; v < V; v++)
        if (logits[v] >= floor_k)
            sum += mprt_ew_expf((float)((logits[v] - logits[best]) / temperature));
    double target = (double)u * sum, acc = 0;
    int64_t last = best;
    for (int64_t v = 0; v < V; v++) {
        if (logits[v] < floor_k) continue;
        acc += mprt_ew_expf((float)((logits[v] - logits[best]) / temperature)), last = v;
        if (acc > target) return (int32_t)v;
    }
    return (int32_t)last;
}

bool mprt_parse_tokens(const char *s, int64_t V, int32_t *out, int64_t max, int64_t *n,
                       MprtErr *err) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v >= V) {
            snprintf(err->msg, sizeof err->msg,
                     "--prompt-tokens '%.64s': token %lld is not an integer in [0, %lld)", s,
                     (long long)*n + 1, (long long)V);
            return false;
        }
        if (*n == max) {
            snprintf(err->msg, sizeof err->msg, "--prompt-tokens: more than %lld tokens",
                     (long long)max);
            return false;
        }
        out[(*n)++] = (int32_t)v;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (*n == 0) snprintf(err->msg, sizeof err->msg, "--prompt-tokens: no tokens");
    return *n > 0;
}

/* ─────────────── the run ─────────────── */

/* The rank whose cross-entropy rows start at sample 0: stage S-1, replica 0, tensor rank 0. */
static bool holds_logits(void) {
    const MprtMesh *m = mprt_mesh();
    return m->s == m->S - 1 && m->j == 0 && m->k == 0;
}

/* One token after ctx[0 .. n): micro-batch 0's forward over the context, then the draw. */
static int32_t next_token(const MprtTrainer *t, const MprtArgs *a, const int32_t *ctx, int64_t n,
                          int32_t *rows, float *logits, int64_t i) {
    const MprtData *x = t->tokens;
    int64_t T = x->shape[1], B = x->shape[0], L = n < T ? n : T;
    for (int64_t b = 0; b < B; b++) {
        memset(rows + b * T, 0, sizeof(int32_t) * (size_t)T);
        memcpy(rows + b * T, ctx + n - L, sizeof(int32_t) * (size_t)L);
    }
    static const int first_forward[1] = {0}; /* micro-batch 0's forward alone */
    MprtStage fwd = t->stages[mprt_mesh()->s];
    fwd.order = first_forward, fwd.norder = 1;
    bool mine = holds_logits();
    if (mine) mprt_logits_capture(L - 1, logits, x->range);
    mprt_stage_run(&fwd, 0);
    mprt_pipe_wait_all();
    double tok = 0, missed = mine && mprt_logits_capture_pending();
    mprt_exit_if_any(missed != 0, "--generate: this plan's cross-entropy rows on rank 0 of the "
                                  "last stage do not hold sample 0's last position");
    MprtRng r = mprt_rng(a->seed, mprt_rng_name_id("generate"));
    if (mine)
        tok = mprt_sample_token(logits, x->range, a->temperature, a->top_k,
                                mprt_rng_uniform(r, (uint64_t)i));
    mprt_metric_sum(MPRT_WORLD, &tok, 1);
    return (int32_t)tok;
}

void mprt_generate(const MprtTrainer *t, const MprtArgs *a) {
    const MprtData *x = t->tokens;
    int64_t T = x->shape[1], B = x->shape[0], n = 0, max = MPRT_MAX_PROMPT + a->generate;
    int32_t *ctx = mprt_ialloc(max), *rows = mprt_ialloc(B * T);
    float *logits = mprt_falloc(x->range);
    MprtErr err = {{0}};
    bool ok =
        mprt_parse_tokens(a->prompt ? a->prompt : "0", x->range, ctx, MPRT_MAX_PROMPT, &n, &err);
    mprt_exit_if_any(!ok, err.msg);
    *x->file = (MprtDataFile){{MPRT_I32, 2, {B, T}, B * T, rows}, NULL, 0}; /* the context */
    mprt_kernels_eval(1);
    int64_t prompt = n, V = x->range;
    float *all = a->logits && holds_logits() ? mprt_falloc(a->generate * V) : NULL;
    for (int64_t i = 0; i < a->generate; i++, n++) {
        ctx[n] = next_token(t, a, ctx, n, rows, logits, i);
        if (all) memcpy(all + i * V, logits, sizeof(float) * (size_t)V);
    }
    mprt_kernels_eval(0);
    int64_t shape[2] = {a->generate, V}; /* --logits: written by the rank that drew */
    ok = !all || mprt_npy_save(a->logits, MPRT_F32, 2, shape, all, &err);
    free(all);
    mprt_exit_if_any(!ok, err.msg);
    *x->file = (MprtDataFile){{MPRT_I32, 0, {0}, 0, NULL}, NULL, 0};
    if (mprt_mesh()->rank == 0) {
        printf("prompt:");
        for (int64_t i = 0; i < prompt; i++)
            printf(" %d", (int)ctx[i]);
        printf("\ngenerated:");
        for (int64_t i = prompt; i < n; i++)
            printf(" %d", (int)ctx[i]);
        printf("\n");
        fflush(stdout);
    }
    free(ctx), free(rows), free(logits);
}
