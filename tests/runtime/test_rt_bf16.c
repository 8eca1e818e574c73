/*
 * test_rt_bf16.c: bf16 conversion and the bf16 collectives (runtime/bf16.c, comm_bf16.c).
 *
 *   mpirun -np N test_rt_bf16 S d t
 *
 * Conversion: every one of the 65536 bf16 patterns survives bf16 → f32 → bf16 (NaNs stay NaNs);
 * special values by hand (ties to even both ways, overflow to Inf, NaN kept with its sign,
 * subnormals); 2^20 random f32 patterns against a reference that picks the nearer of the two
 * neighbouring bf16 values in double arithmetic (ties: the even one). The array forms against
 * the scalar one, on lengths that use the thread pool. Collectives on the tensor group (and
 * send/recv on the pipe group): exact small integers gathered, summed and scattered in bf16, a
 * sum that must round (2 ranks: 1 + 2^-8 rounds to 1, ties to even), the byte counters at 2
 * bytes per element, and the wire: f32 collectives moving bf16 with a bf16-exact result, the
 * overlapped all-reduce, and f32 again while the counters are paused; the slice and all-to-alls
 * on bf16 buffers (a bf16 trainer's 16-bit activations) bit for bit and byte for byte the f32
 * ones under the wire, and a pipeline send of bf16. A bf16 trainer's weights
 * (trainer_bf16.c): the bf16 working copy follows the f32 master through registration,
 * refresh and uploads into the master (not elsewhere), a layer staged as f32 is exactly the
 * working copy's values, and 2 bytes a value are counted in the category allocated; the
 * embedding kernel on bf16 rows equals the f32 one on the unpacked table.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"
#include "mprt_trainer.h"

#define RT_CHECK_RANK (mprt_mesh()->rank)
#include "rt_check.h"

static float bits_f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t f_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The correctly rounded bf16 of a non-NaN x: the nearer (ties: the even) of its two bf16
 * neighbours in magnitude, by distances in double; past the largest bf16 the next one up is
 * Inf, at 2^128 as IEEE rounding places it. */
static uint16_t ref_round(float x) {
    uint32_t u = f_bits(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xFFFFu) == 0) return lo;
    double ax = fabs((double)x), al = fabs((double)mprt_f32_from_bf16(lo));
    double ah = (lo & 0x7FFFu) == 0x7F7Fu ? ldexp(1.0, 128) : fabs((double)mprt_f32_from_bf16(hi));
    if (ax - al < ah - ax) return lo;
    if (ah - ax < ax - al) return hi;
    return (lo & 1u) ? hi : lo;
}

static void check_specials(void) {
    CHECK(mprt_bf16_from_f32(1.0f) == 0x3F80, "1.0");
    CHECK(mprt_bf16_from_f32(bits_f(0x3F808000u)) == 0x3F80, "1 + 2^-8 ties to even 1");
    CHECK(mprt_bf16_from_f32(bits_f(0x3F818000u)) == 0x3F82, "1 + 3·2^-8 ties to even up");
    CHECK(mprt_bf16_from_f32(bits_f(0x3F808001u)) == 0x3F81, "just above half rounds up");
    CHECK(mprt_bf16_from_f32(-1.5f) == 0xBFC0, "-1.5");
    CHECK(mprt_bf16_from_f32(INFINITY) == 0x7F80, "+Inf");
    CHECK(mprt_bf16_from_f32(-INFINITY) == 0xFF80, "-Inf");
    CHECK(mprt_bf16_from_f32(3.4028235e38f) == 0x7F80, "FLT_MAX rounds to Inf");
    CHECK(mprt_bf16_from_f32(bits_f(0x7F7F7FFFu)) == 0x7F7F, "below the overflow threshold");
    uint16_t n = mprt_bf16_from_f32(bits_f(0x7F800001u)); /* signalling NaN, payload low */
    CHECK((n & 0x7F80u) == 0x7F80u && (n & 0x7Fu) != 0, "NaN stays NaN: %#x", n);
    n = mprt_bf16_from_f32(bits_f(0xFFC00000u));
    CHECK(n == 0xFFC0u, "-NaN keeps its sign: %#x", n);
    CHECK(mprt_bf16_from_f32(bits_f(0x00008000u)) == 0x0000, "subnormal tie to even 0");
    CHECK(mprt_bf16_from_f32(bits_f(0x00018000u)) == 0x0002, "subnormal tie to even up");
    CHECK(mprt_bf16_round1(0.1f) == bits_f(0x3DCD0000u), "0.1 → %a",
          (double)mprt_bf16_round1(0.1f));
}

static void check_all_patterns(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float x = mprt_f32_from_bf16((uint16_t)h);
        CHECK(f_bits(x) == h << 16, "bf16 %#x widens exactly", h);
        uint16_t back = mprt_bf16_from_f32(x);
        bool nan = (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu);
        if (nan ? !isnan(mprt_f32_from_bf16(back)) : back != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 patterns do not round-trip", bad);
    uint64_t st = 0x9E3779B97F4A7C15u;
    bad = 0;
    for (int i = 0; i < (1 << 20); i++) {
        st = st * 6364136223846793005u + 1442695040888963407u;
        float x = bits_f((uint32_t)(st >> 32));
        if (isnan(x)) continue;
        if (mprt_bf16_from_f32(x) != ref_round(x) && bad++ < 5)
            CHECK(0, "%a: %#x, reference %#x", (double)x, mprt_bf16_from_f32(x), ref_round(x));
    }
}

static void check_arrays(void) {
    int64_t n = 300001;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)sin((double)i) * 100.0f;
    mprt_bf16_pack(h, x, n);
    mprt_bf16_unpack(y, h, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += h[i] != mprt_bf16_from_f32(x[i]) || y[i] != mprt_bf16_round1(x[i]);
    mprt_bf16_round(x, x, n); /* in place */
    for (int64_t i = 0; i < n; i++)
        bad += x[i] != y[i];
    CHECK(bad == 0, "%d array elements differ from the scalar conversion", bad);
    free(x), free(y), free(h);
}

static int64_t grew(MprtColl k, MprtGroup g, int64_t *before) {
    int64_t now = mprt_stats_get(k, g).bytes, d = now - *before;
    *before = now;
    return d;
}

/* bf16 all-reduce, all-gather (outer 2) and reduce-scatter (outer 2) on the tensor group. */
static void check_bf16_colls(void) {
    int G = mprt_group_size(MPRT_TENSOR), k = mprt_group_rank(MPRT_TENSOR);
    int64_t b = mprt_stats_get(MPRT_ALLREDUCE, MPRT_TENSOR).bytes, c = 6, full = 2 * G * 3;
    uint16_t buf[6], loc[6], all[48];
    for (int i = 0; i < c; i++)
        buf[i] = mprt_bf16_from_f32((float)(k + i));
    mprt_allreduce_bf16(MPRT_TENSOR, buf, c);
    for (int i = 0; i < c; i++)
        CHECK(mprt_f32_from_bf16(buf[i]) == (float)(G * (G - 1) / 2 + G * i), "allreduce %d", i);
    CHECK(grew(MPRT_ALLREDUCE, MPRT_TENSOR, &b) == mprt_coll_bytes(MPRT_ALLREDUCE, G, 12), "bytes");
    for (int i = 0; i < 6; i++) /* outer 2 × chunk 3 */
        loc[i] = mprt_bf16_from_f32((float)(10 * k + i));
    b = mprt_stats_get(MPRT_ALLGATHER, MPRT_TENSOR).bytes;
    mprt_allgather_bf16(MPRT_TENSOR, loc, all, 2, 3, 1);
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < G * 3; j++)
            CHECK(mprt_f32_from_bf16(all[o * G * 3 + j]) == (float)(10 * (j / 3) + o * 3 + j % 3),
                  "allgather [%d, %d]", o, j);
    CHECK(grew(MPRT_ALLGATHER, MPRT_TENSOR, &b) == mprt_coll_bytes(MPRT_ALLGATHER, G, 2 * full),
          "allgather bytes");
    for (int i = 0; i < full; i++)
        all[i] = mprt_bf16_from_f32((float)(i + k));
    b = mprt_stats_get(MPRT_REDUCESCATTER, MPRT_TENSOR).bytes;
    mprt_reduce_scatter_bf16(MPRT_TENSOR, all, loc, 2, 3, 1);
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < 3; j++)
            CHECK(mprt_f32_from_bf16(loc[o * 3 + j]) ==
                      (float)(G * (o * G * 3 + k * 3 + j) + G * (G - 1) / 2),
                  "reduce-scatter [%d, %d]", o, j);
    CHECK(grew(MPRT_REDUCESCATTER, MPRT_TENSOR, &b) ==
              mprt_coll_bytes(MPRT_REDUCESCATTER, G, 2 * full),
          "reduce-scatter bytes");
}

/* The sum rounds in bf16: on 2 ranks 1 + 2^-8 is a tie that rounds to even (1), and
 * 1 + 3·2^-8 rounds to 1 + 2^-6. */
static void check_rounding_sum(void) {
    if (mprt_group_size(MPRT_TENSOR) != 2) return;
    int k = mprt_group_rank(MPRT_TENSOR);
    uint16_t v[2] = {mprt_bf16_from_f32(k ? 1.0f : 0x1p-8f),
                     mprt_bf16_from_f32(k ? 1.0f : 0x1.8p-7f)};
    mprt_allreduce_bf16(MPRT_TENSOR, v, 2);
    CHECK(mprt_f32_from_bf16(v[0]) == 1.0f, "1 + 2^-8 → %a", (double)mprt_f32_from_bf16(v[0]));
    CHECK(mprt_f32_from_bf16(v[1]) == 0x1.04p0f, "1 + 3·2^-8 → %a",
          (double)mprt_f32_from_bf16(v[1]));
}

/* The wire: f32 buffers, bf16 traffic and a bf16-exact result; f32 while paused. */
static void check_wire(void) {
    int G = mprt_group_size(MPRT_TENSOR), k = mprt_group_rank(MPRT_TENSOR);
    float x[4], y[4];
    mprt_set_wire_bf16(true);
    for (int i = 0; i < 4; i++)
        x[i] = 1.0f + (float)k * 0x1p-10f + (float)i;
    int64_t b = mprt_stats_get(MPRT_ALLREDUCE, MPRT_TENSOR).bytes;
    mprt_allreduce(MPRT_TENSOR, x, 4);
    for (int i = 0; i < 4; i++) /* each rank's 1 + k·2^-10 + i rounds to 1 + i first */
        CHECK(x[i] == (float)(G * (1 + i)), "wire allreduce %d: %a", i, (double)x[i]);
    CHECK(grew(MPRT_ALLREDUCE, MPRT_TENSOR, &b) == mprt_coll_bytes(MPRT_ALLREDUCE, G, 8),
          "wire bytes");
    for (int i = 0; i < 4; i++)
        y[i] = 0.1f * (float)(i + 1);
    mprt_allreduce_start(MPRT_TENSOR, y, 4);
    mprt_allreduce_join();
    for (int i = 0; i < 4; i++)
        CHECK(y[i] == mprt_bf16_round1(y[i]), "overlapped sum %d is bf16-exact: %a", i,
              (double)y[i]);
    CHECK(grew(MPRT_ALLREDUCE, MPRT_TENSOR, &b) == mprt_coll_bytes(MPRT_ALLREDUCE, G, 8),
          "overlapped wire bytes");
    mprt_stats_pause();
    for (int i = 0; i < 4; i++)
        x[i] = 0.1f;
    mprt_allreduce(MPRT_TENSOR, x, 4);
    mprt_stats_resume();
    CHECK(G > 1 || x[0] == 0.1f, "paused: f32 on a group of 1: %a", (double)x[0]);
    CHECK(x[0] != mprt_bf16_round1(x[0]), "paused: the sum is not rounded: %a", (double)x[0]);
    mprt_set_wire_bf16(false);
}

/* A bf16 trainer's 16-bit activations change layout with the bf16 forms (comm_layout.c): the
 * same bits and bytes as the f32 forms under the wire. Slice: outer 2 × (G·3) × inner 2; the
 * all-to-alls on batch 2G × mid 1 × features 2G × inner 2, there and back. */
static void check_layout_bf16(void) {
    int G = mprt_group_size(MPRT_TENSOR), k = mprt_group_rank(MPRT_TENSOR);
    enum { MAXG = 4 };
    uint16_t full[2 * MAXG * 3 * 2], part[12], hb[2 * 2 * MAXG * 2], hf[2 * MAXG * 2 * 2],
        back[2 * 2 * MAXG * 2];
    float ff[2 * MAXG * 3 * 2], fp[12], xb[2 * 2 * MAXG * 2], xf[2 * MAXG * 2 * 2];
    int nfull = 2 * G * 3 * 2, nb = 2 * 2 * G * 2; /* the B tensor: (2G/G) × 1 × 2G × 2 */
    for (int i = 0; i < nfull; i++)
        full[i] = mprt_bf16_from_f32(0.37f * (float)i - 1.0f), ff[i] = mprt_f32_from_bf16(full[i]);
    mprt_slice_bf16(full, part, 2, 3, 2, G, k);
    mprt_slice(ff, fp, 2, 3, 2, G, k);
    for (int i = 0; i < 12; i++)
        CHECK(mprt_f32_from_bf16(part[i]) == fp[i], "slice_bf16 %d", i);
    for (int i = 0; i < nb; i++)
        hb[i] = mprt_bf16_from_f32(0.01f * (float)(97 * k + i)), xb[i] = mprt_f32_from_bf16(hb[i]);
    mprt_set_wire_bf16(true);
    int64_t b = mprt_stats_get(MPRT_ALLTOALL, MPRT_TENSOR).bytes;
    mprt_alltoall_b2f(MPRT_TENSOR, xb, xf, 2 * G, 1, 2 * G, 2);
    int64_t wire = grew(MPRT_ALLTOALL, MPRT_TENSOR, &b);
    mprt_set_wire_bf16(false);
    mprt_alltoall_b2f_bf16(MPRT_TENSOR, hb, hf, 2 * G, 1, 2 * G, 2);
    CHECK(grew(MPRT_ALLTOALL, MPRT_TENSOR, &b) == wire, "alltoall_b2f_bf16 bytes");
    for (int i = 0; i < nb; i++)
        CHECK(mprt_f32_from_bf16(hf[i]) == xf[i], "alltoall_b2f_bf16 %d", i);
    mprt_alltoall_f2b_bf16(MPRT_TENSOR, hf, back, 2 * G, 1, 2 * G, 2);
    CHECK(memcmp(back, hb, (size_t)nb * sizeof *hb) == 0, "alltoall_f2b_bf16 (b2f's inverse)");
}

/* Stage s sends to s+1 (bf16 and, on the wire, f32 buffers). */
static void check_sendrecv(void) {
    int S = mprt_group_size(MPRT_PIPE), s = mprt_group_rank(MPRT_PIPE);
    if (S < 2) return;
    uint16_t h[3] = {0x3F80, 0x4000, 0xC040};
    float f[3] = {0.1f, 1.0f, -3.3f};
    int64_t b = mprt_stats_get(MPRT_SENDRECV, MPRT_PIPE).bytes;
    mprt_set_wire_bf16(true);
    if (s + 1 < S) {
        mprt_wait(mprt_isend_bf16(1, h, 3, 7));
        mprt_wait(mprt_isend(1, f, 3, 8));
        mprt_pipe_send_bf16(0, 1, h, 3, 9);
        mprt_pipe_wait_all();
        CHECK(grew(MPRT_SENDRECV, MPRT_PIPE, &b) == 18, "three sends of 3 bf16: 18 bytes");
    }
    if (s > 0) {
        uint16_t rh[3] = {0};
        float rf[3] = {0};
        mprt_recv_bf16(-1, rh, 3, 7);
        mprt_recv(-1, rf, 3, 8);
        CHECK(!memcmp(rh, h, sizeof h), "bf16 received");
        memset(rh, 0, sizeof rh);
        mprt_recv_bf16(-1, rh, 3, 9);
        CHECK(!memcmp(rh, h, sizeof h), "bf16 received from a pipeline send");
        for (int i = 0; i < 3; i++)
            CHECK(rf[i] == mprt_bf16_round1(f[i]), "wire recv %d: %a", i, (double)rf[i]);
    }
    mprt_set_wire_bf16(false);
}

/* The working copy at [off, off + n) is the bf16 rounding of the master, value by value. */
static int follows(const float *mst, const uint16_t *prm, int64_t off, int64_t n) {
    int bad = 0;
    for (int64_t i = off; i < off + n; i++)
        bad += prm[i] != mprt_bf16_from_f32(mst[i]);
    return bad;
}

static void check_weights(void) {
    enum { N = 40000, CAP = 9000 };
    mprt_mem_reset();
    float *mst = mprt_falloc_in(MPRT_MEM_OPTIM, N), *wl = mprt_falloc_in(MPRT_MEM_BUFFERS, CAP);
    uint16_t *prm = mprt_halloc_in(MPRT_MEM_PARAMS, N);
    CHECK(mprt_mem_allocated(MPRT_MEM_PARAMS) == 2 * N &&
              mprt_mem_allocated(MPRT_MEM_BUFFERS) == 4 * CAP,
          "counted %lld B of bf16 weights, %lld B of staging",
          (long long)mprt_mem_allocated(MPRT_MEM_PARAMS),
          (long long)mprt_mem_allocated(MPRT_MEM_BUFFERS));
    for (int i = 0; i < N; i++)
        mst[i] = (float)cos(i * 0.37) * 3.0f + 1e-3f; /* most not bf16-representable */
    mprt_bf16_weights(mst, prm, N, wl, CAP);
    CHECK(follows(mst, prm, 0, N) == 0, "registration did not round the master into prm");
    float *got = mprt_bf16_layer(31000, CAP); /* the last layer, whole */
    int bad = 0;
    for (int i = 0; i < CAP; i++)
        bad += got[i] != mprt_bf16_round1(mst[31000 + i]);
    CHECK(got == wl && bad == 0, "staged layer: %d values differ (or not in wl)", bad);
    float host[100];
    for (int i = 0; i < 100; i++)
        host[i] = -7.123f * (float)i;
    mprt_bf16_upload(mst + 500, host, sizeof host); /* a checkpoint tensor into the master */
    CHECK(mst[599] == host[99] && follows(mst, prm, 0, N) == 0, "upload did not round its range");
    float other[100];
    mprt_bf16_upload(other, host, sizeof host); /* not the master: a copy only */
    CHECK(other[7] == host[7] && follows(mst, prm, 0, N) == 0, "upload elsewhere touched prm");
    for (int i = 0; i < N; i++)
        mst[i] *= 0.5f; /* an optimizer step */
    CHECK(follows(mst, prm, 0, N) > 0, "prm followed the master without a refresh");
    mprt_bf16_refresh();
    CHECK(follows(mst, prm, 0, N) == 0, "refresh did not round the master into prm");
    mprt_bf16_weights(NULL, NULL, 0, NULL, 0);
    free(mst), free(wl), free(prm);
    mprt_mem_reset();
}

/* The embedding on a bf16 table and positions (a vocabulary split: rows v0 .. v0 + V - 1
 * local, other ids give zero rows) equals the f32 kernel on the unpacked table, bit for bit. */
static void check_embedding(void) {
    enum { V = 37, D = 12, T = 5, M = 20 };
    uint16_t w16[V * D], p16[T * D];
    float w[V * D], p[T * D], got[M * D], want[M * D];
    int32_t ids[M];
    for (int i = 0; i < V * D; i++)
        w16[i] = mprt_bf16_from_f32((float)sin(i * 0.7) * 5.0f);
    for (int i = 0; i < T * D; i++)
        p16[i] = mprt_bf16_from_f32((float)cos(i * 1.3));
    mprt_bf16_unpack(w, w16, V * D), mprt_bf16_unpack(p, p16, T * D);
    for (int m = 0; m < M; m++)
        ids[m] = (m * 11) % 70; /* some below v0 = 30, some past it + V */
    for (int add = 0; add < 2; add++) {
        mprt_embedding_forward(want, ids, w, p, M, T, V, 30, D, add);
        mprt_embedding_forward_bf16(got, ids, w16, p16, M, T, V, 30, D, add);
        CHECK(memcmp(got, want, sizeof got) == 0, "bf16 embedding (add_pos %d) differs", add);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    mprt_init(&argc, &argv, atoi(argv[1]), atoi(argv[2]), atoi(argv[3]));
    mprt_set_threads(2);
    check_specials();
    check_all_patterns();
    check_arrays();
    check_bf16_colls();
    check_rounding_sum();
    check_wire();
    check_layout_bf16();
    check_sendrecv();
    check_weights();
    check_embedding();
    if (failures == 0 && mprt_mesh()->rank == 0)
        printf("test_rt_bf16 %s x %s x %s: ok\n", argv[1], argv[2], argv[3]);
    mprt_finalize();
    return failures != 0;
}
