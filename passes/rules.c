/*
 * rules.c: what each op means for splitting — one entry per op, read by the search, the
 * lowering and codegen.
 *
 * Shape inference (shapes.c) says what an op computes; this table says how it may be split
 * over the t ranks of a tensor group (DESIGN.md §4). For every op it holds:
 *
 *   modes    the (strategy, input layout, output layout) triples it may compute in when t > 1,
 *            in the order the search tries them (ties go to the first), each with the
 *            divisibility it needs: the batch, the features, the heads;
 *   split    per strategy and parameter role, which dimension of the parameter is divided over
 *            the tensor ranks, or that it stays whole, or that it stays whole and is added by
 *            tensor rank 0 only (the bias of a layer whose output is a partial sum);
 *   own_bwd  the layer's own collective, per strategy: a column split computes a partial sum
 *            of its input gradient, all-reduced on the tensor group (Megatron's "f"); the
 *            forward direction needs none of its own, since an output split by features or
 *            left as a partial sum is a layout the reshards handle;
 *   stash    floats kept for backward besides the input and output activations (layernorm's
 *            mean and rstd, attention's q, k, v, context and probabilities);
 *   istash   int32s kept for backward (maxpool's argmax);
 *   scratch  floats of temporary space the forward or backward needs (im2col, attention).
 *
 * The search's per-layer cost (passes/cost.c) takes its modes, parameter bytes, own collective
 * and the memory kept for backward it plans for (stash and istash, as the trainer allocates
 * them) from here; the lowering (passes/lower_spmd.c) its parameter shards, layout checks and
 * own collectives; codegen (codegen/emit_buffers.c) the stash and scratch buffers it
 * allocates. None of them keeps a copy. The table
 * is built from ops.def: an OP without a RULES_<ID> entry below does not compile; an EW
 * (element-wise) op needs none, as it follows its input's layout and keeps nothing else.
 */
#include "passes.h"

/* ───────────────────────────── memory rules ───────────────────────────── */

/* layernorm keeps the mean and the reciprocal standard deviation of every row. */
static int64_t stash_layernorm(const RuleCtx *c) {
    return 2 * (ir_shape_numel(&c->in) / c->in.d[c->in.rank - 1]);
}

/* maxpool2d keeps the argmax of every output element. */
static int64_t istash_maxpool2d(const RuleCtx *c) { return ir_shape_numel(&c->out); }

/* conv2d's im2col: C·k·k rows of Ho·Wo for one sample. */
static int64_t scratch_conv2d(const RuleCtx *c) {
    int64_t k = ir_arg_int(c->n, CONV2D_KERNEL);
    return c->in.d[1] * k * k * c->out.d[2] * c->out.d[3];
}

/* The heads one rank computes: a column split divides them. */
static int64_t heads_local(const RuleCtx *c) {
    int64_t h = ir_arg_int(c->n, ATTENTION_HEADS);
    return c->strat == STRAT_COL ? h / c->t : h;
}

/* attention keeps q, k, v and the context [N, T, DL] and the probabilities [N, HL, T, T]. */
static int64_t stash_attention(const RuleCtx *c) {
    int64_t h = ir_arg_int(c->n, ATTENTION_HEADS), hl = heads_local(c);
    int64_t n = c->in.d[0], t = c->in.d[1], dl = hl * (c->in.d[2] / h);
    return 4 * n * t * dl + n * hl * t * t;
}

/* attention's backward: four [N, T, DL] gradients and one row of scores, or on the GPU every
 * row's scores (MPRT_CU_ATTENTION_SCRATCH). */
static int64_t scratch_attention(const RuleCtx *c) {
    int64_t h = ir_arg_int(c->n, ATTENTION_HEADS), hl = heads_local(c);
    int64_t n = c->in.d[0], t = c->in.d[1], dl = hl * (c->in.d[2] / h);
    return 4 * n * t * dl + (c->dev ? n : 1) * t * t;
}

/* A vocabulary-parallel cross-entropy keeps, per row, the maximum and the log of the sum of
 * exponentials over the whole vocabulary, and the target's logit (mprt_vocab_ce_forward). */
static int64_t stash_cross_entropy(const RuleCtx *c) {
    if (c->strat != STRAT_COL) return 0;
    return 3 * (ir_shape_numel(&c->in) / c->in.d[c->in.rank - 1]);
}

/* ───────────────────────────── the table ───────────────────────────── */

/* Encodings of OpRules.split: zero (the default) keeps the parameter whole. */
#define RULE_CEIL 16
#define SPLIT(dim) ((int8_t)((dim) + 1))                  /* divided along dim */
#define SPLIT_CEIL(dim) ((int8_t)((dim) + 1 + RULE_CEIL)) /* along dim, rounded up */
#define RANK0 ((int8_t)-1)                                /* whole, added by tensor rank 0 only */

/* clang-format off */
#define M(st, in, out, cond) {STRAT_##st, LAYOUT_##in, LAYOUT_##out, RC_##cond, 0}
/* The same with the second input in its own layout. */
#define M2(st, in, in1, out, cond) {STRAT_##st, LAYOUT_##in, LAYOUT_##out, RC_##cond, LAYOUT_##in1 + 1}
/* An op without weights to split follows its input's layout: replicated, split by batch, or
 * split by features when both sides divide. */
#define FOLLOW .modes = {M(DATA, R, R, ALWAYS), M(DATA, B, B, BATCH), M(DATA, F, F, FEAT)}, .nmodes = 3
/* Ops that need whole rows (normalisation, the losses): replicated or split by batch. */
#define ROWWISE .modes = {M(DATA, R, R, ALWAYS), M(DATA, B, B, BATCH)}, .nmodes = 2

/* A column split of classes that do not divide pads (each rank ceil(out/t) columns, the last
 * rank's extra ones zero): the search keeps it only for an LM head whose logits go straight
 * into a vocabulary-parallel loss, which leaves the padding out of the softmax. */
#define RULES_LINEAR {                                                                  \
    .modes = {M(DATA, B, B, BATCH), M(COL, R, F, OUT_PAD), M(ROW, F, P, IN_FEAT)}, .nmodes = 3, \
    .split = {[STRAT_COL] = {[PARAM_WEIGHT] = SPLIT_CEIL(1), [PARAM_BIAS] = SPLIT_CEIL(0)}, \
              [STRAT_ROW] = {[PARAM_WEIGHT] = SPLIT(0), [PARAM_BIAS] = RANK0}},         \
    .own_bwd = {[STRAT_COL] = COLL_ALLREDUCE}}
#define RULES_ADD {                                                                     \
    .modes = {M(DATA, R, R, ALWAYS), M(DATA, B, B, BATCH), M(DATA, F, F, FEAT),         \
              M(DATA, P, P, ALWAYS)}, .nmodes = 4}
#define RULES_LAYERNORM {ROWWISE, .stash = stash_layernorm}
#define RULES_DROPOUT {FOLLOW}
#define RULES_CONV2D {                                                                  \
    .modes = {M(DATA, B, B, BATCH), M(COL, R, F, OUT_FEAT), M(ROW, F, P, IN_FEAT)}, .nmodes = 3, \
    .split = {[STRAT_COL] = {[PARAM_WEIGHT] = SPLIT(0), [PARAM_BIAS] = SPLIT(0)},       \
              [STRAT_ROW] = {[PARAM_WEIGHT] = SPLIT(1), [PARAM_BIAS] = RANK0}},         \
    .own_bwd = {[STRAT_COL] = COLL_ALLREDUCE}, .scratch = scratch_conv2d}
#define RULES_MAXPOOL2D {FOLLOW, .istash = istash_maxpool2d}
#define RULES_FLATTEN {FOLLOW}
/* A vocabulary split rounds up; the last rank's extra rows are never looked up. */
#define RULES_EMBEDDING {                                                               \
    .modes = {M(DATA, B, B, BATCH), M(COL, R, F, OUT_FEAT), M(ROW, R, P, ALWAYS)}, .nmodes = 3, \
    .split = {[STRAT_COL] = {[PARAM_WEIGHT] = SPLIT(1), [PARAM_POS] = SPLIT(1)},        \
              [STRAT_ROW] = {[PARAM_WEIGHT] = SPLIT_CEIL(0), [PARAM_POS] = RANK0}}}
/* Heads split: q, k, v by output columns, the output projection by rows. */
#define RULES_ATTENTION {                                                               \
    .modes = {M(DATA, B, B, BATCH), M(COL, R, P, HEADS)}, .nmodes = 2,                  \
    .split = {[STRAT_COL] = {[PARAM_WQ] = SPLIT(1), [PARAM_WK] = SPLIT(1), [PARAM_WV] = SPLIT(1), \
                             [PARAM_BQ] = SPLIT(0), [PARAM_BK] = SPLIT(0), [PARAM_BV] = SPLIT(0), \
                             [PARAM_WO] = SPLIT(0), [PARAM_BO] = RANK0}},              \
    .own_bwd = {[STRAT_COL] = COLL_ALLREDUCE},                                          \
    .stash = stash_attention, .scratch = scratch_attention}
/* Vocabulary-parallel (Shoeybi et al. 2019, §3): the logits split by class, the labels
 * whole; the forward all-reduces three floats per row (max, sum of exponentials, target).
 * Classes that do not divide arrive padded from their head (RULES_LINEAR); the search never
 * reshards such logits. */
#define RULES_CROSS_ENTROPY {                                                           \
    .modes = {M(DATA, R, R, ALWAYS), M(DATA, B, B, BATCH), M2(COL, F, R, F, ALWAYS)},   \
    .nmodes = 3, .own_fwd = {[STRAT_COL] = 3}, .stash = stash_cross_entropy}
#define RULES_MSE {ROWWISE}
/* clang-format on */

const OpRules pass_rules[OP__COUNT] = {
#define OP(id, nm, nin, st, fl, args) [OP_##id] = RULES_##id,
#define EW(id, nm, fwd, bwd, reads) [OP_##id] = {FOLLOW},
#include "ops.def"
#undef OP
#undef EW
};

/* ───────────────────────────── queries ───────────────────────────── */

static bool cond_holds(RuleCond k, const IrNode *n, int t, int64_t b, int64_t in_feat,
                       int64_t out_feat) {
    switch (k) {
    case RC_ALWAYS: return true;
    case RC_BATCH: return b % t == 0;
    case RC_FEAT: return in_feat % t == 0 && out_feat % t == 0;
    case RC_IN_FEAT: return in_feat % t == 0;
    case RC_OUT_FEAT: return out_feat % t == 0;
    case RC_OUT_PAD: return out_feat % t == 0 || (t - 1) * ((out_feat + t - 1) / t) < out_feat;
    case RC_HEADS: return ir_arg_int(n, ATTENTION_HEADS) % t == 0;
    }
    return false;
}

int rules_modes(const IrNode *n, int t, int64_t b, int64_t in_feat, int64_t out_feat,
                RuleMode out[RULES_MAX_MODES]) {
    const OpRules *r = &pass_rules[n->op];
    int k = 0;
    for (int i = 0; i < r->nmodes; i++)
        if (cond_holds(r->modes[i].cond, n, t, b, in_feat, out_feat)) out[k++] = r->modes[i];
    return k;
}

Layout rules_mode_in(const RuleMode *m, int k) {
    return k == 1 && m->in1 > 0 ? (Layout)(m->in1 - 1) : m->in;
}

bool rules_layout_ok(OpKind op, Strategy st, Layout in, Layout out) {
    const OpRules *r = &pass_rules[op];
    for (int i = 0; i < r->nmodes; i++)
        if (r->modes[i].strat == st && r->modes[i].in == in && r->modes[i].out == out) return true;
    return false;
}

bool rules_in1_ok(OpKind op, Strategy st, Layout in, Layout in1) {
    const OpRules *r = &pass_rules[op];
    for (int i = 0; i < r->nmodes; i++)
        if (r->modes[i].strat == st && r->modes[i].in == in &&
            rules_mode_in(&r->modes[i], 1) == in1)
            return true;
    return false;
}

ParamSplit rules_param_split(OpKind op, Strategy st, ParamRole role) {
    int v = pass_rules[op].split[st][role];
    ParamSplit p = {-1, false, false};
    if (v == RANK0)
        p.rank0 = true;
    else if (v > 0)
        p.dim = (v - 1) % RULE_CEIL, p.ceil = v > RULE_CEIL;
    return p;
}

int64_t rules_param_local(const IrParam *p, OpKind op, Strategy st, int t) {
    ParamSplit sp = rules_param_split(op, st, p->role);
    int64_t numel = ir_shape_numel(&p->shape);
    if (t <= 1 || sp.dim < 0) return numel;
    int64_t whole = p->shape.d[sp.dim];
    int64_t part = sp.ceil ? (whole + t - 1) / t : whole / t;
    return numel / whole * part;
}

int64_t rules_stash(const RuleCtx *c) {
    RuleMemFn f = pass_rules[c->n->op].stash;
    return f ? f(c) : 0;
}

int64_t rules_istash(const RuleCtx *c) {
    RuleMemFn f = pass_rules[c->n->op].istash;
    return f ? f(c) : 0;
}

int64_t rules_scratch(const RuleCtx *c) {
    RuleMemFn f = pass_rules[c->n->op].scratch;
    return f ? f(c) : 0;
}
