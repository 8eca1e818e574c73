/*
 * shapes.c: shape inference, parameters and FLOPs (pass "shapes").
 *
 * The frontend hands over a graph whose inputs and labels carry shapes (with `batch`
 * already replaced by train.batch) and whose nodes carry validated argument values, but
 * whose activations are still shapeless. This pass walks the nodes once, in their
 * topological (source) order, and for each one:
 *
 *   1. checks its arguments (positive sizes, a dropout probability in [0, 1), ...), reporting
 *      a bad argument at the place it was written (node->arg_loc),
 *   2. checks its inputs (rank, dtype, agreement between operands) and infers the output's
 *      shape and dtype,
 *   3. adds its trainable parameters with their whole, unsharded shapes (ir_add_param), and
 *   4. computes its forward and backward FLOPs for one step over the whole global batch.
 *
 * Every op has one static function below; the switch in `shape_rule`, with a case per OpKind
 * and no default, is the only place that names them. The formulas are documented in docs/ops.md,
 * which is the reference for everything this file computes; keep the two in step.
 *
 * Errors are reported and the pass carries on, so one run reports every independent mistake.
 * A node that fails marks its output value "bad"; nodes reading a bad value are skipped
 * silently, so one mistake does not cascade into a page of follow-on errors.
 *
 * Sizes are int64. Every product and sum goes through checked arithmetic: a model whose
 * shapes or parameter counts do not fit in 64 bits is reported as an error at the node that
 * overflows, never left to wrap. After the walk the pass also checks that the whole-model
 * parameter count fits, so later passes and ir_dump may add them up freely. FLOPs are
 * doubles (exact below 2^53): a 1T-parameter GPT at its published batch has single GEMMs
 * past 2^63 FLOPs a step, and nothing needs them exact.
 *
 * Invariants on success: every value has a shape (rank >= 1 with positive dimensions),
 * except the output of the single loss node, which is a rank-0 f32; g->loss_node is that
 * node; each node's parameters are the contiguous range [first_param, first_param+nparams)
 * of g->params and param_count is the sum of their sizes. The pass is linear in the size of
 * the graph: it never searches for values by name.
 */
#include "passes.h"

#include <math.h>
#include <string.h>

typedef struct ShapeCtx {
    IrGraph *g;
    Diag *d;
    int id; /* the node's index */
    IrNode *n;
    const IrValue *in[IR_MAX_INPUTS];
    IrValue *out;
    ArgSpec spec[IR_MAX_ARGS];
    bool grad_in;   /* input 0 needs a gradient: some parameter lies upstream of it */
    bool overflow;  /* a checked operation overflowed while handling this node */
    int64_t params; /* running total of this node's parameter elements */
} ShapeCtx;

/* ───────────────────────── checked arithmetic ───────────────────────── */

static int64_t ck_mul(ShapeCtx *c, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        c->overflow = true;
        return 1;
    }
    return r;
}

static int64_t ck_add(ShapeCtx *c, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        c->overflow = true;
        return 0;
    }
    return r;
}

static int64_t ck_numel(ShapeCtx *c, const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n = ck_mul(c, n, s->d[i]);
    return n;
}

/* ───────────────────────── helpers for the rules ───────────────────────── */

static const char *op_name(const ShapeCtx *c) { return ir_ops[c->n->op].name; }

static const char *shape_of(ShapeCtx *c, const IrValue *v) {
    char buf[192];
    return arena_strdup(c->g->arena, ir_shape_str(buf, sizeof buf, v->dtype, &v->shape));
}

static SrcLoc arg_loc(const ShapeCtx *c, int i) {
    return c->n->arg_loc[i].line > 0 ? c->n->arg_loc[i] : c->n->loc;
}

/* Reads integer argument A (a name from ops.def: LINEAR_OUT), which must be >= min. Doubles
 * outside ±2^53 or with a fraction cannot come from the frontend's integer literals, but are
 * rejected rather than cast (a cast of an out-of-range double is undefined behaviour). */
#define ARG_INT(c, A, min, out)                                                                    \
    ((void)sizeof(char[(int)IR_ARGTY_##A == (int)ARG_INT ? 1 : -1]),                               \
     arg_int((c), IR_ARG_##A, ir_arg((c)->n, A), (min), (out)))
static bool arg_int(ShapeCtx *c, int i, double v, int64_t min, int64_t *out) {
    if (!isfinite(v) || v != floor(v)) {
        diag_error(c->d, arg_loc(c, i), "%s argument '%s' must be an integer, got %g", op_name(c),
                   c->spec[i].name, v);
        return false;
    }
    if (fabs(v) > 9007199254740992.0) {
        diag_error(c->d, arg_loc(c, i), "%s argument '%s' is too large (%g; the limit is 2^53)",
                   op_name(c), c->spec[i].name, v);
        return false;
    }
    *out = (int64_t)v;
    if (*out < min) {
        diag_error(c->d, arg_loc(c, i), "%s argument '%s' must be >= %lld, got %lld", op_name(c),
                   c->spec[i].name, (long long)min, (long long)*out);
        return false;
    }
    return true;
}

static bool need_rank(ShapeCtx *c, int k, int lo, int hi) {
    int r = c->in[k]->shape.rank;
    if (r >= lo && r <= hi) return true;
    if (lo == hi)
        diag_error(c->d, c->n->loc, "%s expects a tensor of rank %d, got %s", op_name(c), lo,
                   shape_of(c, c->in[k]));
    else if (hi == lo + 1)
        diag_error(c->d, c->n->loc, "%s expects a tensor of rank %d or %d, got %s", op_name(c), lo,
                   hi, shape_of(c, c->in[k]));
    else if (hi >= IR_MAX_RANK)
        diag_error(c->d, c->n->loc, "%s expects a tensor of rank >= %d, got %s", op_name(c), lo,
                   shape_of(c, c->in[k]));
    else
        diag_error(c->d, c->n->loc, "%s expects a tensor of rank %d to %d, got %s", op_name(c), lo,
                   hi, shape_of(c, c->in[k]));
    return false;
}

static bool need_float(ShapeCtx *c, int k) {
    if (c->in[k]->dtype == DT_F32) return true;
    diag_error(c->d, c->n->loc, "%s expects a floating-point (f32) tensor, got %s", op_name(c),
               shape_of(c, c->in[k]));
    return false;
}

static bool need_int(ShapeCtx *c, int k, const char *what) {
    if (c->in[k]->dtype == DT_I32 || c->in[k]->dtype == DT_I64) return true;
    diag_error(c->d, c->n->loc, "%s expects integer %s (i32 or i64), got %s", op_name(c), what,
               shape_of(c, c->in[k]));
    return false;
}

static void set_out(ShapeCtx *c, DType t, const Shape *s) {
    c->out->dtype = t;
    c->out->shape = *s;
}

/* Output with the input's shape but the last dimension replaced by `last`. */
static Shape with_last(const Shape *s, int64_t last) {
    Shape r = *s;
    r.d[r.rank - 1] = last;
    return r;
}

static Shape shape1(int64_t a) { return (Shape){1, {a}}; }
static Shape shape2(int64_t a, int64_t b) { return (Shape){2, {a, b}}; }
static Shape shape4(int64_t a, int64_t b, int64_t x, int64_t y) { return (Shape){4, {a, b, x, y}}; }

/* Records a parameter; sizes are checked so ir_add_param's running sum cannot overflow. */
static void add_param(ShapeCtx *c, ParamRole role, Shape s) {
    int64_t n = ck_numel(c, &s);
    c->params = ck_add(c, c->params, n);
    if (!c->overflow) ir_add_param(c->g, c->id, role, s);
}

static void set_flops(ShapeCtx *c, double fwd, double bwd) {
    c->n->flops_fwd = fwd;
    c->n->flops_bwd = bwd;
}

/* Elements of the input excluding its last dimension: the "rows" a last-dim op sees. */
static int64_t rows_of(ShapeCtx *c, const Shape *s) {
    int64_t r = 1;
    for (int i = 0; i + 1 < s->rank; i++)
        r = ck_mul(c, r, s->d[i]);
    return r;
}

/* ───────────────────────── one rule per op ───────────────────────── */

/* linear(x [..., in], out, bias) -> [..., out]; weight [in, out], bias [out]. */
static bool shape_linear(ShapeCtx *c) {
    int64_t out;
    if (!ARG_INT(c, LINEAR_OUT, 1, &out) || !need_rank(c, 0, 2, IR_MAX_RANK) || !need_float(c, 0))
        return false;
    bool bias = ir_arg_bool(c->n, LINEAR_BIAS);
    const Shape *x = &c->in[0]->shape;
    int64_t in = x->d[x->rank - 1], m = rows_of(c, x);
    Shape y = with_last(x, out);
    set_out(c, DT_F32, &y);
    add_param(c, PARAM_WEIGHT, shape2(in, out));
    if (bias) add_param(c, PARAM_BIAS, shape1(out));
    double mm = 2.0 * (double)m * (double)in * (double)out;
    double b = bias ? (double)m * (double)out : 0;
    set_flops(c, mm + b, (c->grad_in ? 2 : 1) * mm + b);
    return true;
}

/* Element-wise unary ops: the output is the input's shape; FLOPs are a per-element
 * constant (docs/ops.md, "Element-wise ops"). */
static bool shape_unary(ShapeCtx *c, int64_t fwd_per, int64_t bwd_per) {
    if (!need_float(c, 0)) return false;
    set_out(c, DT_F32, &c->in[0]->shape);
    int64_t n = ck_numel(c, &c->in[0]->shape);
    set_flops(c, (double)fwd_per * (double)n, (double)bwd_per * (double)n);
    return true;
}

/* dropout(x, p): p in [0, 1). */
static bool shape_dropout(ShapeCtx *c) {
    double p = ir_arg_float(c->n, DROPOUT_P);
    if (!(p >= 0.0 && p < 1.0)) {
        diag_error(c->d, arg_loc(c, IR_ARG_DROPOUT_P),
                   "dropout probability 'p' must be in [0, 1), got %g", p);
        return false;
    }
    return shape_unary(c, 2, 1);
}

/* add(a, b): identical shapes. */
static bool shape_add(ShapeCtx *c) {
    if (!need_float(c, 0) || !need_float(c, 1)) return false;
    const Shape *a = &c->in[0]->shape, *b = &c->in[1]->shape;
    if (a->rank != b->rank || memcmp(a->d, b->d, sizeof(int64_t) * (size_t)a->rank) != 0) {
        diag_error(c->d, c->n->loc, "add expects equal shapes, got %s and %s",
                   shape_of(c, c->in[0]), shape_of(c, c->in[1]));
        return false;
    }
    set_out(c, DT_F32, a);
    set_flops(c, (double)ck_numel(c, a), 0);
    return true;
}

/* layernorm(x [..., D], eps) over the last dimension; gamma, beta [D]. */
static bool shape_layernorm(ShapeCtx *c) {
    double eps = ir_arg_float(c->n, LAYERNORM_EPS);
    if (!(eps > 0.0) || !isfinite(eps)) {
        diag_error(c->d, arg_loc(c, IR_ARG_LAYERNORM_EPS),
                   "layernorm argument 'eps' must be positive, got %g", eps);
        return false;
    }
    if (!need_rank(c, 0, 2, IR_MAX_RANK) || !need_float(c, 0)) return false;
    const Shape *x = &c->in[0]->shape;
    int64_t dim = x->d[x->rank - 1], n = ck_numel(c, x);
    set_out(c, DT_F32, x);
    add_param(c, PARAM_GAMMA, shape1(dim));
    add_param(c, PARAM_BETA, shape1(dim));
    set_flops(c, 8.0 * (double)n, 11.0 * (double)n);
    return true;
}

/* Output size of a window sweep: (size + 2*pad - k) / stride + 1, or 0 when k does not fit. */
static int64_t window_out(ShapeCtx *c, int64_t size, int64_t k, int64_t stride, int64_t pad) {
    int64_t span = ck_add(c, size, ck_mul(c, 2, pad));
    if (span < k) return 0;
    return (span - k) / stride + 1;
}

/* conv2d(x [N, C, H, W], out, kernel, stride, padding, bias) -> [N, out, Ho, Wo];
 * weight [out, C, k, k], bias [out]. */
static bool shape_conv2d(ShapeCtx *c) {
    int64_t out, k, stride, pad;
    if (!ARG_INT(c, CONV2D_OUT, 1, &out) || !ARG_INT(c, CONV2D_KERNEL, 1, &k) ||
        !ARG_INT(c, CONV2D_STRIDE, 1, &stride) || !ARG_INT(c, CONV2D_PADDING, 0, &pad) ||
        !need_rank(c, 0, 4, 4) || !need_float(c, 0))
        return false;
    bool bias = ir_arg_bool(c->n, CONV2D_BIAS);
    const Shape *x = &c->in[0]->shape;
    int64_t n = x->d[0], ch = x->d[1];
    int64_t ho = window_out(c, x->d[2], k, stride, pad),
            wo = window_out(c, x->d[3], k, stride, pad);
    if (ho < 1 || wo < 1) {
        diag_error(c->d, c->n->loc,
                   "conv2d kernel %lld with padding %lld does not fit the %lldx%lld input %s "
                   "(the output would be empty)",
                   (long long)k, (long long)pad, (long long)x->d[2], (long long)x->d[3],
                   shape_of(c, c->in[0]));
        return false;
    }
    Shape y = shape4(n, out, ho, wo);
    set_out(c, DT_F32, &y);
    add_param(c, PARAM_WEIGHT, shape4(out, ch, k, k));
    if (bias) add_param(c, PARAM_BIAS, shape1(out));
    int64_t outs = ck_numel(c, &y); /* N*out*Ho*Wo */
    double mm = 2.0 * (double)outs * (double)ch * (double)k * (double)k;
    double b = bias ? (double)outs : 0;
    set_flops(c, mm + b, (c->grad_in ? 2 : 1) * mm + b);
    return true;
}

/* maxpool2d(x [N, C, H, W], kernel, stride) -> [N, C, Ho, Wo]; stride 0 means kernel. */
static bool shape_maxpool2d(ShapeCtx *c) {
    int64_t k, stride;
    if (!ARG_INT(c, MAXPOOL2D_KERNEL, 1, &k) || !ARG_INT(c, MAXPOOL2D_STRIDE, 0, &stride) ||
        !need_rank(c, 0, 4, 4) || !need_float(c, 0))
        return false;
    if (stride == 0) stride = k;
    const Shape *x = &c->in[0]->shape;
    int64_t ho = window_out(c, x->d[2], k, stride, 0), wo = window_out(c, x->d[3], k, stride, 0);
    if (ho < 1 || wo < 1) {
        diag_error(c->d, c->n->loc,
                   "maxpool2d kernel %lld does not fit the %lldx%lld input %s (the output would be "
                   "empty)",
                   (long long)k, (long long)x->d[2], (long long)x->d[3], shape_of(c, c->in[0]));
        return false;
    }
    Shape y = shape4(x->d[0], x->d[1], ho, wo);
    set_out(c, DT_F32, &y);
    int64_t outs = ck_numel(c, &y);
    set_flops(c, (double)outs * (double)k * (double)k, (double)outs);
    return true;
}

/* flatten(x [N, d1, ..., dk]) -> [N, d1*...*dk]. */
static bool shape_flatten(ShapeCtx *c) {
    if (!need_rank(c, 0, 2, IR_MAX_RANK) || !need_float(c, 0)) return false;
    const Shape *x = &c->in[0]->shape;
    Shape y = shape2(x->d[0], 1);
    for (int i = 1; i < x->rank; i++)
        y.d[1] = ck_mul(c, y.d[1], x->d[i]);
    set_out(c, DT_F32, &y);
    set_flops(c, 0, 0);
    return true;
}

/* embedding(tokens int [N] or [N, T], vocab, dim, positions) -> [N, dim] or [N, T, dim];
 * weight [vocab, dim], pos [positions, dim] when positions > 0 (then T <= positions). */
static bool shape_embedding(ShapeCtx *c) {
    int64_t vocab, dim, pos;
    if (!ARG_INT(c, EMBEDDING_VOCAB, 1, &vocab) || !ARG_INT(c, EMBEDDING_DIM, 1, &dim) ||
        !ARG_INT(c, EMBEDDING_POSITIONS, 0, &pos) || !need_rank(c, 0, 1, 2) ||
        !need_int(c, 0, "token ids"))
        return false;
    const Shape *x = &c->in[0]->shape;
    int64_t t = x->rank == 2 ? x->d[1] : 1;
    if (pos > 0 && t > pos) {
        diag_error(c->d, c->n->loc,
                   "embedding has %lld positions but its input %s has sequence length %lld",
                   (long long)pos, shape_of(c, c->in[0]), (long long)t);
        return false;
    }
    Shape y = *x;
    y.d[y.rank++] = dim;
    set_out(c, DT_F32, &y);
    add_param(c, PARAM_WEIGHT, shape2(vocab, dim));
    if (pos > 0) add_param(c, PARAM_POS, shape2(pos, dim));
    int64_t outs = ck_numel(c, &y);
    set_flops(c, pos > 0 ? (double)outs : 0, pos > 0 ? 2.0 * (double)outs : (double)outs);
    return true;
}

/* attention(x [N, T, D], heads, causal) -> [N, T, D]; wq wk wv wo [D, D], bq bk bv bo [D]. */
static bool shape_attention(ShapeCtx *c) {
    int64_t heads;
    if (!ARG_INT(c, ATTENTION_HEADS, 1, &heads) || !need_rank(c, 0, 3, 3) || !need_float(c, 0))
        return false;
    const Shape *x = &c->in[0]->shape;
    int64_t n = x->d[0], t = x->d[1], dm = x->d[2];
    if (dm % heads != 0) {
        diag_error(c->d, arg_loc(c, IR_ARG_ATTENTION_HEADS),
                   "attention heads (%lld) must divide the width %lld of %s", (long long)heads,
                   (long long)dm, shape_of(c, c->in[0]));
        return false;
    }
    set_out(c, DT_F32, x);
    static const ParamRole w[] = {PARAM_WQ, PARAM_WK, PARAM_WV, PARAM_WO};
    static const ParamRole b[] = {PARAM_BQ, PARAM_BK, PARAM_BV, PARAM_BO};
    for (int i = 0; i < 4; i++)
        add_param(c, w[i], shape2(dm, dm));
    for (int i = 0; i < 4; i++)
        add_param(c, b[i], shape1(dm));
    int64_t ntd = ck_numel(c, x);
    double nt = (double)ntd, dd = (double)dm, tt = (double)t * (double)t;
    double proj = 8.0 * nt * dd;                    /* 4 GEMMs of 2*NT*D*D */
    double att = 4.0 * (double)n * tt * dd;         /* QK^T and P*V: 2 * 2*N*T*T*D */
    double scores = (double)n * (double)heads * tt; /* N*H*T*T */
    /* without an input gradient the q, k and v projections skip their dx GEMMs (3 × 2·NT·D·D) */
    double dx = c->grad_in ? 0 : 6.0 * nt * dd;
    set_flops(c, proj + att + (4 * nt + 6 * scores),
              2 * proj - dx + 2 * att + (4 * nt + 5 * scores));
    return true;
}

static const Shape scalar_shape = {0, {0}};

/* cross_entropy(logits f32 [..., V], labels int [...]) -> f32 scalar. */
static bool shape_cross_entropy(ShapeCtx *c) {
    if (!need_rank(c, 0, 2, IR_MAX_RANK) || !need_float(c, 0) || !need_int(c, 1, "labels"))
        return false;
    const Shape *x = &c->in[0]->shape, *y = &c->in[1]->shape;
    if (y->rank != x->rank - 1 || memcmp(x->d, y->d, sizeof(int64_t) * (size_t)y->rank) != 0) {
        diag_error(c->d, c->n->loc,
                   "cross_entropy labels must have the logits' shape without the class "
                   "dimension: logits %s, labels %s",
                   shape_of(c, c->in[0]), shape_of(c, c->in[1]));
        return false;
    }
    set_out(c, DT_F32, &scalar_shape);
    int64_t m = rows_of(c, x), n = ck_numel(c, x);
    set_flops(c, 4.0 * (double)n + (double)m, 2.0 * (double)n + (double)m);
    return true;
}

/* mse(pred f32, target f32 of the same shape) -> f32 scalar. */
static bool shape_mse(ShapeCtx *c) {
    if (!need_float(c, 0) || !need_float(c, 1)) return false;
    const Shape *a = &c->in[0]->shape, *b = &c->in[1]->shape;
    if (a->rank != b->rank || memcmp(a->d, b->d, sizeof(int64_t) * (size_t)a->rank) != 0) {
        diag_error(c->d, c->n->loc,
                   "mse expects the prediction and target to have equal shapes, "
                   "got %s and %s",
                   shape_of(c, c->in[0]), shape_of(c, c->in[1]));
        return false;
    }
    set_out(c, DT_F32, &scalar_shape);
    int64_t n = ck_numel(c, a);
    set_flops(c, 3.0 * (double)n, 2.0 * (double)n);
    return true;
}

/* One case per op and no default: a new OP in ops.def without a rule here fails to compile
 * (-Wswitch -Werror); the element-wise EW ops get theirs from their ops.def line. */
static bool shape_rule(ShapeCtx *c) {
    switch (c->n->op) {
    case OP_LINEAR: return shape_linear(c);
#define OP(id, nm, nin, st, fl, args)
#define EW(id, nm, fwd, bwd, reads)                                                                \
    case OP_##id:                                                                                  \
        return shape_unary(c, fwd, bwd);
#include "ops.def"
#undef OP
#undef EW
    case OP_ADD: return shape_add(c);
    case OP_LAYERNORM: return shape_layernorm(c);
    case OP_DROPOUT: return shape_dropout(c);
    case OP_CONV2D: return shape_conv2d(c);
    case OP_MAXPOOL2D: return shape_maxpool2d(c);
    case OP_FLATTEN: return shape_flatten(c);
    case OP_EMBEDDING: return shape_embedding(c);
    case OP_ATTENTION: return shape_attention(c);
    case OP_CROSS_ENTROPY: return shape_cross_entropy(c);
    case OP_MSE: return shape_mse(c);
    case OP__COUNT: break;
    }
    diag_error(c->d, c->n->loc, "internal compiler error: pass shapes: node '%s' has op kind %d",
               c->n->name, (int)c->n->op);
    return false;
}

/* ───────────────────────── the walk ───────────────────────── */

/* Inputs and labels arrive from the frontend with shapes; make sure they are usable. */
static bool check_leaf(IrGraph *g, Diag *d, IrValue *v) {
    ShapeCtx c = {.g = g, .d = d};
    if (v->shape.rank < 1 || v->shape.rank > IR_MAX_RANK) {
        diag_error(d, v->loc, "%s '%s' must have rank 1 to %d",
                   v->kind == VAL_LABEL ? "label" : "input", v->name, IR_MAX_RANK);
        return false;
    }
    for (int i = 0; i < v->shape.rank; i++) {
        if (v->shape.d[i] < 1) {
            diag_error(d, v->loc, "dimension %d of '%s' must be positive, got %s", i, v->name,
                       shape_of(&c, v));
            return false;
        }
    }
    ck_numel(&c, &v->shape);
    if (c.overflow) {
        diag_error(d, v->loc, "the size of '%s' (%s) overflows 64-bit integers", v->name,
                   shape_of(&c, v));
        return false;
    }
    return true;
}

/* Gathers a node's inputs; false (silently) if any comes from a failed node. A rank-0
 * input can only be a loss, which no op may consume. */
static bool gather_inputs(ShapeCtx *c, const bool *bad) {
    for (int k = 0; k < c->n->ninputs; k++) {
        int v = c->n->inputs[k];
        if (bad[v]) return false;
        c->in[k] = IR_VALUE(c->g, v);
        if (c->in[k]->shape.rank == 0) {
            diag_error(c->d, c->n->loc, "'%s' is a loss (a scalar) and cannot be an input of %s",
                       c->in[k]->name, op_name(c));
            return false;
        }
    }
    return true;
}

/* Runs one node's rule; false if the node failed (its error is already reported). grad[v]:
 * value v needs a gradient (a parameter lies upstream, as the search and lowering decide it);
 * a GEMM layer whose input needs none (the first layer) computes only its weight gradient. */
static bool shape_node(IrGraph *g, Diag *d, int id, const bool *bad, bool *grad) {
    ShapeCtx c = {.g = g, .d = d, .id = id, .n = IR_NODE(g, id)};
    c.out = IR_VALUE(g, c.n->output);
    if (!gather_inputs(&c, bad)) return false;
    ir_op_args(c.n->op, c.spec);
    c.grad_in = grad[c.n->inputs[0]];
    int first = IR_NPARAMS(g);
    if (!shape_rule(&c)) return false;
    for (int k = 0; k < c.n->ninputs; k++)
        grad[c.n->output] |= grad[c.n->inputs[k]];
    grad[c.n->output] |= c.n->nparams > 0;
    if (c.overflow) {
        g->params.len = (size_t)first; /* drop any parameters recorded before the overflow */
        c.n->nparams = 0;
        c.n->param_count = 0;
        diag_error(d, c.n->loc, "the sizes of %s '%s' overflow 64-bit integers", op_name(&c),
                   c.n->name);
        return false;
    }
    return true;
}

/* Records the loss node; more than one is an error. */
static void note_loss(IrGraph *g, Diag *d, int id) {
    if (g->loss_node < 0) {
        g->loss_node = id;
        return;
    }
    diag_error(d, IR_NODE(g, id)->loc, "the model has more than one loss");
    diag_note(d, IR_NODE(g, g->loss_node)->loc, "the first loss is '%s'",
              IR_NODE(g, g->loss_node)->name);
}

/* The whole model's parameter count must fit too, so that everyone downstream may sum
 * freely (FLOPs are doubles: they cannot overflow). */
static bool check_totals(IrGraph *g, Diag *d) {
    ShapeCtx c = {.g = g, .d = d};
    int64_t p = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        p = ck_add(&c, p, IR_NODE(g, i)->param_count);
    if (!c.overflow) return true;
    SrcLoc none = {g->file, 0, 0, 0};
    diag_error(d, none, "the model's total parameters overflow 64-bit integers");
    return false;
}

bool pass_shapes(IrGraph *g, Diag *d) {
    int errors = diag_errors(d);
    bool *bad = arena_calloc(g->arena, (size_t)IR_NVALUES(g) + 1, sizeof *bad);
    bool *grad = arena_calloc(g->arena, (size_t)IR_NVALUES(g) + 1, sizeof *grad);
    for (int v = 0; v < IR_NVALUES(g); v++) {
        IrValue *val = IR_VALUE(g, v);
        if (val->kind != VAL_ACT && !check_leaf(g, d, val)) bad[v] = true;
    }
    g->loss_node = -1;
    g->params.len = 0;
    for (int i = 0; i < IR_NNODES(g); i++) {
        IrNode *n = IR_NODE(g, i);
        n->first_param = IR_NPARAMS(g);
        n->nparams = 0;
        n->param_count = 0;
        if (!shape_node(g, d, i, bad, grad)) bad[n->output] = true;
        if (ir_ops[n->op].flags & OPF_LOSS) note_loss(g, d, i);
    }
    if (g->loss_node < 0) {
        SrcLoc none = {g->file, 0, 0, 0};
        diag_error(d, none, "model '%s' has no loss; end it with cross_entropy or mse", g->name);
    }
    if (diag_errors(d) > errors) return false;
    return check_totals(g, d);
}
