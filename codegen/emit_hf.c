/*
 * emit_hf.c: the trainer's table for --export-hf — the model's weights under Hugging Face's
 * GPT-2 names (docs/hf.md). The graph is matched against GPT-2's shape here, at compile time,
 * and the trainer gets either the table (each GPT-2 tensor made from our parameters by name:
 * copied, q|k|v concatenated into c_attn, the head transposed into lm_head, or a zero bias)
 * with the config's numbers, or the one-line reason (file:line:col) it is not GPT-2, which
 * --export-hf prints (runtime/trainer_hf.c).
 *
 * The match walks back from the loss: cross_entropy(linear(layernorm(h), V, bias=false)),
 * then pre-LN blocks h = r + mlp(layernorm(r)), r = x + attention(layernorm(x), causal) with
 * mlp = linear(gelu(linear(.))), down to embedding(tok, V, D, positions). Dropout is the
 * identity where logits are compared (eval mode on both sides) and is looked through.
 */
#include "emit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct HfBlock {
    const IrNode *ln1, *attn, *ln2, *fc, *proj;
} HfBlock;

typedef struct Hf {
    const IrGraph *g;
    Arena *a;
    const IrNode *emb, *lnf, *head;
    HfBlock *blocks; /* last block first while matching; reversed at the end */
    int n;
    const char *why; /* the refusal: "gpt.mp:9:12: ...", or NULL */
} Hf;

static bool refuse(Hf *h, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool refuse(Hf *h, SrcLoc loc, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->why = arena_printf(h->a, "%s:%d:%d: %s", loc.file ? loc.file : h->g->file, loc.line, loc.col,
                          msg);
    return false;
}

/* Value v with dropouts looked through. */
static int base(const IrGraph *g, int v) {
    for (;;) {
        int p = IR_VALUE(g, v)->producer;
        if (p < 0 || IR_NODE(g, p)->op != OP_DROPOUT) return v;
        v = IR_NODE(g, p)->inputs[0];
    }
}

/* The node that makes v (dropouts looked through), or NULL for an input. */
static const IrNode *made(const IrGraph *g, int v) {
    int p = IR_VALUE(g, base(g, v))->producer;
    return p < 0 ? NULL : IR_NODE(g, p);
}

static const char *op_of(const IrNode *n) { return n ? ir_ops[n->op].name : "an input"; }

static SrcLoc loc_of(const Hf *h, const IrNode *n, int v) {
    return n ? n->loc : IR_VALUE(h->g, v)->loc;
}

/* Whether v (dropouts looked through) is made by op. */
static bool is(const IrGraph *g, int v, OpKind op) {
    const IrNode *n = made(g, v);
    return n && n->op == op;
}

/* Of a residual add(a, b), the branch: the operand that is neither the stream (an add or the
 * embedding) nor the same as the other. -1 when it is not one stream plus one branch. */
static int branch_of(const IrGraph *g, const IrNode *add, int *stream) {
    int a = add->inputs[0], b = add->inputs[1];
    bool sa = is(g, a, OP_ADD) || is(g, a, OP_EMBEDDING),
         sb = is(g, b, OP_ADD) || is(g, b, OP_EMBEDDING);
    if (sa == sb) return -1;
    *stream = sa ? a : b;
    return sa ? b : a;
}

/* The block's MLP: proj(gelu(fc(ln2(r)))), r the residual stream (dropouts looked through). */
static bool match_mlp(Hf *h, HfBlock *b, int branch, int r) {
    const IrGraph *g = h->g;
    b->proj = made(g, branch);
    if (!b->proj || b->proj->op != OP_LINEAR)
        return refuse(h, loc_of(h, b->proj, branch),
                      "GPT-2's blocks end with an MLP whose last layer is a linear "
                      "(mlp.c_proj); found %s",
                      op_of(b->proj));
    const IrNode *act = made(g, b->proj->inputs[0]);
    if (!act || act->op != OP_GELU)
        return refuse(h, loc_of(h, act, b->proj->inputs[0]),
                      "GPT-2's MLP activation is gelu (its tanh form, gelu_new); found %s",
                      op_of(act));
    b->fc = made(g, act->inputs[0]);
    if (!b->fc || b->fc->op != OP_LINEAR)
        return refuse(h, loc_of(h, b->fc, act->inputs[0]),
                      "GPT-2's MLP is linear, gelu, linear; found %s before the gelu",
                      op_of(b->fc));
    b->ln2 = made(g, b->fc->inputs[0]);
    if (!b->ln2 || b->ln2->op != OP_LAYERNORM || base(g, b->ln2->inputs[0]) != base(g, r))
        return refuse(h, b->fc->loc,
                      "GPT-2's blocks are pre-LN: the MLP must read layernorm of the residual "
                      "stream it is added to");
    return true;
}

/* r = x + attention(ln1(x), causal); returns x's value, or -1. */
static int match_attn(Hf *h, HfBlock *b, int r) {
    const IrGraph *g = h->g;
    const IrNode *add = made(g, r);
    int x = -1, branch = add && add->op == OP_ADD ? branch_of(g, add, &x) : -1;
    if (branch < 0) {
        refuse(h, loc_of(h, add, r),
               "GPT-2's blocks add attention to the residual stream before the MLP: expected "
               "add(x, attention(layernorm(x))), found %s",
               op_of(add));
        return -1;
    }
    b->attn = made(g, branch);
    if (!b->attn || b->attn->op != OP_ATTENTION) {
        refuse(h, loc_of(h, b->attn, branch), "expected GPT-2's attention here, found %s",
               op_of(b->attn));
        return -1;
    }
    if (!ir_arg_bool(b->attn, ATTENTION_CAUSAL)) {
        refuse(h, b->attn->loc, "GPT-2's attention is causal: write causal=true");
        return -1;
    }
    b->ln1 = made(g, b->attn->inputs[0]);
    if (!b->ln1 || b->ln1->op != OP_LAYERNORM || base(g, b->ln1->inputs[0]) != base(g, x)) {
        refuse(h, b->attn->loc,
               "GPT-2's blocks are pre-LN: attention must read layernorm of the residual "
               "stream it is added to");
        return -1;
    }
    return x;
}

/* The blocks from h (the stream the final layernorm reads) down to the embedding. */
static bool match_blocks(Hf *h, int v) {
    const IrGraph *g = h->g;
    while (is(g, v, OP_ADD)) {
        HfBlock *b = &h->blocks[h->n++];
        int r = -1, branch = branch_of(g, made(g, v), &r);
        if (branch < 0)
            return refuse(h, made(g, v)->loc,
                          "expected a GPT-2 block's residual add(x, mlp(layernorm(x))) here");
        if (!match_mlp(h, b, branch, r)) return false;
        if ((v = match_attn(h, b, r)) < 0) return false;
    }
    h->emb = made(g, v);
    if (!h->emb || h->emb->op != OP_EMBEDDING)
        return refuse(h, loc_of(h, h->emb, v),
                      "GPT-2's residual stream starts at the token embedding; found %s",
                      op_of(h->emb));
    if (ir_arg_int(h->emb, EMBEDDING_POSITIONS) <= 0)
        return refuse(h, h->emb->loc,
                      "GPT-2 has learned positions (wpe): write embedding(..., positions=N)");
    return true;
}

/* loss = cross_entropy(linear(layernorm(h), V, bias=false), label), then the blocks. */
static bool match(Hf *h) {
    const IrGraph *g = h->g;
    int x = 0;
    while (x < IR_NVALUES(g) && IR_VALUE(g, x)->kind != VAL_INPUT)
        x++;
    const IrValue *in = IR_VALUE(g, x);
    if (in->dtype == DT_F32 || in->shape.rank != 2)
        return refuse(h, in->loc,
                      "GPT-2 is a language model over token sequences "
                      "i32[batch, T]; the first input '%s' is not one",
                      in->name);
    const IrNode *loss = IR_NODE(g, g->loss_node);
    if (loss->op != OP_CROSS_ENTROPY)
        return refuse(h, loss->loc,
                      "a GPT-2 export needs a language model trained with "
                      "cross_entropy over its vocabulary; the loss is %s",
                      op_of(loss));
    h->head = made(g, loss->inputs[0]);
    if (!h->head || h->head->op != OP_LINEAR)
        return refuse(h, loc_of(h, h->head, loss->inputs[0]),
                      "GPT-2's logits come from a linear head (lm_head); found %s", op_of(h->head));
    if (ir_arg_bool(h->head, LINEAR_BIAS))
        return refuse(h, h->head->loc, "GPT-2's lm_head has no bias: write bias=false");
    h->lnf = made(g, h->head->inputs[0]);
    if (!h->lnf || h->lnf->op != OP_LAYERNORM)
        return refuse(h, loc_of(h, h->lnf, h->head->inputs[0]),
                      "GPT-2 normalises the stream (ln_f) before its head; found %s",
                      op_of(h->lnf));
    return match_blocks(h, h->lnf->inputs[0]);
}

/* What GPT-2's config holds once for the whole model: one head count, MLP width and eps. */
static bool check_uniform(Hf *h) {
    const IrNode *e = h->emb;
    int64_t V = ir_arg_int(e, EMBEDDING_VOCAB), out = ir_arg_int(h->head, LINEAR_OUT);
    if (out != V)
        return refuse(h, h->head->loc,
                      "GPT-2's lm_head predicts its vocabulary: %lld outputs here, but the "
                      "embedding has vocab=%lld",
                      (long long)out, (long long)V);
    if (IR_VALUE(h->g, e->inputs[0])->shape.rank != 2)
        return refuse(h, e->loc, "GPT-2 reads token sequences i32[batch, T]");
    double eps = ir_arg_float(h->lnf, LAYERNORM_EPS);
    for (int i = 0; i < h->n; i++) {
        const HfBlock *b = &h->blocks[i], *f = &h->blocks[0];
        const IrNode *ln[2] = {b->ln1, b->ln2};
        for (int k = 0; k < 2; k++)
            if (ir_arg_float(ln[k], LAYERNORM_EPS) != eps)
                return refuse(h, ln[k]->loc,
                              "GPT-2 has one layer_norm_epsilon: this layernorm's eps %g "
                              "differs from the final one's %g",
                              ir_arg_float(ln[k], LAYERNORM_EPS), eps);
        if (ir_arg_int(b->attn, ATTENTION_HEADS) != ir_arg_int(f->attn, ATTENTION_HEADS))
            return refuse(h, b->attn->loc, "GPT-2 has one n_head for every block");
        if (ir_arg_int(b->fc, LINEAR_OUT) != ir_arg_int(f->fc, LINEAR_OUT))
            return refuse(h, b->fc->loc, "GPT-2 has one MLP width (n_inner) for every block");
    }
    return true;
}

/* The name of n's parameter of role r ("blocks.0.attn.wq"), or NULL. */
static const char *pname(const Hf *h, const IrNode *n, ParamRole r) {
    for (int i = n->first_param; i < n->first_param + n->nparams; i++)
        if (IR_PARAM(h->g, i)->role == r) return IR_PARAM(h->g, i)->name;
    return NULL;
}

/* One row of the table: GPT-2's name, how it is made, our parameters. */
static void row(Emit *e, const char *name, const char *op, const char *a, const char *b,
                const char *c) {
    E(e, "    {");
    put_c_string(e, name);
    E(e, ", MPRT_HF_%s, {", op);
    const char *src[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (i) E(e, ", ");
        if (src[i])
            put_c_string(e, src[i]);
        else
            E(e, "NULL");
    }
    E(e, "}},\n");
}

/* A layernorm's two rows ("transformer.h.0.ln_1"). */
static void ln_rows(Emit *e, const Hf *h, const char *hf, const IrNode *n) {
    row(e, arena_printf(e->a, "%s.weight", hf), "COPY", pname(h, n, PARAM_GAMMA), NULL, NULL);
    row(e, arena_printf(e->a, "%s.bias", hf), "COPY", pname(h, n, PARAM_BETA), NULL, NULL);
}

/* A linear's rows as GPT-2's Conv1D (weight [in, out] as ours); no bias: a zero one. */
static void conv1d_rows(Emit *e, const Hf *h, const char *hf, const IrNode *n) {
    const char *w = pname(h, n, PARAM_WEIGHT), *b = pname(h, n, PARAM_BIAS);
    row(e, arena_printf(e->a, "%s.weight", hf), "COPY", w, NULL, NULL);
    row(e, arena_printf(e->a, "%s.bias", hf), b ? "COPY" : "ZEROS", b ? b : w, NULL, NULL);
}

static void block_rows(Emit *e, const Hf *h, int i) {
    const HfBlock *b = &h->blocks[i];
    const char *p = arena_printf(e->a, "transformer.h.%d", i);
    ln_rows(e, h, arena_printf(e->a, "%s.ln_1", p), b->ln1);
    row(e, arena_printf(e->a, "%s.attn.c_attn.weight", p), "CONCAT", pname(h, b->attn, PARAM_WQ),
        pname(h, b->attn, PARAM_WK), pname(h, b->attn, PARAM_WV));
    row(e, arena_printf(e->a, "%s.attn.c_attn.bias", p), "CONCAT", pname(h, b->attn, PARAM_BQ),
        pname(h, b->attn, PARAM_BK), pname(h, b->attn, PARAM_BV));
    row(e, arena_printf(e->a, "%s.attn.c_proj.weight", p), "COPY", pname(h, b->attn, PARAM_WO),
        NULL, NULL);
    row(e, arena_printf(e->a, "%s.attn.c_proj.bias", p), "COPY", pname(h, b->attn, PARAM_BO), NULL,
        NULL);
    ln_rows(e, h, arena_printf(e->a, "%s.ln_2", p), b->ln2);
    conv1d_rows(e, h, arena_printf(e->a, "%s.mlp.c_fc", p), b->fc);
    conv1d_rows(e, h, arena_printf(e->a, "%s.mlp.c_proj", p), b->proj);
}

/* The table and the config of a model that matched. */
static void emit_table(Emit *e, const Hf *h) {
    E(e, "static const MprtHfTensor HF_TENSORS[] = {\n");
    row(e, "transformer.wte.weight", "COPY", pname(h, h->emb, PARAM_WEIGHT), NULL, NULL);
    row(e, "transformer.wpe.weight", "COPY", pname(h, h->emb, PARAM_POS), NULL, NULL);
    for (int i = 0; i < h->n; i++)
        block_rows(e, h, i);
    ln_rows(e, h, "transformer.ln_f", h->lnf);
    row(e, "lm_head.weight", "TRANSPOSE", pname(h, h->head, PARAM_WEIGHT), NULL, NULL);
    E(e, "};\n");
    const IrNode *f = h->n ? h->blocks[0].attn : NULL;
    E(e,
      "static const MprtHf HF = {\n"
      "    NULL, %d, %lld, %lld, /* GPT-2's n_layer, n_head, n_embd */\n"
      "    %lld, %lld, %lld, /* n_positions, vocab_size, n_inner */\n"
      "    %s, HF_TENSORS, (int)(sizeof HF_TENSORS / sizeof HF_TENSORS[0]), /* "
      "layer_norm_epsilon */\n};\n\n",
      h->n, (long long)(f ? ir_arg_int(f, ATTENTION_HEADS) : 1),
      (long long)ir_arg_int(h->emb, EMBEDDING_DIM),
      (long long)ir_arg_int(h->emb, EMBEDDING_POSITIONS),
      (long long)ir_arg_int(h->emb, EMBEDDING_VOCAB),
      (long long)(h->n ? ir_arg_int(h->blocks[0].fc, LINEAR_OUT)
                       : 4 * ir_arg_int(h->emb, EMBEDDING_DIM)),
      flt(e, ir_arg_float(h->lnf, LAYERNORM_EPS)));
}

void emit_hf(Emit *e) {
    Hf h = {e->g, e->a, NULL, NULL, NULL, NULL, 0, NULL};
    h.blocks = arena_calloc(e->a, (size_t)IR_NNODES(e->g) + 1, sizeof(HfBlock));
    E(e, "/* --export-hf: the weights in Hugging Face's GPT-2 layout (docs/hf.md), each GPT-2\n"
         " * tensor made from our parameters by name, or why this model has no GPT-2 form. */\n");
    if (match(&h) && check_uniform(&h)) {
        for (int i = 0; i < h.n / 2; i++) { /* matched from the last block back */
            HfBlock t = h.blocks[i];
            h.blocks[i] = h.blocks[h.n - 1 - i], h.blocks[h.n - 1 - i] = t;
        }
        emit_table(e, &h);
        return;
    }
    E(e, "static const MprtHf HF = {");
    put_c_string(e, h.why);
    E(e, ", 0, 0, 0, 0, 0, 0, 0, NULL, 0};\n\n");
}
