/*
 * emit_buffers.c: each pipeline stage's buffers — a struct naming the activation buffers of
 * one micro-batch (one field per (value, layout) buffer and per saved-for-backward stash),
 * and an allocation function carving them from one arena per kind (floats, ints, gradients).
 * The stash, argmax and scratch sizes are the rules table's (passes/rules.c).
 */
#include "emit.h"

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
 * linear or an attention, its input packed as bf16 (mprt_cu_linear_forward_bf16,
 * mprt_cu_attention_forward_bf16: two values a float). */
static int64_t node_scratch(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    if (e->fwd_in[0][id] < 0 || e->fwd_out[id] < 0) return 0;
    int64_t n = rules_scratch(&c);
    OpKind op = IR_NODE(e->g, id)->op;
    if (cg_bf16_cu(e) && (op == OP_LINEAR || op == OP_ATTENTION)) {
        int64_t h = (lnumel(e, e->fwd_in[0][id]) + 1) / 2;
        if (h > n) n = h;
    }
    return n;
}

/* ───────────────────────────── stage buffers ───────────────────────────── */

const char *aux_field(Emit *e, int id, const char *what) {
    return arena_printf(e->a, "%s_%s", e->lname[id], what);
}

void emit_stage_struct(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* Stage %d: the buffers of one micro-batch (local shards). `act%d[slot]` holds the\n"
      " * activations of the %d micro-batch(es) in flight; `grad%d` their gradients. */\n",
      s, s, st->stash, s);
    E(e, "typedef struct Stage%d {\n", s);
    int fields = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        fields++;
        E(e, "    %s *%s; /* ", is_int(e, b) ? "int32_t" : "float", e->bname[b]);
        put_comment_text(e, BV(e, b)->name);
        E(e, " %s %s", lay_name(B(e, b)->layout),
          shape_str(e, is_int(e, b) ? DT_I32 : DT_F32, &B(e, b)->local));
        if (B(e, b)->split_dim >= 0) E(e, " of %s", shape_str(e, BV(e, b)->dtype, &B(e, b)->full));
        E(e, " */\n");
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        if (node_stash(e, id))
            E(e, "    float *%s; /* saved for backward */\n", aux_field(e, id, "stash")), fields++;
        if (node_istash(e, id))
            E(e, "    int32_t *%s; /* argmax */\n", aux_field(e, id, "argmax")), fields++;
    }
    E(e, "%s} Stage%d;\nstatic Stage%d act%d[%d], grad%d;\n\n",
      fields ? "" : "    int unused; /* C has no empty structs */\n", s, s, s, st->stash, s);
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

/* The offset of each field in its arena: the per-slot arenas f/n (activations) and x/xn
 * (inputs and labels as loaded), or, for what recomputation rebuilds, the stage's one copy
 * rf/rn. */
typedef struct AllocSizes {
    int64_t f, i, xf, xi, rf, ri;
} AllocSizes;

static int64_t *alloc_off(AllocSizes *z, bool is_i, bool rebuilt, bool io) {
    if (io) return is_i ? &z->xi : &z->xf;
    return rebuilt ? (is_i ? &z->ri : &z->rf) : (is_i ? &z->i : &z->f);
}

static const char *alloc_base(bool is_i, bool rebuilt, bool io) {
    if (io) return is_i ? "xn" : "x";
    return rebuilt ? (is_i ? "rn" : "rf") : (is_i ? "n" : "f");
}

/* Buffer b's arena offset, and `name = base + offset` for slot i. */
static void alloc_field(Emit *e, int s, AllocSizes *z, const char *name, bool is_i, bool r, bool io,
                        int64_t n) {
    int64_t *off = alloc_off(z, is_i, r, io);
    E(e, "        act%d[i].%s = %s + %lld;\n", s, name, alloc_base(is_i, r, io), (long long)*off);
    *off += n;
}

static void emit_alloc_fields(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {0, 0, 0, 0, 0, 0};
    for (int b = 0; b < e->s->nbufs; b++)
        if (B(e, b)->stage == s)
            alloc_field(e, s, &z, e->bname[b], is_int(e, b), buf_rebuilt(e, b), buf_io(e, b),
                        lnumel(e, b));
    for (int id = st->first_node; id <= st->last_node; id++) {
        bool r = node_rebuilt(e, id);
        if (node_stash(e, id))
            alloc_field(e, s, &z, aux_field(e, id, "stash"), false, r, false, node_stash(e, id));
        if (node_istash(e, id))
            alloc_field(e, s, &z, aux_field(e, id, "argmax"), true, r, false, node_istash(e, id));
    }
}

/* The stage's arena sizes; *gsz: its activation gradients, *scr: the largest scratch, *xf:
 * its largest whole value (xfer holds two). */
static AllocSizes alloc_sizes(Emit *e, int s, int64_t *gsz, int64_t *scr, int64_t *xf) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {0, 0, 0, 0, 0, 0};
    *gsz = 0, *scr = 1, *xf = 1;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        *alloc_off(&z, is_int(e, b), buf_rebuilt(e, b), buf_io(e, b)) += lnumel(e, b);
        if (B(e, b)->grad) *gsz += lnumel(e, b);
        if (ir_shape_numel(&B(e, b)->full) > *xf) *xf = ir_shape_numel(&B(e, b)->full);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        *alloc_off(&z, false, node_rebuilt(e, id), false) += node_stash(e, id);
        *alloc_off(&z, true, node_rebuilt(e, id), false) += node_istash(e, id);
        if (node_scratch(e, id) > *scr) *scr = node_scratch(e, id);
    }
    return z;
}

/* `float *NAME = ALLOC(n);` of category cat, or NULL when n is 0; and `BASE = NAME, `. */
static void alloc_arena(Emit *e, bool ints, const char *name, const char *cat, int64_t n,
                        const char *what) {
    E(e, "    %s *%s = ", ints ? "int32_t" : "float", name);
    if (n)
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
    E(e, "static void stage%d_alloc(void) {\n", s);
    alloc_arena(e, false, "f", "ACTS", k * z.f, "activations, per slot");
    alloc_arena(e, true, "n", "ACTS", k * z.i, "integer activations, per slot");
    alloc_arena(e, false, "x", "IO", k * z.xf, "inputs and labels as loaded, per slot");
    alloc_arena(e, true, "xn", "IO", k * z.xi, "integer inputs and labels as loaded, per slot");
    alloc_arena(e, false, "rf", "ACTS", z.rf, "recomputed layers: one copy, rebuilt");
    alloc_arena(e, true, "rn", "ACTS", z.ri, "recomputed layers: one copy, rebuilt");
    alloc_arena(e, false, "g", "ACT_GRADS", gsz, "activation gradients, one micro-batch");
    E(e,
      "    fbase = f, ibase = n, gbase = g, xbase = x, xibase = xn, rfbase = rf, ribase = rn;\n"
      "    scratch = %s%lld), xfer = %s%lld);\n",
      cg_alloc(e, false, "SCRATCH"), (long long)scr, cg_alloc(e, false, "BUFFERS"),
      (long long)(2 * xf));
    E(e, "    for (int i = 0; i < %lld; i++) {\n", (long long)k);
    emit_alloc_fields(e, s);
    const char *base[4] = {"f", "n", "x", "xn"};
    int64_t step[4] = {z.f, z.i, z.xf, z.xi};
    for (int j = 0; j < 4; j++) /* the next slot (a NULL arena has no fields to move) */
        if (step[j]) E(e, "        %s += %lld;\n", base[j], (long long)step[j]);
    E(e, "    }\n");
    int64_t go = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s || !B(e, b)->grad) continue;
        E(e, "    grad%d.%s = g + %lld;\n", s, e->bname[b], (long long)go);
        go += lnumel(e, b);
    }
    E(e, "}\n#define STAGE%d_GRADS %lld\n\n", s, (long long)gsz);
}
