/*
 * test_search_mem.c: the plan search against brute force when memory binds (issue 15 item 7).
 *
 * Each case draws a random model — a chain or branched MLP (search_testlib.h), a small
 * transformer (embedding, attention, layernorm, gelu, residual adds) or a small CNN (conv2d,
 * relu, maxpool2d, flatten) — and random cluster settings, plans it once without a limit, then
 * sets cluster.memory to 50–95 % of that plan's peak (25–95 % under train.zero "auto", so that
 * some cases fit only with ZeRO-3's sharded parameters) and compares the search with the
 * exhaustive oracle (brute.c) under train.recompute "auto" or "none", train.zero "auto", 0,
 * 1, 2 or 3, and train.precision "f32" or "bf16": the same predicted step time (1e-9 relative),
 * a plan exactly when brute force has one, and a plan that fits. The default run is 120 seeded
 * cases; `--cases N` runs N (the long label, MPCC_LONG_TESTS=ON, runs 600).
 */
#include "brute.h"
#include "search_testlib.h"

#include <stdio.h>

/* A transformer of ≤ 5 layers after the embedding: [batch, SEQ, W] activations. */
static char *random_seq(void) {
    static char buf[4096];
    static const int ws[] = {8, 16, 32};
    int w = ws[rnd(3)], seq = 2 + 2 * (int)rnd(3), k = 0, body = 1 + (int)rnd(4);
    k += snprintf(buf + k, sizeof buf - (size_t)k,
                  "model s {\n    input tok: i32[batch, %d];\n    label y: i32[batch, %d];\n"
                  "    v0 = embedding(tok, vocab=%d, dim=%d%s);\n",
                  seq, seq, 16 << rnd(3), w, rnd(2) ? "" : ", positions=8");
    for (int i = 1; i <= body; i++) {
        int op = (int)rnd(5);
        if (op == 0)
            k += snprintf(buf + k, sizeof buf - (size_t)k,
                          "    v%d = attention(v%d, heads=2, causal=true);\n", i, i - 1);
        else if (op == 1)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    v%d = layernorm(v%d);\n", i, i - 1);
        else if (op == 2)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    v%d = linear(v%d, %d);\n", i, i - 1,
                          w);
        else if (op == 3)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    v%d = gelu(v%d);\n", i, i - 1);
        else
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    v%d = add(v%d, v%d);\n", i, i - 1,
                          i > 1 ? i - 2 : 0);
    }
    snprintf(buf + k, sizeof buf - (size_t)k,
             "    o = linear(v%d, %d);\n    loss = cross_entropy(o, y);\n}\n", body, 8 << rnd(3));
    return buf;
}

/* A CNN: one or two conv2d (+relu, +maxpool) on 8×8 images, flattened into a linear head. */
static char *random_cnn(void) {
    static char buf[4096];
    int k = 0, c = 1 + (int)rnd(3), nconv = 1 + (int)rnd(2);
    k += snprintf(buf + k, sizeof buf - (size_t)k,
                  "model c {\n    input x: f32[batch, %d, 8, 8];\n    label y: i32[batch];\n"
                  "    h0 = x;\n",
                  c);
    int h = 0;
    for (int i = 0; i < nconv; i++) {
        k += snprintf(buf + k, sizeof buf - (size_t)k,
                      "    h%d = conv2d(h%d, %d, kernel=3, padding=1);\n", h + 1, h, 4 << rnd(3));
        h++;
        if (rnd(2))
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    h%d = relu(h%d);\n", h + 1, h), h++;
        if (i == 0 && rnd(2))
            k += snprintf(buf + k, sizeof buf - (size_t)k,
                          "    h%d = maxpool2d(h%d, kernel=2, stride=2);\n", h + 1, h),
                h++;
    }
    snprintf(buf + k, sizeof buf - (size_t)k,
             "    f = flatten(h%d);\n    o = linear(f, %d);\n    loss = cross_entropy(o, y);\n}\n",
             h, 4 << rnd(3));
    return buf;
}

static char *random_any(void) {
    int kind = (int)rnd(3), nl;
    return kind == 0 ? random_model(&nl) : kind == 1 ? random_seq() : random_cnn();
}

/* The settings of one case: random_cluster's, a recomputation policy, a ZeRO stage, bf16 half
 * the time, and (in the source) an optimizer with state so ZeRO has something to shard; into dv
 * (NULL ended). */
static int case_defs(char defs[8][64], const char **dv) {
    static const char *const rc[] = {"train.recompute=auto", "train.recompute=none"};
    static const char *const zero[] = {"train.zero=auto", "train.zero=0", "train.zero=1",
                                       "train.zero=2", "train.zero=3"};
    random_cluster(defs, dv);
    int n = 0;
    while (dv[n])
        n++;
    dv[n++] = rc[rnd(2)];
    dv[n++] = zero[rnd(5)];
    if (rnd(2)) dv[n++] = "train.precision=bf16";
    dv[n] = NULL;
    return n;
}

typedef struct Tally {
    int cases, same, none, built;
    int rc, zero; /* chosen plans that recompute, that shard with ZeRO */
    int auto3;    /* under train.zero = "auto", chosen plans at ZeRO-3 */
} Tally;

/* One case: the search and the oracle under a memory limit below the free plan's peak. */
static void one_case(uint64_t seed, Tally *t) {
    rng_state = seed * 0x9E3779B97F4A7C15ull;
    char *src = random_any();
    static char text[8192];
    snprintf(text, sizeof text, "%strain { optimizer = %s; }\n", src,
             rnd(2) ? "adam(lr = 0.001)" : "sgd(lr = 0.1, momentum = 0.9)");
    char defs[8][64], memdef[64];
    const char *dv[14];
    int n = case_defs(defs, dv);
    Model m;
    model_build(&m, text, dv, true);
    if (!m.ok) {
        model_free(&m);
        return;
    }
    t->built++;
    int64_t peak = m.g->plan->totals.mem_peak;
    model_free(&m);
    /* "auto" down to 25 %: where only ZeRO-3's sharded parameters fit, it must choose 3 */
    bool aut = !strcmp(dv[n - 1], "train.zero=auto") || !strcmp(dv[n - 2], "train.zero=auto");
    int pct = aut ? 25 + 5 * (int)rnd(15) : 50 + 5 * (int)rnd(10);
    snprintf(memdef, sizeof memdef, "cluster.memory=%lld", (long long)(peak * pct / 100));
    dv[n] = memdef, dv[n + 1] = NULL;
    model_build(&m, text, dv, false);
    if (!m.ok) {
        model_free(&m);
        return;
    }
    t->cases++;
    double bf = plan_brute_force(m.g, &m.diag);
    bool ok = pass_plan(m.g, &m.diag);
    double F = ok ? m.g->plan->totals.step_time : INFINITY;
    if (!ok && bf == INFINITY) {
        t->none++;
    } else if (ok && fabs(F - bf) <= 1e-9 * bf &&
               (double)m.g->plan->totals.mem_peak <= m.g->cluster.memory) {
        t->same++;
        bool any = false;
        for (int i = 0; i < IR_NNODES(m.g); i++)
            any = any || m.g->plan->nodes[i].recompute;
        t->rc += any;
        t->zero += m.g->plan->zero > 0;
        t->auto3 += m.g->plan->zero_auto && m.g->plan->zero == 3;
    } else {
        fprintf(stderr, "seed %llu: search %.17g, brute force %.17g (%s)\n%s\n%s",
                (unsigned long long)seed, F, bf, memdef, text, model_diag(&m));
        for (int i = 0; dv[i]; i++)
            fprintf(stderr, " -D %s", dv[i]);
        fprintf(stderr, "\n");
    }
    model_free(&m);
}

int main(int argc, char **argv) {
    int want = argc > 2 && !strcmp(argv[1], "--cases") ? atoi(argv[2]) : 120;
    Tally t = {0, 0, 0, 0, 0, 0, 0};
    for (uint64_t seed = 1; t.cases < want && seed < (uint64_t)want * 20; seed++)
        one_case(seed, &t);
    printf("memory binding: %d cases (%d models built): %d same optimum as brute force (%d "
           "recomputing, %d with ZeRO, %d of them ZeRO-3 chosen by \"auto\"), %d with no plan "
           "in either, %d differ\n",
           t.cases, t.built, t.same, t.rc, t.zero, t.auto3, t.none, t.cases - t.same - t.none);
    CHECK(t.cases == want);
    CHECK(t.same + t.none == t.cases);
    CHECK(t.same >= t.cases / 2);
    CHECK(t.auto3 > 0); /* "auto" chose ZeRO-3 where it alone fits, as brute force did */
    return TEST_RESULT();
}
