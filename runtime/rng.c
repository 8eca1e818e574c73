/*
 * rng.c: counter-based random numbers, so that nothing random depends on the plan.
 *
 * A stateful generator gives different numbers to a rank depending on how much it drew
 * before, which ties the numbers to the partition. Here every value is a pure function of
 * (key, index): a weight's initial value depends on the seed, the parameter and its index
 * in the WHOLE tensor, so a rank holding columns 512..1023 of a matrix generates exactly
 * the values the single-device run has there. The same holds for synthetic data (index =
 * global sample · sample size + element) and dropout masks (key from the step and the
 * layer, index from the global sample and element), whatever the micro-batching.
 *
 * The function is SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): output i of a generator started at state `key` is
 * mix64(key + (i+1)·γ) with γ = 0x9E3779B97F4A7C15, so it can be evaluated at any index
 * directly. Keys are derived by mixing: key(seed, stream) = mix64(mix64(seed ^ C1) ^
 * mix64(stream ^ C2)), and a sub-stream key(r, id) = mix64(r.key ^ mix64(id ^ C3)).
 * Uniform floats take the top 24 bits (exact in [0, 1)); normals use Box–Muller on the
 * uniforms at 2i and 2i+1 in double precision, keeping the cosine branch only, so each
 * index has one normal value of its own. Being a function of the index alone, a fill runs on
 * the rank's thread pool (parallel.c) with the same values for any thread count; a
 * transformer trainer without --data draws half a million normals per step.
 */
#include <math.h>

#include "internal.h"
#include "mprt.h"

#define C1 0x243F6A8885A308D3ull /* digits of pi, to separate the roles of the inputs */
#define C2 0x13198A2E03707344ull
#define C3 0xA4093822299F31D0ull

MprtRng mprt_rng(uint64_t seed, uint64_t stream) {
    MprtRng r = {mprt_mix64(mprt_mix64(seed ^ C1) ^ mprt_mix64(stream ^ C2))};
    return r;
}

MprtRng mprt_rng_sub(MprtRng r, uint64_t id) {
    MprtRng s = {mprt_mix64(r.key ^ mprt_mix64(id ^ C3))};
    return s;
}

uint64_t mprt_rng_name_id(const char *name) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

float mprt_rng_normal(MprtRng r, uint64_t i) {
    const double two_pi = 6.283185307179586476925286766559;
    /* u1 in (0, 1] so the logarithm is finite; u2 in [0, 1) */
    double u1 = ((double)(mprt_rng_bits(r, 2 * i) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mprt_rng_bits(r, 2 * i + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

typedef struct Fill {
    MprtRng r;
    uint64_t first;
    float a, b; /* lo, span (uniform) or mean, std (normal) */
    float *dst;
} Fill;

static void uniform_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Fill *f = ctx;
    for (int64_t e = lo; e < hi; e++)
        f->dst[e] = f->a + f->b * mprt_rng_uniform(f->r, f->first + (uint64_t)e);
}

static void normal_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Fill *f = ctx;
    for (int64_t e = lo; e < hi; e++)
        f->dst[e] = f->a + f->b * mprt_rng_normal(f->r, f->first + (uint64_t)e);
}

#define FILL_GRAIN 4096 /* a normal costs tens of nanoseconds */

void mprt_rng_fill_uniform(MprtRng r, uint64_t first, int64_t n, float lo, float hi, float *dst) {
    Fill f = {r, first, lo, hi - lo, dst};
    mprt__parallel_for(n, FILL_GRAIN, uniform_part, &f);
}

void mprt_rng_fill_normal(MprtRng r, uint64_t first, int64_t n, float mean, float std, float *dst) {
    Fill f = {r, first, mean, std, dst};
    mprt__parallel_for(n, FILL_GRAIN, normal_part, &f);
}

/* The global index of the first element of row o of slice `part`. */
static uint64_t shard_row(int64_t o, int64_t chunk, int64_t inner, int parts, int part) {
    return ((uint64_t)o * (uint64_t)parts + (uint64_t)part) * (uint64_t)chunk * (uint64_t)inner;
}

void mprt_rng_shard_normal(MprtRng r, int64_t outer, int64_t chunk, int64_t inner, int parts,
                           int part, float mean, float std, float *dst) {
    int64_t row = chunk * inner;
    for (int64_t o = 0; o < outer; o++)
        mprt_rng_fill_normal(r, shard_row(o, chunk, inner, parts, part), row, mean, std,
                             dst + o * row);
}

void mprt_rng_shard_uniform(MprtRng r, int64_t outer, int64_t chunk, int64_t inner, int parts,
                            int part, float lo, float hi, float *dst) {
    int64_t row = chunk * inner;
    for (int64_t o = 0; o < outer; o++)
        mprt_rng_fill_uniform(r, shard_row(o, chunk, inner, parts, part), row, lo, hi,
                              dst + o * row);
}
