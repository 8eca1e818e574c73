/*
 * search_testlib.h: what the plan search's unit tests share (test_search.c, test_search_mem.c):
 * a model compiled from .mp source with -D settings, and the seeded random models and cluster
 * settings the brute-force comparisons draw.
 */
#ifndef MPCC_SEARCH_TESTLIB_H
#define MPCC_SEARCH_TESTLIB_H

#include "frontend.h"
#include "ir_testlib.h"
#include "passes.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A compiled model: arena, diagnostics captured in memory, the graph after `plan`. */
typedef struct Model {
    Arena arena;
    Diag diag;
    FILE *out;
    char *text;
    size_t len;
    IrGraph *g;
    bool ok;
} Model;

/* Parses and lowers src with the -D settings in defs ("key=value" strings, NULL ended),
 * runs shapes, then the plan pass if `plan`. */
static inline void model_build(Model *m, const char *src, const char *const *defs, bool plan) {
    memset(m, 0, sizeof *m);
    m->out = open_memstream(&m->text, &m->len);
    diag_init(&m->diag, m->out);
    FeDefine fd[16];
    int nd = 0;
    for (; defs && defs[nd] && nd < 16; nd++) {
        const char *eq = strchr(defs[nd], '=');
        fd[nd].key = arena_strndup(&m->arena, defs[nd], (size_t)(eq - defs[nd]));
        fd[nd].value = eq + 1;
    }
    Ast *ast = fe_parse_string(&m->arena, &m->diag, "t.mp", src, strlen(src));
    m->g = ast ? fe_lower(&m->arena, &m->diag, ast, fd, nd) : NULL;
    m->ok = m->g && pass_shapes(m->g, &m->diag) && diag_errors(&m->diag) == 0;
    if (m->ok && plan) m->ok = pass_plan(m->g, &m->diag) && diag_errors(&m->diag) == 0;
    fflush(m->out);
}

static inline const char *model_diag(Model *m) {
    fflush(m->out);
    return m->text ? m->text : "";
}

static inline void model_free(Model *m) {
    fclose(m->out);
    free(m->text);
    arena_free(&m->arena);
}

static uint64_t rng_state;
static inline unsigned rnd(unsigned n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rng_state >> 33) % n);
}

/* The LM head's classes of random_model: a few (0), or a vocabulary (test_vocab_brute). */
static int head_vocab;

/* A random model of ≤ 8 layers: linears, elementwise ops, layernorms, residual adds. */
static inline char *random_model(int *nlayers) {
    static char buf[4096];
    static const int widths[] = {4, 6, 8, 12, 16, 24, 32, 64, 256};
    int w = widths[rnd(9)], k = 0, n = 0;
    int body = rnd(8) == 0 ? 6 : 1 + (int)rnd(5); /* 3..8 layers with the head and loss */
    int vw[16];
    char names[16][8];
    k += snprintf(buf + k, sizeof buf - (size_t)k,
                  "model r {\n    input x: f32[batch, %d];\n"
                  "    label y: i32[batch];\n",
                  w);
    snprintf(names[0], sizeof names[0], "x");
    vw[0] = w;
    int nv = 1;
    for (int i = 0; i < body; i++) {
        int src = nv - 1, op = (int)rnd(8);
        char *nm = names[nv];
        snprintf(nm, sizeof names[nv], "v%d", nv);
        if (op <= 2 || nv == 1) {
            int ow = widths[rnd(9)];
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = linear(%s, %d%s);\n", nm,
                          names[src], ow, rnd(2) ? "" : ", bias=false");
            vw[nv] = ow;
        } else if (op == 3) {
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = relu(%s);\n", nm, names[src]);
            vw[nv] = vw[src];
        } else if (op == 4) {
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = layernorm(%s);\n", nm,
                          names[src]);
            vw[nv] = vw[src];
        } else if (op == 5) {
            k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = gelu(%s);\n", nm, names[src]);
            vw[nv] = vw[src];
        } else {
            int other = -1;
            for (int j = nv - 2; j >= 1; j--)
                if (vw[j] == vw[src]) other = j;
            if (other < 0) {
                k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = tanh(%s);\n", nm,
                              names[src]);
            } else {
                k += snprintf(buf + k, sizeof buf - (size_t)k, "    %s = add(%s, %s);\n", nm,
                              names[other], names[src]);
            }
            vw[nv] = vw[src];
        }
        nv++;
        n++;
    }
    k += snprintf(buf + k, sizeof buf - (size_t)k,
                  "    o = linear(%s, %d);\n    loss = cross_entropy(o, y);\n}\n", names[nv - 1],
                  head_vocab ? head_vocab * (1 + (int)rnd(8)) : widths[rnd(4)]);
    *nlayers = n + 2;
    return buf;
}

/* Every random value of the plan space the frontend would accept, as -D settings. */
static inline void random_cluster(char defs[8][64], const char **out) {
    static const char *const presets[] = {"cpu", "a100-nvlink", "h100-nvlink", "h100-ib"};
    static const int devices[] = {1, 2, 3, 4, 4, 6, 8, 8};
    static const int batches[] = {4, 6, 8, 12, 16, 24};
    static const int dpn[] = {1, 2, 4, 8};
    int n = 0;
    snprintf(defs[n], 64, "cluster.preset=%s", presets[rnd(4)]), n++;
    snprintf(defs[n], 64, "cluster.devices=%d", devices[rnd(8)]), n++;
    snprintf(defs[n], 64, "train.batch=%d", batches[rnd(6)]), n++;
    snprintf(defs[n], 64, "cluster.devices_per_node=%d", dpn[rnd(4)]), n++;
    if (rnd(3) == 0) snprintf(defs[n], 64, "cluster.bandwidth=%g", 1e6 * (1 + rnd(1000))), n++;
    if (rnd(3) == 0) snprintf(defs[n], 64, "cluster.latency=%g", 1e-7 * (1 + rnd(100))), n++;
    if (rnd(4) == 0) snprintf(defs[n], 64, "train.microbatches=%d", 1 + (int)rnd(2)), n++;
    for (int i = 0; i < n; i++)
        out[i] = defs[i];
    out[n] = NULL;
}

#endif /* MPCC_SEARCH_TESTLIB_H */
