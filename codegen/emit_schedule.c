/*
 * emit_schedule.c: each pipeline stage's programs — one forward and one backward function
 * per micro-batch whose bodies are the schedule's lists in order (kernels, collectives on
 * named groups, sends and receives) — the 1F1B order of each stage, and the training step
 * (the orders, the gradient all-reduces, the optimizer).
 */
#include "emit.h"

/* ───────────────────────────── stage programs ───────────────────────────── */

/* The view outer × chunk × inner of buffer b's split (its full tensor). */
static const char *view(Emit *e, int b) {
    const SchedBuf *sb = B(e, b);
    int sd = sb->split_dim < 0 ? 0 : sb->split_dim;
    return arena_printf(e->a, "%lld, %lld, %lld", (long long)prod(&sb->full, 0, sd),
                        (long long)sb->local.d[sd],
                        (long long)prod(&sb->full, sd + 1, sb->full.rank));
}

/* batch, mid, feat, inner of a tensor for the B ↔ F all-to-all. */
static const char *a2a_dims(Emit *e, int b) {
    const SchedBuf *sb = B(e, b);
    int fd = sb->full.rank == 4 ? 1 : sb->full.rank - 1;
    return arena_printf(e->a, "%lld, %lld, %lld, %lld", (long long)sb->full.d[0],
                        (long long)prod(&sb->full, 1, fd), (long long)sb->full.d[fd],
                        (long long)prod(&sb->full, fd + 1, sb->full.rank));
}

static const char *fld(Emit *e, const char *p, int b) {
    return arena_printf(e->a, "%s->%s", p, e->bname[b]);
}

static void emit_fwd_coll(Emit *e, const SchedOp *o) {
    if (o->layer_own) { /* rules.c own_fwd: run by the layer's kernel, listed for the bytes */
        E(e, "    /* (%s's forward all-reduced one float per row on the tensor group: %lld B) */\n",
          e->lname[o->node], (long long)o->bytes);
        return;
    }
    const char *src = fld(e, "a", o->src), *dst = fld(e, "a", o->dst);
    /* bf16: between 16-bit activations, the collectives on bf16 buffers (the same
     * bytes and bits as the f32 ones under the wire) */
    const char *h = cg_h16(e, o->src) ? "_bf16" : "", *el = *h ? "uint16_t" : "float";
    E(e, "    /* ");
    put_comment_text(e, BV(e, o->src)->name);
    E(e, ": %s -> %s, %s on the tensor group (%lld B) */\n", lay_name(B(e, o->src)->layout),
      lay_name(B(e, o->dst)->layout),
      (const char *[]){"", "slice", "all-reduce", "all-gather", "reduce-scatter", "all-to-all",
                       ""}[o->coll],
      (long long)o->bytes);
    switch (o->coll) {
    case COLL_SLICE:
        if (B(e, o->dst)->layout == LAYOUT_P)
            E(e,
              "    if (mesh->k == 0)\n        %s(%s, %s, sizeof(%s) * %lld);\n    else\n"
              "        %s%s, sizeof(%s) * %lld);\n",
              e->t->copy, dst, src, el, (long long)lnumel(e, o->dst), zero(e), dst, el,
              (long long)lnumel(e, o->dst));
        else if (is_int(e, o->src))
            E(e, "    %s(%s, %s + mesh->k * %lld, sizeof(int32_t) * %lld);\n", e->t->copy, dst, src,
              (long long)lnumel(e, o->dst), (long long)lnumel(e, o->dst));
        else
            E(e, "    %sslice%s(%s, %s, %s, MESH_T, mesh->k);\n", pfx(e), h, src, dst,
              view(e, o->dst));
        break;
    case COLL_ALLREDUCE:
        E(e, "    %s(%s, %s, sizeof(%s) * %lld);\n    %sallreduce%s(MPRT_TENSOR, %s, %lld);\n",
          e->t->copy, dst, src, el, (long long)lnumel(e, o->dst), pfx(e), h, dst,
          (long long)lnumel(e, o->dst));
        break;
    case COLL_ALLGATHER:
        E(e, "    %sallgather%s(MPRT_TENSOR, %s, %s, %s);\n", pfx(e), h, src, dst, view(e, o->src));
        break;
    case COLL_REDUCESCATTER:
        E(e, "    %sreduce_scatter%s(MPRT_TENSOR, %s, %s, %s);\n", pfx(e), h, src, dst,
          view(e, o->dst));
        break;
    case COLL_ALLTOALL:
        E(e, "    %salltoall_%s%s(MPRT_TENSOR, %s, %s, %s);\n", pfx(e),
          B(e, o->src)->layout == LAYOUT_B ? "b2f" : "f2b", h, src, dst, a2a_dims(e, o->src));
        break;
    case COLL_NONE:
    case COLL_SENDRECV:
    case COLL__COUNT: break; /* never a forward layout change */
    }
}

/* grad(src) += the dual of a forward layout change, through `xfer`. */
static void emit_bwd_coll(Emit *e, const SchedOp *o) {
    const char *gs = fld(e, "d", o->src), *gd = fld(e, "d", o->dst);
    E(e, "    /* gradient of ");
    put_comment_text(e, BV(e, o->src)->name);
    E(e, ": %s -> %s (%lld B) */\n", lay_name(grad_layout_of(B(e, o->dst)->layout)),
      lay_name(grad_layout_of(B(e, o->src)->layout)), (long long)o->bytes);
    switch (o->coll) {
    case COLL_NONE:
        E(e, "    %saccumulate(%s, %s, %lld);\n", pfx(e), gs, gd, (long long)lnumel(e, o->src));
        return;
    case COLL_SLICE:
        E(e, "    %sslice(%s, xfer, %s, MESH_T, mesh->k);\n", pfx(e), gd, view(e, o->src));
        break;
    case COLL_ALLGATHER:
        E(e, "    %sallgather(MPRT_TENSOR, %s, xfer, %s);\n", pfx(e), gd, view(e, o->dst));
        break;
    case COLL_ALLTOALL:
        E(e, "    %salltoall_%s(MPRT_TENSOR, %s, xfer, %s);\n", pfx(e),
          B(e, o->dst)->layout == LAYOUT_B ? "b2f" : "f2b", gd, a2a_dims(e, o->dst));
        break;
    case COLL_ALLREDUCE:
    case COLL_REDUCESCATTER:
    case COLL_SENDRECV:
    case COLL__COUNT: break; /* never the dual of a layout change: gradients are never P */
    }
    E(e, "    %saccumulate(%s, xfer, %lld);\n", pfx(e), gs, (long long)lnumel(e, o->src));
}

/* What a stage program's body may use (body_end's bits): its locals and parameters. */
static const char *const stage_names[] = {"a", "d", "n0", "step", "micro", "w", NULL};

/* The locals a stage program's body uses (`used`, bits of stage_names), declared before it;
 * a parameter it does not use is cast to void. */
static void stage_locals(Emit *e, int s, unsigned used) {
    const SchedStage *st = &e->s->stages[s];
    if (used & 32) used |= 1; /* the view is made from the kept slot */
    if (used & 1)
        E(e, "    const Stage%d%s *a = &act%d[micro %% %d];\n", s, cg_mst(e) ? "Kept" : "", s,
          st->stash);
    if (used & 32)
        E(e, "    Stage%d w = stage%d_view(a); /* bf16: what the layers see, as f32 */\n", s, s);
    if (used & 2) E(e, "    const Stage%d *d = &grad%d;\n", s, s);
    if (used & 4)
        E(e, "    int64_t n0 = (int64_t)mesh->j * (BATCH / MESH_D) + (int64_t)micro * MB;\n");
    if (!(used & 8)) E(e, "    (void)step;\n");
    if (!(used & 23)) E(e, "    (void)micro;\n");
}

static int tag_of(const Emit *e, int b, bool grad) { return B(e, b)->value * 2 + (grad ? 1 : 0); }

/* bf16: an activation a layer or a load just wrote is stored rounded to bf16 (in place). */
static void emit_round(Emit *e, int b) {
    if (!cg_mst(e) || b < 0 || is_int(e, b)) return;
    const char *f = fld(e, "a", b);
    E(e, "    %sbf16_round(%s, %s, %lld); /* bf16 activation */\n", pfx(e), f, f,
      (long long)lnumel(e, b));
}

/* MPRT_TIMED(SLOT(node), call): under ZeRO-3 the layer's weights are gathered first, inside
 * its timer (the plan prices the gather with the layer: docs/cost-model.md, "ZeRO"). */
static void emit_timed(Emit *e, const char *indent, const char *slot, int node, const char *call) {
    const char *g = cg_zero3_gather(e, node);
    E(e, "%sMPRT_TIMED(%s(%d), %s%s%s%s);\n", indent, slot, node, *g ? "(" : "", g, call,
      *g ? ")" : "");
}

/* bf16: points the 16-bit activations among node id's inputs and output that its
 * forward (bwd: backward) names into `work` in the view `w`, unpacking each it reads (a
 * forward writes its output: packed after it, emit_fwd_layer). Returns the layer call's first
 * argument: "&w", or "a" without a view. */
static const char *emit_view(Emit *e, int id, bool bwd) {
    if (!cg_mst(e)) return "a";
    const int bs[3] = {e->fwd_in[0][id], e->fwd_in[1][id], e->fwd_out[id]};
    int64_t at = 0;
    for (int i = 0; i < 3; i++) {
        int b = bs[i];
        if (!cg_h16(e, b) || (i == 1 && b == bs[0]) || !(e->reads[bwd][id] & (1u << i))) continue;
        const char *f = e->bname[b];
        E(e, "    w.%s = work + %lld", f, (long long)at);
        if (bwd || i < 2)
            E(e, ", %sbf16_unpack(w.%s, a->%s, %lld)", pfx(e), f, f, (long long)lnumel(e, b));
        E(e, ";\n");
        at += lnumel(e, b);
    }
    return "&w";
}

/* Layer o's forward; `pre`: before the call ("loss += ", or "(void)" recomputed). Its output
 * is kept rounded to bf16 under bf16: packed into 16 bits (host or device) after a forward
 * that wrote it into the view; one that writes the kept 16 bits itself (the device's _bf16
 * ops: emit_layers.c) names no view field of it. */
static void emit_fwd_layer(Emit *e, const SchedOp *o, const char *pre) {
    const char *a = emit_view(e, o->node, false);
    emit_timed(e, "    ", "MPRT_FWD", o->node,
               arena_printf(e->a, "%s%s_forward(%s)", pre, e->lname[o->node],
                            layer_args(e, e->uses[0][o->node], a, "d")));
    if (cg_h16(e, o->dst) && !(e->reads[0][o->node] & 4)) return; /* written in 16 bits */
    if (cg_h16(e, o->dst))
        E(e, "    %sbf16_pack(a->%s, w.%s, %lld); /* kept as bf16 */\n", pfx(e), e->bname[o->dst],
          e->bname[o->dst], (long long)lnumel(e, o->dst));
    else
        emit_round(e, o->dst);
}

void emit_stage_fwd(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e, "/* Stage %d, one micro-batch forward; returns its share of the loss. */\n", s);
    E(e, "static double stage%d_forward(int64_t step, int micro) {\n", s);
    body_begin(e);
    for (int i = 0; i < st->nfwd; i++) {
        const SchedOp *o = &st->fwd[i];
        switch (o->kind) {
        case SOP_LOAD:
            E(e, "    load(&%s, %s, step, micro);\n",
              cg_mangle(e->a, "d", B(e, o->dst)->value, BV(e, o->dst)->name), fld(e, "a", o->dst));
            emit_round(e, o->dst);
            break;
        case SOP_FWD:
            source_comment(e, IR_NODE(e->g, o->node), "    ");
            emit_fwd_layer(e, o, o->dst < 0 ? "loss += " : "");
            break;
        case SOP_COLL: emit_fwd_coll(e, o); break;
        case SOP_SEND:
            E(e, "    %spipe_send%s(micro %% %d, %d, %s, %lld, %d);\n", pfx(e),
              cg_h16(e, o->src) ? "_bf16" : "", st->stash, o->peer - s, fld(e, "a", o->src),
              (long long)lnumel(e, o->src), tag_of(e, o->src, false));
            break;
        case SOP_RECV:
            E(e, "    MPRT_TIMED(MPRT_IDLE, %srecv%s(%d, %s, %lld, %d));\n", pfx(e),
              cg_h16(e, o->dst) ? "_bf16" : e->t->sr, o->peer - s, fld(e, "a", o->dst),
              (long long)lnumel(e, o->dst), tag_of(e, o->dst, false));
            break;
        case SOP_BWD: break; /* only in backward lists */
        }
    }
    E(e, "    return loss;\n");
    stage_locals(e, s, body_end(e, stage_names));
    E(e, "    double loss = 0;\n");
    body_flush(e);
    E(e, "}\n\n");
}

/* One gradient all-reduce started: y's parameters over its group, without waiting (joined
 * before the optimizer). */
static void emit_sync_call(Emit *e, const SchedSync *y, const char *indent) {
    E(e, "%s%sallreduce_start(%s, grd + %lld, %lld); /* ", indent, pfx(e), group_c(y->group),
      (long long)e->poff[y->first_param], (long long)y->count);
    put_comment_text(e, IR_NODE(e->g, y->node)->name);
    E(e, ", %lld B */\n", (long long)y->bytes);
}

/* ZeRO-1 (docs/runtime.md, "ZeRO"): the layer's gradients reduce-scattered, blocking, once,
 * after the last micro-batch, in place (this rank's part lands at its place in grd). ZeRO-2's
 * are started by mprt_zero2_close / mprt_cu_zero2_close instead (emit_stage_bwd). */
static void emit_zero_sync(Emit *e, const SchedSync *y) {
    E(e, "    if (micro == MICRO - 1) { /* ZeRO-1: the gradients of ");
    put_comment_text(e, IR_NODE(e->g, y->node)->name);
    E(e, ", %lld B with the all-gather */\n", (long long)y->bytes);
    E(e, "        %szero_reduce_scatter(%s, grd + %lld, NULL, %lld, %lld, false);\n    }\n", pfx(e),
      group_c(y->group), (long long)e->poff[y->first_param], (long long)y->count,
      (long long)y->shard);
}

/* A layer's gradient all-reduce starts right after its backward on the step's last
 * micro-batch, when its gradients are final, and runs while the backward of the layers before
 * it does (the overlap the cost model counts as hidden): on the device on the communication
 * stream, on the host as a non-blocking MPI collective that the runtime progresses between
 * layers (mprt_allreduce_start, docs/runtime.md). Both are joined before the optimizer. */
static void emit_bwd_syncs(Emit *e, const SchedStage *st, int node) {
    for (int i = 0; i < st->nsync; i++) {
        if (st->sync[i].node != node) continue;
        if (cg_zero2_sharded(e)) continue; /* mprt_zero2_close started it */
        if (e->s->zero) {
            emit_zero_sync(e, &st->sync[i]);
            continue;
        }
        E(e, "    if (micro == MICRO - 1) /* last micro-batch: gradients final, overlap the rest "
             "*/\n");
        emit_sync_call(e, &st->sync[i], "        ");
    }
}

/* Layer o's backward whose own collective nx follows it: a column split's input gradient is a
 * partial sum, computed into `xfer` and all-reduced before it is added to the stage's. */
static void emit_bwd_partial(Emit *e, int s, const SchedOp *o, const SchedOp *nx) {
    const char *a = emit_view(e, o->node, true);
    const char *f = e->bname[nx->src];
    int64_t n = lnumel(e, nx->src);
    E(e, "    {   /* a column split's input gradient is a partial sum: all-reduce it (%lld B) */\n",
      (long long)nx->bytes);
    E(e,
      "        Stage%d part = *d;\n        part.%s = xfer;\n        %sxfer, sizeof(float) * "
      "%lld);\n",
      s, f, zero(e), (long long)n);
    emit_timed(e, "        ", "MPRT_BWD", o->node,
               arena_printf(e->a, "%s_backward(%s)", e->lname[o->node],
                            layer_args(e, e->uses[1][o->node], a, "&part")));
    E(e,
      "        %sallreduce(MPRT_TENSOR, xfer, %lld);\n        %saccumulate(d->%s, xfer, %lld);\n   "
      " }\n",
      pfx(e), (long long)n, pfx(e), f, (long long)n);
}

/* Recomputation: the recomputed layers' forward (and the layout changes feeding them) runs
 * again from what the stage kept, rebuilding their activations for this micro-batch (the loss
 * it recomputes is not counted again). Same kernels, same order, same inputs: the same bits. */
static void emit_recompute(Emit *e, const SchedStage *st) {
    if (st->nrec)
        E(e, "    /* recomputed layers: their forward again, their activations were not kept */\n");
    for (int i = 0; i < st->nrec; i++) {
        const SchedOp *o = &st->rec[i];
        if (o->kind == SOP_COLL) {
            emit_fwd_coll(e, o);
            continue;
        }
        bool dev_loss = e->t->dev && o->dst < 0; /* it adds into dloss: aim it at dloss[1] */
        if (dev_loss) E(e, "    dloss += 1; /* the recomputed loss is not the step's again */\n");
        emit_fwd_layer(e, o, o->dst < 0 ? "(void)" : "");
        if (dev_loss) E(e, "    dloss -= 1;\n");
    }
}

void emit_stage_bwd(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* Stage %d, one micro-batch backward: activation gradients start at zero, parameter\n"
      " * gradients accumulate over the step's micro-batches. */\n",
      s);
    E(e, "static void stage%d_backward(int64_t step, int micro) {\n", s);
    body_begin(e);
    E(e,
      "    MPRT_TIMED(MPRT_IDLE, mprt_pipe_wait(micro %% %d));\n    %sgbase, sizeof(float) * "
      "STAGE%d_GRADS);\n",
      st->stash, zero(e), s);
    emit_recompute(e, st);
    for (int i = 0; i < st->nbwd; i++) {
        const SchedOp *o = &st->bwd[i];
        const SchedOp *nx = i + 1 < st->nbwd ? &st->bwd[i + 1] : NULL;
        switch (o->kind) {
        case SOP_BWD: {
            bool z2 = cg_zero2_sharded(e) && IR_NODE(e->g, o->node)->nparams > 0;
            if (z2)
                E(e, "    %szero2_open(%d); /* ZeRO-2: its gradients into a transient slot */\n",
                  pfx(e), cg_zero_part(e, o->node));
            if (nx && nx->kind == SOP_COLL && nx->layer_own)
                emit_bwd_partial(e, s, o, nx), i++;
            else {
                const char *a = emit_view(e, o->node, true);
                emit_timed(e, "    ", "MPRT_BWD", o->node,
                           arena_printf(e->a, "%s_backward(%s)", e->lname[o->node],
                                        layer_args(e, e->uses[1][o->node], a, "d")));
            }
            if (z2)
                E(e, "    %szero2_close(); /* their reduce-scatter starts, not waited for */\n",
                  pfx(e));
            emit_bwd_syncs(e, st, o->node);
            break;
        }
        case SOP_COLL: emit_bwd_coll(e, o); break;
        case SOP_SEND:
            E(e, "    %spipe_send(MPRT_PIPE_GRAD, %d, %s, %lld, %d);\n", pfx(e), o->peer - s,
              fld(e, "d", o->src), (long long)lnumel(e, o->src), tag_of(e, o->src, true));
            break;
        case SOP_RECV:
            E(e,
              "    MPRT_TIMED(MPRT_IDLE, %srecv%s(%d, xfer, %lld, %d));\n    %saccumulate(%s, "
              "xfer, %lld);\n",
              pfx(e), e->t->sr, o->peer - s, (long long)lnumel(e, o->dst), tag_of(e, o->dst, true),
              pfx(e), fld(e, "d", o->dst), (long long)lnumel(e, o->dst));
            break;
        case SOP_LOAD:
        case SOP_FWD: break; /* only in forward lists */
        }
    }
    stage_locals(e, s, body_end(e, stage_names));
    body_flush(e);
    E(e, "}\n\n");
}

void emit_stages(Emit *e) {
    E(e, "/* The order each stage runs its micro-batches in (1F1B): 2*micro for a forward,\n"
         " * 2*micro + 1 for a backward. */\n");
    for (int s = 0; s < e->s->S; s++) {
        const SchedStage *st = &e->s->stages[s];
        E(e, "static const int ORDER%d[%d] = {", s, st->norder);
        for (int i = 0; i < st->norder; i++)
            E(e, "%s%d", i ? ", " : "", st->order[i].micro * 2 + st->order[i].bwd);
        E(e, "};\n");
    }
    E(e, "/* Each stage as the runtime runs it (MprtStage: mprt_stage_run). */\n"
         "static const MprtStage STAGES[MESH_S] = {\n");
    for (int s = 0; s < e->s->S; s++)
        E(e, "    {stage%d_alloc, stage%d_forward, stage%d_backward, ORDER%d, %d},\n", s, s, s, s,
          e->s->stages[s].norder);
    E(e, "};\n\n");
}

/* ───────────────────────────── the step ───────────────────────────── */

static const char *opt_name(OptKind k) {
    return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw";
}

/* The gradient all-reduces were started in the backward (emit_bwd_syncs): wait for them. */
static void emit_grad_sync(Emit *e) {
    if (cg_zero2_sharded(e)) {
        E(e, "    %szero2_join(); /* ZeRO-2: the reduce-scatters started in the backward */\n",
          pfx(e));
        return;
    }
    E(e, "    %s(); /* the gradient all-reduces started in the backward */\n",
      e->t->dev ? "mprt_cu_comm_join" : "mprt_allreduce_join");
}

/* The optimizer, then the step's loss: on the device read from dloss, the step's one sync. */
static void emit_optimizer(Emit *e) {
    OptKind opt = e->g->train.opt;
    const char *w = cg_mst(e) ? "mst" : "prm"; /* the weights the optimizer updates */
    if (!e->s->zero) E(e, "    int64_t n = STAGE_PARAMS[mesh->s];\n");
    if (cg_zero2_sharded(e) && cg_mst(e))
        E(e, "    %sbf16_round(gsh, gsh, STAGE_SHARDS[mesh->s]); /* bf16 gradients (parts) */\n",
          pfx(e));
    else if (cg_zero_master(e))
        E(e,
          "    %sbf16_round(grd, grd, STAGE_PARAMS[mesh->s]); /* bf16 gradients (the "
          "synced parts\n                                                          already "
          "are) */\n",
          pfx(e));
    else if (cg_mst(e))
        E(e, "    %sbf16_round(grd, grd, n); /* bf16 gradients (the synced ones already are) */\n",
          pfx(e));
    if (cg_zero_master(e))
        E(e,
          "    /* ZeRO under bf16: the optimizer on this rank's parts of the f32 master "
          "weights, then\n     * each part rounded into the working copy %s */\n"
          "    float *state[3] = {mst, opt1, opt2};\n"
          "    MPRT_TIMED(MPRT_OPTIMIZER, %szero_update(&MODEL, mst, grd, gsh, state, "
          "&hyper, step + 1));\n"
          "    %szero_master_params(&ZERO, mst, prm, true);\n",
          cg_zero3(e) ? "(ZeRO-3: its parts, each layer\n     * gathered before it runs)"
                      : "and all-gathered (bf16)",
          pfx(e), pfx(e));
    else if (e->s->zero)
        E(e,
          "    /* ZeRO: the optimizer on this rank's parts%s */\n"
          "    float *state[3] = {prm, opt1, opt2};\n"
          "    MPRT_TIMED(MPRT_OPTIMIZER, %szero_update(&MODEL, prm, grd, gsh, state, &hyper, "
          "step + 1));\n"
          "%s",
          cg_zero3(e) ? " (ZeRO-3: no all-gather after it, each layer\n     * gathers its "
                        "parts before it runs)"
                      : ", then every part to every rank",
          pfx(e),
          cg_zero3(e) ? "" : arena_printf(e->a, "    %szero_params(&ZERO, prm);\n", pfx(e)));
    else if (opt == OPT_SGD)
        E(e,
          "    MPRT_TIMED(MPRT_OPTIMIZER, %ssgd_step(%s, hyper.momentum != 0.0f ? opt1 : NULL, "
          "grd, "
          "n, hyper.lr, hyper.momentum, hyper.weight_decay));\n",
          pfx(e), w);
    else
        E(e,
          "    MPRT_TIMED(MPRT_OPTIMIZER, %s%s_step(%s, opt1, opt2, grd, n, hyper.lr, "
          "hyper.beta1, "
          "hyper.beta2, hyper.eps, hyper.weight_decay, step + 1));\n",
          pfx(e), opt_name(opt), w);
    if (cg_mst(e) && !cg_zero_master(e))
        E(e, "    %sbf16_refresh(); /* prm: the bf16 rounding of the new mst */\n", pfx(e));
    if (e->t->dev)
        E(e, "    double dev = 0;\n    mprt_cu_download(&dev, dloss, sizeof dev); /* waits for the "
             "step */\n"
             "    loss += dev;\n    mprt_cu_stats_flush();\n");
    E(e, "    MPRT_TIMED(MPRT_IDLE, mprt_metric_sum(MPRT_WORLD, &loss, 1));\n"
         "    mprt_busy_stop();\n    return loss;\n}\n\n");
}

void emit_step(Emit *e) {
    E(e,
      "/* One training step: the stage's micro-batches in 1F1B order, the gradient all-reduce of\n"
      " * every parameter over the ranks that hold the same shard, then the optimizer. Returns\n"
      " * the step's loss, summed over ranks (a metric, not counted as plan traffic). */\n");
    E(e, "static double train_step(int64_t step) {\n    mprt_busy_start();\n");
    if (cg_zero2_sharded(e))
        E(e, "    %sgsh, sizeof(float) * (size_t)STAGE_SHARDS[mesh->s]); /* ZeRO-2 */\n", zero(e));
    else
        E(e, "    %sgrd, sizeof(float) * (size_t)STAGE_PARAMS[mesh->s]);\n", zero(e));
    if (e->t->dev) E(e, "    mprt_cu_memset0(dloss, sizeof(double));\n");
    E(e, "    double loss = mprt_stage_run(&STAGES[mesh->s], step);\n");
    E(e, "    MPRT_TIMED(MPRT_IDLE, mprt_pipe_wait_all());\n");
    emit_grad_sync(e);
    emit_optimizer(e);
}
