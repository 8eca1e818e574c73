/*
 * passes.h: the public header of passes/ — the parallel plan the search chooses, the cost
 * model's formulas, and the units quantities are written in. Everything here is plain data
 * indexed like the IR (node i of the graph ↔ plan->nodes[i]), so the lowering, the report
 * (report/), the JSON writer and codegen read one structure.
 *
 * The parallelism model (DESIGN.md §4). Devices form a mesh S × d × t. Rank r has
 * coordinates (stage s, replica j, tensor rank k) with r = (s·d + j)·t + k: tensor ranks
 * are adjacent, so a tensor group stays inside a node whenever t divides devices_per_node.
 * The batch is always split over the d replicas; each replica's share is streamed through
 * the stages as m micro-batches of B/(d·m) samples. On the t axis every layer takes a
 * Strategy (ir.h), and every activation has a Layout on its tensor group:
 *
 *   R  replicated: every tensor rank holds the whole micro-batch tensor
 *   B  split by batch (leading dim) over the t ranks
 *   F  split by the feature / channel dimension over the t ranks
 *   P  partial sum: every rank holds a full-size tensor; the true value is their sum
 *
 * The gradient of an R, B or F value travels back in the same layout; the gradient of a
 * P value is R. A layout change in forward costs the collective in layout_change below;
 * its backward dual is fixed by that rule (fwd R→B slice ⇒ bwd B→R all-gather, fwd P→R
 * all-reduce ⇒ bwd identity, ...), and is skipped when the value needs no gradient
 * (model inputs and labels).
 */
#ifndef MPCC_PASSES_H
#define MPCC_PASSES_H

#include "ir.h"

typedef enum { LAYOUT_R, LAYOUT_B, LAYOUT_F, LAYOUT_P, LAYOUT__COUNT } Layout;
const char *plan_layout_name(Layout l);     /* "R", "B", "F", "P" */
const char *plan_strategy_name(Strategy s); /* "data", "tensor(col)", "tensor(row)" */
/* The name of strategy s for an op: a loss split over its classes is "vocab-parallel"
 * (docs/cost-model.md, "Vocabulary-parallel loss"); otherwise plan_strategy_name(s). */
const char *plan_node_strategy_name(OpKind op, Strategy s);

/* Collectives, and the per-device byte count the cost model predicts AND the runtime
 * counts for one call on `n` bytes over `g` ranks (ring algorithms, integer arithmetic so
 * predicted and counted totals are exactly equal):
 *   all-reduce 2(g−1)·n/g,  all-gather and reduce-scatter (g−1)·n/g (n = the full tensor),
 *   all-to-all (g−1)·n/g² ,  send/recv n,  slice 0. */
typedef enum {
    COLL_NONE,
    COLL_SLICE,
    COLL_ALLREDUCE,
    COLL_ALLGATHER,
    COLL_REDUCESCATTER,
    COLL_ALLTOALL,
    COLL_SENDRECV,
    COLL__COUNT
} CollKind;
const char *cost_coll_name(CollKind k);
int64_t cost_coll_bytes(CollKind k, int64_t g, int64_t n);
/* Alpha-beta time of one call: steps·α + bytes/β; ring steps: all-reduce 2(g−1), others g−1. */
double cost_coll_time(CollKind k, int64_t g, int64_t n, double alpha, double beta);
/* The same call priced from the preset file's measured α/β for collective k on that link
 * kind at the nearest measured group size (cluster.tables, docs/presets.md); the formula
 * above with alpha/beta when the preset measured none. */
double cost_coll_time_on(const ClusterCfg *cl, CollKind k, bool inter, int64_t g, int64_t n,
                         double alpha, double beta);
/* Whether a group of `span` consecutive ranks may cross a node boundary (then priced on the
 * inter-node link): the job spans several nodes and span does not divide devices_per_node. */
bool cost_group_inter(const ClusterCfg *c, int64_t span);
/* The most nodes one of the groups of `span` consecutive ranks (0..span−1, span..2·span−1, ...)
 * touches when cost_group_inter, else 0. */
int64_t cost_group_nodes(const ClusterCfg *c, int64_t span);
/* FLOP/s of an m×k by k×n GEMM: the preset's GEMM table at the nearest measured shape
 * (log-space distance), else the flat cluster.flops. */
double cost_gemm_rate(const ClusterCfg *cl, int64_t m, int64_t n, int64_t k);
/* How the runtime calls a GEMM (runtime/kernels*.c): C = A·B (forwards), C += A·Bᵀ (a linear's
 * dx, conv2d's dW), C += Aᵀ·B (a linear's dW, conv2d's dx); measured apart (mpcc-calibrate). */
/* A GEMM call's transposition, and the same with its operands in cache (the preset's *_hot
 * rates; the cold rate where it has none). */
typedef enum GemmKind { GEMM_NN, GEMM_NT, GEMM_TN, GEMM_NN_HOT, GEMM_NT_HOT, GEMM_TN_HOT } GemmKind;
/* The preset's rate for a call of `kind` at (m, n, k); cost_gemm_rate is GEMM_NN's. */
double cost_gemm_rate_kind(const ClusterCfg *cl, GemmKind kind, int64_t m, int64_t n, int64_t k);
/* Seconds of a kernel of `flops` FLOPs at `rate` moving `bytes` at bandwidth `bw` (the
 * roofline: the longer of the two; bw 0 means unknown, compute only). */
double cost_roofline(double flops, double rate, double bytes, double bw);
/* The collective that turns layout `from` into `to` in forward (COLL_NONE when equal,
 * COLL__COUNT when impossible: nothing but P itself is ever turned into P). */
CollKind cost_layout_change(Layout from, Layout to);
/* The layout a value's gradient has: R for P, the value's own layout otherwise. */
Layout cost_grad_layout(Layout l);
/* The backward dual of the forward change from→to: the collective that turns the gradient
 * (in cost_grad_layout(to)) into the gradient the producer needs (cost_grad_layout(from)). */
CollKind cost_layout_change_bwd(Layout from, Layout to);

/* ═══════════════ the rules table (passes/rules.c): one entry per op ═══════════════
 *
 * What an op means for splitting, per strategy: the layouts it may compute in, how each of its
 * parameters is sharded, its own collective, and the memory it keeps for backward. The search,
 * the lowering and codegen all read it; ops.def's X-macro builds it, so a new op without an
 * entry does not compile. */

/* What a mode needs to divide over the t tensor ranks. */
typedef enum {
    RC_ALWAYS,   /* nothing */
    RC_BATCH,    /* the micro-batch's samples */
    RC_FEAT,     /* the input's and the output's features */
    RC_IN_FEAT,  /* the input's features (channels) */
    RC_OUT_FEAT, /* the output's features (channels) */
    RC_OUT_PAD,  /* the output's features, or padded: every rank owns at least one (a vocabulary) */
    RC_HEADS,    /* attention heads */
} RuleCond;

/* One way an op may compute at t > 1: strategy, the layout of every input, the output's.
 * in1 is the second input's layout plus one, 0 when it is `in` too (a vocabulary-parallel
 * loss reads its logits split by class and its labels whole). */
typedef struct RuleMode {
    Strategy strat;
    Layout in, out;
    RuleCond cond;
    int8_t in1;
} RuleMode;
/* The layout mode m reads its input k in. */
Layout rules_mode_in(const RuleMode *m, int k);
#define RULES_MAX_MODES 4

/* What a memory rule sees: one rank's share of one micro-batch. */
typedef struct RuleCtx {
    const IrNode *n;
    Strategy strat;
    int t;         /* tensor ranks */
    Shape in, out; /* local shapes of input 0 and of the output (dim 0: local samples) */
    bool dev;      /* the CUDA target (its attention keeps every row's scores) */
} RuleCtx;
typedef int64_t (*RuleMemFn)(const RuleCtx *c);

typedef struct OpRules {
    RuleMode modes[RULES_MAX_MODES]; /* at t > 1, in the order the search tries them */
    int nmodes;
    /* [strategy][role]: 0 whole, d+1 split along d (+16: rounded up), -1 whole but added by
     * tensor rank 0 only; read it through rules_param_split. */
    int8_t split[STRAT__COUNT][PARAM__COUNT];
    CollKind own_bwd[STRAT__COUNT]; /* on the input gradient, tensor group (COLL_NONE: none) */
    /* All-reduces of one float per row of input 0 that the forward runs inside its kernel on
     * the tensor group (a vocabulary-parallel loss: the row maximum, the sum of exponentials
     * and the target's logit); 0: none. */
    int8_t own_fwd[STRAT__COUNT];
    /* Memory, NULL for none; read through rules_stash/istash/scratch. */
    RuleMemFn stash;   /* floats kept for backward besides the activations */
    RuleMemFn istash;  /* int32s kept for backward */
    RuleMemFn scratch; /* floats of temporary space */
} OpRules;
extern const OpRules pass_rules[OP__COUNT];

/* The modes node `n` may take at t > 1 with b samples per micro-batch and the given feature
 * counts of its input and output, in the table's order; returns how many. */
int rules_modes(const IrNode *n, int t, int64_t b, int64_t in_feat, int64_t out_feat,
                RuleMode out[RULES_MAX_MODES]);
/* Whether `op` may compute with strategy `st` from layout `in` to `out` (at t > 1). */
bool rules_layout_ok(OpKind op, Strategy st, Layout in, Layout out);
/* Whether `op` may compute with strategy `st` reading input 0 in `in` and input 1 in `in1`. */
bool rules_in1_ok(OpKind op, Strategy st, Layout in, Layout in1);

/* How a parameter is sharded: dim −1 keeps it whole; ceil rounds the local size up; rank0: whole,
 * and added by tensor rank 0 only (its layer's output is a partial sum). */
typedef struct ParamSplit {
    int dim;
    bool ceil, rank0;
} ParamSplit;
ParamSplit rules_param_split(OpKind op, Strategy st, ParamRole role);
/* Elements of parameter `p` one of t tensor ranks holds under strategy `st`. */
int64_t rules_param_local(const IrParam *p, OpKind op, Strategy st, int t);
/* Floats kept for backward, int32s kept for backward, floats of scratch: node c->n's share. */
int64_t rules_stash(const RuleCtx *c);
int64_t rules_istash(const RuleCtx *c);
int64_t rules_scratch(const RuleCtx *c);

/* Which group a collective runs on. */
typedef enum { GROUP_TENSOR, GROUP_DATA, GROUP_STAGE, GROUP_PIPE, GROUP__COUNT } GroupKind;
const char *plan_group_name(GroupKind k); /* "tensor", "data", "stage", "pipe" */

/* One alternative the search weighed for a layer, kept for the report. */
typedef struct PlanAlt {
    bool feasible; /* the op allows it and the shapes divide */
    Layout in_layout, out_layout;
    int64_t comm_bytes; /* per device per step: resharding + the layer's own + grad sync */
    int64_t grad_bytes; /* of which gradient synchronisation */
    double time;        /* compute + communication per step, seconds */
} PlanAlt;

typedef struct PlanNode {
    int stage;
    Strategy strat;
    Layout in_layout[IR_MAX_INPUTS]; /* the layout the layer computes on, per input */
    Layout out_layout;
    bool forced;    /* pinned by an annotation */
    bool recompute; /* its forward runs again before its backward (activations not kept) */
    PlanAlt alt[STRAT__COUNT]; /* what each strategy would cost (for the report) */
    const char *reason;        /* one sentence, arena string */
    int64_t mem_bytes;         /* this layer's share of its device's memory */
    double fwd_time, bwd_time; /* per micro-batch on one device */
    /* The layer's own collective, in backward: a col-split linear/conv2d/attention
     * all-reduces its input gradient (a partial sum) on the tensor group; COLL_NONE
     * otherwise, or when the input needs no gradient. Bytes per device per micro-batch. */
    CollKind own_bwd;
    int64_t own_bwd_bytes;
    /* The all-reduces the layer's forward runs itself (rules.c own_fwd: a vocabulary-parallel
     * loss), on the tensor group: how many, and their bytes per device per micro-batch. */
    int own_fwd;
    int64_t own_fwd_bytes;
    /* Gradient synchronisation of this layer's parameters, once per step: an all-reduce
     * on `grad_group` (GROUP_STAGE for data on B with t > 1, else GROUP_DATA). */
    GroupKind grad_group;
    int64_t grad_bytes;  /* per device per step (0 when the group has one rank) */
    int64_t param_bytes; /* parameter bytes this device holds (its shard) */
} PlanNode;

/* A layout change on an edge: value `value` produced in `from`, consumed in `to`. */
typedef struct PlanReshard {
    int value, to_node; /* the first consumer needing it; shared by all in `to` */
    Layout from, to;
    CollKind fwd, bwd; /* bwd is COLL_NONE when the value needs no gradient */
    GroupKind group;
    int64_t fwd_bytes, bwd_bytes; /* per device per micro-batch */
} PlanReshard;

/* A value that crosses from stage s to s+1 (sent by each rank to the rank with the same
 * (replica, tensor) coordinates in the next stage, in its layout at the cut). */
typedef struct PlanCut {
    int stage; /* the boundary between stage and stage+1 */
    int value;
    Layout layout;
    int64_t bytes; /* per device per micro-batch, one direction */
} PlanCut;

typedef struct PlanStage {
    int first_node, last_node;               /* inclusive range of node indices */
    double fwd_time, bwd_time, comm_time;    /* per micro-batch */
    double grad_sync_time, grad_sync_hidden; /* per step; hidden: the wait removed */
    double opt_time;                         /* the optimizer step, per step */
    int64_t mem_bytes;                       /* peak per device of this stage */
    int64_t mem_params, mem_grads, mem_optim, mem_acts, mem_buffers;
    /* Activation recomputation (docs/cost-model.md): how many of its layers are recomputed,
     * the forward compute and forward collectives run again per micro-batch, their bytes per
     * device per micro-batch, and the activation bytes that saves (mem_acts is net of it). */
    int recompute;
    double rc_compute, rc_comm;
    int64_t rc_bytes, rc_saved;
    int64_t zero_saved; /* bytes ZeRO saves on this stage's devices (0 without it) */
    /* bytes bf16 saves on this stage's devices against the same plan in f32 (0 under f32;
     * negative when the f32 master weights outweigh what halves: docs/cost-model.md §7b) */
    int64_t bf16_saved;
    int64_t mem_zero_buf;  /* ZeRO-2's transient gradient slots (mem_buffers is the larger of
                            * them and the collective buffers; else 0) */
    double grad_sync_slow; /* per step: the compute time the hidden sync adds (no wait: not in
                            * grad_sync_time − grad_sync_hidden) */
    int64_t mem_internals; /* of mem_acts: what the ops keep besides outputs (4 B each) */
    int64_t comm_bytes;    /* per device per step: what the schedule's stage counts (the
                            * busiest stage's is totals.comm_bytes) */
} PlanStage;

/* A stage's time per micro-batch, T_s of docs/cost-model.md §6: its compute, its own
 * communication and sends, and what recomputation runs again. */
static inline double plan_stage_time(const PlanStage *s) {
    return s->fwd_time + s->bwd_time + s->comm_time + s->rc_compute + s->rc_comm;
}

/* Predicted step time and where it goes (seconds). */
typedef struct PlanTotals {
    double step_time, compute, exposed_comm, bubble, grad_sync_unhidden, grad_sync_hidden;
    double optimizer;   /* the optimizer step of the slowest stage */
    int64_t comm_bytes; /* per device per step, the busiest device */
    int64_t mem_peak;   /* bytes on the fullest device */
    bool fits;
    double grad_sync_slow; /* of grad_sync_unhidden: the backward slowed by the hidden sync */
} PlanTotals;

/* One point of the plan space: the best plan the search found for one mesh and
 * micro-batch count. train.microbatches == 0 means "search m"; > 0 pins it. */
typedef struct PlanChoice {
    int S, d, t, m;
    PlanTotals totals;
} PlanChoice;

struct Plan {
    int S, d, t;       /* mesh */
    int m;             /* micro-batches per step */
    PlanNode *nodes;   /* [IR_NNODES(g)] */
    PlanStage *stages; /* [S] */
    PlanReshard *reshards;
    int nreshards;
    PlanCut *cuts;
    int ncuts;
    PlanTotals totals;
    /* Reference plans for the report: pure data (S=1,d=devices,t=1), pure tensor
     * (S=1,d=1,t=devices), pure pipeline (S=devices,d=1,t=1); totals.fits false when not. */
    PlanTotals pure_data, pure_tensor, pure_pipeline;
    bool pure_data_valid, pure_tensor_valid, pure_pipeline_valid;
    /* plan.mesh: the mesh (and with plan.microbatches, m) was pinned by the user, so the
     * plan is the best on that mesh, not the fastest; `searched` is what the search chooses
     * without the pin (searched_valid false: it found no plan that fits). */
    bool pinned, searched_valid;
    PlanChoice searched;
    /* train.zero: the ZeRO stage the plan uses (0, 1 or 2; under "auto" the one the planner
     * chose, zero_auto set) — docs/cost-model.md, "ZeRO". */
    int zero;
    bool zero_auto;
    /* Node-aware meshes: the most nodes one tensor group spans when it crosses nodes (its
     * collectives are then priced on the inter-node link), 0 when every group stays inside one
     * node; devices_per_node is cluster.devices_per_node (docs/cost-model.md, "Links"). */
    int64_t tensor_nodes, devices_per_node;
};

bool pass_plan(IrGraph *g, Diag *d); /* passes/search.c: fills g->plan */
/* The plan in a compact, stable text form: mesh, per stage its layers, per layer stage,
 * strategy and layouts, reshards, cuts, integer totals (passes/plan_dump.c). */
void pass_plan_dump(const IrGraph *g, FILE *out);

/* The `k` best (mesh, m) choices, fastest first, into out[0..k) (mpcc --plan-space K);
 * returns how many were found (0 after reporting an error through `d`). */
int plan_search_space(IrGraph *g, Diag *d, int k, PlanChoice *out);
/* passes/plan_check.c: the search's contract (mesh, stages covering every layer, no pure
 * plan faster) checked before the plan is reported or lowered; an internal error if not.
 * The text and JSON reports themselves are report/ (report/report.h). */
bool pass_report(IrGraph *g, Diag *d);
/* What pass_report checked, fact by fact (mpcc --dump-after=report). */
void pass_plan_check_dump(const IrGraph *g, FILE *out);

/* Quantities written for people (passes/units.c), decimal units, three significant digits
 * ("262 KB", "1.05 ms", "3.21 M"), into buf (n bytes), which is returned; the same in the
 * report's tables and the search's sentences. */
const char *units_bytes(char *buf, size_t n, int64_t b);
const char *units_time(char *buf, size_t n, double s);
const char *units_count(char *buf, size_t n, double c, const char *unit); /* unit: "", "FLOP" */
const char *units_pct(char *buf, size_t n, double part, double whole);
/* A count and its noun in the right number: "1 device", "8 devices", "4 micro-batches". */
const char *units_n(char *buf, size_t n, long long count, const char *noun);

/* ═══════════════ the SPMD schedule (passes/lower_spmd.c; owned by codegen) ═══════════════
 *
 * pass_lower turns g->plan into g->sched: what every rank of a stage does, in order, for one
 * micro-batch forward and backward, plus the per-step gradient synchronisation and the 1F1B
 * order of those micro-batch programs. Values live in buffers, one per (value, layout) a stage
 * needs; a buffer's local shape is its micro-batch tensor with the split dimension divided by
 * t. With t = 1 every layout is the whole tensor and the lowering uses R throughout. */

/* One copy of a value on a stage, in one layout, for one micro-batch. */
typedef struct SchedBuf {
    int value; /* IR value index */
    int stage;
    Layout layout; /* on the tensor group */
    int split_dim; /* the dimension divided over the t ranks (B: 0, F: the feature dim), -1 */
    Shape full;    /* the micro-batch tensor on the tensor group (dim 0 = samples of a replica) */
    Shape local;   /* what one rank holds */
    bool grad; /* has a gradient buffer (activations only); its layout is R for P, else the same */
    bool rebuilt; /* written by a recomputed op: one copy, rebuilt before each backward */
} SchedBuf;

typedef enum {
    SOP_LOAD, /* input or label rows of this micro-batch into buffer dst (layout R) */
    SOP_FWD,  /* node's forward on the local shard */
    SOP_BWD,  /* node's backward: accumulates parameter and input gradients */
    SOP_COLL, /* a layout change src → dst (forward) or its dual grad(src) ← grad(dst) */
    SOP_SEND, /* buffer src (or its gradient) to the same (replica, tensor) rank of stage peer */
    SOP_RECV, /* buffer dst (or its gradient) from stage peer */
} SchedOpKind;

typedef struct SchedOp {
    SchedOpKind kind;
    int node;       /* FWD/BWD: the node; COLL: the node it serves; else -1 */
    int src, dst;   /* buffer indices (-1 when unused) */
    bool grad;      /* backward direction: moves gradients, dst receives (accumulates) */
    bool layer_own; /* COLL: the layer's own collective (a column split's input-gradient
                       all-reduce), run on a scratch copy of the node's input gradient */
    CollKind coll;  /* COLL: the collective; SEND/RECV: COLL_SENDRECV */
    GroupKind group;
    int peer;      /* SEND/RECV: the other stage */
    int64_t bytes; /* per device, for one micro-batch, as the runtime counts them */
} SchedOp;

/* How a parameter is sharded on its stage, and how its gradient is synchronised per step. */
typedef struct SchedParam {
    int param; /* g->params index */
    int stage;
    int split_dim; /* -1: whole on every tensor rank */
    Shape local;
    bool rank0_adds; /* a bias/positions table added by tensor rank 0 only (output is P) */
    GroupKind sync;  /* the group its gradient is all-reduced over */
    int sync_size;   /* ranks in that group (1: nothing to do) */
} SchedParam;

/* One gradient all-reduce per step: all parameters of one layer at once (they are adjacent
 * in the stage's arena), over the ranks that hold the same shards for other samples. */
typedef struct SchedSync {
    int node;
    int first_param, nparams;
    GroupKind group;
    int size;      /* ranks in the group; > 1 */
    int64_t count; /* floats */
    int64_t bytes; /* per device per step */
    /* ZeRO (Schedule.zero > 0): floats of each rank's shard, ceil(count / size); the
     * gradients are reduce-scattered into it (ZeRO-2: every micro-batch), the optimizer
     * updates it, and the parameters are all-gathered back; bytes counts all of them */
    int64_t shard;
} SchedSync;

/* One entry of a stage's micro-batch order: forward or backward of micro-batch `micro`. */
typedef struct SchedItem {
    bool bwd;
    int micro;
} SchedItem;

typedef struct SchedStage {
    int first_node, last_node;
    SchedOp *fwd;
    int nfwd; /* one micro-batch forward, in order */
    SchedOp *bwd;
    int nbwd; /* one micro-batch backward, in order */
    SchedOp *rec;
    int nrec; /* the recomputed layers' forward ops (FWD, COLL), run again before the backward */
    SchedSync *sync;
    int nsync; /* per step, after the last backward */
    SchedItem *order;
    int norder; /* 1F1B: warm-up forwards, one-forward-one-backward, cool-down */
    int stash;  /* micro-batches whose activations are alive at once: min(S−s, m) */
    int64_t bytes[GROUP__COUNT][COLL__COUNT]; /* per device per step: micro-batch ops × m + sync */
} SchedStage;

struct Schedule {
    int S, d, t, m;
    int zero; /* the plan's ZeRO stage (0: gradients all-reduced, state whole) */
    /* train.precision: the bytes of every f32 buffer, message and gradient (bf16: 2) */
    Precision precision;
    int64_t batch; /* global batch */
    int64_t micro; /* samples per micro-batch per replica: batch / (d·m) */
    SchedBuf *bufs;
    int nbufs;
    SchedParam *params;
    int nparams;        /* [IR_NPARAMS(g)], indexed like g->params */
    SchedStage *stages; /* [S] */
};

bool pass_lower(IrGraph *g, Diag *d); /* passes/lower_spmd.c: g->plan → g->sched */
void pass_schedule_print(const IrGraph *g, FILE *out); /* mpcc --emit=schedule; deterministic */
/* The size of the group `k` in the schedule's mesh (tensor t, data d, stage d·t, pipe S). */
int sched_group_size(const Schedule *s, GroupKind k);
/* Bytes per step on the device that moves the most (a stage's ranks all move the same):
 * what the plan's totals.comm_bytes predicts. */
int64_t sched_busiest_bytes(const Schedule *s);

/* ─────────────────────────────── the pipeline ─────────────────────────────── */

/* Every pass has a dump that prints what it made (mpcc --dump-after=PASS). */
typedef bool (*PassFn)(IrGraph *g, Diag *d);
typedef void (*PassDumpFn)(const IrGraph *g, FILE *out);
typedef struct PassInfo {
    const char *name;
    PassFn run;
    IrPhase leaves;   /* what holds after it ran, for ir_verify */
    PassDumpFn dump;  /* its result: the IR, the plan, the checks, the schedule */
    const char *what; /* what the dump shows, for --help */
} PassInfo;

bool pass_shapes(IrGraph *g, Diag *d); /* passes/shapes.c */

/* passes/pipeline.c: runs the passes in order up to and including `until` (NULL: all),
 * verifying between passes in debug builds, and printing the dump of `dump_after`. */
extern const PassInfo pass_list[];
extern const int pass_count;
/* Index of the pass called `name` in pass_list, or -1. */
int pass_find(const char *name);
bool pass_run_pipeline(IrGraph *g, Diag *d, const char *until, const char *dump_after,
                       FILE *dump_out);

#endif /* MPCC_PASSES_H */
