/*
 * test_rt_generate.c: text generation's runtime parts (runtime/trainer_generate.c) — the
 * token draw (greedy at temperature 0 and at top-k 1, the softmax's frequencies, top-k's
 * cut-off, the same token for the same uniform), the prompt parser's tokens and one-line
 * errors, and the flags --generate, --prompt-tokens, --temperature and --top-k.
 * (tests/e2e/generate.py runs it end to end: the same tokens under every plan.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt_trainer.h"

#include "rt_check.h"

static void test_sample(void) {
    const float logits[4] = {0.0f, 1.0986123f, -1.0f, 1.0986123f}; /* e^x: 1, 3, 0.37, 3 */
    for (int i = 0; i < 10; i++) {
        float u = (float)i / 10.0f;
        CHECK(mprt_sample_token(logits, 4, 0.0, 0, u) == 1, "greedy: the first largest");
        CHECK(mprt_sample_token(logits, 4, 2.0, 1, u) == 1, "top-k 1 is greedy");
        int32_t k2 = mprt_sample_token(logits, 4, 1.0, 2, u);
        CHECK(k2 == 1 || k2 == 3, "top-k 2 drew %d", k2);
    }
    int count[4] = {0};
    MprtRng r = mprt_rng(3, 4);
    for (int i = 0; i < 20000; i++) {
        int32_t t = mprt_sample_token(logits, 4, 1.0, 0, mprt_rng_uniform(r, (uint64_t)i));
        CHECK(t >= 0 && t < 4, "token %d", t);
        if (t >= 0 && t < 4) count[t]++;
    }
    double total = 1 + 3 + exp(-1.0) + 3;
    const double want[4] = {1 / total, 3 / total, exp(-1.0) / total, 3 / total};
    for (int v = 0; v < 4; v++)
        CHECK(fabs(count[v] / 20000.0 - want[v]) < 0.015, "token %d drawn %d times", v, count[v]);
    CHECK(mprt_sample_token(logits, 4, 1.0, 0, 0.5f) == mprt_sample_token(logits, 4, 1.0, 0, 0.5f),
          "same u, same token");
}

static void test_parse(void) {
    int32_t t[8];
    int64_t n = 0;
    MprtErr err = {{0}};
    CHECK(mprt_parse_tokens("3,1, 4 1", 5, t, 8, &n, &err) && n == 4 && t[0] == 3 && t[1] == 1 &&
              t[2] == 4 && t[3] == 1,
          "parsed %lld: %s", (long long)n, err.msg);
    CHECK(!mprt_parse_tokens("3,5", 5, t, 8, &n, &err) && strstr(err.msg, "token 2") &&
              strstr(err.msg, "[0, 5)"),
          "out of range: '%s'", err.msg);
    CHECK(!mprt_parse_tokens("1,x", 5, t, 8, &n, &err) && strstr(err.msg, "token 2"),
          "not a number: '%s'", err.msg);
    CHECK(!mprt_parse_tokens("", 5, t, 8, &n, &err) && strstr(err.msg, "no tokens"), "empty");
    CHECK(!mprt_parse_tokens("1,1,1", 5, t, 2, &n, &err) && strstr(err.msg, "more than 2"),
          "too many: '%s'", err.msg);
}

static void test_flags(void) {
    MprtTrainer t = {.batch = 8, .default_steps = 20, .default_seed = 7};
    MprtArgs a;
    char err[256];
    char *none[] = {"train", NULL};
    CHECK(!mprt_args_parse(&t, 1, none, &a, err, sizeof err) && a.generate == 0 &&
              a.temperature == 1.0 && a.top_k == 0 && !a.prompt,
          "defaults");
    char *ok[] = {"train",   "--generate", "12", "--prompt-tokens", "1,2", "--temperature", "0.5",
                  "--top-k", "3",          NULL};
    CHECK(!mprt_args_parse(&t, 9, ok, &a, err, sizeof err) && a.generate == 12 &&
              a.temperature == 0.5 && a.top_k == 3 && !strcmp(a.prompt, "1,2"),
          "parsed: %s", err);
    char *bad[][3] = {{"train", "--temperature", "-1"},
                      {"train", "--temperature", "hot"},
                      {"train", "--temperature", NULL},
                      {"train", "--top-k", "-2"},
                      {"train", "--prompt-tokens", NULL}};
    for (int i = 0; i < 5; i++) {
        int argc = bad[i][2] ? 3 : 2;
        CHECK(mprt_args_parse(&t, argc, bad[i], &a, err, sizeof err) && strstr(err, bad[i][1]),
              "%s: '%s'", bad[i][1], err);
    }
}

int main(void) {
    test_sample();
    test_parse();
    test_flags();
    if (!failures) printf("test_rt_generate: ok\n");
    return failures != 0;
}
