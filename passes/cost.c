/*
 * cost.c: the communication formulas of the cost model (docs/cost-model.md).
 *
 * Everything the planner predicts about communication reduces to three questions asked
 * here: how many bytes one device sends for one collective call, how long that call takes
 * on a link with latency α and bandwidth β, and which collective turns one activation
 * layout into another. The search (search.c) composes these into layer, stage and step
 * costs; the runtime counts the same bytes, so the formulas are in integer arithmetic and
 * must stay bit-for-bit what the runtime adds up.
 *
 * Ring algorithms (Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan 2009): over g ranks
 * an all-reduce of n bytes is a reduce-scatter followed by an all-gather, each of g−1 steps
 * moving n/g bytes, so 2(g−1)·n/g bytes per device; an all-gather or reduce-scatter of a
 * tensor whose full size is n moves (g−1)·n/g; an all-to-all where every rank holds n/g and
 * keeps 1/g of it sends (g−1)·n/g². A group of one rank moves nothing and takes no time.
 *
 * Layout changes (DESIGN.md §4): R→B and R→F are local slices; B→R and F→R all-gathers;
 * P→R an all-reduce; P→B and P→F reduce-scatters; B↔F an all-to-all. Nothing turns a
 * non-P value into P (the planner never needs it: an add of a P and an R value costs the
 * same as all-reducing first), so those changes are reported as impossible (COLL__COUNT).
 */
#include "passes.h"

const char *plan_layout_name(Layout l) {
    static const char *const names[] = {"R", "B", "F", "P"};
    return l < LAYOUT__COUNT ? names[l] : "?";
}

const char *plan_strategy_name(Strategy s) {
    static const char *const names[] = {"data", "tensor(col)", "tensor(row)"};
    return s < STRAT__COUNT ? names[s] : "?";
}

const char *plan_group_name(GroupKind k) {
    static const char *const names[] = {"tensor", "data", "stage", "pipe"};
    return k < GROUP__COUNT ? names[k] : "?";
}

const char *cost_coll_name(CollKind k) {
    static const char *const names[] = {"none",           "slice",      "all-reduce", "all-gather",
                                        "reduce-scatter", "all-to-all", "send/recv"};
    return k < COLL__COUNT ? names[k] : "impossible";
}

int64_t cost_coll_bytes(CollKind k, int64_t g, int64_t n) {
    if (n <= 0) return 0;
    if (k == COLL_SENDRECV) return n;
    if (g <= 1) return 0;
    switch (k) {
    case COLL_ALLREDUCE: return 2 * (g - 1) * n / g;
    case COLL_ALLGATHER:
    case COLL_REDUCESCATTER: return (g - 1) * n / g;
    case COLL_ALLTOALL: return (g - 1) * n / (g * g);
    default: return 0;
    }
}

/* Ring steps of one call; a send/recv is one message. */
static int64_t coll_steps(CollKind k, int64_t g) {
    if (k == COLL_SENDRECV) return 1;
    if (g <= 1) return 0;
    switch (k) {
    case COLL_ALLREDUCE: return 2 * (g - 1);
    case COLL_ALLGATHER:
    case COLL_REDUCESCATTER:
    case COLL_ALLTOALL: return g - 1;
    default: return 0;
    }
}

double cost_coll_time(CollKind k, int64_t g, int64_t n, double alpha, double beta) {
    int64_t bytes = cost_coll_bytes(k, g, n);
    int64_t steps = coll_steps(k, g);
    if (steps == 0 || n <= 0) return 0.0;
    return (double)steps * alpha + (beta > 0 ? (double)bytes / beta : 0.0);
}

CollKind cost_layout_change(Layout from, Layout to) {
    if (from == to) return COLL_NONE;
    if (to == LAYOUT_P) return COLL__COUNT;
    switch (from) {
    case LAYOUT_R: return COLL_SLICE;
    case LAYOUT_B:
    case LAYOUT_F: return to == LAYOUT_R ? COLL_ALLGATHER : COLL_ALLTOALL;
    case LAYOUT_P: return to == LAYOUT_R ? COLL_ALLREDUCE : COLL_REDUCESCATTER;
    default: return COLL__COUNT;
    }
}

Layout cost_grad_layout(Layout l) { return l == LAYOUT_P ? LAYOUT_R : l; }

CollKind cost_layout_change_bwd(Layout from, Layout to) {
    return cost_layout_change(cost_grad_layout(to), cost_grad_layout(from));
}
