/*
 * trainer_teacher.c: the synthetic data a trainer draws without --data (docs/runtime.md,
 * "Synthetic data: the teacher").
 *
 * Every step draws fresh samples — sample i of the run is a function of (seed, stream, i)
 * alone, so any plan, and any split of a batch over replicas and micro-batches, sees the same
 * numbers — from a fixed random "teacher" that a model can learn but never memorise:
 *   - float inputs: N(0, 1) per element;
 *   - integer inputs with a range V (token ids): a random Markov chain over [0, V): token 0
 *     uniform, then each token's successor is one of 4 fixed ones drawn from the seed
 *     (probabilities 0.5, 0.25, 0.1, 0.05), or, with probability 0.1, uniform;
 *   - a label whose MprtData names its input (`source`) is the teacher's answer to it:
 *       token label of a token input of the same length: the next token of the same chain
 *         (the input shifted by one, as in language modelling);
 *       class label (range C) of a float input: a random two-layer network, logits =
 *         8·W2·tanh(W1·g), the class drawn from softmax(logits);
 *       float target of a float input: W2·tanh(W1·g) + N(0, 0.1²);
 *     where g is the label position's share of the sample (the whole sample for a class per
 *     sample, one position's features for a target per position), H = 32 hidden units,
 *     W1 ~ N(0, 0.25/|g|) and W2 ~ N(0, 1/H), drawn from the seed and the label's stream.
 *   - anything else (an integer without a range, a label without a source): uniform in
 *     [0, max(range, 2)) or N(0, 1), independent of the input.
 * So a loss falls towards the teacher's own entropy or noise, never to memorisation levels.
 */
#include "mprt_ew.h"
#include "mprt_trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEACHER_HIDDEN 32
#define MARKOV_FANOUT 4
#define TEACHER_GAIN 8.0f /* logits = GAIN·W2·tanh(W1·x): labels mostly the teacher's argmax */
#define TEACHER_W1 0.5f   /* W1 ~ N(0, W1²/|x|): tanh in its near-linear range, learnable fast */

static const float markov_p[MARKOV_FANOUT] = {0.5f, 0.25f, 0.1f, 0.05f}; /* the rest: uniform */

/* The first n tokens (n <= row + 1) of the Markov chain over [0, V) of sample s of a stream
 * (r) whose samples are `row` tokens: token i + 1 follows token i by the draws at index
 * s·(row + 1) + i, so a label's row (the chain one token on) continues its input's. */
static void markov_chain(MprtRng r, int64_t s, int64_t row, int64_t n, int64_t V, int32_t *out) {
    MprtRng pick = mprt_rng_sub(r, 1), tok = mprt_rng_sub(r, 2), succ = mprt_rng_sub(r, 3);
    uint64_t base = (uint64_t)s * (uint64_t)(row + 1);
    uint64_t t = mprt_rng_bits(tok, base) % (uint64_t)V;
    for (int64_t i = 0; i < n; i++) {
        out[i] = (int32_t)t;
        float u = mprt_rng_uniform(pick, base + (uint64_t)i);
        int k = 0;
        while (k < MARKOV_FANOUT && u >= markov_p[k])
            u -= markov_p[k++];
        uint64_t next = k < MARKOV_FANOUT ? mprt_rng_bits(succ, t * MARKOV_FANOUT + (uint64_t)k)
                                          : mprt_rng_bits(tok, base + (uint64_t)i + 1);
        t = next % (uint64_t)V;
    }
}

/* The independent samples of d: N(0, 1), the Markov chain, or uniform integers. */
static void plain_rows(const MprtData *d, MprtRng r, int64_t first, int64_t n, void *dst) {
    int64_t row = mprt_data_row(d);
    for (int64_t q = 0; q < n; q++) {
        int64_t s = first + q;
        if (d->dtype == MPRT_F32)
            mprt_rng_fill_normal(r, (uint64_t)(s * row), row, 0.0f, 1.0f, (float *)dst + q * row);
        else if (d->range > 0)
            markov_chain(r, s, row, row, d->range, (int32_t *)dst + q * row);
        else
            for (int64_t c = 0; c < row; c++)
                ((int32_t *)dst)[q * row + c] =
                    (int32_t)(mprt_rng_bits(r, (uint64_t)(s * row + c)) % 2);
    }
}

/* The next tokens of the source's chains: its rows one token on (modulo d's range). */
static void shifted_rows(const MprtData *d, MprtRng r, int64_t first, int64_t n, void *out) {
    int32_t *dst = out;
    int64_t row = mprt_data_row(d), V = d->source->range;
    int32_t *chain = malloc((size_t)(row + 1) * sizeof *chain);
    if (!chain) mprt_fatal("out of memory (synthetic tokens)");
    for (int64_t q = 0; q < n; q++) {
        markov_chain(r, first + q, row, row + 1, V, chain);
        for (int64_t c = 0; c < row; c++)
            dst[q * row + c] = (int32_t)(chain[c + 1] % (d->range > 0 ? d->range : V));
    }
    free(chain);
}

/* The teacher network of label d over its float source: per sample, P label positions, each
 * reading g features of the sample and giving o outputs (C logits, or o target values). */
typedef struct Net {
    int64_t in, P, g, o;
    float *w1, *w2; /* [H × g], [o × H] */
} Net;

static Net net_make(const MprtData *d, MprtRng r) {
    Net t = {.in = mprt_data_row(d->source), .P = mprt_data_row(d)};
    t.o = d->dtype == MPRT_I32 ? d->range : 1;
    if (d->dtype == MPRT_F32 && d->ndim > 1) t.o = d->shape[d->ndim - 1], t.P /= t.o;
    t.g = t.in % t.P == 0 ? t.in / t.P : t.in; /* uneven: every position reads the sample */
    t.w1 = mprt_falloc(TEACHER_HIDDEN * t.g);
    t.w2 = mprt_falloc(t.o * TEACHER_HIDDEN);
    mprt_rng_fill_normal(mprt_rng_sub(r, 5), 0, TEACHER_HIDDEN * t.g, 0.0f,
                         TEACHER_W1 / sqrtf((float)t.g), t.w1);
    mprt_rng_fill_normal(mprt_rng_sub(r, 6), 0, t.o * TEACHER_HIDDEN, 0.0f,
                         1.0f / sqrtf((float)TEACHER_HIDDEN), t.w2);
    return t;
}

/* out[0 .. o) = W2·tanh(W1·x) for one position's g features x. */
static void net_apply(const Net *t, const float *x, float *out) {
    float h[TEACHER_HIDDEN];
    for (int j = 0; j < TEACHER_HIDDEN; j++) {
        double a = 0;
        for (int64_t k = 0; k < t->g; k++)
            a += (double)t->w1[j * t->g + k] * x[k];
        h[j] = mprt_ew_tanhf((float)a);
    }
    for (int64_t m = 0; m < t->o; m++) {
        double a = 0;
        for (int j = 0; j < TEACHER_HIDDEN; j++)
            a += (double)t->w2[m * TEACHER_HIDDEN + j] * h[j];
        out[m] = (float)a;
    }
}

/* A class drawn from softmax(5·out) by the uniform u. */
static int32_t draw_class(float *out, int64_t C, float u) {
    float top = -INFINITY, sum = 0;
    for (int64_t m = 0; m < C; m++)
        top = fmaxf(top, TEACHER_GAIN * out[m]);
    for (int64_t m = 0; m < C; m++)
        sum += out[m] = mprt_ew_expf(TEACHER_GAIN * out[m] - top);
    float acc = 0, target = u * sum;
    for (int64_t m = 0; m < C; m++)
        if ((acc += out[m]) > target) return (int32_t)m;
    return (int32_t)(C - 1);
}

/* Label d as the teacher network's answer to its (synthetic float) source's samples. */
static void net_rows(const MprtData *d, MprtRng r, MprtRng rx, int64_t first, int64_t n,
                     void *dst) {
    Net t = net_make(d, r);
    float *xs = mprt_falloc(n * t.in), *out = mprt_falloc(t.o);
    plain_rows(d->source, rx, first, n, xs);
    MprtRng noise = mprt_rng_sub(r, 4);
    int64_t row = mprt_data_row(d);
    for (int64_t q = 0; q < n; q++)
        for (int64_t p = 0; p < t.P; p++) {
            net_apply(&t, xs + q * t.in + (t.g == t.in ? 0 : p * t.g), out);
            uint64_t at = (uint64_t)((first + q) * row + p * (d->dtype == MPRT_F32 ? t.o : 1));
            if (d->dtype == MPRT_I32)
                ((int32_t *)dst)[q * row + p] = draw_class(out, t.o, mprt_rng_uniform(noise, at));
            else
                for (int64_t m = 0; m < t.o; m++)
                    ((float *)dst)[q * row + p * t.o + m] =
                        out[m] + 0.1f * mprt_rng_normal(noise, at + (uint64_t)m);
        }
    free(xs), free(out), free(t.w1), free(t.w2);
}

/* Whether d's source is synthetic and of a kind the teacher answers: a token label of a token
 * input as long, a class label or a float target of a float input. */
static int teacher_kind(const MprtData *d) {
    const MprtData *x = d->source;
    if (!x || x->file->array.data || x->file->tokens) return 0;
    if (d->dtype == MPRT_I32 && x->dtype == MPRT_I32 && x->range > 0 &&
        mprt_data_row(x) == mprt_data_row(d))
        return 1;
    if (x->dtype == MPRT_F32 && (d->dtype == MPRT_F32 || d->range > 0)) return 2;
    return 0;
}

void mprt_synthetic_rows(const MprtData *d, uint64_t seed, int64_t first, int64_t n, void *dst) {
    MprtRng r = mprt_rng(seed, mprt_rng_name_id(d->stream));
    int kind = teacher_kind(d);
    MprtRng rx = kind ? mprt_rng(seed, mprt_rng_name_id(d->source->stream)) : r;
    if (kind == 1)
        shifted_rows(d, rx, first, n, dst);
    else if (kind == 2)
        net_rows(d, r, rx, first, n, dst);
    else
        plain_rows(d, r, first, n, dst);
}

bool mprt_data_teacher(const MprtData *d) { return teacher_kind(d) != 0; }
