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

/* Floats of scratch node `id` needs. */
static int64_t node_scratch(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_in[0][id] < 0 || e->fwd_out[id] < 0 ? 0 : rules_scratch(&c);
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

/* The offset of each field in its arena: the per-slot arenas f/n, or, for what recomputation
 * rebuilds, the stage's one copy rf/rn. */
typedef struct AllocSizes {
    int64_t f, i, rf, ri;
} AllocSizes;

static int64_t *alloc_off(AllocSizes *z, bool is_i, bool rebuilt) {
    return rebuilt ? (is_i ? &z->ri : &z->rf) : (is_i ? &z->i : &z->f);
}

static const char *alloc_base(bool is_i, bool rebuilt) {
    return rebuilt ? (is_i ? "rn" : "rf") : (is_i ? "n" : "f");
}

static void emit_alloc_fields(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {0, 0, 0, 0};
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        int64_t *off = alloc_off(&z, is_int(e, b), buf_rebuilt(e, b));
        E(e, "        act%d[i].%s = %s + %lld;\n", s, e->bname[b],
          alloc_base(is_int(e, b), buf_rebuilt(e, b)), (long long)*off);
        *off += lnumel(e, b);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        bool r = node_rebuilt(e, id);
        if (node_stash(e, id)) {
            int64_t *off = alloc_off(&z, false, r);
            E(e, "        act%d[i].%s = %s + %lld;\n", s, aux_field(e, id, "stash"),
              alloc_base(false, r), (long long)*off);
            *off += node_stash(e, id);
        }
        if (node_istash(e, id)) {
            int64_t *off = alloc_off(&z, true, r);
            E(e, "        act%d[i].%s = %s + %lld;\n", s, aux_field(e, id, "argmax"),
              alloc_base(true, r), (long long)*off);
            *off += node_istash(e, id);
        }
    }
}

/* The allocation function is written out directly (no helper) so the offsets are visible. What
 * recomputation rebuilds (SchedBuf.rebuilt, the recomputed layers' stashes) is allocated once
 * and shared by every slot: only the micro-batch whose backward runs needs it. */
void emit_alloc(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    AllocSizes z = {0, 0, 0, 0};
    int64_t gsz = 0, scr = 1, xf = 1;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        *alloc_off(&z, is_int(e, b), buf_rebuilt(e, b)) += lnumel(e, b);
        if (B(e, b)->grad) gsz += lnumel(e, b);
        if (ir_shape_numel(&B(e, b)->full) > xf) xf = ir_shape_numel(&B(e, b)->full);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        *alloc_off(&z, false, node_rebuilt(e, id)) += node_stash(e, id);
        *alloc_off(&z, true, node_rebuilt(e, id)) += node_istash(e, id);
        if (node_scratch(e, id) > scr) scr = node_scratch(e, id);
    }
    E(e, "static void stage%d_alloc(void) {\n", s);
    E(e, "    float *f = %sfalloc((int64_t)%d * %lld), *g = %sfalloc(%lld);\n", pfx(e), st->stash,
      (long long)(z.f + 1), pfx(e), (long long)(gsz + 1));
    E(e, "    int32_t *n = %sialloc((int64_t)%d * %lld);\n", pfx(e), st->stash,
      (long long)(z.i + 1));
    if (z.rf)
        E(e, "    float *rf = %sfalloc(%lld); /* recomputed layers: one copy, rebuilt */\n", pfx(e),
          (long long)z.rf);
    if (z.ri)
        E(e, "    int32_t *rn = %sialloc(%lld); /* recomputed layers: one copy, rebuilt */\n",
          pfx(e), (long long)z.ri);
    E(e,
      "    fbase = f, ibase = n, gbase = g;\n    scratch = %sfalloc(%lld), xfer = "
      "%sfalloc(%lld);\n",
      pfx(e), (long long)scr, pfx(e), (long long)(2 * xf));
    E(e, "    for (int i = 0; i < %d; i++, f += %lld, n += %lld) {\n", st->stash,
      (long long)(z.f + 1), (long long)(z.i + 1));
    emit_alloc_fields(e, s);
    E(e, "    }\n");
    int64_t go = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s || !B(e, b)->grad) continue;
        E(e, "    grad%d.%s = g + %lld;\n", s, e->bname[b], (long long)go);
        go += lnumel(e, b);
    }
    E(e, "}\n#define STAGE%d_GRADS %lld\n\n", s, (long long)gsz);
}
