/*
 * bf16.c: bfloat16 conversion (docs/runtime.md, "bf16").
 *
 * bf16 is the upper half of an IEEE binary32: sign, the same 8-bit exponent, 7 stored mantissa
 * bits. f32 → bf16 rounds to nearest, ties to even, on the bit pattern: adding 0x7FFF plus the
 * lowest kept bit to the 32-bit pattern and keeping the upper 16 bits rounds every finite value
 * correctly, carries into the exponent when the mantissa overflows (the largest finite values
 * round to ±Inf, as IEEE rounding does) and keeps ±Inf. A NaN would round into Inf or change
 * payload class, so NaNs are handled first: the upper half with the quiet bit set (a NaN stays
 * a NaN, its sign kept). bf16 → f32 is exact (the lower 16 bits zero).
 *
 * The array forms run on the rank's thread pool above a grain, since a bf16 run converts every
 * activation and gradient once per layer.
 */
#include <string.h>

#include "internal.h"

/* The conversions themselves are internal.h's inline mprt__bf16_of / mprt__f32_of, so that the
 * array loops below inline and vectorise them. */

uint16_t mprt_bf16_from_f32(float x) { return mprt__bf16_of(x); }
float mprt_f32_from_bf16(uint16_t h) { return mprt__f32_of(h); }
float mprt_bf16_round1(float x) { return mprt__f32_of(mprt__bf16_of(x)); }

enum { GRAIN = 1 << 15 }; /* elements per part below which one thread converts */

typedef struct Conv {
    uint16_t *h;
    float *f;
    const uint16_t *ch;
    const float *cf;
} Conv;

static void pack_part(void *ctx, int64_t lo, int64_t hi, int part) {
    const Conv *c = ctx;
    uint16_t *restrict h = c->h;
    const float *restrict f = c->cf;
    (void)part;
    for (int64_t i = lo; i < hi; i++)
        h[i] = mprt__bf16_of(f[i]);
}

static void unpack_part(void *ctx, int64_t lo, int64_t hi, int part) {
    const Conv *c = ctx;
    float *restrict f = c->f;
    const uint16_t *restrict h = c->ch;
    (void)part;
    for (int64_t i = lo; i < hi; i++)
        f[i] = mprt__f32_of(h[i]);
}

/* dst may be src: no restrict */
static void round_part(void *ctx, int64_t lo, int64_t hi, int part) {
    const Conv *c = ctx;
    float *f = c->f;
    const float *x = c->cf;
    (void)part;
    for (int64_t i = lo; i < hi; i++)
        f[i] = mprt__f32_of(mprt__bf16_of(x[i]));
}

void mprt_bf16_pack(uint16_t *dst, const float *src, int64_t n) {
    Conv c = {dst, NULL, NULL, src};
    if (n > 0) mprt__parallel_for(n, GRAIN, pack_part, &c);
}

void mprt_bf16_unpack(float *dst, const uint16_t *src, int64_t n) {
    Conv c = {NULL, dst, src, NULL};
    if (n > 0) mprt__parallel_for(n, GRAIN, unpack_part, &c);
}

void mprt_bf16_round(float *dst, const float *src, int64_t n) {
    Conv c = {NULL, dst, NULL, src};
    if (n > 0) mprt__parallel_for(n, GRAIN, round_part, &c);
}
