/*
 * test_diag.c: the diagnostics printer and the frontend's in-memory entry points.
 *
 * Checks the exact text of caret lines (tabs kept, UTF-8 counted as one column, spans
 * clipped to the line, a caret at the end of a line), the location-less forms, the
 * max_errors cut-off, diag_suggest's choices, and that fe_parse_string + fe_lower give
 * the expected graph (names, args, annotations, text, settings) for a small model.
 */
#include "frontend.h"
#include "ir_testlib.h"

static const char *render(Diag *d, char **buf, size_t *len, FILE **f) {
    fflush(*f);
    (void)d;
    (void)len;
    return *buf ? *buf : "";
}

static void test_carets(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Diag d;
    diag_init(&d, f);
    const char *src = "model m {\n\th = relu(x);\n  é = 1;\n}";
    diag_set_source(&d, "m.mp", src, strlen(src));
    SrcLoc tab = {"m.mp", 2, 6, 12};
    diag_error(&d, tab, "tabbed %d", 1);
    SrcLoc utf = {"m.mp", 3, 5, 5};
    diag_warning(&d, utf, "after a two-byte letter");
    SrcLoc wide = {"m.mp", 1, 7, 1000};
    diag_note(&d, wide, "clipped");
    SrcLoc eol = {"m.mp", 4, 2, 2};
    diag_error(&d, eol, "at end of line");
    SrcLoc file = {"m.mp", 0, 0, 0};
    diag_error(&d, file, "whole file");
    SrcLoc none = {NULL, 0, 0, 0};
    diag_error(&d, none, "no file");
    const char *out = render(&d, &buf, &len, &f);
    CHECK_STR(out, "m.mp:2:6: error: tabbed 1\n\th = relu(x);\n\t    ^~~~~~~\n");
    CHECK_STR(out, "m.mp:3:5: warning: after a two-byte letter\n  é = 1;\n    ^\n");
    CHECK_STR(out, "m.mp:1:7: note: clipped\nmodel m {\n      ^~~\n");
    CHECK_STR(out, "m.mp:4:2: error: at end of line\n}\n ^\n");
    CHECK_STR(out, "m.mp: error: whole file\n");
    CHECK_STR(out, "mpcc: error: no file\n");
    CHECK_EQ(d.errors, 4);
    CHECK_EQ(d.warnings, 1);
    fclose(f);
    free(buf);
}

static void test_max_errors(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Diag d;
    diag_init(&d, f);
    d.max_errors = 2;
    SrcLoc none = {NULL, 0, 0, 0};
    for (int i = 0; i < 5; i++)
        diag_error(&d, none, "e%d", i);
    const char *out = render(&d, &buf, &len, &f);
    CHECK_STR(out, "mpcc: error: e1\nmpcc: note: too many errors; not printing more\n");
    CHECK(!strstr(out, "e2"));
    CHECK_EQ(d.errors, 5);
    fclose(f);
    free(buf);
}

static void test_suggest(void) {
    const char *ops[] = {"linear", "relu", "gelu", "layernorm", "cross_entropy"};
    CHECK(diag_suggest("reluu", ops, 5) && strcmp(diag_suggest("reluu", ops, 5), "relu") == 0);
    CHECK(diag_suggest("lienar", ops, 5) && strcmp(diag_suggest("lienar", ops, 5), "linear") == 0);
    CHECK(diag_suggest("crossentropy", ops, 5) &&
          strcmp(diag_suggest("crossentropy", ops, 5), "cross_entropy") == 0);
    CHECK(diag_suggest("frobnicate", ops, 5) == NULL);
    CHECK(diag_suggest("x", ops, 5) == NULL); /* too short to guess */
}

static void test_lower(void) {
    TestGraph t;
    tg_init(&t);
    const char *src = "def mlp(a) { h = linear(a, 8, bias=false) @tensor(col); return relu(h); }\n"
                      "model small {\n"
                      "  input x: f32[batch, 4];\n"
                      "  label y: i32[batch];\n"
                      "  m = mlp(x) @stage(2);\n"
                      "  loss = cross_entropy(linear(m, 3), y);\n"
                      "}\n"
                      "train { batch = 16; microbatches = 4; optimizer = adam(lr = 0.5); }\n";
    Ast *ast = fe_parse_string(&t.arena, &t.diag, "small.mp", src, strlen(src));
    CHECK(ast != NULL);
    FeDefine defs[] = {{"cluster.devices", "8"}};
    IrGraph *g = ast ? fe_lower(&t.arena, &t.diag, ast, defs, 1) : NULL;
    CHECK(g != NULL);
    if (g) {
        CHECK_EQ(IR_NNODES(g), 4);
        const IrNode *h = IR_NODE(g, 0);
        CHECK(strcmp(h->name, "m.h") == 0);
        CHECK_EQ(h->op, OP_LINEAR);
        CHECK_EQ((int64_t)h->args[0], 8);
        CHECK_EQ((int64_t)h->args[1], 0);
        CHECK_EQ(h->arg_loc[0].line, 1);
        CHECK_EQ(h->arg_loc[0].col, 28);
        CHECK(h->annot.has_strat && h->annot.strat == STRAT_COL);
        CHECK_EQ(h->annot.stage, 2);
        CHECK(strcmp(h->text, "h = linear(a, 8, bias=false) @tensor(col)") == 0);
        CHECK(strcmp(IR_NODE(g, 1)->name, "m") == 0);
        CHECK(strcmp(IR_NODE(g, 1)->text, "return relu(h)") == 0);
        CHECK(strcmp(IR_NODE(g, 2)->name, "loss.0") == 0);
        CHECK_EQ(IR_NODE(g, 2)->annot.stage, IR_NO_STAGE);
        const IrValue *x = IR_VALUE(g, 0);
        CHECK(x->kind == VAL_INPUT && x->batch_sym && x->shape.rank == 2);
        CHECK_EQ(x->shape.d[0], 16);
        CHECK_EQ(g->train.microbatches, 4);
        CHECK(g->train.opt == OPT_ADAM);
        CHECK(g->train.lr == 0.5 && g->train.beta2 == 0.999);
        CHECK_EQ(g->cluster.devices, 8);
        CHECK(strcmp(g->cluster.preset, "cpu") == 0);
    }
    CHECK_EQ(t.diag.errors, 0);
    tg_free(&t);
}

int main(void) {
    test_carets();
    test_max_errors();
    test_suggest();
    test_lower();
    return TEST_RESULT();
}
