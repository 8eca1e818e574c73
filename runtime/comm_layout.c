/*
 * comm_layout.c: the layout changes that move no sums — a rank's slice of a whole tensor, and
 * the all-to-all between the batch-split (B) and feature-split (F) layouts — on f32 buffers
 * and, for a bf16 trainer's 16-bit activations (docs/runtime.md, "A bf16 trainer"), on bf16
 * buffers. Both forms share one index map and differ only in the element size; an f32
 * all-to-all under the bf16 wire moves bf16 and lands bf16-exact values, so the two agree bit
 * for bit and count the same bytes (2 per element under bf16).
 */
#include <limits.h>
#include <mpi.h>

#include "internal.h"

/* local = this rank's part `part` of `parts` of the outer × (parts·chunk) × inner view full,
 * elements of esize bytes. */
static void slice(const void *full, void *local, int64_t outer, int64_t chunk, int64_t inner,
                  int parts, int part, size_t esize, const char *call) {
    int64_t dims[3] = {outer, chunk, inner}, n = 0;
    if (!mprt__numel(3, dims, 1, INT_MAX, &n))
        mprt_fatal("%s: bad tensor view %lld x %lld x %lld", call, (long long)outer,
                   (long long)chunk, (long long)inner);
    if (parts < 1 || part < 0 || part >= parts) mprt_fatal("%s: part %d of %d", call, part, parts);
    size_t row = (size_t)(chunk * inner) * esize;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)local + (size_t)o * row,
               (const char *)full + ((size_t)o * (size_t)parts + (size_t)part) * row, row);
}

void mprt_slice(const float *full, float *local, int64_t outer, int64_t chunk, int64_t inner,
                int parts, int part) {
    slice(full, local, outer, chunk, inner, parts, part, sizeof(float), "mprt_slice");
}

void mprt_slice_bf16(const uint16_t *full, uint16_t *local, int64_t outer, int64_t chunk,
                     int64_t inner, int parts, int part) {
    slice(full, local, outer, chunk, inner, parts, part, sizeof(uint16_t), "mprt_slice_bf16");
}

/* ───────────────────────────── all-to-all ───────────────────────────── */

/* Checks an all-to-all view and returns the per-destination block in elements. */
static int64_t a2a_block(int G, int64_t batch, int64_t mid, int64_t feat, int64_t inner) {
    int64_t dims[4] = {batch, mid, feat, inner}, n = 0;
    if (!mprt__numel(4, dims, 1, INT_MAX, &n))
        mprt_fatal("MPI_Alltoall: bad tensor view %lld x %lld x %lld x %lld", (long long)batch,
                   (long long)mid, (long long)feat, (long long)inner);
    if (batch % G || feat % G)
        mprt_fatal("MPI_Alltoall: batch %lld and features %lld must divide by the group size %d",
                   (long long)batch, (long long)feat, G);
    return n / G / G;
}

/* Between a local tensor [bl][mid][feat][inner] and G blocks [G][bl][mid][feat/G][inner],
 * block p holding feature slice p: packs the tensor into blocks (to_blocks) or unpacks
 * blocks into the tensor. The same index map serves both all-to-all directions. */
static void a2a_permute(void *dst, const void *src, int G, int64_t bl, int64_t mid, int64_t feat,
                        int64_t inner, bool to_blocks, size_t esize) {
    size_t fc = (size_t)(feat / G), span = fc * (size_t)inner * esize;
    for (size_t p = 0; p < (size_t)G; p++)
        for (size_t b = 0; b < (size_t)bl; b++)
            for (size_t m = 0; m < (size_t)mid; m++) {
                size_t blocked = ((p * (size_t)bl + b) * (size_t)mid + m) * span;
                size_t whole = ((b * (size_t)mid + m) * (size_t)feat + p * fc) * (size_t)inner;
                whole *= esize;
                if (to_blocks)
                    memcpy((char *)dst + blocked, (const char *)src + whole, span);
                else
                    memcpy((char *)dst + whole, (const char *)src + blocked, span);
            }
}

/* The exchange of G blocks of blk floats, as floats or, under the bf16 wire, as bf16. */
static void a2a_exchange_f32(MprtGroup g, const float *src, float *dst, int64_t blk, bool wire) {
    if (!wire) {
        mprt__alltoall(g, src, dst, blk, MPI_FLOAT);
        return;
    }
    int64_t n = blk * mprt_group_size(g);
    uint16_t *hs = mprt__bf16_buf(0, n), *hd = mprt__bf16_buf(1, n);
    mprt_bf16_pack(hs, src, n);
    mprt__alltoall(g, hs, hd, blk, MPI_UINT16_T);
    mprt_bf16_unpack(dst, hd, n);
}

/* The B -> F all-to-all (b2f: pack by feature slice, then exchange) or F -> B (exchange,
 * then unpack). B -> F: send[p] = my rows, feature slice p, [bl][mid][fc][inner]; received
 * from q: rows block q, my features — exactly the F layout's row order. F -> B: the F layout
 * is already ordered by destination row block. h16: in and out hold bf16 (uint16_t). */
static void alltoall(MprtGroup g, const void *in, void *out, int64_t batch, int64_t mid,
                     int64_t feat, int64_t inner, bool b2f, bool h16) {
    int G = mprt_group_size(g);
    int64_t blk = a2a_block(G, batch, mid, feat, inner);
    bool wire = h16 || mprt__wire();
    size_t es = h16 ? sizeof(uint16_t) : sizeof(float);
    double t0 = MPI_Wtime();
    if (G == 1 && wire && !h16) {
        mprt_bf16_round(out, in, blk);
    } else if (G == 1) {
        memcpy(out, in, (size_t)blk * es);
    } else {
        void *buf = h16 ? (void *)mprt__bf16_buf(2, blk * G) : (void *)mprt__scratch(blk * G);
        if (b2f) a2a_permute(buf, in, G, batch / G, mid, feat, inner, true, es);
        const void *src = b2f ? buf : in;
        void *dst = b2f ? out : buf;
        if (h16)
            mprt__alltoall(g, src, dst, blk, MPI_UINT16_T);
        else
            a2a_exchange_f32(g, src, dst, blk, wire);
        if (!b2f) a2a_permute(out, buf, G, batch / G, mid, feat, inner, false, es);
    }
    mprt_stats_add(MPRT_ALLTOALL, g,
                   mprt_coll_bytes(MPRT_ALLTOALL, G, (wire ? 2 : 4) * blk * G * G),
                   MPI_Wtime() - t0);
}

void mprt_alltoall_b2f(MprtGroup g, const float *in, float *out, int64_t batch, int64_t mid,
                       int64_t feat, int64_t inner) {
    alltoall(g, in, out, batch, mid, feat, inner, true, false);
}

void mprt_alltoall_f2b(MprtGroup g, const float *in, float *out, int64_t batch, int64_t mid,
                       int64_t feat, int64_t inner) {
    alltoall(g, in, out, batch, mid, feat, inner, false, false);
}

void mprt_alltoall_b2f_bf16(MprtGroup g, const uint16_t *in, uint16_t *out, int64_t batch,
                            int64_t mid, int64_t feat, int64_t inner) {
    alltoall(g, in, out, batch, mid, feat, inner, true, true);
}

void mprt_alltoall_f2b_bf16(MprtGroup g, const uint16_t *in, uint16_t *out, int64_t batch,
                            int64_t mid, int64_t feat, int64_t inner) {
    alltoall(g, in, out, batch, mid, feat, inner, false, true);
}
