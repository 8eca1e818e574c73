/*
 * fuzz_frontend.c: libFuzzer target for the whole front half of mpcc.
 *
 * Each input is taken as the text of a .mp file and pushed through everything a user's
 * file goes through before planning: the text checks, lexer and parser, the AST dump,
 * lowering with def/repeat expansion and the settings, and the pass pipeline up to shape
 * inference (with the verifier in this debug build), plus the IR dump. Diagnostics go
 * to /dev/null; what the fuzzer looks for is a crash, a sanitizer report (ASan, UBSan,
 * leaks), a hang or a runaway allocation. The arena is freed after every input, so a
 * leak report means memory escaped the arena.
 *
 * Built only with -DMPCC_FUZZ=ON and clang; see docs/testing.md for running it.
 */
#include "frontend.h"
#include "ir.h"
#include "passes.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull(void) {
    static FILE *f;
    if (!f) f = fopen("/dev/null", "w");
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Arena a = {0};
    Diag d;
    diag_init(&d, devnull());
    d.max_errors = 20;
    Ast *ast = fe_parse_string(&a, &d, "fuzz.mp", (const char *)data, size);
    if (ast) {
        fe_ast_dump(ast, devnull());
        IrGraph *g = fe_lower(&a, &d, ast, NULL, 0);
        if (g && pass_run_pipeline(g, &d, "shapes", NULL, NULL)) {
            ir_dump(g, devnull());
            fe_config_dump(&g->train, &g->cluster, devnull());
        }
    }
    arena_free(&a);
    return 0;
}
