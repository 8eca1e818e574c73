/*
 * emit_buffers.c: each pipeline stage's buffers — a struct naming the activation buffers of
 * one micro-batch (one field per (value, layout) buffer and per saved-for-backward stash),
 * and an allocation function carving them from one arena per kind (floats, ints, gradients).
 * The stash, argmax and scratch sizes are the rules table's (passes/rules.c).
 */
#include "emit.h"

#include <string.h>

/* What the rules table's memory rules see for node `id`: its local input and output shapes. */
static RuleCtx rule_ctx(const Emit *e, int id) {
    RuleCtx c = {.n = IR_NODE(e->g, id),
                 .strat = e->g->plan->nodes[id].strat,
                 .t = e->s->t,
                 .dev = e->t->dev};
    int x = e->fwd_in[0][id], o = e->fwd_out[id];
    if (x >= 0) c.in = B(e, x)->local;
    if (o >= 0) c.out = B(e, o)->local;
    return c;
}

/* Floats node `id` keeps for backward besides its activations (passes/rules.c). */
static int64_t node_stash(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_in[0][id] < 0 ? 0 : rules_stash(&c);
}

/* Int32s node `id` keeps for backward (maxpool's argmax). */
static int64_t node_istash(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_out[id] < 0 ? 0 : rules_istash(&c);
}

/* Floats of scratch node `id` needs: the rules table's, or on the device under bf16, for a
 * linear or an attention whose input is not kept in 16 bits (an input as loaded), that input
 * packed as bf16 (mprt_cu_linear_forward_bf16,
 * mprt_cu_attention_forward_bf16: two values a float). */
static int64_t node_scratch(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    if (e->fwd_in[0][id] < 0 || e->fwd_out[id] < 0) return 0;
    int64_t n = rules_scratch(&c);
    OpKind op = IR_NODE(e->g, id)->op;
    if (cg_bf16_cu(e) && (op == OP_LINEAR || op == OP_ATTENTION) && !cg_h16(e, e->fwd_in[0][id])) {
        int64_t h = (lnumel(e, e->fwd_in[0][id]) + 1) / 2;
        if (h > n) n = h;
    }
    return n;
}

/* ───────────────────────────── stage buffers ───────────────────────────── */

const char *aux_field(Emit *e, int id, const char *what) {
    return arena_printf(e->a, "%s_%s", e->lname[id], what);
}

/* "f32[32, 512]", or as kept in 16 bits "bf16[32, 512]". */
static const char *kept_shape(Emit *e, bool h, DType t, const Shape *sh) {
    const char *s = shape_str(e, t, sh);
    return h ? arena_printf(e->a, "bf16%s", strchr(s, '[')) : s;
}

/* Stage s's fields, one per line: the view's (kept = false: every activation float *) or, under
 * bf16, the kept slot's (16-bit activations uint16_t *: cg_h16). */
static int emit_fields(Emit *e, int s, bool kept) {
    const SchedStage *st = &e->s->stages[s];
    int fields = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        fields++;
        bool h = kept && cg_h16(e, b);
        E(e, "    %s *%s; /* ", is_int(e, b) ? "int32_t" : h ? "uint16_t" : "float", e->bname[b]);
        put_comment_text(e, BV(e, b)->name);
        DType t = is_int(e, b) ? DT_I32 : DT_F32;
        E(e, " %s %s", lay_name(B(e, b)->layout), kept_shape(e, h, t, &B(e, b)->local));
        if (B(e, b)->split_dim >= 0) E(e, " of %s", kept_shape(e, h, t, &B(e, b)->full));
        E(e, " */\n");
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        if (node_stash(e, id))
            E(e, "    float *%s; /* saved for backward */\n", aux_field(e, id, "stash")), fields++;
        if (node_istash(e, id))
            E(e, "    int32_t *%s; /* argmax */\n", aux_field(e, id, "argmax")), fields++;
    }
    if (!kept && cg_bf16_cu(e)) /* the layers' 16-bit reads (emit_layers.c, AH) */
        E(e, "    const struct Stage%dKept *k; /* bf16: the kept slot (16-bit activations) */\n",
          s),
            fields++;
    if (!fields) E(e, "    int unused; /* C has no empty structs */\n");
    return fields;
}

/* bf16: the kept slot's fields as the layers' f32 view sees them — inputs, labels
 * and internals as kept, each 16-bit activation NULL until a stage program points it into
 * `work` and unpacks it there (emit_schedule.c). */
static void emit_view_fn(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* bf16: a kept micro-batch as the layers see it (f32): its 16-bit activations are\n"
      " * pointed into `work` and unpacked there by the stage programs, layer by layer. */\n"
      "static Stage%d stage%d_view(const Stage%dKept *a) {\n    Stage%d w;\n"
      "    memset(&w, 0, sizeof w);\n",
      s, s, s, s);
    for (int b = 0; b < e->s->nbufs; b++)
        if (B(e, b)->stage == s && !cg_h16(e, b))
            E(e, "    w.%s = a->%s;\n", e->bname[b], e->bname[b]);
    for (int id = st->first_node; id <= st->last_node; id++) {
        const char *f[2] = {node_stash(e, id) ? aux_field(e, id, "stash") : NULL,
                            node_istash(e, id) ? aux_field(e, id, "argmax") : NULL};
        for (int k = 0; k < 2; k++)
            if (f[k]) E(e, "    w.%s = a->%s;\n", f[k], f[k]);
    }
    if (cg_bf16_cu(e)) E(e, "    w.k = a;\n");
    E(e, "    return w;\n}\n\n");
}

void emit_stage_struct(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* Stage %d: the buffers of one micro-batch (local shards). `act%d[slot]` holds the\n"
      " * activations of the %d micro-batch(es) in flight; `grad%d` their gradients. */\n",
      s, s, st->stash, s);
    if (cg_bf16_cu(e)) E(e, "struct Stage%dKept;\n", s);
    E(e, "typedef struct Stage%d {\n", s);
    emit_fields(e, s, false);
    E(e, "} Stage%d;\n", s);
    if (!cg_mst(e)) {
        E(e, "static Stage%d act%d[%d], grad%d;\n\n", s, s, st->stash, s);
        return;
    }
    E(e,
      "/* bf16: a micro-batch as kept, its activations in 16 bits (bf16 bit patterns); the\n"
      " * layers see it as a Stage%d (stage%d_view) */\ntypedef struct Stage%dKept {\n",
      s, s, s);
    emit_fields(e, s, true);
    E(e, "} Stage%dKept;\nstatic Stage%dKept act%d[%d];\nstatic Stage%d grad%d;\n\n", s, s, s,
      st->stash, s, s);
    emit_view_fn(e, s);
}

/* Whether buffer b, or node id's stash, is rebuilt by recomputation: one copy for the stage. */
static bool buf_rebuilt(Emit *e, int b) { return B(e, b)->rebuilt; }
static bool node_rebuilt(Emit *e, int id) { return e->g->plan->nodes[id].recompute; }

/* Whether buffer b holds an input or label (as loaded, or in another layout): the trainer's
 * I/O, which the plan's activations leave out (docs/runtime.md, "Memory"). */
static bool buf_io(Emit *e, int b) { return BV(e, b)->kind != VAL_ACT; }

const char *cg_alloc(const Emit *e, bool ints, const char *cat) {
    return arena_printf(e->a, "%s%salloc_in(MPRT_MEM_%s, ", pfx(e), ints ? "i" : "f", cat);
}

/* The arenas a stage's fields are carved from: per slot f (floats: activations, or under bf16
 * the ops' internals), n (ints), h (bf16: the 16-bit activations) and
 * x/xn (inputs and labels as loaded); for what recomputation rebuilds, the stage's one copy
 * rf/rn/rh. */
enum { AR_F, AR_N, AR_H, AR_X, AR_XN, AR_RF, AR_RN, AR_RH, AR__COUNT };
static const char *const ar_base[AR__COUNT] = {"f", "n", "h", "x", "xn", "rf", "rn", "rh"};
typedef struct AllocSizes {
    int64_t at[AR__COUNT];
} AllocSizes;

/* The arena of an int, a 16-bit or a float field, rebuilt or an input or label as loaded. */
static int arena_of(bool is_i, bool h16, bool rebuilt, bool io) {
    if (io) return is_i ? AR_XN : AR_X;
    int k = is_i ? AR_N : h16 ? AR_H : AR_F;
    return rebuilt ? k + AR_RF : k;
}
static int buf_arena(Emit *e, int b) {
    return arena_of(is_int(e, b), cg_h16(e, b), buf_rebuilt(e, b), buf_io(e, b));
}

/* A field's arena offset, and `name = base + offset` for slot i. */
static void alloc_field(Emit *e, int s, AllocSizes *z, const char *name, int ar, int64_t n) {
    E(e, "        act%d[i].%s = %s + %lld;\n", s, name, ar_base[ar], (long long)z->at[ar]);
    z->at[ar] += n;
}

static void emit_alloc_fields(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {{0}};
    for (int b = 0; b < e->s->nbufs; b++)
        if (B(e, b)->stage == s) alloc_field(e, s, &z, e->bname[b], buf_arena(e, b), lnumel(e, b));
    for (int id = st->first_node; id <= st->last_node; id++) {
        bool r = node_rebuilt(e, id);
        if (node_stash(e, id))
            alloc_field(e, s, &z, aux_field(e, id, "stash"), arena_of(false, false, r, false),
                        node_stash(e, id));
        if (node_istash(e, id))
            alloc_field(e, s, &z, aux_field(e, id, "argmax"), arena_of(true, false, r, false),
                        node_istash(e, id));
    }
}

/* bf16: the floats of `work`, the f32 view of one layer's 16-bit activations (its
 * distinct inputs and output: what emit_schedule.c's views unpack), the largest on stage s. */
static int64_t work_floats(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    int64_t most = 0;
    for (int id = st->first_node; id <= st->last_node && cg_mst(e); id++) {
        int bs[3] = {e->fwd_in[0][id], e->fwd_in[1][id], e->fwd_out[id]};
        int64_t n = 0;
        for (int i = 0; i < 3; i++)
            if (cg_h16(e, bs[i]) && !(i == 1 && bs[1] == bs[0])) n += lnumel(e, bs[i]);
        if (n > most) most = n;
    }
    return most;
}

/* The stage's arena sizes; *gsz: its activation gradients, *scr: the largest scratch, *xf:
 * its largest whole value (xfer holds two). */
static AllocSizes alloc_sizes(Emit *e, int s, int64_t *gsz, int64_t *scr, int64_t *xf) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {{0}};
    *gsz = 0, *scr = 1, *xf = 1;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        z.at[buf_arena(e, b)] += lnumel(e, b);
        if (B(e, b)->grad) *gsz += lnumel(e, b);
        if (ir_shape_numel(&B(e, b)->full) > *xf) *xf = ir_shape_numel(&B(e, b)->full);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        z.at[arena_of(false, false, node_rebuilt(e, id), false)] += node_stash(e, id);
        z.at[arena_of(true, false, node_rebuilt(e, id), false)] += node_istash(e, id);
        if (node_scratch(e, id) > *scr) *scr = node_scratch(e, id);
    }
    return z;
}

/* `T *NAME = ALLOC(n);` of category cat (T: float, int32_t, or with h uint16_t), or NULL when
 * n is 0. */
static void alloc_arena(Emit *e, int ar, const char *cat, int64_t n, const char *what) {
    bool ints = ar == AR_N || ar == AR_XN || ar == AR_RN, h = ar == AR_H || ar == AR_RH;
    E(e, "    %s *%s = ", ints ? "int32_t" : h ? "uint16_t" : "float", ar_base[ar]);
    if (n && h)
        E(e, "%shalloc_in(MPRT_MEM_%s, %lld); /* %s */\n", pfx(e), cat, (long long)n, what);
    else if (n)
        E(e, "%s%lld); /* %s */\n", cg_alloc(e, ints, cat), (long long)n, what);
    else
        E(e, "NULL; /* %s: none */\n", what);
}

/* The allocation function is written out directly (no helper) so the offsets are visible. What
 * recomputation rebuilds (SchedBuf.rebuilt, the recomputed layers' stashes) is allocated once
 * and shared by every slot: only the micro-batch whose backward runs needs it. Each arena is
 * allocated in its memory category (mprt_falloc_in), exactly its size, so the trainer's count
 * is the plan's (docs/runtime.md, "Memory"). */
void emit_alloc(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    int64_t gsz, scr, xf, k = st->stash;
    AllocSizes z = alloc_sizes(e, s, &gsz, &scr, &xf);
    bool h = cg_mst(e);
    E(e, "static void stage%d_alloc(void) {\n", s);
    alloc_arena(e, AR_F, "ACTS", k * z.at[AR_F],
                h ? "the ops' internals (f32), per slot" : "activations, per slot");
    alloc_arena(e, AR_N, "ACTS", k * z.at[AR_N], "integer activations, per slot");
    if (h) alloc_arena(e, AR_H, "ACTS", k * z.at[AR_H], "bf16: activations in 16 bits, per slot");
    alloc_arena(e, AR_X, "IO", k * z.at[AR_X], "inputs and labels as loaded, per slot");
    alloc_arena(e, AR_XN, "IO", k * z.at[AR_XN], "integer inputs and labels as loaded, per slot");
    alloc_arena(e, AR_RF, "ACTS", z.at[AR_RF], "recomputed layers: one copy, rebuilt");
    alloc_arena(e, AR_RN, "ACTS", z.at[AR_RN], "recomputed layers: one copy, rebuilt");
    if (h) alloc_arena(e, AR_RH, "ACTS", z.at[AR_RH], "recomputed layers: one copy, rebuilt");
    E(e, "    float *g = ");
    if (gsz)
        E(e, "%s%lld); /* activation gradients, one micro-batch */\n",
          cg_alloc(e, false, "ACT_GRADS"), (long long)gsz);
    else
        E(e, "NULL; /* activation gradients, one micro-batch: none */\n");
    E(e,
      "    fbase = f, ibase = n, gbase = g, xbase = x, xibase = xn, rfbase = rf, ribase = rn;\n");
    if (h)
        E(e,
          "    hbase = h, rhbase = rh, work = %s%lld); /* bf16: one layer's activations as f32 "
          "*/\n",
          cg_alloc(e, false, "BUFFERS"), (long long)(work_floats(e, s) ? work_floats(e, s) : 1));
    E(e, "    scratch = %s%lld), xfer = %s%lld);\n", cg_alloc(e, false, "SCRATCH"), (long long)scr,
      cg_alloc(e, false, "BUFFERS"), (long long)(2 * xf));
    E(e, "    for (int i = 0; i < %lld; i++) {\n", (long long)k);
    emit_alloc_fields(e, s);
    for (int j = AR_F; j <= AR_XN; j++) /* the next slot (a NULL arena has no fields to move) */
        if (z.at[j]) E(e, "        %s += %lld;\n", ar_base[j], (long long)z.at[j]);
    E(e, "    }\n");
    int64_t go = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s || !B(e, b)->grad) continue;
        E(e, "    grad%d.%s = g + %lld;\n", s, e->bname[b], (long long)go);
        go += lnumel(e, b);
    }
    E(e, "}\n#define STAGE%d_GRADS %lld\n\n", s, (long long)gsz);
}
