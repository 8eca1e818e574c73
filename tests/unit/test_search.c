/*
 * test_search.c: the plan search (passes/search.c) on models written in the .mp language,
 * run through the real frontend and shape inference.
 *
 *   - the worked example of DESIGN.md §5 with its exact byte counts;
 *   - Megatron's MLP under a fast link: column then row split, one all-reduce forward and
 *     one backward;
 *   - cheap communication makes pure data parallelism win on a small-weight MLP;
 *   - errors: memory that no plan fits, a tensor annotation no mesh can honour, stage
 *     annotations out of range or out of order, a pinned micro-batch count that divides
 *     nothing;
 *   - the memory a plan counts for what layers keep for backward (maxpool, layernorm);
 *   - the search against an exhaustive enumeration of the same plan space on several
 *     hundred seeded random chains and branched graphs, several presets and cluster numbers;
 *   - plan.mesh: a pinned random mesh against the brute force of that mesh
 *   (memory that binds: test_search_mem.c).
 */
#include "brute.h"
#include "search_testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* model_build with the plan and no -D settings; a failure is a test failure that prints the
 * diagnostics and frees the model. */
static bool model_planned(Model *m, const char *src) {
    model_build(m, src, NULL, true);
    CHECK(m->ok);
    if (!m->ok) {
        fprintf(stderr, "%s", model_diag(m));
        model_free(m);
    }
    return m->ok;
}

static int node_index(const IrGraph *g, const char *name) {
    for (int i = 0; i < IR_NNODES(g); i++)
        if (strcmp(IR_NODE(g, i)->name, name) == 0) return i;
    return -1;
}

/* ───────────────────────────── DESIGN.md §5 ───────────────────────────── */

static const char *const design5 =
    "model lin {\n"
    "    input x: f32[batch, 1000];\n"
    "    label y: f32[batch, 500];\n"
    "    h = linear(x, 500, bias=false);\n"
    "    loss = mse(h, y);\n"
    "}\n"
    "train { batch = 128; microbatches = 1; optimizer = sgd(lr = 0.1); }\n"
    "cluster { devices = 2; preset = \"h100-nvlink\"; }\n";

static void test_design_example(void) {
    Model m;
    if (!model_planned(&m, design5)) return;
    const Plan *p = m.g->plan;
    int h = node_index(m.g, "h");
    const PlanNode *pn = &p->nodes[h];
    /* data all-reduces the 500,000-element weight gradient over the 2 devices:
     * 2·(2−1)/2 · 2,000,000 bytes = 2,000,000 bytes per device per step */
    CHECK(pn->alt[STRAT_DATA].feasible);
    CHECK_EQ(pn->alt[STRAT_DATA].grad_bytes, 2000000);
    /* ...plus, next to the chosen plan's loss (which reads h replicated), an all-gather of
     * its batch-split output: (2−1)/2 · 256,000 = 128,000 bytes */
    CHECK_EQ(pn->alt[STRAT_DATA].comm_bytes, 2128000);
    /* col moves activations: the 128×500 f32 output (256,000 bytes) changes layout for the
     * loss, 128,000 bytes per device, and needs no weight sync (d = 1) */
    CHECK(pn->alt[STRAT_COL].feasible);
    CHECK_EQ(pn->alt[STRAT_COL].grad_bytes, 0);
    CHECK_EQ(pn->alt[STRAT_COL].comm_bytes, 128000);
    CHECK_EQ(p->t, 2);
    CHECK_EQ(pn->strat, STRAT_COL);
    CHECK(pn->reason && strstr(pn->reason, "instead of 2.00 MB of weight gradients"));
    model_free(&m);
}

/* ───────────────────────────── Megatron's MLP ───────────────────────────── */

static const char *const megatron =
    "model megatron_mlp {\n"
    "    input x: f32[batch, 1024];\n"
    "    label y: f32[batch, 1024];\n"
    "    h = layernorm(x);\n"
    "    fc1 = linear(h, 4096);\n"
    "    a = gelu(fc1);\n"
    "    fc2 = linear(a, 1024);\n"
    "    r = add(x, fc2);\n"
    "    loss = mse(r, y);\n"
    "}\n"
    "train { batch = 512; optimizer = adam(lr = 0.001); }\n"
    "cluster { devices = 8; preset = \"h100-nvlink\"; latency = 1e-6; }\n";

static void test_megatron(void) {
    Model m;
    if (!model_planned(&m, megatron)) return;
    const Plan *p = m.g->plan;
    int fc1 = node_index(m.g, "fc1"), fc2 = node_index(m.g, "fc2");
    CHECK(p->t > 1);
    CHECK_EQ(p->nodes[fc1].strat, STRAT_COL);
    CHECK_EQ(p->nodes[fc2].strat, STRAT_ROW);
    /* Tensor-group traffic per micro-batch: exactly one all-reduce of the [b, 1024] block
     * output in forward and one of fc1's input gradient in backward. The forward one may
     * come as a reduce-scatter now and an all-gather in backward (the sequence-parallel
     * form; same bytes), when the ops after it run batch-split. */
    int64_t n = m.g->train.batch / p->d / p->m * 1024 * 4;
    int64_t ar = cost_coll_bytes(COLL_ALLREDUCE, p->t, n);
    int64_t fwd = 0, bwd = 0;
    int fwd_ar = 0;
    for (int i = 0; i < p->nreshards; i++) {
        CHECK_EQ(p->reshards[i].group, GROUP_TENSOR);
        fwd += p->reshards[i].fwd_bytes;
        bwd += p->reshards[i].bwd_bytes;
        fwd_ar += p->reshards[i].fwd == COLL_ALLREDUCE;
    }
    for (int i = 0; i < IR_NNODES(m.g); i++)
        bwd += p->nodes[i].own_bwd_bytes;
    CHECK_EQ(fwd + bwd, 2 * ar);
    CHECK(fwd_ar == 1 ? fwd == ar : fwd == ar / 2);
    CHECK_EQ(p->nodes[fc1].own_bwd, COLL_ALLREDUCE);
    CHECK_EQ(p->nodes[fc1].own_bwd_bytes, ar);
    /* the col→row pair needs no layout change between them */
    for (int i = 0; i < p->nreshards; i++)
        CHECK(p->reshards[i].to_node != fc2);
    model_free(&m);
}

/* ───────────────────────────── cheap communication ───────────────────────────── */

static void test_cheap_comm_data(void) {
    static const char *const src =
        "model small {\n"
        "    input x: f32[batch, 64];\n"
        "    label y: i32[batch];\n"
        "    h1 = linear(x, 64);\n"
        "    a1 = relu(h1);\n"
        "    h2 = linear(a1, 64);\n"
        "    a2 = relu(h2);\n"
        "    o = linear(a2, 10);\n"
        "    loss = cross_entropy(o, y);\n"
        "}\n"
        "train { batch = 16384; optimizer = sgd(lr = 0.1); }\n"
        "cluster { devices = 8; preset = \"h100-nvlink\"; bandwidth = 1e12; latency = 1e-9; }\n";
    Model m;
    model_build(&m, src, NULL, true);
    CHECK(m.ok);
    if (m.ok) {
        const Plan *p = m.g->plan;
        CHECK_EQ(p->S, 1);
        CHECK_EQ(p->d, 8);
        CHECK_EQ(p->t, 1);
        CHECK(p->pure_data_valid);
        CHECK(fabs(p->totals.step_time - p->pure_data.step_time) <= 1e-12 * p->totals.step_time);
        CHECK(!p->pure_tensor_valid || p->pure_tensor.step_time > p->totals.step_time);
    }
    model_free(&m);
}

/* ───────────────────────────── errors ───────────────────────────── */

static void expect_error(const char *src, const char *const *defs, const char *want) {
    Model m;
    model_build(&m, src, defs, true);
    CHECK(!m.ok);
    const char *t = model_diag(&m);
    if (!strstr(t, want)) {
        fprintf(stderr, "expected diagnostic containing \"%s\", got:\n%s\n", want, t);
        test_failures++;
    }
    model_free(&m);
}

static void test_errors(void) {
    static const char *const wide = "model w {\n"
                                    "    input x: f32[batch, 4096];\n"
                                    "    label y: i32[batch];\n"
                                    "    h = linear(x, 4096) @tensor(col);\n"
                                    "    o = linear(h, 10);\n"
                                    "    loss = cross_entropy(o, y);\n"
                                    "}\n"
                                    "train { batch = 12; }\n";
    static const char *const d3[] = {"cluster.devices=3", NULL};
    expect_error(wide, d3,
                 "t.mp:4:25: error: cannot honour @tensor(col) on 'h': its 4096 output features");
    static const char *const mem[] = {"cluster.devices=2", "cluster.memory=1000", NULL};
    expect_error(wide, mem, "error: no plan fits in 1.00 KB per device: the smallest found needs");
    static const char *const stages = "model s {\n"
                                      "    input x: f32[batch, 16];\n"
                                      "    label y: i32[batch];\n"
                                      "    z = linear(x, 16);\n"
                                      "    a = linear(z, 16) @stage(1);\n"
                                      "    b = linear(a, 16) @stage(0);\n"
                                      "    loss = cross_entropy(b, y);\n"
                                      "}\n"
                                      "train { batch = 8; }\n"
                                      "cluster { devices = 4; }\n";
    expect_error(stages, NULL, "t.mp:6:23: error: @stage(0) on 'b' comes after 'a' at @stage(1)");
    static const char *const far = "model s {\n"
                                   "    input x: f32[batch, 16];\n"
                                   "    label y: i32[batch];\n"
                                   "    a = linear(x, 16);\n"
                                   "    b = linear(a, 16) @stage(5);\n"
                                   "    loss = cross_entropy(b, y);\n"
                                   "}\n"
                                   "train { batch = 8; }\n"
                                   "cluster { devices = 4; }\n";
    expect_error(far, NULL,
                 "t.mp:5:23: error: @stage(5) cannot be honoured: 4 devices allow at most 3 "
                 "pipeline stages");
    static const char *const micro[] = {"cluster.devices=3", "train.microbatches=4",
                                        "train.batch=8", NULL};
    static const char *const plain = "model p {\n"
                                     "    input x: f32[batch, 8];\n"
                                     "    label y: i32[batch];\n"
                                     "    o = linear(x, 2);\n" /* 2 classes: no padded split */
                                     "    loss = cross_entropy(o, y);\n"
                                     "}\n";
    expect_error(plain, micro, "error: no parallel plan exists for 3 devices with batch 8");
}

/* ───────────────────────────── brute force ───────────────────────────── */

static void test_brute_force(void) {
    int cases = 0, same = 0, none = 0;
    for (uint64_t seed = 1; cases < 320; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        int nl;
        char *src = random_model(&nl);
        char defs[8][64];
        const char *dv[9];
        random_cluster(defs, dv);
        Model m;
        model_build(&m, src, dv, false);
        if (!m.ok) {
            fprintf(stderr, "random model %llu did not build:\n%s\n%s", (unsigned long long)seed,
                    src, model_diag(&m));
            test_failures++;
            model_free(&m);
            continue;
        }
        double bf = plan_brute_force(m.g, &m.diag);
        bool ok = pass_plan(m.g, &m.diag);
        cases++;
        if (bf == INFINITY) {
            none++;
            CHECK(!ok);
        } else if (!ok) {
            fprintf(stderr, "seed %llu: search found no plan, brute force %.17g\n%s",
                    (unsigned long long)seed, bf, model_diag(&m));
            test_failures++;
        } else {
            const Plan *p = m.g->plan;
            double F = p->totals.step_time;
            /* never predicted slower than a pure plan that fits */
            CHECK(!p->pure_data_valid || F <= p->pure_data.step_time * (1 + 1e-9));
            CHECK(!p->pure_tensor_valid || F <= p->pure_tensor.step_time * (1 + 1e-9));
            CHECK(!p->pure_pipeline_valid || F <= p->pure_pipeline.step_time * (1 + 1e-9));
            if (fabs(F - bf) <= 1e-9 * bf) {
                same++;
            } else {
                fprintf(stderr, "seed %llu: search %.17g, brute force %.17g (%s %s %s %s)\n%s",
                        (unsigned long long)seed, F, bf, dv[0], dv[1], dv[2], dv[3], src);
                test_failures++;
            }
        }
        model_free(&m);
    }
    printf("brute force: %d cases, %d same optimum, %d with no plan\n", cases, same, none);
    CHECK(same + none == cases);
    CHECK(same >= 300);
}

/* plan.mesh: on a random mesh of the device count, the pinned plan is the brute-force
 * optimum of that mesh, keeps the mesh, and the search's own choice beside it is never
 * slower (memory does not bind here). */
static void test_pinned_brute(void) {
    int cases = 0, same = 0, none = 0;
    for (uint64_t seed = 5000; cases < 60; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        int nl;
        char *src = random_model(&nl);
        char defs[8][64], pindef[64];
        const char *dv[10];
        random_cluster(defs, dv);
        int n = 0, D = 0, meshes[64][3], nm = 0;
        for (; dv[n]; n++)
            if (strncmp(dv[n], "cluster.devices=", 16) == 0) D = atoi(dv[n] + 16);
        for (int S = 1; S <= D; S++)
            for (int t = 1; S * t <= D; t++)
                if (D % (S * t) == 0 && S <= nl && nm < 64)
                    meshes[nm][0] = S, meshes[nm][1] = D / S / t, meshes[nm][2] = t, nm++;
        int k = (int)rnd((unsigned)nm);
        snprintf(pindef, sizeof pindef, "plan.mesh=%dx%dx%d", meshes[k][0], meshes[k][1],
                 meshes[k][2]);
        dv[n] = pindef;
        dv[n + 1] = NULL;
        Model m;
        model_build(&m, src, dv, false);
        if (!m.ok) { /* a mesh whose replicas do not divide the batch: the frontend says so */
            CHECK(strstr(model_diag(&m), "do not divide the batch") != NULL);
            model_free(&m);
            continue;
        }
        double bf = plan_brute_force(m.g, &m.diag);
        bool ok = pass_plan(m.g, &m.diag);
        cases++;
        CHECK_EQ(ok, bf < INFINITY);
        none += !ok;
        if (ok) {
            const Plan *p = m.g->plan;
            CHECK(p->pinned);
            CHECK(p->S == meshes[k][0] && p->d == meshes[k][1] && p->t == meshes[k][2]);
            double F = p->totals.step_time;
            if (fabs(F - bf) <= 1e-9 * bf)
                same++;
            else
                fprintf(stderr, "seed %llu pinned %s: search %.17g, brute force %.17g\n%s",
                        (unsigned long long)seed, pindef, F, bf, src);
            CHECK(p->searched_valid);
            CHECK(p->searched.totals.step_time <= F * (1 + 1e-9));
        }
        model_free(&m);
    }
    printf("pinned meshes: %d cases, %d same optimum as brute force on the mesh, %d with none\n",
           cases, same, none);
    CHECK(cases >= 30);
    CHECK(same >= 20);
    CHECK_EQ(same + none, cases);
}

/* ───────────────────────────── memory kept for backward ───────────────────────────── */

/* The plan counts what the trainer keeps for backward besides the activations, as it
 * allocates it (passes/rules.c): maxpool's argmax, one int per output element, and
 * layernorm's mean and reciprocal standard deviation, two floats per row. */
static const char *const stashes =
    "model st {\n"
    "    input x: f32[batch, 1, 4, 4];\n"
    "    label y: i32[batch];\n"
    "    p = maxpool2d(x, kernel=2);\n"
    "    f = flatten(p);\n"
    "    n = layernorm(f);\n"
    "    o = linear(n, 3);\n"
    "    loss = cross_entropy(o, y);\n"
    "}\n"
    "train { batch = 8; microbatches = 1; optimizer = sgd(lr = 0.1); }\n"
    "cluster { devices = 1; }\n";

static void test_stash_memory(void) {
    Model m;
    if (!model_planned(&m, stashes)) return;
    const Plan *p = m.g->plan;
    const PlanNode *pool = &p->nodes[node_index(m.g, "p")], *norm = &p->nodes[node_index(m.g, "n")];
    /* one micro-batch of 8 samples in flight; maxpool: its output, 8 x 1 x 2 x 2 floats, and
     * as many argmax ints */
    CHECK_EQ(pool->mem_bytes, 8 * 4 * 4 + 8 * 4 * 4);
    /* layernorm over 4 features: gamma and beta, their gradients and SGD's momentum (held
     * without momentum too), its output 8 x 4, and the mean and rstd of 8 rows */
    CHECK_EQ(norm->mem_bytes, 2 * 4 * 3 * 4 + 8 * 4 * 4 + 2 * 8 * 4);
    model_free(&m);
}

/* ───────────────────────────── recomputation ───────────────────────────── */

/* train.recompute = "all" is priced inside the sweeps (one more forward and its forward layout
 * changes per layer), so the search stays exact against brute force. */
static void test_recompute_brute(void) {
    int cases = 0, same = 0;
    for (uint64_t seed = 5000; cases < 60; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        int nl;
        char *src = random_model(&nl);
        char defs[8][64];
        const char *dv[10];
        random_cluster(defs, dv);
        int n = 0;
        while (dv[n])
            n++;
        dv[n] = "train.recompute=all", dv[n + 1] = NULL;
        Model m;
        model_build(&m, src, dv, false);
        if (!m.ok) {
            model_free(&m);
            continue;
        }
        cases++;
        double bf = plan_brute_force(m.g, &m.diag);
        bool ok = pass_plan(m.g, &m.diag);
        CHECK(ok == (bf < INFINITY));
        if (ok && fabs(m.g->plan->totals.step_time - bf) <= 1e-9 * bf) same++;
        if (ok) {
            const Plan *p = m.g->plan;
            for (int i = 0; i < IR_NNODES(m.g); i++)
                CHECK(p->nodes[i].recompute);
        }
        if (!ok && bf == INFINITY) same++;
        model_free(&m);
    }
    printf("recompute=all: %d cases, %d same optimum as brute force\n", cases, same);
    CHECK(same == cases);
}

static const char *const chain4 =
    "model c {\n"
    "    input x: f32[batch, 64];\n"
    "    label y: i32[batch];\n"
    "    h1 = linear(x, 64);\n"
    "    h2 = linear(h1, 64);\n"
    "    h3 = linear(h2, 64) @stage(1);\n"
    "    o = linear(h3, 10);\n"
    "    loss = cross_entropy(o, y);\n"
    "}\n"
    "train { batch = 32; microbatches = 4; optimizer = sgd(lr = 0.1); }\n"
    "cluster { devices = 2; preset = \"cpu\"; }\n";

/* Memory with recomputation: stage 0 of a 2-stage pipeline has 2 micro-batches in flight; h1
 * (8 x 64 floats per micro-batch) is rebuilt once instead of kept twice, h2 is sent to stage 1 and
 * stays kept; stage 1 (one micro-batch in flight) saves nothing; the step takes longer. */
static void test_recompute_memory(void) {
    static const char *const none[] = {"train.recompute=none", "plan.mesh=2x1x1", NULL};
    static const char *const all[] = {"train.recompute=all", "plan.mesh=2x1x1", NULL};
    Model a, b;
    model_build(&a, chain4, none, true);
    model_build(&b, chain4, all, true);
    CHECK(a.ok && b.ok);
    if (a.ok && b.ok) {
        const PlanStage *s0 = &a.g->plan->stages[0], *r0 = &b.g->plan->stages[0];
        CHECK_EQ(s0->recompute, 0);
        CHECK_EQ(r0->recompute, 2);
        CHECK_EQ(r0->rc_saved, 8 * 64 * 4);
        CHECK_EQ(s0->mem_acts, 2 * (2 * 8 * 64 * 4));
        CHECK_EQ(r0->mem_acts, s0->mem_acts - r0->rc_saved);
        CHECK_EQ(b.g->plan->stages[1].rc_saved, 0);
        CHECK_EQ(r0->rc_bytes, 0);
        CHECK(r0->rc_compute > 0);
        CHECK(b.g->plan->totals.step_time > a.g->plan->totals.step_time);
        CHECK(!a.g->plan->nodes[0].recompute && b.g->plan->nodes[0].recompute);
    }
    model_free(&a);
    model_free(&b);
}

/* The vocabulary-parallel loss (docs/cost-model.md §7c): random models whose head has 1024 to
 * 8192 classes, so the search weighs the loss on gathered logits against the three all-reduces;
 * the search matches brute force (which enumerates the same modes) and some plans choose it. */
static void test_vocab_brute(void) {
    int cases = 0, same = 0, vocab = 0;
    head_vocab = 1024;
    for (uint64_t seed = 1; cases < 80; seed++) {
        rng_state = seed * 0x2545F4914F6CDD1Dull;
        int nl;
        char *src = random_model(&nl), defs[8][64];
        const char *dv[9];
        random_cluster(defs, dv);
        Model m;
        model_build(&m, src, dv, false);
        if (!m.ok) {
            model_free(&m);
            continue;
        }
        double bf = plan_brute_force(m.g, &m.diag);
        bool ok = pass_plan(m.g, &m.diag);
        cases++;
        if (bf == INFINITY ? !ok : ok && fabs(m.g->plan->totals.step_time - bf) <= 1e-9 * bf)
            same++;
        else
            fprintf(stderr, "vocab seed %llu: search and brute force differ\n%s",
                    (unsigned long long)seed, src);
        if (ok && m.g->plan->nodes[m.g->loss_node].own_fwd) vocab++;
        model_free(&m);
    }
    head_vocab = 0;
    printf("vocab heads: %d cases, %d same optimum as brute force, %d vocab-parallel\n", cases,
           same, vocab);
    CHECK(same == cases);
    CHECK(vocab > 0);
}

/* A GPT-sized head on 2 tensor ranks: the loss is vocab-parallel with three all-reduces of one
 * float per row (both trainers implement it, so the plan is the same for either target). */
static const char *const vocab_head = "model v {\n    input x: f32[batch, 512];\n"
                                      "    label y: i32[batch];\n"
                                      "    h = linear(x, 512);\n"
                                      "    o = linear(h, 32768) @tensor(col);\n"
                                      "    loss = cross_entropy(o, y);\n}\n"
                                      "train { batch = 1024; microbatches = 1; }\n"
                                      "cluster { devices = 2; preset = \"a100-nvlink\"; }\n";

static void test_vocab_choice(void) {
    Model m;
    model_build(&m, vocab_head, NULL, false);
    CHECK(m.ok);
    if (!m.ok) {
        model_free(&m);
        return;
    }
    CHECK(pass_plan(m.g, &m.diag));
    const PlanNode *pn = &m.g->plan->nodes[m.g->loss_node];
    CHECK(m.g->plan->t == 2);
    CHECK(pn->strat == STRAT_COL);
    CHECK(pn->own_fwd == 3);
    CHECK(pn->own_fwd_bytes == 3 * cost_coll_bytes(COLL_ALLREDUCE, 2, 4 * 1024));
    CHECK(strcmp(plan_node_strategy_name(OP_CROSS_ENTROPY, pn->strat), "vocab-parallel") == 0);
    model_free(&m);
}

int main(void) {
    test_design_example();
    test_megatron();
    test_cheap_comm_data();
    test_errors();
    test_brute_force();
    test_pinned_brute();
    test_stash_memory();
    test_recompute_brute();
    test_recompute_memory();
    test_vocab_choice();
    test_vocab_brute();
    return TEST_RESULT();
}
