/*
 * emit_layers.c: one layer's named constants (its local shard shapes) and its `_forward` /
 * `_backward` pair, each a call of the runtime's kernel (mprt_ on the host, mprt_cu_ on the
 * device) on the stage's buffers. emit_layer switches over every op kind without default:,
 * so -Wswitch names this file when an op is added (docs/adding-an-op.md).
 */
#include "emit.h"

#include <string.h>

/* ───────────────────────────── layers ───────────────────────────── */

/* What one layer's functions need: its buffers as `a->field` / `d->field` expressions. */
typedef struct Lyr {
    Emit *e;
    int id;
    const IrNode *n;
    const PlanNode *pn;
    int in[IR_MAX_INPUTS], out;
    const char *C; /* constant prefix, upper case */
    int open;      /* the function being printed: 0 none, 1 the forward, 2 the backward */
    bool loss;     /* the forward returns the micro-batch's loss */
} Lyr;

static const char *A(const Lyr *l, int b) { return arena_printf(l->e->a, "a->%s", l->e->bname[b]); }
/* On the device under bf16, buffer b as kept in 16 bits (`a->k->NAME`: cg_h16; not unpacked
 * into the view for a forward that names it only so), or NULL. */
static const char *AH(const Lyr *l, int b) {
    if (!cg_bf16_cu(l->e) || !cg_h16(l->e, b)) return NULL;
    return arena_printf(l->e->a, "a->k->%s", l->e->bname[b]);
}
static const char *D(const Lyr *l, int b) {
    return b >= 0 && B(l->e, b)->grad ? arena_printf(l->e->a, "d->%s", l->e->bname[b]) : "NULL";
}
static void K(const Lyr *l, const char *name, int64_t v, const char *what) {
    E(l->e, "#define %s_%s %lld%s%s%s\n", l->C, name, (long long)v, what ? " /* " : "",
      what ? what : "", what ? " */" : "");
}

/* The parameters a layer function may take, in the order of the LYR_ bits (emit.h). */
static const char *const lyr_params[] = {"a", "d", "step", "n0", NULL};

static bool is_ident(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether a layer function's body reads some weight of node n itself (names P... other than
 * as GRAD(P...)): a bf16 trainer then unpacks them first. */
static bool reads_weights(const Emit *e, const IrNode *n) {
    for (int i = n->first_param; i < n->first_param + n->nparams; i++) {
        const char *name = arena_printf(e->a, "P%s", e->pname[i]);
        size_t len = strlen(name);
        for (const char *p = strstr(e->body, name); p; p = strstr(p + len, name)) {
            if (!is_ident(p[len]) && (p - e->body < 5 || memcmp(p - 5, "GRAD(", 5) != 0))
                return true;
        }
    }
    return false;
}

/* bf16: a layer function with parameters first unpacks them as f32 into wl, or, when its body
 * reads none as f32 (an embedding, a first linear's backward), only says where they start if
 * it names gradients by GRAD. */
static void stage_weights(Lyr *l) {
    Emit *e = l->e;
    long long at = (long long)e->poff[l->n->first_param];
    if (!cg_mst(e) || l->n->nparams == 0) return;
    if (e->body && !reads_weights(e, l->n)) {
        if (strstr(e->body, "GRAD("))
            E(e, "    wl_at = %lld; /* bf16: where its gradients start (it reads no weights) */\n",
              at);
        return;
    } else
        E(e, "    wl_at = %lld, wl = %sbf16_layer(wl_at, %lld); /* bf16: the weights as f32 */\n",
          at, pfx(e), (long long)cg_layer_floats(e, l->n));
}

/* Whether the body names `a->field` (the whole field name). */
static bool names_field(const char *body, const char *field) {
    size_t len = strlen(field);
    for (const char *p = strstr(body, "a->"); p; p = strstr(p + 3, "a->")) {
        if ((p > body && is_ident(p[-1])) || strncmp(p + 3, field, len) != 0) continue;
        if (!is_ident(p[3 + len])) return true;
    }
    return false;
}

/* Which of l's input and output buffers (bits 0-2: in[0], in[1], out) the body names. */
static unsigned field_reads(const Lyr *l) {
    const int bs[3] = {l->in[0], l->in[1], l->out};
    unsigned r = 0;
    for (int i = 0; i < 3; i++)
        if (bs[i] >= 0 && l->e->body && names_field(l->e->body, l->e->bname[bs[i]])) r |= 1u << i;
    return r;
}

/* Ends the function being printed, if any: its head takes exactly the parameters its body
 * reads (Emit.uses, which the stage programs' calls follow), then the body. */
static void close_fn(Lyr *l) {
    if (!l->open) return;
    Emit *e = l->e;
    int bwd = l->open == 2;
    unsigned u = body_end(e, lyr_params) & (bwd ? ~0u : ~(unsigned)LYR_D);
    const char *stage = arena_printf(e->a, "const Stage%d *", l->pn->stage);
    const char *type[] = {stage, stage, "int64_t ", "int64_t "};
    E(e, "static %s %s_%s(", l->loss && !bwd ? "double" : "void", e->lname[l->id],
      bwd ? "backward" : "forward");
    for (int i = 0, k = 0; i < 4; i++)
        if (u & (1u << i)) E(e, "%s%s%s", k++ ? ", " : "", type[i], lyr_params[i]);
    E(e, "%s) {\n", u & 15 ? "" : "void");
    stage_weights(l);
    e->reads[bwd][l->id] = field_reads(l);
    body_flush(e);
    e->uses[bwd][l->id] = u & 15;
    l->open = 0;
}

static void open_fwd(Lyr *l, bool loss) {
    source_comment(l->e, l->n, "");
    l->open = 1, l->loss = loss;
    body_begin(l->e);
}
/* Ends the forward (emit_layer ends the backward). */
static void open_bwd(Lyr *l) {
    close_fn(l);
    l->open = 2;
    body_begin(l->e);
}

/* bf16: node n's parameter of role r in the bf16 working weights ("(prm + 608)"; under ZeRO-3
 * in its gathered layer, "mprt_zero3_param16(608)"), or "NULL". */
static const char *prm_ref(Emit *e, const IrNode *n, ParamRole r) {
    int i = PI(e, n, r);
    return i < 0 ? "NULL"
                 : arena_printf(e->a, cg_zero3(e) ? "mprt_zero3_param16(%lld)" : "(prm + %lld)",
                                (long long)e->poff[i]);
}

/* On the device under bf16 the forward reads the bf16 weights themselves and its input as kept
 * in 16 bits (mprt_cu_linear_forward_bf16_packed; an input as loaded, f32, is packed into
 * scratch: mprt_cu_linear_forward_bf16) for a bf16 GEMM (docs/cuda.md "bf16"); the backward's
 * products take the f32 activation gradient, so they stay f32 on staged weights. */
static void lyr_linear(Lyr *l) {
    Emit *e = l->e;
    int64_t I = ldim(e, l->in[0], -1), O = ldim(e, l->out, -1);
    K(l, "N", lnumel(e, l->in[0]) / I, "rows (samples x positions)");
    K(l, "I", I, "input features (local)");
    K(l, "O", O, "output features (local)");
    const IrNode *n = l->n;
    open_fwd(l, false);
    if (AH(l, l->in[0])) /* its input as kept: the bf16 operand itself */
        E(e, "    mprt_cu_linear_forward_bf16_packed(%s, %s, %s, %s, %s_N, %s_I, %s_O, %s);\n}\n",
          A(l, l->out), AH(l, l->in[0]), prm_ref(e, n, PARAM_WEIGHT), prm_ref(e, n, PARAM_BIAS),
          l->C, l->C, l->C, add_flag(e, n, PARAM_BIAS));
    else if (cg_bf16_cu(e))
        E(e,
          "    mprt_cu_linear_forward_bf16(%s, %s, %s, %s, %s_N, %s_I, %s_O, %s, (uint16_t "
          "*)scratch);\n}\n",
          A(l, l->out), A(l, l->in[0]), prm_ref(e, n, PARAM_WEIGHT), prm_ref(e, n, PARAM_BIAS),
          l->C, l->C, l->C, add_flag(e, n, PARAM_BIAS));
    else
        E(e, "    %slinear_forward(%s, %s, %s, %s, %s_N, %s_I, %s_O, %s);\n}\n", pfx(e),
          A(l, l->out), A(l, l->in[0]), pref(e, n, PARAM_WEIGHT, false),
          pref(e, n, PARAM_BIAS, false), l->C, l->C, l->C, add_flag(e, n, PARAM_BIAS));
    open_bwd(l);
    /* bf16: without an input gradient the kernel reads no weights, so none are unpacked */
    bool no_dx = cg_mst(e) && !strcmp(D(l, l->in[0]), "NULL");
    E(e, "    %slinear_backward(%s, %s, %s, %s, %s, %s, %s_N, %s_I, %s_O);\n}\n\n", pfx(e),
      D(l, l->in[0]), pref(e, n, PARAM_WEIGHT, true), pref(e, n, PARAM_BIAS, true), D(l, l->out),
      A(l, l->in[0]), no_dx ? "NULL" : pref(e, n, PARAM_WEIGHT, false), l->C, l->C, l->C);
}

/* An element-wise op of ops.def (EW): its backward reads the input (IN) or the output (OUT). */
#define EW_READS_IN false
#define EW_READS_OUT true
/* On the device under bf16 an op whose activations are all kept in 16 bits runs its _bf16 form
 * on them (no view, no conversions: the f32 op's result rounded, bit for bit), and a backward
 * reads its saved activation as kept. */
static void lyr_pointwise(Lyr *l, const char *k, bool from_out) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), shape_str(e, DT_F32, &B(e, l->out)->local));
    open_fwd(l, false);
    if (AH(l, l->out) && AH(l, l->in[0]))
        E(e, "    mprt_cu_%s_forward_bf16(%s, %s, %s_SIZE);\n}\n", k, AH(l, l->out),
          AH(l, l->in[0]), l->C);
    else
        E(e, "    %s%s_forward(%s, %s, %s_SIZE);\n}\n", pfx(e), k, A(l, l->out), A(l, l->in[0]),
          l->C);
    open_bwd(l);
    int saved = from_out ? l->out : l->in[0];
    E(e, "    %s%s_backward%s(%s, %s, %s, %s_SIZE);\n}\n\n", pfx(e), k, AH(l, saved) ? "_bf16" : "",
      D(l, l->in[0]), D(l, l->out), AH(l, saved) ? AH(l, saved) : A(l, saved), l->C);
}

static void lyr_add(Lyr *l) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), shape_str(e, DT_F32, &B(e, l->out)->local));
    open_fwd(l, false);
    if (AH(l, l->out) && AH(l, l->in[0]) && AH(l, l->in[1])) /* 16 bits in and out */
        E(e, "    mprt_cu_add_forward_bf16(%s, %s, %s, %s_SIZE);\n}\n", AH(l, l->out),
          AH(l, l->in[0]), AH(l, l->in[1]), l->C);
    else
        E(e, "    %sadd_forward(%s, %s, %s, %s_SIZE);\n}\n", pfx(e), A(l, l->out), A(l, l->in[0]),
          A(l, l->in[1]), l->C);
    open_bwd(l);
    E(e, "    %sadd_backward(%s, %s, %s, %s_SIZE);\n}\n\n", pfx(e), D(l, l->in[0]), D(l, l->in[1]),
      D(l, l->out), l->C);
}

static void lyr_flatten(Lyr *l) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), "the same bytes under a new shape");
    open_fwd(l, false);
    E(e, "    %s(%s, %s, sizeof(float) * %s_SIZE);\n}\n", e->t->copy, A(l, l->out), A(l, l->in[0]),
      l->C);
    open_bwd(l);
    if (B(e, l->in[0])->grad)
        E(e, "    %saccumulate(%s, %s, %s_SIZE);\n", pfx(e), D(l, l->in[0]), D(l, l->out), l->C);
    E(e, "}\n\n");
}

static void lyr_layernorm(Lyr *l) {
    Emit *e = l->e;
    int64_t C = ldim(e, l->in[0], -1);
    const char *st = arena_printf(e->a, "a->%s", aux_field(e, l->id, "stash"));
    K(l, "N", lnumel(e, l->in[0]) / C, "rows");
    K(l, "C", C, "normalised features");
    open_fwd(l, false);
    E(e, "    %slayernorm_forward(%s, %s, %s + %s_N, %s, %s, %s, %s_N, %s_C, %s);\n}\n", pfx(e),
      A(l, l->out), st, st, l->C, A(l, l->in[0]), pref(e, l->n, PARAM_GAMMA, false),
      pref(e, l->n, PARAM_BETA, false), l->C, l->C, flt(e, ir_arg_float(l->n, LAYERNORM_EPS)));
    open_bwd(l);
    E(e, "    %slayernorm_backward(%s, %s, %s, %s, %s, %s, %s + %s_N, %s, %s_N, %s_C);\n}\n\n",
      pfx(e), D(l, l->in[0]), pref(e, l->n, PARAM_GAMMA, true), pref(e, l->n, PARAM_BETA, true),
      D(l, l->out), A(l, l->in[0]), st, st, l->C, pref(e, l->n, PARAM_GAMMA, false), l->C, l->C);
}

/* "0" or "N * mesh->k": the offset of this tensor rank's block. */
static const char *times_k(Emit *e, int64_t n) {
    return n ? arena_printf(e->a, "%lld * mesh->k", (long long)n) : "0";
}

static void lyr_dropout(Lyr *l) {
    Emit *e = l->e;
    const SchedBuf *b = B(e, l->out);
    const Shape *s = &b->local, *f = &b->full;
    int64_t R, r0k = 0, F, Fg, f0k = 0;
    if (s->rank == 4) {
        R = s->d[1], F = Fg = s->d[2] * s->d[3];
        if (b->layout == LAYOUT_F) r0k = R;
    } else {
        R = prod(s, 1, s->rank - 1), F = s->rank > 1 ? s->d[s->rank - 1] : 1;
        Fg = f->rank > 1 ? f->d[f->rank - 1] : 1;
        if (b->layout == LAYOUT_F) f0k = F;
    }
    K(l, "N", s->d[0], "samples (local)");
    open_fwd(l, false);
    const char *sh = arena_printf(
        e->a, "(MprtDropShard){n0%s, %lld, %s, %lld, %lld, %s}",
        b->layout == LAYOUT_B ? arena_printf(e->a, " + %lld * mesh->k", (long long)s->d[0]) : "",
        (long long)R, times_k(e, r0k), (long long)F, (long long)Fg, times_k(e, f0k));
    E(e, "    %sdropout_forward(%s, %s, %s_N, %s, %s, seed, %du, step, 1);\n}\n", pfx(e),
      A(l, l->out), A(l, l->in[0]), l->C, sh, flt(e, ir_arg_float(l->n, DROPOUT_P)), l->id);
    open_bwd(l);
    E(e, "    %sdropout_backward(%s, %s, %s_N, %s, %s, seed, %du, step);\n}\n\n", pfx(e),
      D(l, l->in[0]), D(l, l->out), l->C, sh, flt(e, ir_arg_float(l->n, DROPOUT_P)), l->id);
}

static void lyr_conv2d(Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local, *y = &B(e, l->out)->local;
    K(l, "N", x->d[0], "samples");
    K(l, "C", x->d[1], "input channels (local)");
    K(l, "H", x->d[2], NULL);
    K(l, "W", x->d[3], NULL);
    K(l, "O", y->d[1], "output channels (local)");
    K(l, "K", ir_arg_int(l->n, CONV2D_KERNEL), "kernel");
    K(l, "S", ir_arg_int(l->n, CONV2D_STRIDE), "stride");
    K(l, "P", ir_arg_int(l->n, CONV2D_PADDING), "padding");
    const char *dims = arena_printf(e->a, "%s_N, %s_C, %s_H, %s_W, %s_O, %s_K, %s_S, %s_P", l->C,
                                    l->C, l->C, l->C, l->C, l->C, l->C, l->C);
    open_fwd(l, false);
    if (cg_bf16_cu(e)) /* the bf16 weights and a bf16 col in scratch: a bf16 GEMM */
        E(e, "    mprt_cu_conv2d_forward_bf16%s(%s, %s, %s, %s, (uint16_t *)scratch, %s, %s);\n}\n",
          AH(l, l->in[0]) ? "_packed" : "", A(l, l->out),
          AH(l, l->in[0]) ? AH(l, l->in[0]) : A(l, l->in[0]), prm_ref(e, l->n, PARAM_WEIGHT),
          prm_ref(e, l->n, PARAM_BIAS), dims, add_flag(e, l->n, PARAM_BIAS));
    else
        E(e, "    %sconv2d_forward(%s, %s, %s, %s, scratch, %s, %s);\n}\n", pfx(e), A(l, l->out),
          A(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, false), pref(e, l->n, PARAM_BIAS, false),
          dims, add_flag(e, l->n, PARAM_BIAS));
    open_bwd(l);
    E(e, "    %sconv2d_backward(%s, %s, %s, %s, %s, %s, scratch, %s);\n}\n\n", pfx(e),
      D(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, true), pref(e, l->n, PARAM_BIAS, true),
      D(l, l->out), A(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, false), dims);
}

static void lyr_maxpool(Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local;
    int64_t k = ir_arg_int(l->n, MAXPOOL2D_KERNEL), st = ir_arg_int(l->n, MAXPOOL2D_STRIDE);
    K(l, "PLANES", x->d[0] * x->d[1], "samples x channels (local)");
    K(l, "H", x->d[2], NULL);
    K(l, "W", x->d[3], NULL);
    K(l, "K", k, "window");
    K(l, "S", st ? st : k, "stride");
    const char *am = arena_printf(e->a, "a->%s", aux_field(e, l->id, "argmax"));
    open_fwd(l, false);
    E(e, "    %smaxpool2d_forward(%s, %s, %s, %s_PLANES, %s_H, %s_W, %s_K, %s_S);\n}\n", pfx(e),
      A(l, l->out), am, A(l, l->in[0]), l->C, l->C, l->C, l->C, l->C);
    open_bwd(l);
    E(e, "    %smaxpool2d_backward(%s, %s, %s, %s_PLANES, %s_H, %s_W, %s_K, %s_S);\n}\n\n", pfx(e),
      D(l, l->in[0]), D(l, l->out), am, l->C, l->C, l->C, l->C, l->C);
}

/* bf16: its gradient by offset ("GRAD_AT(608)"), for a kernel that has no staged weights. */
static const char *grad_at(Emit *e, const IrNode *n, ParamRole r) {
    int i = PI(e, n, r);
    return i < 0 ? "NULL" : arena_printf(e->a, "GRAD_AT(%lld)", (long long)e->poff[i]);
}

static void lyr_embedding(Lyr *l) {
    Emit *e = l->e;
    const Shape *ids = &B(e, l->in[0])->local;
    int pw = PI(e, l->n, PARAM_WEIGHT);
    const Shape *w = &e->s->params[pw].local;
    K(l, "M", ir_shape_numel(ids), "tokens (local)");
    K(l, "T", ids->rank == 2 ? ids->d[1] : 1, "positions per sample");
    K(l, "V", w->d[0], "vocabulary rows (local)");
    K(l, "D", ldim(e, l->out, -1), "features (local)");
    const char *v0 =
        e->s->params[pw].split_dim == 0 ? arena_printf(e->a, "mesh->k * %s_V", l->C) : "0";
    open_fwd(l, false);
    /* bf16: the kernel converts the rows it looks up from the bf16 working weights itself */
    bool h = cg_mst(e);
    E(e, "    %sembedding_forward%s(%s, %s, %s, %s, %s_M, %s_T, %s_V, %s, %s_D, %s);\n}\n", pfx(e),
      h ? "_bf16" : "", A(l, l->out), A(l, l->in[0]),
      h ? prm_ref(e, l->n, PARAM_WEIGHT) : pref(e, l->n, PARAM_WEIGHT, false),
      h ? prm_ref(e, l->n, PARAM_POS) : pref(e, l->n, PARAM_POS, false), l->C, l->C, l->C, v0, l->C,
      add_flag(e, l->n, PARAM_POS));
    open_bwd(l);
    E(e, "    %sembedding_backward(%s, %s, %s, %s, %s_M, %s_T, %s_V, %s, %s_D);\n}\n\n", pfx(e),
      h ? grad_at(e, l->n, PARAM_WEIGHT) : pref(e, l->n, PARAM_WEIGHT, true),
      h ? grad_at(e, l->n, PARAM_POS) : pref(e, l->n, PARAM_POS, true), D(l, l->out),
      A(l, l->in[0]), l->C, l->C, l->C, v0, l->C);
}

static const char *attn_w(const Lyr *l, bool grad) {
    const IrNode *n = l->n;
    Emit *e = l->e;
    return arena_printf(
        e->a, "(%s){%s, %s, %s, %s, %s, %s, %s, %s}", grad ? "MprtAttnG" : "MprtAttnW",
        pref(e, n, PARAM_WQ, grad), pref(e, n, PARAM_BQ, grad), pref(e, n, PARAM_WK, grad),
        pref(e, n, PARAM_BK, grad), pref(e, n, PARAM_WV, grad), pref(e, n, PARAM_BV, grad),
        pref(e, n, PARAM_WO, grad), pref(e, n, PARAM_BO, grad));
}

static void lyr_attention(Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local;
    int64_t h = ir_arg_int(l->n, ATTENTION_HEADS), hl = l->pn->strat == STRAT_COL ? h / e->s->t : h;
    K(l, "N", x->d[0], "samples");
    K(l, "T", x->d[1], "positions");
    K(l, "D", x->d[2], "width");
    K(l, "HL", hl, "heads on this rank");
    K(l, "HD", x->d[2] / h, "head size");
    const char *dims = arena_printf(e->a, "%s_N, %s_T, %s_D, %s_HL, %s_HD, %d", l->C, l->C, l->C,
                                    l->C, l->C, ir_arg_bool(l->n, ATTENTION_CAUSAL));
    const char *st = arena_printf(e->a, "a->%s", aux_field(e, l->id, "stash"));
    open_fwd(l, false);
    if (cg_bf16_cu(e)) /* q, k, v: bf16 GEMMs on the bf16 weights; wo, bo staged f32 */
        E(e,
          "    mprt_cu_attention_forward_bf16%s(%s, %s, %s, (MprtAttnW){NULL, NULL, NULL, NULL, "
          "NULL, NULL, %s, %s}, (MprtCuAttnWh){%s, %s, %s, %s, %s, %s}, %s, %s%s);\n}\n",
          AH(l, l->in[0]) ? "_packed" : "", A(l, l->out), st,
          AH(l, l->in[0]) ? AH(l, l->in[0]) : A(l, l->in[0]), pref(e, l->n, PARAM_WO, false),
          pref(e, l->n, PARAM_BO, false), prm_ref(e, l->n, PARAM_WQ), prm_ref(e, l->n, PARAM_BQ),
          prm_ref(e, l->n, PARAM_WK), prm_ref(e, l->n, PARAM_BK), prm_ref(e, l->n, PARAM_WV),
          prm_ref(e, l->n, PARAM_BV), dims, add_flag(e, l->n, PARAM_BO),
          AH(l, l->in[0]) ? "" : ", (uint16_t *)scratch");
    else
        E(e, "    %sattention_forward(%s, %s, %s, %s, %s, %s);\n}\n", pfx(e), A(l, l->out), st,
          A(l, l->in[0]), attn_w(l, false), dims, add_flag(e, l->n, PARAM_BO));
    open_bwd(l);
    E(e, "    %sattention_backward(%s, %s, %s, %s, %s, scratch, %s, %s);\n}\n\n", pfx(e),
      D(l, l->in[0]), attn_w(l, true), D(l, l->out), A(l, l->in[0]), st, attn_w(l, false), dims);
}

/* On the host the loss function returns the micro-batch's loss (with `once`, rank 0's). */
static void loss_forward_host(Lyr *l, bool ce, bool once) {
    Emit *e = l->e;
    const char *call =
        ce ? arena_printf(e->a, "mprt_cross_entropy_forward(%s, %s, %s_M, %s_V, %s_SCALE)",
                          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C)
           : arena_printf(e->a, "mprt_mse_forward(%s, %s, %s_SIZE, %s_SCALE)", A(l, l->in[0]),
                          A(l, l->in[1]), l->C, l->C);
    if (once)
        E(e, "    double v = %s;\n    return mesh->k == 0 ? v : 0.0;\n}\n", call);
    else
        E(e, "    return %s;\n}\n", call);
}

/* On the device it adds into dloss, which the step reads once: no sync per micro-batch. */
static void loss_forward_dev(Lyr *l, bool ce, bool once) {
    Emit *e = l->e;
    const char *guard = once ? "    if (mesh->k == 0)\n    " : "";
    if (ce)
        E(e, "%s    mprt_cu_cross_entropy_forward(dloss, %s, %s, %s_M, %s_V, %s_SCALE);\n", guard,
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C);
    else
        E(e, "%s    mprt_cu_mse_forward(dloss, %s, %s, %s_SIZE, %s_SCALE);\n", guard,
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C);
    E(e, "    return 0.0; /* the value accumulates in dloss, read once per step */\n}\n");
}

/* A vocabulary-parallel cross-entropy: the logits are this rank's classes, the labels whole;
 * the kernel all-reduces three floats per row on the tensor group, so every rank has the whole
 * loss and tensor rank 0 reports it (on the device: adds it into dloss; the other ranks pass
 * NULL but take part in the all-reduces). */
static void lyr_vocab_loss(Lyr *l) {
    Emit *e = l->e;
    int64_t V = ldim(e, l->in[0], -1),
            VG = BV(e, l->in[0])->shape.d[BV(e, l->in[0])->shape.rank - 1];
    K(l, "M", lnumel(e, l->in[0]) / V, "rows (every rank's)");
    K(l, "V", V, "classes on this rank");
    K(l, "VG", VG, "classes");
    E(e, "#define %s_SCALE (1.0f / %lld.0f) /* mean over the global batch */\n", l->C,
      (long long)(ir_shape_numel(&BV(e, l->in[0])->shape) / VG));
    const char *args =
        arena_printf(e->a, "a->%s, %s_M, %s_V, (int64_t)mesh->k * %s_V, %s_VG, %s_SCALE",
                     aux_field(e, l->id, "stash"), l->C, l->C, l->C, l->C, l->C);
    open_fwd(l, true);
    if (e->t->dev)
        E(e,
          "    mprt_cu_vocab_ce_forward(mesh->k == 0 ? dloss : NULL, %s, %s, %s);\n"
          "    return 0.0; /* the value accumulates in dloss, read once per step */\n}\n",
          A(l, l->in[0]), A(l, l->in[1]), args);
    else
        E(e,
          "    double v = mprt_vocab_ce_forward(%s, %s, %s);\n"
          "    return mesh->k == 0 ? v : 0.0; /* the same on every tensor rank */\n}\n",
          A(l, l->in[0]), A(l, l->in[1]), args);
    open_bwd(l);
    E(e, "    %svocab_ce_backward(%s, %s, %s, %s);\n}\n\n", pfx(e), D(l, l->in[0]), A(l, l->in[0]),
      A(l, l->in[1]), args);
}

static void lyr_loss(Lyr *l) {
    Emit *e = l->e;
    if (l->pn->own_fwd && e->s->t > 1) {
        lyr_vocab_loss(l);
        return;
    }
    const SchedBuf *p = B(e, l->in[0]);
    bool ce = l->n->op == OP_CROSS_ENTROPY;
    int64_t V = ldim(e, l->in[0], -1);
    /* mean over every global row (cross entropy) or element (mse) */
    int64_t global = ir_shape_numel(&BV(e, l->in[0])->shape) / (ce ? V : 1);
    if (ce) {
        K(l, "M", lnumel(e, l->in[0]) / V, "rows (local)");
        K(l, "V", V, "classes");
    } else {
        K(l, "SIZE", lnumel(e, l->in[0]), "elements (local)");
    }
    E(e, "#define %s_SCALE (1.0f / %lld.0f) /* mean over the global batch */\n", l->C,
      (long long)global);
    /* With the logits replicated over the tensor ranks, rank 0 alone reports the loss. */
    bool once = p->layout == LAYOUT_R && e->s->t > 1;
    open_fwd(l, true);
    if (e->t->dev)
        loss_forward_dev(l, ce, once);
    else
        loss_forward_host(l, ce, once);
    open_bwd(l);
    if (ce)
        E(e, "    %scross_entropy_backward(%s, %s, %s, %s_M, %s_V, %s_SCALE);\n}\n\n", pfx(e),
          D(l, l->in[0]), A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C);
    else
        E(e, "    %smse_backward(%s, %s, %s, %s_SIZE, %s_SCALE);\n}\n\n", pfx(e), D(l, l->in[0]),
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C);
}

void emit_layer(Emit *e, int id) {
    Lyr l = {.e = e, .id = id, .n = IR_NODE(e->g, id), .pn = &e->g->plan->nodes[id]};
    l.in[0] = e->fwd_in[0][id], l.in[1] = e->fwd_in[1][id], l.out = e->fwd_out[id];
    char *c = arena_strdup(e->a, e->lname[id]);
    for (char *p = c; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    l.C = c;
    E(e, "/* %s: %s, %s, %s -> %s */\n", c, ir_ops[l.n->op].name, strat_name(l.pn->strat),
      lay_name(B(e, l.in[0])->layout), l.out >= 0 ? lay_name(B(e, l.out)->layout) : "scalar");
    switch (l.n->op) {
    case OP_LINEAR: lyr_linear(&l); break;
#define OP(id, nm, nin, st, fl, args)
#define EW(id, nm, fwd, bwd, reads)                                                                \
    case OP_##id:                                                                                  \
        lyr_pointwise(&l, nm, EW_READS_##reads);                                                   \
        break;
#include "ops.def"
#undef OP
#undef EW
    case OP_ADD: lyr_add(&l); break;
    case OP_LAYERNORM: lyr_layernorm(&l); break;
    case OP_DROPOUT: lyr_dropout(&l); break;
    case OP_CONV2D: lyr_conv2d(&l); break;
    case OP_MAXPOOL2D: lyr_maxpool(&l); break;
    case OP_FLATTEN: lyr_flatten(&l); break;
    case OP_EMBEDDING: lyr_embedding(&l); break;
    case OP_ATTENTION: lyr_attention(&l); break;
    case OP_CROSS_ENTROPY:
    case OP_MSE: lyr_loss(&l); break;
    case OP__COUNT: break; /* not an op; no default, so -Wswitch names a new op here */
    }
    close_fn(&l);
}
