/*
 * verify.c: the IR checker run between passes in debug builds (QBE's "typecheck" idea).
 *
 * Passes trust the graph they are given; this file is where that trust is checked. It
 * looks only at structure, never at the user's intent, so a failure here is always a bug
 * in mpcc ("internal compiler error") and never the answer to bad input:
 *
 *   - every node's op is known and it has exactly the op table's number of inputs;
 *   - every value index is in range and every input is defined before it is used (an input
 *     or label, or the output of an earlier node), which makes node order topological;
 *   - every node has its own output value, whose producer is that node, and every
 *     activation is produced by exactly one node;
 *   - the parameters form contiguous per-node ranges covering g->params in node order,
 *     each naming its node, with param_count equal to the sum of their sizes;
 *   - from IR_PHASE_SHAPED on: exactly one loss node, g->loss_node names it, its output is
 *     a rank-0 f32, and every other value has rank >= 1 with positive dimensions;
 *   - from IR_PHASE_PLANNED on the graph has a plan, from IR_PHASE_LOWERED on a schedule.
 *
 * The caller says which phase the graph is in: the IR knows nothing about the passes (the
 * pipeline, passes/pipeline.c, records the phase each pass leaves behind).
 *
 * The first violation is printed on the Diag's stream and the verifier returns false. It is
 * deliberately not counted as a user error (diag_errors() does not change): the driver tells
 * a failed pipeline that reported no error from one that did, and exits with the internal
 * error status (3) for the former.
 */
#include "ir.h"

#include <stdarg.h>

typedef struct VerifyCtx {
    const IrGraph *g;
    Diag *d;
    const char *pass;
} VerifyCtx;

static bool fail(VerifyCtx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(VerifyCtx *v, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(v->d->out,
            "mpcc: internal compiler error: IR verification failed after pass '%s': ", v->pass);
    vfprintf(v->d->out, fmt, ap);
    fputc('\n', v->d->out);
    va_end(ap);
    return false;
}

static bool value_ok(const IrGraph *g, int vi) { return vi >= 0 && vi < IR_NVALUES(g); }

static bool verify_values(VerifyCtx *v) {
    const IrGraph *g = v->g;
    for (int i = 0; i < IR_NVALUES(g); i++) {
        const IrValue *val = IR_VALUE(g, i);
        if (val->kind != VAL_ACT && val->producer != -1)
            return fail(v, "input '%s' has a producer (node %d)", val->name, val->producer);
        if (val->kind != VAL_ACT) continue;
        if (val->producer < 0 || val->producer >= IR_NNODES(g))
            return fail(v, "value '%s' has producer %d out of range", val->name, val->producer);
        if (IR_NODE(g, val->producer)->output != i)
            return fail(v, "value '%s' is not the output of its producer '%s'", val->name,
                        IR_NODE(g, val->producer)->name);
    }
    return true;
}

static bool verify_node(VerifyCtx *v, int i) {
    const IrGraph *g = v->g;
    const IrNode *n = IR_NODE(g, i);
    if ((int)n->op < 0 || n->op >= OP__COUNT)
        return fail(v, "node %d has unknown op %d", i, (int)n->op);
    if (n->ninputs != ir_ops[n->op].ninputs)
        return fail(v, "node '%s' (%s) has %d inputs, expected %d", n->name, ir_ops[n->op].name,
                    n->ninputs, ir_ops[n->op].ninputs);
    if (!value_ok(g, n->output))
        return fail(v, "node '%s' has output %d out of range", n->name, n->output);
    if (IR_VALUE(g, n->output)->producer != i)
        return fail(v, "node '%s' output '%s' names another producer", n->name,
                    IR_VALUE(g, n->output)->name);
    for (int k = 0; k < n->ninputs; k++) {
        int in = n->inputs[k];
        if (!value_ok(g, in))
            return fail(v, "node '%s' input %d is %d, out of range", n->name, k, in);
        if (IR_VALUE(g, in)->producer >= i)
            return fail(v, "node '%s' uses '%s' before it is defined", n->name,
                        IR_VALUE(g, in)->name);
    }
    return true;
}

static bool verify_params(VerifyCtx *v) {
    const IrGraph *g = v->g;
    int next = 0;
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        if (n->nparams == 0) {
            if (n->param_count != 0)
                return fail(v, "node '%s' counts parameters it does not have", n->name);
            continue;
        }
        if (n->nparams < 0 || n->first_param != next || n->first_param + n->nparams > IR_NPARAMS(g))
            return fail(v, "node '%s' has parameter range [%d, %d) but the next free is %d of %d",
                        n->name, n->first_param, n->first_param + n->nparams, next, IR_NPARAMS(g));
        int64_t sum = 0;
        for (int p = n->first_param; p < n->first_param + n->nparams; p++) {
            if (IR_PARAM(g, p)->node != i)
                return fail(v, "parameter '%s' is in the range of node '%s'", IR_PARAM(g, p)->name,
                            n->name);
            sum += ir_shape_numel(&IR_PARAM(g, p)->shape);
        }
        if (sum != n->param_count)
            return fail(v, "node '%s' has param_count %lld but its parameters hold %lld", n->name,
                        (long long)n->param_count, (long long)sum);
        next += n->nparams;
    }
    if (next != IR_NPARAMS(g))
        return fail(v, "%d parameters belong to no node", IR_NPARAMS(g) - next);
    return true;
}

static bool verify_shape(VerifyCtx *v, const IrValue *val) {
    if (val->shape.rank < 1 || val->shape.rank > IR_MAX_RANK)
        return fail(v, "value '%s' has rank %d after shape inference", val->name, val->shape.rank);
    for (int k = 0; k < val->shape.rank; k++)
        if (val->shape.d[k] < 1)
            return fail(v, "value '%s' has dimension %d of size %lld", val->name, k,
                        (long long)val->shape.d[k]);
    return true;
}

static bool verify_shapes(VerifyCtx *v) {
    const IrGraph *g = v->g;
    int losses = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        if (ir_ops[IR_NODE(g, i)->op].flags & OPF_LOSS) losses++;
    if (losses != 1) return fail(v, "the graph has %d loss nodes", losses);
    if (g->loss_node < 0 || g->loss_node >= IR_NNODES(g) ||
        !(ir_ops[IR_NODE(g, g->loss_node)->op].flags & OPF_LOSS))
        return fail(v, "loss_node is %d, not the loss", g->loss_node);
    int loss_val = IR_NODE(g, g->loss_node)->output;
    for (int i = 0; i < IR_NVALUES(g); i++) {
        const IrValue *val = IR_VALUE(g, i);
        if (i == loss_val) {
            if (val->shape.rank != 0 || val->dtype != DT_F32)
                return fail(v, "the loss '%s' is not an f32 scalar", val->name);
        } else if (!verify_shape(v, val)) {
            return false;
        }
    }
    return true;
}

bool ir_verify(const IrGraph *g, IrPhase phase, const char *after, Diag *d) {
    VerifyCtx v = {g, d, after ? after : "(none)"};
    if (!verify_values(&v)) return false;
    for (int i = 0; i < IR_NNODES(g); i++)
        if (!verify_node(&v, i)) return false;
    if (!verify_params(&v)) return false;
    if (phase >= IR_PHASE_SHAPED && !verify_shapes(&v)) return false;
    if (phase >= IR_PHASE_PLANNED && !g->plan) return fail(&v, "the graph has no plan");
    if (phase >= IR_PHASE_LOWERED && !g->sched) return fail(&v, "the graph has no schedule");
    return true;
}
