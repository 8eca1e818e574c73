/*
 * trainer_mem.c: what a trainer allocates, by category, against the plan's memory per device
 * (docs/runtime.md, "Memory: allocated against predicted").
 *
 * A generated C trainer makes every buffer of a rank with mprt_falloc_in / mprt_ialloc_in,
 * naming the category it belongs to (a CUDA trainer with mprt_cu_falloc_in / _ialloc_in, which
 * count through mprt_mem_add); the bytes asked for are added up here (the allocator's
 * own overhead and the one element an empty request still gets are left out). At the end of a
 * run mprt_check_memory compares them with the planner's prediction for the rank's stage
 * (report "memory per device by stage"), prints one line on rank 0 and keeps both for the
 * --profile JSON. The planner's five categories (parameters, gradients, optimizer state,
 * activations, buffers) come first; the trainer's inputs and labels as loaded, its activation
 * gradients and its kernel scratch are not in the plan and are shown apart.
 */
#include "mprt_trainer.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#include "internal.h"

static struct {
    int64_t bytes[MPRT_MEM__COUNT]; /* allocated since the last reset */
    MprtMemPredicted want;          /* the plan's, once mprt_check_memory ran */
    bool checked;
} M;

static const char *const names[MPRT_MEM__COUNT] = {
    "params",  "grads",  "optimizer",        "activations", "zero_buffers",
    "buffers", "inputs", "activation_grads", "scratch"};

const char *mprt_mem_name(MprtMem c) { return names[c]; }

void mprt_mem_reset(void) {
    for (int c = 0; c < MPRT_MEM__COUNT; c++)
        M.bytes[c] = 0;
    M.checked = false;
}

int64_t mprt_mem_allocated(MprtMem c) { return M.bytes[c]; }

void mprt_mem_add(MprtMem c, int64_t bytes) { M.bytes[c] += bytes > 0 ? bytes : 0; }

float *mprt_falloc_in(MprtMem c, int64_t n) {
    M.bytes[c] += 4 * (n > 0 ? n : 0);
    return mprt_falloc(n);
}

int32_t *mprt_ialloc_in(MprtMem c, int64_t n) {
    M.bytes[c] += 4 * (n > 0 ? n : 0);
    return mprt_ialloc(n);
}

uint16_t *mprt_halloc_in(MprtMem c, int64_t n) {
    M.bytes[c] += 2 * (n > 0 ? n : 0);
    return mprt_halloc(n);
}

/* "params 16040/16040 B, grads ..." (allocated/predicted) of the planned categories. */
static void planned_text(char *out, size_t n, const MprtMemPredicted *w) {
    size_t at = 0;
    for (int c = 0; c < MPRT_MEM_EXACT && at < n; c++) {
        if (c == MPRT_MEM_ZERO_BUF && !M.bytes[c] && !w->bytes[c]) continue; /* ZeRO-2 only */
        at += (size_t)snprintf(out + at, n - at, "%s%s %lld/%lld B", c ? ", " : "", names[c],
                               (long long)M.bytes[c], (long long)w->bytes[c]);
        if (c == MPRT_MEM_ACTS && w->loss && at < n)
            at += (size_t)snprintf(out + at, n - at,
                                   " (the plan's %lld B of per-sample losses "
                                   "not kept)",
                                   (long long)w->loss);
    }
}

void mprt_check_memory(const MprtTrainer *t) {
    if (!t->memory) return;
    M.want = t->memory[mprt_mesh()->s], M.checked = true;
    double off = 0;
    for (int c = 0; c < MPRT_MEM_EXACT; c++)
        if (M.bytes[c] + (c == MPRT_MEM_ACTS ? M.want.loss : 0) != M.want.bytes[c]) off = 1;
    mprt_metric_max(MPRT_WORLD, &off, 1);
    if (mprt_mesh()->rank != 0) return;
    char exact[512];
    planned_text(exact, sizeof exact, &M.want);
    printf("memory: %s (rank 0 allocated/predicted: %s); buffers %lld B allocated, %lld B "
           "predicted; not in the plan: inputs %lld B, activation gradients %lld B, kernel "
           "scratch %lld B\n",
           off == 0 ? "allocated == predicted on every rank"
                    : "MISMATCH between allocated and predicted",
           exact, (long long)M.bytes[MPRT_MEM_BUFFERS], (long long)M.want.bytes[MPRT_MEM_BUFFERS],
           (long long)M.bytes[MPRT_MEM_IO], (long long)M.bytes[MPRT_MEM_ACT_GRADS],
           (long long)M.bytes[MPRT_MEM_SCRATCH]);
}

void mprt__memory_json(struct cJSON *rank) {
    if (!M.checked) return;
    cJSON *mem = cJSON_AddObjectToObject(rank, "memory");
    cJSON *want = cJSON_AddObjectToObject(mem, "predicted");
    cJSON *got = cJSON_AddObjectToObject(mem, "allocated");
    for (int c = 0; c < MPRT_MEM__COUNT; c++) {
        if (c < MPRT_MEM_PLANNED) cJSON_AddNumberToObject(want, names[c], (double)M.want.bytes[c]);
        cJSON_AddNumberToObject(got, names[c], (double)M.bytes[c]);
    }
    cJSON_AddNumberToObject(want, "loss_values_not_kept", (double)M.want.loss);
}
