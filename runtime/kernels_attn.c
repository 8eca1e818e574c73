/*
 * kernels_attn.c: the sequence kernels — token embedding (with learned positions) and
 * multi-head self-attention.
 *
 * Embedding is a gather: row ids[m] of the table. Its shard forms follow the table: a
 * vocabulary split holds rows [v0, v0 + V_local) and gives a zero row for any other id, so
 * the ranks' outputs are partial sums of the whole lookup; a feature split holds columns and
 * gives the matching columns of every row. Backward is the scatter-add dual.
 *
 * Attention is written as the linear kernels around a per-(sample, head) core of three small
 * GEMMs and a softmax. q, k, v keep their heads side by side in the columns ([N·T, Dl],
 * head h at columns h·hd), so a head is a strided view (leading dimension Dl) that
 * cblas_sgemm reads directly, with no transposition or copies. Under a head split a rank
 * holds Hl = H/t heads: its slices of Wq, Wk, Wv are column blocks and its slice of Wo is
 * the matching row block, so its output y·Wo is that rank's heads' contribution to the
 * whole, a partial sum; the bias bo is added on one rank.
 *
 * Forward stashes q, k, v, the probabilities P and the heads' output y (MPRT_ATTENTION_STASH
 * floats); backward needs them all and works in MPRT_ATTENTION_SCRATCH floats of scratch
 * plus one [T, T] score gradient per thread.
 * The softmax backward uses dS = P ⊙ (dP − rowsum(P ⊙ dP)), which is zero where a causal
 * mask zeroed P, so masked entries need no special case there.
 *
 * The (sample, head) cores are independent, so they run on the rank's thread pool
 * (parallel.c), each with single-threaded GEMMs: a 128×128×64 product takes OpenBLAS twice as
 * long on two threads as on one (measured), so the parallelism is across heads, not inside
 * them. Each thread's dP comes from the pool's scratch. The four
 * projections around the cores are ordinary multi-threaded GEMMs.
 */
#include "internal.h"
#include "mprt_kernels.h"

#include "kernels_math.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ─────────────────────────────── embedding ─────────────────────────────── */

/* Row `r` of D values of a table, f32 (f) or bf16 (h, the other NULL), into o, or added to it. */
static inline void table_row(float *restrict o, const float *restrict f, const uint16_t *restrict h,
                             int64_t r, int D, bool add) {
    size_t at = (size_t)r * (size_t)D;
    if (f && add)
        for (int j = 0; j < D; j++)
            o[j] += f[at + (size_t)j];
    else if (f)
        for (int j = 0; j < D; j++)
            o[j] = f[at + (size_t)j];
    else if (add)
        for (int j = 0; j < D; j++)
            o[j] += mprt__f32_of(h[at + (size_t)j]);
    else
        for (int j = 0; j < D; j++)
            o[j] = mprt__f32_of(h[at + (size_t)j]);
}

/* The lookup of both forms: the table and positions f32 (W, pos) or bf16 (Wh, posh). */
static void embedding_forward(float *restrict out, const int32_t *restrict ids, const float *W,
                              const float *pos, const uint16_t *Wh, const uint16_t *posh, int M,
                              int T, int V_local, int v0, int D, int add_pos) {
    for (int m = 0; m < M; m++) {
        float *restrict o = out + (size_t)m * (size_t)D;
        int64_t r = (int64_t)ids[m] - v0;
        if (r >= 0 && r < V_local)
            table_row(o, W, Wh, r, D, false);
        else
            for (int j = 0; j < D; j++)
                o[j] = 0.0f;
        if (add_pos && (pos || posh)) table_row(o, pos, posh, m % T, D, true);
    }
}

void mprt_embedding_forward(float *restrict out, const int32_t *restrict ids,
                            const float *restrict W, const float *restrict pos, int M, int T,
                            int V_local, int v0, int D, int add_pos) {
    embedding_forward(out, ids, W, pos, NULL, NULL, M, T, V_local, v0, D, add_pos);
}

void mprt_embedding_forward_bf16(float *restrict out, const int32_t *restrict ids,
                                 const uint16_t *restrict W, const uint16_t *restrict pos, int M,
                                 int T, int V_local, int v0, int D, int add_pos) {
    embedding_forward(out, ids, NULL, NULL, W, pos, M, T, V_local, v0, D, add_pos);
}

void mprt_embedding_backward(float *restrict dW, float *restrict dpos, const float *restrict dout,
                             const int32_t *restrict ids, int M, int T, int V_local, int v0,
                             int D) {
    for (int m = 0; m < M; m++) {
        const float *restrict g = dout + (size_t)m * (size_t)D;
        int64_t r = (int64_t)ids[m] - v0;
        if (dW && r >= 0 && r < V_local) {
            float *restrict w = dW + (size_t)r * (size_t)D;
            for (int j = 0; j < D; j++)
                w[j] += g[j];
        }
        if (dpos) {
            float *restrict pr = dpos + (size_t)(m % T) * (size_t)D;
            for (int j = 0; j < D; j++)
                pr[j] += g[j];
        }
    }
}

/* ─────────────────────────────── attention ─────────────────────────────── */

/* Pointers into the stash: q, k, v, y [N·T, Dl] then P [N, Hl, T, T]. */
typedef struct AttnStash {
    float *q, *k, *v, *y, *p;
} AttnStash;

typedef struct AttnStashC {
    const float *q, *k, *v, *y, *p;
} AttnStashC;

static AttnStash attn_stash(float *s, int N, int T, int Dl) {
    size_t a = (size_t)N * (size_t)T * (size_t)Dl;
    AttnStash st = {s, s + a, s + 2 * a, s + 3 * a, s + 4 * a};
    return st;
}

static AttnStashC attn_stash_const(const float *s, int N, int T, int Dl) {
    size_t a = (size_t)N * (size_t)T * (size_t)Dl;
    AttnStashC st = {s, s + a, s + 2 * a, s + 3 * a, s + 4 * a};
    return st;
}

/* Row-wise softmax of the scores [T, T] in place; causal rows see keys j ≤ i only and get
 * exact zeros beyond. */
MPRT__SIMD
static void softmax_rows(float *restrict s, int T, int causal) {
    for (int i = 0; i < T; i++) {
        float *restrict r = s + (size_t)i * (size_t)T;
        int n = causal ? i + 1 : T;
        float mx = r[0];
        for (int j = 1; j < n; j++)
            mx = r[j] > mx ? r[j] : mx;
        for (int j = 0; j < n; j++)
            r[j] = mprt_ew_expf(r[j] - mx); /* vectorises */
        float sum = 0.0f;
        for (int j = 0; j < n; j++)
            sum += r[j];
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++)
            r[j] *= inv;
        for (int j = n; j < T; j++)
            r[j] = 0.0f;
    }
}

/* Under a causal mask the score rows are computed in blocks of ATTN_BLOCK query rows, each
 * against the keys up to its last row only: the blocks above the diagonal, whose
 * probabilities are exact zeros, are never multiplied (at T = 128 that is 62.5 % of the dense
 * products' work). Without a mask one block holds every row. */
#define ATTN_BLOCK 32

typedef struct Blk {
    int r0, m; /* rows r0 .. r0+m−1 of the block */
    int nk;    /* keys the block's rows see: 0 .. nk−1 */
    int q0;    /* the first query row that sees the block's keys (backward's dv, dk) */
} Blk;

static Blk blk(int r0, int T, int causal) {
    int rb = causal ? ATTN_BLOCK : T, m = rb < T - r0 ? rb : T - r0;
    Blk b = {r0, m, causal ? r0 + m : T, causal ? r0 : 0};
    return b;
}

/* The core of one (sample, head): P = softmax(q·kᵀ/√hd), y = P·v. Heads are strided views. */
static void attn_head_forward(float *restrict P, float *restrict y, const float *restrict q,
                              const float *restrict k, const float *restrict v, int T, int Dl,
                              int hd, int causal) {
    float scale = 1.0f / sqrtf((float)hd);
    for (Blk b = blk(0, T, causal); b.r0 < T; b = blk(b.r0 + b.m, T, causal))
        mprt__sgemm(false, true, b.m, b.nk, hd, scale, q + (size_t)b.r0 * (size_t)Dl, Dl, k, Dl,
                    0.0f, P + (size_t)b.r0 * (size_t)T, T);
    softmax_rows(P, T, causal); /* also zeroes every entry the blocks left out */
    for (Blk b = blk(0, T, causal); b.r0 < T; b = blk(b.r0 + b.m, T, causal))
        mprt__sgemm(false, false, b.m, hd, b.nk, 1.0f, P + (size_t)b.r0 * (size_t)T, T, v, Dl, 0.0f,
                    y + (size_t)b.r0 * (size_t)Dl, Dl);
}

/* The (sample, head) cores of one attention call, for the pool's part functions. */
typedef struct AttnJob {
    AttnStashC st; /* forward: the stash being written, read as const by backward */
    float *p, *y;  /* forward outputs (P, y) */
    float *dq, *dk, *dv, *dP;
    const float *dy;
    int T, Dl, hd, Hl, causal;
} AttnJob;

/* Offsets of pair i = n·Hl + h: its columns in q/k/v/y and its P block. */
static size_t head_off(const AttnJob *j, int64_t i) {
    int64_t n = i / j->Hl, h = i % j->Hl;
    return (size_t)n * (size_t)j->T * (size_t)j->Dl + (size_t)h * (size_t)j->hd;
}

static void attn_forward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const AttnJob *j = ctx;
    for (int64_t i = lo; i < hi; i++) {
        size_t off = head_off(j, i);
        float *P = j->p + (size_t)i * (size_t)j->T * (size_t)j->T;
        attn_head_forward(P, j->y + off, j->st.q + off, j->st.k + off, j->st.v + off, j->T, j->Dl,
                          j->hd, j->causal);
    }
}

void mprt_attention_forward(float *restrict out, float *restrict stash, const float *restrict x,
                            MprtAttnW w, int N, int T, int D, int Hl, int hd, int causal,
                            int add_bias) {
    int NT = N * T, Dl = Hl * hd;
    AttnStash st = attn_stash(stash, N, T, Dl);
    mprt_linear_forward(st.q, x, w.wq, w.bq, NT, D, Dl, w.bq != NULL);
    mprt_linear_forward(st.k, x, w.wk, w.bk, NT, D, Dl, w.bk != NULL);
    mprt_linear_forward(st.v, x, w.wv, w.bv, NT, D, Dl, w.bv != NULL);
    AttnJob j = {.st = attn_stash_const(stash, N, T, Dl),
                 .p = st.p,
                 .y = st.y,
                 .T = T,
                 .Dl = Dl,
                 .hd = hd,
                 .Hl = Hl,
                 .causal = causal};
    mprt__parallel_for((int64_t)N * Hl, 1, attn_forward_part, &j); /* heads' GEMMs: one thread */
    mprt_linear_forward(out, st.y, w.wo, w.bo, NT, Dl, D, add_bias);
}

/* dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, in place over dP. Causal rows sum over keys j ≤ i
 * (P is zero beyond, so the sum is the same) and get exact zeros beyond, where the blocked
 * dP was never computed. */
MPRT__SIMD
static void softmax_backward_rows(float *restrict dP, const float *restrict P, int T, float scale,
                                  int causal) {
    for (int i = 0; i < T; i++) {
        float *restrict d = dP + (size_t)i * (size_t)T;
        const float *restrict p = P + (size_t)i * (size_t)T;
        int n = causal ? i + 1 : T;
        float s = 0.0f;
        for (int j = 0; j < n; j++)
            s += p[j] * d[j];
        for (int j = 0; j < n; j++)
            d[j] = p[j] * (d[j] - s) * scale;
        for (int j = n; j < T; j++)
            d[j] = 0.0f;
    }
}

/* One (sample, head) backward: from dy_h to dq_h, dk_h, dv_h (written, heads are disjoint).
 * Row blocks give dP and dq (a block's rows see keys < nk); column blocks give dv and dk (a
 * block's keys are seen by query rows ≥ q0). */
static void attn_head_backward(float *restrict dq, float *restrict dk, float *restrict dv,
                               float *restrict dP, const float *restrict dy,
                               const float *restrict P, const float *restrict q,
                               const float *restrict k, const float *restrict v, int T, int Dl,
                               int hd, int causal) {
    size_t t = (size_t)T, dl = (size_t)Dl;
    for (Blk b = blk(0, T, causal); b.r0 < T; b = blk(b.r0 + b.m, T, causal)) {
        mprt__sgemm(false, true, b.m, b.nk, hd, 1.0f, dy + b.r0 * dl, Dl, v, Dl, 0.0f,
                    dP + b.r0 * t, T);
        mprt__sgemm(true, false, b.m, hd, T - b.q0, 1.0f, P + b.q0 * t + b.r0, T, dy + b.q0 * dl,
                    Dl, 0.0f, dv + b.r0 * dl, Dl);
    }
    softmax_backward_rows(dP, P, T, 1.0f / sqrtf((float)hd), causal);
    for (Blk b = blk(0, T, causal); b.r0 < T; b = blk(b.r0 + b.m, T, causal)) {
        mprt__sgemm(false, false, b.m, hd, b.nk, 1.0f, dP + b.r0 * t, T, k, Dl, 0.0f,
                    dq + b.r0 * dl, Dl);
        mprt__sgemm(true, false, b.m, hd, T - b.q0, 1.0f, dP + b.q0 * t + b.r0, T, q + b.q0 * dl,
                    Dl, 0.0f, dk + b.r0 * dl, Dl);
    }
}

static void attn_backward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    const AttnJob *j = ctx;
    float *dP = j->dP + (size_t)part * (size_t)j->T * (size_t)j->T;
    for (int64_t i = lo; i < hi; i++) {
        size_t off = head_off(j, i);
        const float *P = j->st.p + (size_t)i * (size_t)j->T * (size_t)j->T;
        attn_head_backward(j->dq + off, j->dk + off, j->dv + off, dP, j->dy + off, P, j->st.q + off,
                           j->st.k + off, j->st.v + off, j->T, j->Dl, j->hd, j->causal);
    }
}

void mprt_attention_backward(float *restrict dx, MprtAttnG g, const float *restrict dout,
                             const float *restrict x, const float *restrict stash,
                             float *restrict scratch, MprtAttnW w, int N, int T, int D, int Hl,
                             int hd, int causal) {
    int NT = N * T, Dl = Hl * hd;
    size_t a = (size_t)NT * (size_t)Dl;
    AttnStashC st = attn_stash_const(stash, N, T, Dl);
    float *dy = scratch, *dq = scratch + a, *dk = scratch + 2 * a, *dv = scratch + 3 * a;
    memset(dy, 0, a * sizeof *dy);
    mprt_linear_backward(dy, g.wo, g.bo, dout, st.y, w.wo, NT, Dl, D);
    AttnJob j = {.st = st,
                 .dq = dq,
                 .dk = dk,
                 .dv = dv,
                 .dy = dy,
                 .dP = mprt__par_scratch((int64_t)T * T),
                 .causal = causal,
                 .T = T,
                 .Dl = Dl,
                 .hd = hd,
                 .Hl = Hl};
    mprt__parallel_for((int64_t)N * Hl, 1, attn_backward_part, &j);
    mprt_linear_backward(dx, g.wq, g.bq, dq, x, w.wq, NT, D, Dl);
    mprt_linear_backward(dx, g.wk, g.bk, dk, x, w.wk, NT, D, Dl);
    mprt_linear_backward(dx, g.wv, g.bv, dv, x, w.wv, NT, D, Dl);
}
