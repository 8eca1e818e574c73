/*
 * test_kernels_attn.c: embedding and attention against naive double references (forward)
 * and finite differences (every gradient: dx and all eight attention parameters, the table
 * and the positions), plus the shard identities: a vocabulary-split embedding's partial
 * outputs sum to the whole and a feature split concatenates to it; a head-split attention's
 * partial outputs and input gradients sum to the whole and its parameter gradients are the
 * blocks of the whole's.
 */
#include "kcheck.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define PRE 0.25f

static void to_double(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
}

/* Copies columns [c0, c0 + cl) of src [rows, cols] into dst [rows, cl]. */
static void copy_cols(float *dst, const float *src, int rows, int cols, int c0, int cl) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cl; j++)
            dst[i * cl + j] = src[i * cols + c0 + j];
}

/* ─────────────────────────────── embedding ─────────────────────────────── */

enum { EN = 2, ET = 5, EM = EN * ET, EV = 7, ED = 3, EP = 6 };

typedef struct EmbCtx {
    const int32_t *ids;
    double *W, *pos, *r, *out;
} EmbCtx;

static double loss_emb(void *ctx) {
    EmbCtx *c = ctx;
    for (int m = 0; m < EM; m++)
        for (int j = 0; j < ED; j++)
            c->out[m * ED + j] = c->W[c->ids[m] * ED + j] + c->pos[(m % ET) * ED + j];
    return kc_dot(c->r, c->out, EM * ED);
}

static void test_embedding(void) {
    int32_t ids[EM] = {3, 0, 6, 3, 1, 5, 5, 2, 0, 6}; /* repeats: gradients must add */
    EmbCtx c = {.ids = ids};
    float *W = kc_randf(EV * ED, -1, 1, &c.W), *pos = kc_randf(EP * ED, -1, 1, &c.pos);
    float *r = kc_randf(EM * ED, -1, 1, &c.r);
    double out_ref[EM * ED], g[EV * ED];
    c.out = out_ref;
    float out[EM * ED], dW[EV * ED], dpos[EP * ED];
    mprt_embedding_forward(out, ids, W, pos, EM, ET, EV, 0, ED, 1);
    loss_emb(&c);
    kc_close("embedding forward", out, out_ref, EM * ED, FWD_TOL);
    kc_fill(dW, EV * ED, PRE), kc_fill(dpos, EP * ED, PRE);
    mprt_embedding_backward(dW, dpos, r, ids, EM, ET, EV, 0, ED);
    kc_fd(g, c.W, EV * ED, loss_emb, &c);
    kc_grad("embedding dW", dW, PRE, g, EV * ED, GRAD_TOL);
    kc_fd(g, c.pos, EP * ED, loss_emb, &c);
    /* rows T..P-1 of pos are unused: their gradient must stay exactly PRE */
    kc_grad("embedding dpos", dpos, PRE, g, EP * ED, GRAD_TOL);

    /* vocabulary split 3 + 4 rows: partial sums, pos added on rank 0 only */
    float sum[EM * ED] = {0}, part[EM * ED];
    int v0[2] = {0, 3}, vl[2] = {3, 4};
    for (int k = 0; k < 2; k++) {
        float dWl[EV * ED] = {0};
        double want[EV * ED];
        mprt_embedding_forward(part, ids, W + v0[k] * ED, pos, EM, ET, vl[k], v0[k], ED, k == 0);
        mprt_accumulate(sum, part, EM * ED);
        mprt_embedding_backward(dWl, NULL, r, ids, EM, ET, vl[k], v0[k], ED);
        for (int i = 0; i < vl[k] * ED; i++)
            want[i] = (double)dW[v0[k] * ED + i] - PRE;
        kc_close("embedding vocab split: dW rows", dWl, want, (size_t)(vl[k] * ED), 1e-6);
    }
    kc_close("embedding vocab split: partial outputs sum to the whole", sum, out_ref, EM * ED,
             1e-6);

    /* feature split 1 + 2 columns of the table and of the positions */
    int d0[2] = {0, 1}, dl[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        float Wl[EV * ED], pl[EP * ED], wantf[EM * ED];
        double want[EM * ED];
        copy_cols(Wl, W, EV, ED, d0[k], dl[k]);
        copy_cols(pl, pos, EP, ED, d0[k], dl[k]);
        copy_cols(wantf, out, EM, ED, d0[k], dl[k]);
        to_double(want, wantf, (size_t)(EM * dl[k]));
        mprt_embedding_forward(part, ids, Wl, pl, EM, ET, EV, 0, dl[k], 1);
        kc_close("embedding feature split: output columns", part, want, (size_t)(EM * dl[k]), 1e-6);
    }
    free(W), free(pos), free(r), free(c.W), free(c.pos), free(c.r);
}

/* ─────────────────────────────── attention ─────────────────────────────── */

/* AT = 70: under a causal mask the kernel computes scores in blocks of 32 query rows (two whole
 * blocks and a short one), so every blocked path meets the reference. */
enum { AN = 2, AT = 70, AD = 6, AH = 3, AHD = AD / AH, ANT = AN * AT };
enum { A_WQ, A_BQ, A_WK, A_BK, A_WV, A_BV, A_WO, A_BO, A__COUNT };
static const char *const a_names[A__COUNT] = {"wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"};
static const int a_sizes[A__COUNT] = {AD * AD, AD, AD *AD, AD, AD *AD, AD, AD *AD, AD};

typedef struct AttnCtx {
    int causal;
    double *x, *p[A__COUNT], *r, *out;
} AttnCtx;

/* out[NT, D] = x[NT, D]·W[D, D] + b */
static void ref_proj(double *out, const double *x, const double *W, const double *b) {
    for (int m = 0; m < ANT; m++)
        for (int o = 0; o < AD; o++) {
            double s = b[o];
            for (int i = 0; i < AD; i++)
                s += x[m * AD + i] * W[i * AD + o];
            out[m * AD + o] = s;
        }
}

/* y for one (sample, head) from q, k, v [NT, D]. */
static void ref_head(double *y, const double *q, const double *k, const double *v, int n, int h,
                     int causal) {
    for (int i = 0; i < AT; i++) {
        double s[AT], mx = -INFINITY, z = 0;
        int lim = causal ? i + 1 : AT;
        for (int j = 0; j < lim; j++) {
            s[j] = 0;
            for (int d = 0; d < AHD; d++)
                s[j] += q[(n * AT + i) * AD + h * AHD + d] * k[(n * AT + j) * AD + h * AHD + d];
            s[j] /= sqrt((double)AHD);
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < lim; j++)
            z += s[j] = exp(s[j] - mx);
        for (int d = 0; d < AHD; d++) {
            double acc = 0;
            for (int j = 0; j < lim; j++)
                acc += s[j] / z * v[(n * AT + j) * AD + h * AHD + d];
            y[(n * AT + i) * AD + h * AHD + d] = acc;
        }
    }
}

static void ref_attention(AttnCtx *c) {
    double q[ANT * AD], k[ANT * AD], v[ANT * AD], y[ANT * AD];
    ref_proj(q, c->x, c->p[A_WQ], c->p[A_BQ]);
    ref_proj(k, c->x, c->p[A_WK], c->p[A_BK]);
    ref_proj(v, c->x, c->p[A_WV], c->p[A_BV]);
    for (int n = 0; n < AN; n++)
        for (int h = 0; h < AH; h++)
            ref_head(y, q, k, v, n, h, c->causal);
    ref_proj(c->out, y, c->p[A_WO], c->p[A_BO]);
}

static double loss_attention(void *ctx) {
    AttnCtx *c = ctx;
    ref_attention(c);
    return kc_dot(c->r, c->out, ANT * AD);
}

static MprtAttnW attn_w(float *const *p) {
    MprtAttnW w = {p[A_WQ], p[A_BQ], p[A_WK], p[A_BK], p[A_WV], p[A_BV], p[A_WO], p[A_BO]};
    return w;
}
static MprtAttnG attn_g(float *const *p) {
    MprtAttnG g = {p[A_WQ], p[A_BQ], p[A_WK], p[A_BK], p[A_WV], p[A_BV], p[A_WO], p[A_BO]};
    return g;
}

typedef struct AttnData {
    float *x, *p[A__COUNT], *r;
} AttnData;

static AttnData attn_data(AttnCtx *c) {
    AttnData a;
    a.x = kc_randf(ANT * AD, -1, 1, &c->x);
    for (int i = 0; i < A__COUNT; i++)
        a.p[i] = kc_randf((size_t)a_sizes[i], -0.7, 0.7, &c->p[i]);
    a.r = kc_randf(ANT * AD, -1, 1, &c->r);
    return a;
}

static void attn_data_free(AttnData *a, AttnCtx *c) {
    free(a->x), free(a->r), free(c->x), free(c->r);
    for (int i = 0; i < A__COUNT; i++)
        free(a->p[i]), free(c->p[i]);
}

static void test_attention(int causal) {
    AttnCtx c = {.causal = causal};
    AttnData a = attn_data(&c);
    double out_ref[ANT * AD], g[ANT * AD]; /* ANT·AD ≥ AD·AD: room for every gradient */
    c.out = out_ref;
    float out[ANT * AD], dx[ANT * AD], *dp[A__COUNT];
    float *stash = kc_floats((size_t)MPRT_ATTENTION_STASH(AN, AT, AD, AH));
    float *scratch = kc_floats((size_t)MPRT_ATTENTION_SCRATCH(AN, AT, AD));
    char what[64];
    mprt_attention_forward(out, stash, a.x, attn_w(a.p), AN, AT, AD, AH, AHD, causal, 1);
    ref_attention(&c);
    snprintf(what, sizeof what, "attention%s forward", causal ? " causal" : "");
    kc_close(what, out, out_ref, ANT * AD, FWD_TOL);
    kc_fill(dx, ANT * AD, PRE);
    for (int i = 0; i < A__COUNT; i++) {
        dp[i] = kc_floats((size_t)a_sizes[i]);
        kc_fill(dp[i], (size_t)a_sizes[i], PRE);
    }
    mprt_attention_backward(dx, attn_g(dp), a.r, a.x, stash, scratch, attn_w(a.p), AN, AT, AD, AH,
                            AHD, causal);
    kc_fd(g, c.x, ANT * AD, loss_attention, &c);
    snprintf(what, sizeof what, "attention%s dx", causal ? " causal" : "");
    kc_grad(what, dx, PRE, g, ANT * AD, GRAD_TOL);
    for (int i = 0; i < A__COUNT; i++) {
        kc_fd(g, c.p[i], (size_t)a_sizes[i], loss_attention, &c);
        snprintf(what, sizeof what, "attention%s d%s", causal ? " causal" : "", a_names[i]);
        if (i == A_BK) /* softmax ignores a per-row constant, and q·bk is one: zero gradient */
            kc_zero_grad(what, dp[i], PRE, g, (size_t)a_sizes[i], 1e-6);
        else
            kc_grad(what, dp[i], PRE, g, (size_t)a_sizes[i], GRAD_TOL);
        free(dp[i]);
    }
    free(stash), free(scratch);
    attn_data_free(&a, &c);
}

/* The local weights of heads [h0, h0 + hl): column blocks of wq..bv, the row block of wo. */
static void head_slice(float **lp, float *const *p, int h0, int hl) {
    int c0 = h0 * AHD, cl = hl * AHD;
    for (int i = A_WQ; i <= A_BV; i++)
        copy_cols(lp[i], p[i], i % 2 ? 1 : AD, AD, c0, cl);
    memcpy(lp[A_WO], p[A_WO] + c0 * AD, (size_t)(cl * AD) * sizeof(float));
    memcpy(lp[A_BO], p[A_BO], AD * sizeof(float));
}

/* Checks one rank's parameter gradients against the blocks of the whole's. */
static void head_check_grads(float *const *lg, float *const *dp, int h0, int hl) {
    float *blk[A__COUNT];
    double want[AD * AD];
    for (int i = 0; i < A__COUNT; i++)
        blk[i] = kc_floats((size_t)a_sizes[i]);
    head_slice(blk, dp, h0, hl);
    for (int i = 0; i < A__COUNT; i++) {
        /* bo is replicated: every rank's gradient is the whole's */
        size_t n = (size_t)(i == A_BO ? AD : i % 2 ? hl * AHD : hl * AHD * AD);
        char what[64];
        to_double(want, blk[i], n);
        snprintf(what, sizeof what, "attention head split: d%s block", a_names[i]);
        kc_close(what, lg[i], want, n, 1e-6);
    }
    for (int i = 0; i < A__COUNT; i++)
        free(blk[i]);
}

/* Heads split 1 + 2 over two ranks: outputs and dx are partial sums of the whole. */
static void test_attention_head_split(void) {
    AttnCtx c = {.causal = 1};
    AttnData a = attn_data(&c);
    float out[ANT * AD], dx[ANT * AD] = {0}, sum[ANT * AD] = {0}, dxsum[ANT * AD] = {0};
    float part[ANT * AD], *dp[A__COUNT], *lp[A__COUNT], *lg[A__COUNT];
    float *stash = kc_floats((size_t)MPRT_ATTENTION_STASH(AN, AT, AD, AH));
    float *scratch = kc_floats((size_t)MPRT_ATTENTION_SCRATCH(AN, AT, AD));
    double want[ANT * AD];
    for (int i = 0; i < A__COUNT; i++) {
        dp[i] = kc_floats((size_t)a_sizes[i]);
        lp[i] = kc_floats((size_t)a_sizes[i]);
        lg[i] = kc_floats((size_t)a_sizes[i]);
    }
    mprt_attention_forward(out, stash, a.x, attn_w(a.p), AN, AT, AD, AH, AHD, 1, 1);
    mprt_attention_backward(dx, attn_g(dp), a.r, a.x, stash, scratch, attn_w(a.p), AN, AT, AD, AH,
                            AHD, 1);
    int h0[2] = {0, 1}, hl[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        head_slice(lp, a.p, h0[k], hl[k]);
        for (int i = 0; i < A__COUNT; i++)
            kc_fill(lg[i], (size_t)a_sizes[i], 0.0f);
        mprt_attention_forward(part, stash, a.x, attn_w(lp), AN, AT, AD, hl[k], AHD, 1, k == 0);
        mprt_accumulate(sum, part, ANT * AD);
        mprt_attention_backward(dxsum, attn_g(lg), a.r, a.x, stash, scratch, attn_w(lp), AN, AT, AD,
                                hl[k], AHD, 1);
        head_check_grads(lg, dp, h0[k], hl[k]);
    }
    to_double(want, out, ANT * AD);
    kc_close("attention head split: partial outputs sum to the whole", sum, want, ANT * AD, 1e-6);
    to_double(want, dx, ANT * AD);
    kc_close("attention head split: dx partials sum to dx", dxsum, want, ANT * AD, 1e-6);
    for (int i = 0; i < A__COUNT; i++)
        free(dp[i]), free(lp[i]), free(lg[i]);
    free(stash), free(scratch);
    attn_data_free(&a, &c);
}

int main(void) {
    mprt_set_threads(1);
    test_embedding();
    test_attention(0);
    test_attention(1);
    test_attention_head_split();
    return kc_report("test_kernels_attn");
}
