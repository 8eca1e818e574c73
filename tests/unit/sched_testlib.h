/*
 * sched_testlib.h: what the lowering and codegen tests share — compiling .mp text to a
 * shaped graph, and a hand-made plan that follows the annotations (so the tests of the
 * lowering do not depend on what the search prefers).
 *
 * tp_plan(g, S, d, t, m): layers cut into S contiguous stages of equal length; on the tensor
 * axis each layer takes its annotated strategy (data when none): data computes on B (its
 * weights replicated), tensor(col) on R giving F (attention: P), tensor(row) on F giving P
 * (embedding: R giving P); parameterless layers follow their input's layout (a partial sum is
 * all-reduced first; layernorm and losses take R or B); with t = 1 everything is B.
 */
#ifndef MPCC_SCHED_TESTLIB_H
#define MPCC_SCHED_TESTLIB_H

#include "frontend.h"
#include "passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline IrGraph *tp_compile(Arena *a, Diag *d, const char *src) {
    Ast *ast = fe_parse_string(a, d, "test.mp", src, strlen(src));
    if (!ast) return NULL;
    IrGraph *g = fe_lower(a, d, ast, NULL, 0);
    if (!g || !pass_shapes(g, d)) return NULL;
    return g;
}

static inline Layout tp_follow(Layout in, OpKind op) {
    if (op == OP_LAYERNORM || op == OP_CROSS_ENTROPY || op == OP_MSE)
        return in == LAYOUT_B ? LAYOUT_B : LAYOUT_R;
    return in == LAYOUT_P ? LAYOUT_R : in;
}

static inline void tp_node(const IrGraph *g, PlanNode *pn, const IrNode *n, Layout *cur, int t) {
    pn->strat = n->annot.has_strat ? n->annot.strat : STRAT_DATA;
    Layout in = cur[n->inputs[0]];
    if (t == 1) {
        pn->in_layout[0] = pn->in_layout[1] = pn->out_layout = LAYOUT_B;
    } else if ((ir_ops[n->op].flags & OPF_PARAMS) && n->op != OP_LAYERNORM) {
        if (pn->strat == STRAT_DATA)
            pn->in_layout[0] = pn->out_layout = LAYOUT_B;
        else if (pn->strat == STRAT_COL)
            pn->in_layout[0] = LAYOUT_R,
            pn->out_layout = n->op == OP_ATTENTION ? LAYOUT_P : LAYOUT_F;
        else
            pn->in_layout[0] = n->op == OP_EMBEDDING ? LAYOUT_R : LAYOUT_F,
            pn->out_layout = LAYOUT_P;
    } else if (n->op == OP_ADD) {
        Layout b = cur[n->inputs[1]];
        pn->in_layout[0] = pn->in_layout[1] = pn->out_layout = in == b ? in : LAYOUT_R;
    } else {
        pn->in_layout[0] = pn->out_layout = tp_follow(in, n->op);
        pn->in_layout[1] = pn->in_layout[0];
    }
    (void)g;
    cur[n->output] = pn->out_layout;
}

static inline Plan *tp_plan(IrGraph *g, int S, int d, int t, int m) {
    Arena *a = g->arena;
    Plan *p = arena_alloc(a, sizeof *p);
    int nn = IR_NNODES(g);
    p->S = S, p->d = d, p->t = t, p->m = m;
    p->nodes = arena_calloc(a, (size_t)nn, sizeof *p->nodes);
    p->stages = arena_calloc(a, (size_t)S, sizeof *p->stages);
    Layout *cur = arena_calloc(a, (size_t)IR_NVALUES(g), sizeof *cur);
    for (int v = 0; v < IR_NVALUES(g); v++)
        cur[v] = t == 1 ? LAYOUT_B : LAYOUT_R;
    for (int i = 0; i < nn; i++) {
        PlanNode *pn = &p->nodes[i];
        tp_node(g, pn, IR_NODE(g, i), cur, t);
        pn->stage = i * S / nn;
        if (i == 0 || p->nodes[i - 1].stage != pn->stage) p->stages[pn->stage].first_node = i;
        p->stages[pn->stage].last_node = i;
    }
    /* a value read k stages later crosses k cuts in its producer's layout */
    p->cuts = arena_calloc(a, (size_t)(IR_NVALUES(g) * S) + 1, sizeof *p->cuts);
    for (int v = 0; v < IR_NVALUES(g); v++) {
        const IrValue *val = IR_VALUE(g, v);
        int from = val->producer < 0 ? -1 : p->nodes[val->producer].stage, last = from;
        for (int i = 0; i < nn && from >= 0; i++)
            for (int k = 0; k < IR_NODE(g, i)->ninputs; k++)
                if (IR_NODE(g, i)->inputs[k] == v && p->nodes[i].stage > last)
                    last = p->nodes[i].stage;
        for (int s = from; from >= 0 && s < last; s++)
            p->cuts[p->ncuts++] = (PlanCut){s, v, p->nodes[val->producer].out_layout, 0};
    }
    g->plan = p;
    return p;
}

#endif /* MPCC_SCHED_TESTLIB_H */
