/*
 * test_rt_rng.c: the counter-based RNG — its pinned values (a change would silently change
 * every model's initial weights), split invariance (any partition of a range or a tensor
 * gives the same numbers as the whole), and the moments of the uniform and normal values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"

#include "rt_check.h"

/* SplitMix64's published first outputs from state 0, and our derived keys pinned. */
static void test_pinned(void) {
    MprtRng zero = {0};
    CHECK(mprt_rng_bits(zero, 0) == 0xE220A8397B1DCDAFull, "%016llx",
          (unsigned long long)mprt_rng_bits(zero, 0));
    CHECK(mprt_rng_bits(zero, 1) == 0x6E789E6AA1B965F4ull, "%016llx",
          (unsigned long long)mprt_rng_bits(zero, 1));
    MprtRng r = mprt_rng(42, 7);
    CHECK(r.key == 0xC845CFD88322EF94ull, "key %016llx", (unsigned long long)r.key);
    CHECK(mprt_rng_sub(r, 3).key == 0x9C4862B18E0E1E7Cull, "sub %016llx",
          (unsigned long long)mprt_rng_sub(r, 3).key);
    CHECK(mprt_rng_name_id("") == 0xCBF29CE484222325ull, "fnv empty");
    CHECK(mprt_rng_name_id("a") == 0xAF63DC4C8601EC8Cull, "fnv a");
}

static void test_split_range(void) {
    enum { N = 1000 };
    MprtRng r = mprt_rng(1234, mprt_rng_name_id("fc1.weight"));
    float whole[N], parts[N], u[N], up[N];
    mprt_rng_fill_normal(r, 0, N, 0.5f, 0.02f, whole);
    mprt_rng_fill_uniform(r, 0, N, -0.1f, 0.1f, u);
    int cuts[] = {0, 137, 138, 600, N};
    for (int i = 0; i + 1 < 5; i++) {
        mprt_rng_fill_normal(r, (uint64_t)cuts[i], cuts[i + 1] - cuts[i], 0.5f, 0.02f,
                             parts + cuts[i]);
        mprt_rng_fill_uniform(r, (uint64_t)cuts[i], cuts[i + 1] - cuts[i], -0.1f, 0.1f,
                              up + cuts[i]);
    }
    CHECK(memcmp(whole, parts, sizeof whole) == 0, "normal values depend on the split");
    CHECK(memcmp(u, up, sizeof u) == 0, "uniform values depend on the split");
    /* in reverse order, one at a time */
    int bad = 0;
    for (int i = N - 1; i >= 0; i--) {
        float v;
        mprt_rng_fill_normal(r, (uint64_t)i, 1, 0.5f, 0.02f, &v);
        bad += v != whole[i];
    }
    CHECK(bad == 0, "%d values depend on the order of generation", bad);
}

/* A [outer, parts·chunk, inner] tensor: shards reassembled equal the whole tensor. */
static void test_shards(int64_t outer, int64_t chunk, int64_t inner, int parts) {
    MprtRng r = mprt_rng(99, 5);
    int64_t row = chunk * inner, n = outer * parts * row;
    float *whole = malloc((size_t)n * 4), *shard = malloc((size_t)(outer * row) * 4);
    float *uw = malloc((size_t)n * 4);
    mprt_rng_fill_normal(r, 0, n, 0.0f, 1.0f, whole);
    mprt_rng_fill_uniform(r, 0, n, 0.0f, 1.0f, uw);
    int bad = 0;
    for (int p = 0; p < parts; p++) {
        mprt_rng_shard_normal(r, outer, chunk, inner, parts, p, 0.0f, 1.0f, shard);
        for (int64_t o = 0; o < outer; o++)
            bad += memcmp(shard + o * row, whole + (o * parts + p) * row, (size_t)row * 4) != 0;
        mprt_rng_shard_uniform(r, outer, chunk, inner, parts, p, 0.0f, 1.0f, shard);
        for (int64_t o = 0; o < outer; o++)
            bad += memcmp(shard + o * row, uw + (o * parts + p) * row, (size_t)row * 4) != 0;
    }
    CHECK(bad == 0, "%lldx%lldx%lld in %d parts: %d rows differ", (long long)outer,
          (long long)chunk, (long long)inner, parts, bad);
    free(whole), free(shard), free(uw);
}

static void test_moments(void) {
    enum { N = 200000 };
    MprtRng r = mprt_rng(7, 0);
    double su = 0, su2 = 0, sn = 0, sn2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < N; i++) {
        double u = mprt_rng_uniform(r, (uint64_t)i), z = mprt_rng_normal(r, (uint64_t)i);
        su += u, su2 += u * u, sn += z, sn2 += z * z;
        lo = u < lo ? u : lo, hi = u > hi ? u : hi;
    }
    double mu = su / N, vu = su2 / N - mu * mu, mn = sn / N, vn = sn2 / N - mn * mn;
    /* tolerances: > 5 standard errors of each estimate at N = 2e5 */
    CHECK(fabs(mu - 0.5) < 0.004 && fabs(vu - 1.0 / 12) < 0.002, "uniform mean %g var %g", mu, vu);
    CHECK(lo >= 0.0 && hi < 1.0, "uniform range [%g, %g]", lo, hi);
    CHECK(fabs(mn) < 0.012 && fabs(vn - 1.0) < 0.02, "normal mean %g var %g", mn, vn);
}

static void test_streams_differ(void) {
    MprtRng a = mprt_rng(1, 1), b = mprt_rng(1, 2), c = mprt_rng(2, 1);
    int same_ab = 0, same_ac = 0, same_sub = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        same_ab += mprt_rng_bits(a, i) == mprt_rng_bits(b, i);
        same_ac += mprt_rng_bits(a, i) == mprt_rng_bits(c, i);
        same_sub += mprt_rng_bits(a, i) == mprt_rng_bits(mprt_rng_sub(a, 0), i);
    }
    CHECK(same_ab == 0 && same_ac == 0 && same_sub == 0, "streams collide %d %d %d", same_ab,
          same_ac, same_sub);
}

int main(void) {
    test_pinned();
    test_split_range();
    test_shards(6, 5, 3, 4);
    test_shards(1, 7, 1, 3);
    test_shards(4, 1, 9, 2);
    test_moments();
    test_streams_differ();
    if (failures)
        fprintf(stderr, "test_rt_rng: %d failures\n", failures);
    else
        printf("test_rt_rng: ok\n");
    return failures != 0;
}
