/*
 * test_report.c: the partition report on a hand-built plan, independent of the search.
 *
 * The graph is DESIGN.md §5's worked example grown into a small MLP: x f32[128, 1000] →
 * linear 500 (tensor(col)) → relu → linear 10 (tensor(row)) → cross_entropy, on 2 devices
 * as one tensor group. The plan's numbers are chosen by hand so every line of the report
 * can be checked exactly: the 2.00 MB of weight gradients data parallelism would
 * all-reduce against the 128 KB of activations the column split moves, the all-reduce
 * that turns the row split's partial sums back into a replicated tensor, the pure plans
 * (one faster-looking but too big, one impossible), and the JSON's exact integers.
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void expect_has(const char *text, const char *needle) {
    if (!strstr(text, needle)) {
        fprintf(stderr, "missing from report: \"%s\"\n", needle);
        failures++;
    }
}

static Shape shape2(int64_t a, int64_t b) {
    Shape s = {2, {a, b}};
    return s;
}

static int add_linear(IrGraph *g, const char *name, int in, int64_t fin, int64_t fout, int line) {
    int n = ir_add_node(g, OP_LINEAR, name, (SrcLoc){"mlp.mp", line, 5, 20});
    IrNode *nd = IR_NODE(g, n);
    nd->ninputs = 1;
    nd->inputs[0] = in;
    nd->args[0] = (double)fout;
    ir_add_param(g, n, PARAM_WEIGHT, shape2(fin, fout));
    Shape b = {1, {fout}};
    ir_add_param(g, n, PARAM_BIAS, b);
    IR_VALUE(g, nd->output)->shape = shape2(128, fout);
    nd->flops_fwd = (double)(2 * 128 * fin * fout);
    nd->flops_bwd = 2 * nd->flops_fwd;
    return n;
}

static int add_unary(IrGraph *g, OpKind op, const char *name, int in, int line) {
    int n = ir_add_node(g, op, name, (SrcLoc){"mlp.mp", line, 5, 20});
    IrNode *nd = IR_NODE(g, n);
    nd->ninputs = 1;
    nd->inputs[0] = in;
    IR_VALUE(g, nd->output)->shape = IR_VALUE(g, in)->shape;
    nd->flops_fwd = (double)ir_shape_numel(&IR_VALUE(g, in)->shape);
    nd->flops_bwd = nd->flops_fwd;
    return n;
}

static IrGraph *build_graph(Arena *a) {
    IrGraph *g = ir_graph_new(a, "mlp", "mlp.mp");
    int x = ir_add_value(g, "x", VAL_INPUT, DT_F32, (SrcLoc){"mlp.mp", 2, 5, 5});
    IR_VALUE(g, x)->shape = shape2(128, 1000);
    int y = ir_add_value(g, "y", VAL_LABEL, DT_I32, (SrcLoc){"mlp.mp", 3, 5, 5});
    IR_VALUE(g, y)->shape = (Shape){1, {128}};
    int h = add_linear(g, "h", x, 1000, 500, 4);
    int r = add_unary(g, OP_RELU, "a", IR_NODE(g, h)->output, 5);
    int o = add_linear(g, "out", IR_NODE(g, r)->output, 500, 10, 6);
    int l = ir_add_node(g, OP_CROSS_ENTROPY, "loss", (SrcLoc){"mlp.mp", 7, 5, 20});
    IrNode *ln = IR_NODE(g, l);
    ln->ninputs = 2;
    ln->inputs[0] = IR_NODE(g, o)->output;
    ln->inputs[1] = y;
    IR_VALUE(g, ln->output)->shape = (Shape){0, {0}};
    ln->flops_fwd = 3 * 128 * 10;
    ln->flops_bwd = 128 * 10;
    g->loss_node = l;
    ir_finalize(g);
    g->train.batch = 128;
    g->train.opt = OPT_ADAM;
    g->cluster = (ClusterCfg){"test", 2, 8, 1e12, 16e9, 100e9, 1e-6, 10e9, 5e-6, 0, NULL, 0};
    return g;
}

static void set_alt(PlanNode *pn, Strategy s, Layout in, Layout out, int64_t bytes, int64_t grad,
                    double time) {
    pn->alt[s] = (PlanAlt){true, in, out, bytes, grad, time};
}

static Plan *build_plan(IrGraph *g, Arena *a) {
    Plan *p = arena_alloc(a, sizeof *p);
    p->S = 1, p->d = 1, p->t = 2, p->m = 4;
    p->nodes = arena_calloc(a, 4, sizeof *p->nodes);
    PlanNode *h = &p->nodes[0], *r = &p->nodes[1], *o = &p->nodes[2], *l = &p->nodes[3];
    h->strat = STRAT_COL, h->in_layout[0] = LAYOUT_R, h->out_layout = LAYOUT_F;
    set_alt(h, STRAT_DATA, LAYOUT_B, LAYOUT_B, 2000000, 2000000, 60e-6);
    set_alt(h, STRAT_COL, LAYOUT_R, LAYOUT_F, 128000, 0, 40e-6);
    set_alt(h, STRAT_ROW, LAYOUT_F, LAYOUT_P, 256000, 0, 45e-6);
    h->reason = "tensor(col): moves 128 KB of activations instead of 2.00 MB of weight gradients";
    r->strat = STRAT_DATA, r->in_layout[0] = LAYOUT_F, r->out_layout = LAYOUT_F;
    set_alt(r, STRAT_DATA, LAYOUT_F, LAYOUT_F, 0, 0, 1e-6);
    o->strat = STRAT_ROW, o->in_layout[0] = LAYOUT_F, o->out_layout = LAYOUT_P, o->forced = true;
    set_alt(o, STRAT_DATA, LAYOUT_B, LAYOUT_B, 40040, 40040, 5e-6);
    set_alt(o, STRAT_ROW, LAYOUT_F, LAYOUT_P, 5120, 0, 3e-6);
    o->alt[STRAT_COL].feasible = false;
    IR_NODE(g, 2)->annot =
        (Annot){true, STRAT_ROW, {"mlp.mp", 6, 30, 42}, IR_NO_STAGE, {0}, false, {0}};
    l->strat = STRAT_DATA, l->in_layout[0] = LAYOUT_R, l->in_layout[1] = LAYOUT_R;
    l->out_layout = LAYOUT_R;
    set_alt(l, STRAT_DATA, LAYOUT_R, LAYOUT_R, 0, 0, 0.5e-6);
    p->stages = arena_calloc(a, 1, sizeof *p->stages);
    p->stages[0] =
        (PlanStage){0,       3,       10e-6,   20e-6,   2e-6,   1e-6, 0.75e-6, 0, 9000000,
                    1000000, 1000000, 2000000, 4900000, 100000, 0,    0,       0, 0,
                    0,       0,       0,       0,       0,      0,    0};
    p->reshards = arena_calloc(a, 1, sizeof *p->reshards);
    p->reshards[0] =
        (PlanReshard){IR_NODE(g, 2)->output, 3,    LAYOUT_P, LAYOUT_R, COLL_ALLREDUCE, COLL_NONE,
                      GROUP_TENSOR,          1280, 0};
    p->nreshards = 1;
    p->totals =
        (PlanTotals){128.25e-6, 120e-6, 8e-6, 0, 0.25e-6, 0.75e-6, 0, 517120, 9000000, true, 0};
    p->pure_data = (PlanTotals){256.5e-6, 200e-6, 0, 0, 56.5e-6, 0, 0, 2080080, 12000000, true, 0};
    p->pure_data_valid = true;
    p->pure_tensor = (PlanTotals){100e-6, 100e-6, 0, 0, 0, 0, 0, 1000, 20000000000, false, 0};
    p->pure_tensor_valid = true;
    p->pure_pipeline_valid = false;
    return p;
}

static char *render(const IrGraph *g, void (*fn)(const IrGraph *, FILE *)) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(g, f);
    fclose(f);
    return buf;
}

static void test_text(const IrGraph *g) {
    char *t = render(g, pass_report_text);
    expect_has(t, "model       mlp (mlp.mp): 4 layers, 506 K parameters\n");
    expect_has(t, "mesh        S=1 stage × d=1 data replica × t=2 tensor ranks\n");
    expect_has(t, "micro       4 micro-batches of 32 samples per replica\n");
    expect_has(t, "step time   128 µs predicted\n");
    expect_has(t, "  compute                  120 µs  93.6%\n");
    expect_has(t, "750 ns of 1.00 µs hidden behind backward (75.0%)");
    expect_has(t, "memory      9.00 MB per device of 16.0 GB (0.1%), fullest on stage 0\n");
    /* The worked example: both numbers side by side, the choice marked. */
    expect_has(t, "2.00 MB   60.0 µs  *    128 KB   40.0 µs");
    expect_has(t, "n/a");
    expect_has(t, "tensor(row) (forced)");
    expect_has(t,
               "tensor(col): moves 128 KB of activations instead of 2.00 MB of weight gradients");
    expect_has(t, "follows its input's layout (F)");
    expect_has(t, "forced by @tensor(row) at 6:30");
    expect_has(
        t, "  out    loss  P→R     all-reduce    1.28 KB  -                 -  tensor   5.12 KB\n");
    expect_has(t, "  none: one stage\n");
    expect_has(t, "2.00×");
    expect_has(t, "does not fit: needs 20.0 GB per device, more than the 16.0 GB a device has");
    expect_has(t, "not possible: ");
    CHECK(!strstr(t, " \n")); /* no trailing spaces */
    if (failures) fprintf(stderr, "the report was:\n%s", t);
    free(t);
}

/* Structural JSON checks (the schema itself is checked by the lit suite with python). */
static void test_json(const IrGraph *g) {
    char *j = render(g, pass_report_json);
    expect_has(j, "\"schema_version\": 1,");
    expect_has(j, "\"comm_bytes\": 2000000,");
    expect_has(j, "\"step_time\": 0.00012825,");
    expect_has(j, "\"forward\": \"all-reduce\",");
    expect_has(j, "\"possible\": false,");
    expect_has(j, "\"speedup\": 2\n");
    int depth = 0, min = 0;
    for (const char *p = j; *p; p++) {
        if (*p == '{' || *p == '[') depth++;
        if (*p == '}' || *p == ']') depth--;
        if (depth < min) min = depth;
    }
    CHECK(depth == 0 && min == 0);
    if (failures) fprintf(stderr, "the JSON was:\n%s", j);
    free(j);
}

static void test_determinism_and_summary(const IrGraph *g) {
    char *a = render(g, pass_report_text), *b = render(g, pass_report_text);
    CHECK(strcmp(a, b) == 0);
    free(a);
    free(b);
    char *s = render(g, pass_report_summary);
    expect_has(s, "mpcc plan: mlp (mlp.mp) on 2 devices: mesh S=1 × d=1 × t=2, 4 micro-batches\n");
    expect_has(s, "  memory 9.00 MB per device of 16.0 GB\n");
    free(s);
}

/* Every line fits 160 columns (docs/report.md): a long reason wraps under itself, at
 * spaces, and a count of one takes the singular. */
static void test_width_and_plurals(IrGraph *g) {
    Plan *p = g->plan;
    const char *reason = p->nodes[0].reason;
    int64_t devices = g->cluster.devices, batch = g->train.batch;
    int m = p->m;
    p->nodes[0].reason = "tensor(col): a reason long enough to need two lines at the report's "
                         "width, which is one hundred and sixty columns, so the words that do not "
                         "fit go onto a second line, indented under the "
                         "first word, and no word is ever cut in the middle: supercalifragilistic";
    g->cluster.devices = 1, g->train.batch = 1, p->m = 1;
    char *t = render(g, pass_report_text);
    size_t longest = 0, wrapped = 0;
    for (const char *l = t; *l;) {
        const char *e = strchr(l, '\n');
        size_t w = 0;
        for (const char *c = l; c < e; c++)
            w += ((unsigned char)*c & 0xC0) != 0x80;
        if (w > longest) longest = w;
        wrapped += strncmp(l, "             tensor", 19) &&
                   !strncmp(l, "             ", 13); /* under "why: " */
        l = e + 1;
    }
    CHECK(longest <= 160 && longest > 120);
    CHECK(wrapped == 1);
    expect_has(t, "to need two lines");
    expect_has(t, "supercalifragilistic\n");
    expect_has(t, "cluster     1 device, ");
    expect_has(t, "micro       1 micro-batch of 1 sample per replica\n");
    char *s = render(g, pass_report_summary);
    expect_has(s, "on 1 device: mesh S=1 × d=1 × t=2, 1 micro-batch\n");
    if (failures) fprintf(stderr, "the report was:\n%s", t);
    free(s);
    free(t);
    p->nodes[0].reason = reason, g->cluster.devices = devices, g->train.batch = batch, p->m = m;
    char b[48];
    CHECK(!strcmp(units_n(b, sizeof b, 1, "device"), "1 device"));
    CHECK(!strcmp(units_n(b, sizeof b, 0, "device"), "0 devices"));
    CHECK(!strcmp(units_n(b, sizeof b, 2, "micro-batch"), "2 micro-batches"));
    CHECK(!strcmp(units_n(b, sizeof b, 1, "micro-batch"), "1 micro-batch"));
    CHECK(!strcmp(units_n(b, sizeof b, 3, "data replica"), "3 data replicas"));
}

static void test_check_and_save(IrGraph *g) {
    Diag d;
    FILE *sink = tmpfile();
    diag_init(&d, sink);
    CHECK(pass_report(g, &d));
    g->plan->stages[0].last_node = 2; /* a layer left out: the search's bug */
    CHECK(!pass_report(g, &d));
    g->plan->stages[0].last_node = 3;
    char path[] = "/tmp/mpcc_test_reportXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(pass_report_save(g, path, false, &d));
    FILE *f = fopen(path, "r");
    char line[80] = "";
    CHECK(f && fgets(line, sizeof line, f));
    CHECK(strcmp(line, "mpcc partition report (format 1)\n") == 0);
    if (f) fclose(f);
    remove(path);
    CHECK(!pass_report_save(g, "/nonexistent-dir/x.report", false, &d));
    fclose(sink);
}

/* A 150-layer chain of identical linears, one per pipeline stage: the text shows the first
 * layer, stage and cut and one line for the other 149 (148 cuts); the JSON still lists
 * every layer. */
static void test_collapse(void) {
    Arena a = {0};
    IrGraph *g = ir_graph_new(&a, "deep", "deep.mp");
    int v = ir_add_value(g, "x", VAL_INPUT, DT_F32, (SrcLoc){"deep.mp", 2, 5, 5});
    IR_VALUE(g, v)->shape = shape2(32, 64);
    enum { N = 150 };
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.fc", i);
        int n = add_linear(g, name, v, 64, 64, 3);
        v = IR_NODE(g, n)->output;
    }
    ir_finalize(g);
    g->train.batch = 32;
    g->cluster = (ClusterCfg){"test", N, 8, 1e12, 16e9, 100e9, 1e-6, 10e9, 5e-6, 0, NULL, 0};
    Plan *p = arena_alloc(&a, sizeof *p);
    p->S = N, p->d = 1, p->t = 1, p->m = 2;
    p->nodes = arena_calloc(&a, N, sizeof *p->nodes);
    p->stages = arena_calloc(&a, N, sizeof *p->stages);
    p->cuts = arena_calloc(&a, N - 1, sizeof *p->cuts);
    for (int i = 0; i < N; i++) {
        p->nodes[i].stage = i;
        set_alt(&p->nodes[i], STRAT_DATA, LAYOUT_B, LAYOUT_B, 0, 0, 1e-6);
        p->stages[i] = (PlanStage){i,   i, 1e-6, 2e-6, 3e-6, 0, 0, 0, 1000, 200, 200, 400, 100,
                                   100, 0, 0,    0,    0,    0, 0, 0, 0,    0,   0,   0};
        if (i + 1 < N) p->cuts[i] = (PlanCut){i, IR_NODE(g, i)->output, LAYOUT_B, 8192};
    }
    p->ncuts = N - 1;
    g->plan = p;
    char *t = render(g, pass_report_text);
    expect_has(t, "  ... layers 1-149 (blocks.1.fc .. blocks.149.fc): 149 more repeats of layers "
                  "0-0 with the same shapes, costs and choices, on stages 1-149\n");
    CHECK(!strstr(t, "blocks.2.fc  "));
    expect_has(
        t,
        "      0       0  blocks.0.fc    1.00 µs  2.00 µs  3.00 µs   12.0 µs        0 s     0 s\n"
        "  ... 1 .. 149: 149 more repeats of the 1 row above\n");
    expect_has(t, "      0  1.00 KB   200 B  200 B      400 B        100 B    100 B\n"
                  "  ... 1 .. 149: 149 more repeats of the 1 row above\n");
    expect_has(t, "  0→1  blocks.0.fc  B               8.19 KB             32.8 KB\n"
                  "  ... 1→2 .. 148→149: 148 more repeats of the 1 row above\n");
    char *j = render(g, pass_report_json);
    expect_has(j, "\"name\": \"blocks.149.fc\"");
    expect_has(j, "\"after_stage\": 148,");
    if (failures) fprintf(stderr, "the report was:\n%s", t);
    free(t);
    free(j);
    arena_free(&a);
}

/* Occurrences of `needle` in `text`. */
static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *q = text; (q = strstr(q, needle)); q += strlen(needle))
        n++;
    return n;
}

/* The HTML page: one mesh cell per device, one table row per layer, one timeline row per
 * stage; the same bytes twice; names from the .mp escaped; nothing fetched. */
static void html_plain(const IrGraph *g, FILE *out) { pass_report_html(g, NULL, out); }

static void test_html(IrGraph *g) {
    char *h = render(g, html_plain), *h2 = render(g, html_plain);
    CHECK(strcmp(h, h2) == 0);
    CHECK(strncmp(h, "<!DOCTYPE html>\n", 16) == 0);
    CHECK(count_of(h, "<rect data-device=\"") == 2);
    CHECK(count_of(h, "data-tgroup=\"") == 1 && count_of(h, "data-dgroup=\"") == 0);
    CHECK(count_of(h, "<tr data-layer=\"") == 4);
    CHECK(count_of(h, "<g data-tl-stage=\"") == 1 && count_of(h, "<g data-mem-stage=\"") == 1);
    CHECK(count_of(h, "<g data-cmp=\"") == 4);
    CHECK(count_of(h, "class=\"fwd\"") == 4 && count_of(h, "class=\"bwd\"") == 4);
    CHECK(!strstr(h, "http") && !strstr(h, "src="));
    expect_has(h, "★ 128 KB · 40.0 µs");
    expect_has(h, "does not fit: needs 20.0 GB per device, more than the 16.0 GB a device has");
    free(h);
    free(h2);
    const char *name = IR_NODE(g, 1)->name, *file = g->file;
    IR_NODE(g, 1)->name = "<img src=x onerror='alert(1)'>&\"";
    g->file = "</title><script>x</script>.mp";
    h = render(g, html_plain);
    CHECK(!strstr(h, "<img") && !strstr(h, "<script>x"));
    expect_has(h, "&lt;img src=x onerror=&#39;alert(1)&#39;&gt;&amp;&quot;");
    expect_has(h, "&lt;/title&gt;&lt;script&gt;x&lt;/script&gt;.mp");
    CHECK(count_of(h, "<script>") == 1); /* the table sorter, nothing else */
    IR_NODE(g, 1)->name = name;
    g->file = file;
    free(h);
}

/* A profile of the hand-built plan (mesh 1×1×2, m = 4) written to a temporary file: two
 * ranks, 3 steps; h's forward takes 15 µs per micro-batch after a 1 ms first call (predicted
 * 10 µs: +50%), its backward 20 µs (as predicted); busy 100 µs and idle 10 µs per step. */
static const char *profile_text(const char *mesh) {
    static char buf[2048];
    const char *rank =
        "{\"stage\": 0, \"timers\": ["
        "{\"name\": \"stage.busy\", \"seconds\": 1.1e-3, \"calls\": 3, "
        "\"first_s\": 0.9e-3},"
        "{\"name\": \"stage.idle\", \"seconds\": 30e-6, \"calls\": 9, \"first_s\": 1e-6},"
        "{\"name\": \"fwd.h\", \"seconds\": 1.165e-3, \"calls\": 12, \"first_s\": 1e-3},"
        "{\"name\": \"bwd.h\", \"seconds\": 240e-6, \"calls\": 12, \"first_s\": 20e-6},"
        "{\"name\": \"fwd.a\", \"seconds\": 12e-6, \"calls\": 12},"
        "{\"name\": \"bwd.a\", \"seconds\": 12e-6, \"calls\": 12},"
        "{\"name\": \"fwd.out\", \"seconds\": 12e-6, \"calls\": 12},"
        "{\"name\": \"bwd.out\", \"seconds\": 12e-6, \"calls\": 12},"
        "{\"name\": \"fwd.loss\", \"seconds\": 12e-6, \"calls\": 12},"
        "{\"name\": \"bwd.loss\", \"seconds\": 12e-6, \"calls\": 12}]}";
    snprintf(buf, sizeof buf, "{\"mesh\": %s, \"ranks\": [%s, %s]}", mesh, rank, rank);
    return buf;
}

static bool load_profile(IrGraph *g, const char *text, Arena *a, Measured *m, FILE *sink) {
    char path[] = "/tmp/mpcc_test_profileXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL);
    if (!f) return false;
    fputs(text, f);
    fclose(f);
    Diag d;
    diag_init(&d, sink);
    bool ok = report_measured_load(g, path, a, m, &d);
    remove(path);
    return ok;
}

static const Measured *measured_for_html;
static void html_with_measured(const IrGraph *g, FILE *out) {
    pass_report_html(g, measured_for_html, out);
}

/* The profile read against the plan: steady state (first calls left out), means over the
 * stage's ranks, each layer's error; a profile of another mesh is refused. */
static void test_measured(IrGraph *g) {
    Arena a = {0};
    Measured m;
    FILE *sink = tmpfile();
    g->plan->nodes[0].fwd_time = 10e-6, g->plan->nodes[0].bwd_time = 20e-6;
    CHECK(load_profile(g, profile_text("{\"S\": 1, \"d\": 1, \"t\": 2}"), &a, &m, sink));
    CHECK(m.steps == 3 && m.stages[0].ranks == 2 && !m.step_from_profile);
    CHECK(fabs(m.stages[0].step - 110e-6) < 1e-12 && fabs(m.step - 110e-6) < 1e-12);
    CHECK(fabs(m.layers[0].fwd - 15e-6) < 1e-12 && fabs(m.layers[0].bwd - 20e-6) < 1e-12);
    CHECK(fabs(m.stages[0].fwd - (4 * 15e-6 + 3 * 4e-6)) < 1e-12);
    measured_for_html = &m;
    char *h = render(g, html_with_measured);
    CHECK(count_of(h, "<g data-pm-stage=\"") == 1 && count_of(h, "<tr data-pm-layer=\"") == 4);
    expect_has(h, "data-measured=\"0.00011\">110 µs</b>");
    expect_has(h, ">+50%</td>");
    expect_has(h, "<tr data-pm-layer=\"0\">"); /* h first: its error costs the most */
    CHECK(strstr(h, "<tr data-pm-layer=\"0\">") < strstr(h, "<tr data-pm-layer=\"1\">"));
    free(h);
    /* A trainer that says its steady-state step and its prediction (issue 14's fields). */
    char with[2300];
    snprintf(with, sizeof with, "{\"measured_step_s\": 2e-4, \"predicted_step_s\": 1e-3, %s",
             profile_text("{\"S\": 1, \"d\": 1, \"t\": 2}") + 1);
    CHECK(load_profile(g, with, &a, &m, sink));
    CHECK(m.step_from_profile && m.step == 2e-4 && m.trainer_predicted == 1e-3);
    h = render(g, html_with_measured);
    expect_has(h, "data-measured=\"0.0002\">200 µs</b> (the profile's measured_step_s)");
    expect_has(h, "data-other-plan=\"1\">The trainer that wrote the profile predicted 1.00 ms");
    free(h);
    CHECK(!load_profile(g, profile_text("{\"S\": 1, \"d\": 2, \"t\": 1}"), &a, &m, sink));
    CHECK(!load_profile(g, "{\"mesh\": ", &a, &m, sink));
    g->plan->nodes[0].fwd_time = 0, g->plan->nodes[0].bwd_time = 0;
    fclose(sink);
    arena_free(&a);
}

/* `test_report FILE` also writes the hand-built plan's JSON to FILE (for schema checks). */
int main(int argc, char **argv) {
    Arena a = {0};
    IrGraph *g = build_graph(&a);
    g->plan = build_plan(g, &a);
    if (argc > 1) {
        FILE *f = fopen(argv[1], "w");
        CHECK(f != NULL);
        if (f) {
            pass_report_json(g, f);
            fclose(f);
        }
    }
    test_text(g);
    test_json(g);
    test_determinism_and_summary(g);
    test_html(g);
    test_width_and_plurals(g);
    test_measured(g);
    test_check_and_save(g);
    test_collapse();
    arena_free(&a);
    if (failures) fprintf(stderr, "test_report: %d failure(s)\n", failures);
    return failures != 0;
}
