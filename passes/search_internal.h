/*
 * search_internal.h: what the files of the plan search share, and nothing outside passes/
 * (and the brute-force oracle of tests/unit/brute.c) may include.
 *
 * The search (search.c) works on one Search: the graph's facts computed once (activations,
 * gradients, liveness), the modes and costs of the candidate being solved, and the scratch
 * arrays of the sweep. A candidate (Cand) is one mesh S×d×t with a micro-batch count m; a
 * Mode is one strategy of a node with the layouts it reads and writes; ModeCost is what that
 * mode costs in that candidate. Plans travel between the files as two arrays indexed by node:
 * mode[p] (an index into the node's modes) and stage[p].
 *
 * Invariants: s->modes and s->mc are valid only after search_cand_prepare() of the candidate
 * that uses them; the layout-graph tables (st_*, tr, cl, cr, crm) only after that candidate's
 * search_solve_* call. A state code packs, for each value live at a point (in the order of the
 * live list, sorted by value index), LIVE_BITS bits: its current layout (2 bits: the layout
 * its last consumer read, which a cut sends) and which other layouts the stage also holds a
 * copy of (3 bits). A consumer reading a layout the stage holds costs nothing; any other
 * layout is made from the held copy that changes to it cheapest (search_resh_from), as the
 * lowering makes it (passes/lower_spmd.c); after a cut the next stage holds only the layout
 * sent.
 */
#ifndef MPCC_SEARCH_INTERNAL_H
#define MPCC_SEARCH_INTERNAL_H

#include "passes.h"

#define MAX_MODES 8 /* modes one node may take in a candidate */
#define MAX_LIVE 6
#define LIVE_BITS 5 /* bits of a state code per live value */
#define REL_EPS 1e-12
#define BISECT_EPS 1e-11

typedef struct Mode {
    Strategy strat;
    Layout in[IR_MAX_INPUTS];
    Layout out;
} Mode;

typedef struct Link {
    double alpha, beta;
    bool inter; /* across nodes: picks the preset file's inter-node measurements */
} Link;

typedef struct Cand {
    int S, d, t, m;
    int64_t b; /* samples per replica per micro-batch: B/(d·m) */
    double K;  /* m + S − 1 */
    Link tensor, data, stage, pipe;
    int restrict_tensor; /* pure tensor reference: parameter layers may not pick data */
    bool loose;          /* a reference plan: bisect to 1e-4 only (its time is an upper
                          * bound on its mesh's optimum, so the chosen plan stays ≤ it) */
    double lb;           /* lower bound on the step time */
    double cutmin;       /* the cheapest cut (both sides, K-scaled) at any point */
} Cand;

/* What one node costs in one mode, for a candidate. Times in seconds. */
typedef struct ModeCost {
    double fwd, bwd; /* compute per micro-batch */
    double own;      /* the layer's own collective per micro-batch */
    CollKind own_coll;
    int64_t own_n, own_bytes;
    int own_fwd;           /* of which all-reduces in the forward (rules.c own_fwd) */
    int64_t own_fwd_bytes; /* and their bytes (per micro-batch, in own_bytes too) */
    double own_fwd_time;   /* and their time (in own too): run again when recomputed */
    double sync;           /* gradient all-reduce per step */
    int64_t sync_bytes, param_bytes;
    GroupKind sync_group;
    double unhidden;   /* u: sync beyond the layer's backward compute, + slow */
    double slow;       /* of u: the backward slowed by the part of the sync it hides */
    double opt;        /* o: the optimizer's pass over the layer's parameters, per step */
    double base;       /* K·(fwd + bwd + own) + u + o */
    int64_t act_bytes; /* stashed per micro-batch (output + internals) */
    int64_t stash;     /* of act_bytes: the op's internals (f32 and int32 under bf16 too) */
    /* Bytes its gradients and optimizer state hold (param_bytes and opt_copies × that
     * without ZeRO, bf16 adding the f32 master weights; shards with ZeRO), under ZeRO-2/3 the
     * transient full gradient (ZeRO-3: and the gathered parameters), and what parameters,
     * gradients and state would hold without ZeRO. */
    int64_t grad_mem, optim_mem, zero_tmp, whole_mem;
    /* Parameter bytes this device keeps between steps: param_bytes, ZeRO-3 its shard */
    int64_t param_mem;
    /* ZeRO-3: the time and bytes of one all-gather of the layer's parameters (0 otherwise) */
    double gather;
    int64_t gather_bytes;
    /* bf16: the f32 copy of the layer's weights the C trainer's kernels read (it unpacks one
     * layer's at a time into one buffer; docs/cost-model.md §7b) */
    int64_t wstage;
} ModeCost;

typedef struct Search {
    IrGraph *g;
    Diag *diag;
    int N, V;
    int64_t B, D;
    /* optimizer-state arenas the trainer holds per parameter (SGD 1, its momentum even at
     * momentum 0; Adam 2), and those its step reads and writes (SGD without momentum 0) */
    int opt_copies, opt_moved;
    int zero; /* the ZeRO stage this search prices: 0-3 (train.zero; auto tries each) */
    /* train.precision: bytes of an f32 tensor's element as stored and sent (4, bf16 2), and the
     * factor on GEMM rates (flops_bf16 / flops under bf16, else 1): docs/cost-model.md */
    int64_t elem;
    double gemm_scale;
    double param_elems; /* the model's parameters, elements (operand residency, cost.c) */
    /* per value */
    bool *act, *needs_grad;
    /* the logits of a cross-entropy and nothing else: the one place classes that do not divide
     * the tensor group may be split (padded; passes/rules.c RULES_LINEAR) */
    bool *vocab_logits;
    int64_t *sample_bytes, *feat;
    /* the first earlier node (value) that every cost of a candidate treats alike — the same
     * op, arguments, shapes, parameters, annotation and gradients: a `repeat`'s blocks — or
     * −1; search_cand_prepare copies its modes and costs (its reshard costs) instead of
     * pricing them again */
    int *same_node, *same_value;
    int *last_use;
    /* per point 0..N: the live activations, sorted by value index */
    int *live_off, *live_n, *live;
    /* per node: position of each input in the live list before it (−1: not an activation);
     * for each value live after it, its position before it (−1: the node's output) */
    int *in_pos;
    int *next_src;
    int *pin;
    /* candidate scratch */
    int *nmodes;
    Mode *modes;
    ModeCost *mc;
    double *resh;        /* [V][4][4] time per micro-batch, fwd + bwd */
    double *cutf, *cutb; /* [V][4] send time of the value / of its gradient */
    int maxlive;
    /* the layout graph of a candidate (cand_tables): per point its states' codes (st_code from
     * st_off, st_cnt of them) and, per state, the state a cut there starts the next stage in
     * (st_cut, an index among the point's states); st_h* a hash of the codes of the point being
     * built (an entry counts when its st_hgen is st_gen) */
    int *st_off, *st_cnt, *st_cut, *tr_off;
    unsigned *st_code;
    unsigned *st_hkey, *st_hgen, st_gen;
    int *st_hval;
    size_t st_hcap, stc_cap;
    struct Tr *tr;
    double *cl, *cr;     /* K·cut costs of each reachable state (left and right stage) */
    double *crm;         /* bytes a stage receives at a cut in each state (memory sweeps) */
    bool mem_mode;       /* sweeps bound each stage's memory instead of its time */
    double mem_cap;      /* time sweeps: reject paths whose stage memory exceeds this */
    double *curm, *nxtm; /* the memory of the path kept in cur / nxt (when mem_cap is set) */
    size_t mcap, mcap2;
    double *infl; /* micro-batches in flight at each stage: min(S − k, m) */
    size_t infl_cap, crm_cap;
    size_t st_cap, tr_cap, cl_cap, cr_cap;
    /* the sweep */
    double *pre, *suf; /* cheapest cost of the nodes before / from each point */
    int *kmin, *kmax;  /* stage windows of each point for the current bound */
    double *cur, *nxt;
    size_t dp_cap, dp_cap2;
    int *from;    /* the transition that reached each (point, stage, state) */
    int *cutfrom; /* 1 + the state a cut came from, or 0: reached without a cut */
    size_t *rec_off;
    size_t rec_cap, flag_cap;
    /* activation recomputation (search_recompute.c), per node: rcfix what the costs price
     * (@recompute pins; every node under train.recompute = "all"), rc what the plan being
     * evaluated recomputes (rcfix plus, under "auto", the stages that would not fit);
     * intern[v·4 + l]: evaluation scratch, buffer (v, l) is rebuilt by a recomputation */
    uint8_t *rcfix, *rc, *intern;
    double *reshf;      /* [V][4][4] forward time of a layout change, per micro-batch */
    int64_t *stage_mem; /* [N] each stage's memory in the last evaluation */
} Search;

/* One transition of the layout graph: state `from` before node p, mode, state `to` after
 * it (indices into the reachable states of each point), and its cost w. */
typedef struct Tr {
    int from, to, mode;
    double w;
    double ms, ma; /* memory: static bytes, and bytes kept per micro-batch in flight */
} Tr;

/* Accumulates one stage while walking a plan. */
typedef struct StageAcc {
    double load, fwd, bwd, comm, sync, unhidden, opt, slow;
    int64_t bytes, params, acts, buf;
    /* recomputation: forward compute and forward collectives run again per micro-batch, their
     * bytes, and the activations (of acts) rebuilt in backward instead of kept */
    double rcf, rcc;
    int64_t rbytes, racts;
    int64_t stash, rstash;      /* of acts and racts: the ops' internals */
    int rcn;                    /* nodes recomputed */
    int64_t grads, optim, zbuf; /* gradients, optimizer state, ZeRO-2's two gradient slots */
    int64_t wbuf;               /* bf16, C trainer: the largest layer's weights as f32 */
    int64_t whole;              /* gradients and optimizer state as they would be without ZeRO */
} StageAcc;

typedef struct CandList {
    Cand *v;
    int n, cap;
} CandList;

/* The outcome of a search over a list of candidates. */
typedef struct Best {
    Cand c;
    double F;
    int *mode, *stage;
    uint8_t *rc; /* the nodes it recomputes */
    bool found;
    int64_t min_mem; /* smallest peak memory seen over evaluated plans */
    Cand min_mem_c;
    int *mm_mode, *mm_stage;
    uint8_t *mm_rc;
    PlanChoice *top;
    int ntop, ktop;
    double cap; /* prune anything not faster than this (INFINITY: no cap) */
} Best;

/* ─────────── search.c: the graph, candidates and the pass ─────────── */

/* calloc that exits with a one-line message when memory runs out (never returns NULL). */
void *search_xcalloc(size_t n, size_t size);
/* Liveness and per-value facts of `g`; false (reported through `d`) when the graph has more
 * live activations at one point than the planner handles. search_free in either case. */
bool search_init(Search *s, IrGraph *g, Diag *d);
void search_free(Search *s);
void search_cand_push(CandList *l, Cand c);
/* Every (S, d, t, m) of the plan space, in tie-break order: S, then t, then m ascending. */
void search_enumerate(const Search *s, CandList *out);
/* Whether the model has a plan on `devices` devices (the search run again with only the device
 * count changed), for the error that says which device counts would work. */
bool search_plans_on(Search *s, int64_t devices);
/* The fastest predicted step on `devices` devices (INFINITY when no plan faster than `cap`),
 * same search; candidates that cannot beat `cap` are pruned unsolved. */
double search_best_on(Search *s, int64_t devices, double cap);

/* ─────────── cost.c: modes and per-layer costs of a candidate ─────────── */

bool search_has_tensor_annot(const IrNode *n);
/* The modes node `p` may take in candidate `c`, filtered by its annotation, into out. */
int search_node_modes(const Search *s, int p, const Cand *c, Mode *out);
/* Bytes one device holds of value v (one micro-batch) in layout l. */
int64_t search_local_bytes(const Search *s, const Cand *c, int v, Layout l);
/* Value v's features do not divide over t > 1 tensor ranks: split, they are padded. */
bool search_padded(const Search *s, int v, int t);
/* Fills modes, costs and the lower bound of candidate `c`; false when some node has no mode. */
bool search_cand_prepare(Search *s, Cand *c);

/* A layer's local problem for one micro-batch on one device (cost_compute.c): its forward and
 * backward FLOPs, the GEMM dimensions the runtime's kernel uses (linear: rows × cols output,
 * `in` input features; conv2d: `samples` GEMMs of cols = output channels × plane = Ho·Wo
 * over in = C·K·K; attention: rows = samples·T, cols = its D, in = D, plane = T, head =
 * D/heads), whether the input needs a gradient and whether a convolution unrolls its input. */
typedef struct CompCtx {
    const ClusterCfg *cl;
    int op;
    double ff, fb;
    double rows, cols, in, samples, plane, head;
    bool dx, unroll;
    double gemm_scale; /* GEMM rates × this (bf16: flops_bf16 / flops; else 1) */
    double reuse;      /* the share of its GEMM calls that find their operands in cache */
} CompCtx;
/* Compute seconds (the roofline's compute side) and the passes added outside it (conv2d's
 * im2col and col2im). */
typedef struct CompTime {
    double fwd, bwd, fwd_extra, bwd_extra;
} CompTime;
CompTime cost_compute_time(const CompCtx *x);
double cost_op_bw(const ClusterCfg *cl, int op, bool bwd);

/* ─────────── search_dp.c: transitions, the sweep and the solvers ─────────── */
/* Grows an array to hold `need` items of `item` bytes (capacity doubling); exits on OOM. */
void *search_grow(void *p, size_t *cap, size_t need, size_t item);

/* The current layouts of the n live values of a state code into lay, and into have the layouts
 * the stage holds of each (a bit per layout, the current one included). */
void search_decode(unsigned code, int n, uint8_t *lay);
void search_decode_have(unsigned code, int n, uint8_t *have);
/* The state a cut in state `code` (n live values) starts the next stage in: each value held in
 * its current layout only. */
unsigned search_cut_code(unsigned code, int n);
/* The layout node p makes its input v in layout `to` from, given the layouts `have` the stage
 * holds (cur the current one): the cheapest change, ties to cur, then the lowest layout;
 * LAYOUT__COUNT when none can change to it. */
Layout search_resh_from(const Search *s, int p, int v, unsigned have, Layout cur, Layout to);
/* Node p in mode mi applied to state `code` before it: the state after it in *out and, when
 * copies is not NULL, the bytes of the layout copies it makes in *copies; returns its cost, or
 * −1 when a layout change is impossible. */
double search_trans(const Search *s, const Cand *c, int p, int mi, unsigned code, unsigned *out,
                    double *copies);
/* K·(send time) of a cut at point p for the stage that ends (left) and the one that begins. */
double search_cut_left(const Search *s, const Cand *c, int p, const uint8_t *lay);
double search_cut_right(const Search *s, const Cand *c, int p, const uint8_t *lay);
/* The optimal time of candidate `c` (INFINITY when none beats `bound`), choices in mode/stage. */
double search_solve_cand(Search *s, const Cand *c, double bound, bool wins_ties, int *mode,
                         int *stage);
/* Memory-aware fallbacks: the leanest plan, and the fastest plan under the device's memory. */
bool search_solve_mem(Search *s, const Cand *c, int *mode, int *stage);
bool search_solve_capped(Search *s, const Cand *c, int *mode, int *stage);
/* The stage windows kmin/kmax of every point for bound tau (search_solve_cand's tables). */
void search_dp_windows(Search *s, const Cand *c, double tau);
/* s->infl: micro-batches in flight at each stage under 1F1B, min(S − k, m). */
void search_set_inflight(Search *s, const Cand *c);

/* ─────────── search_exact.c: the optimum under the memory limit ─────────── */

/* The fastest plan of candidate `c` whose every stage fits in cluster.memory (recomputing
 * stages under train.recompute = "auto" as search_rc_fit does), after search_solve_cand built
 * its tables: its time (to the bisection's tolerance) with its choices in mode/stage, or
 * INFINITY when none fits or none is faster than `bound`. `lo` is a lower bound (the time
 * sweep's optimum). *trunc: a front overflowed, so the answer may not be optimal. */
double search_solve_exact(Search *s, const Cand *c, double lo, double bound, int *mode, int *stage,
                          bool *trunc);

/* ─────────── search_eval.c: a complete plan evaluated ─────────── */

/* The reshards node p needs in mode M from state `code`, accumulated into a (and into plan's
 * reshard list when plan is not NULL). */
void search_eval_reshards(const Search *s, const Cand *c, int p, const Mode *M, unsigned code,
                          StageAcc *a, Plan *plan);
/* The step time of a complete plan (INFINITY when not valid), its peak memory in *mem_peak;
 * with `plan`, fills its nodes' stages, reshards, cuts and totals. */
double search_eval_plan(const Search *s, const Cand *c, const int *mode, const int *stage,
                        Plan *plan, int64_t *mem_peak);
/* A Plan in g's arena for candidate c, nodes filled from mode[]/stage[], evaluated. */
Plan *search_plan_eval_new(Search *s, const Cand *c, const int *mode, const int *stage);

/* ─────────── search_recompute.c: activation recomputation ─────────── */

/* rcfix from the @recompute pins and train.recompute (search_init calls it). */
void search_rc_init(Search *s);
/* Extra time per micro-batch of recomputing node p in mode mi's layouts: its forward compute
 * (the layout changes feeding it are search_trans's). */
double search_rc_node(const Search *s, int p, int mi);
/* The plan mode/stage evaluated with rcfix and, under "auto", recomputation switched on for
 * every stage (with more than one micro-batch in flight) that would not fit otherwise: its step
 * time, peak memory in *peak, the recomputed nodes left in s->rc. */
double search_rc_fit(Search *s, const Cand *c, const int *mode, const int *stage, int64_t *peak);
/* consider()'s answer for a candidate whose fastest plan (F, *peak from search_rc_fit) is over
 * the memory or fits only by recomputing: the fastest plan that fits (search_solve_exact, plus
 * the heuristic fallbacks should its front overflow), in mode/stage/s->rc with its time and
 * *peak. INFINITY with *peak −1 when none beats `bound`; with no bound and nothing that fits,
 * the leanest plan (over the memory, for the error's numbers). `lo`: the time sweep's optimum. */
double search_fit(Search *s, const Cand *c, int *mode, int *stage, double F, int64_t *peak,
                  double lo, double bound);

/* ─────────── search_why.c: reasons and errors ─────────── */

/* search_plan_eval_new plus every layer's alternatives and its reason sentence. */
Plan *search_plan_build(Search *s, const Cand *c, const int *mode, const int *stage);
/* The devices, batch, flops and @stage pins admit a search; reports why not. */
bool search_check_inputs(Search *s);
/* The highest ZeRO stage train.zero = "auto" tries (from 0): 3 where the trainer to be emitted
 * runs it (the C trainer), else 2 (train.zero_auto_max2, set by the driver for the CUDA
 * trainer; codegen cg_plan_supported). The search and the brute-force oracle share it. */
int search_zero_auto_max(const IrGraph *g);
/* Errors when no plan was found: no mesh at all, or none that fits in memory. */
void search_explain_no_plan(Search *s);
void search_explain_memory(Search *s, const Best *b);
/* plan.mesh: the pinned mesh admits the model (stages ≤ layers); reports why not. */
bool search_check_pin(Search *s);
/* Error when the pinned mesh has no plan: none at all, or none that fits in memory. */
void search_explain_pin(Search *s, const Best *b);

#endif /* MPCC_SEARCH_INTERNAL_H */
