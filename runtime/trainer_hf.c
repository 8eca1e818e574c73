/*
 * trainer_hf.c: `./train --export-hf DIR` — the weights of a GPT in Hugging Face's GPT-2
 * layout, so that transformers' GPT2LMHeadModel.from_pretrained(DIR) loads them (docs/hf.md).
 *
 * The compiler matched the model against GPT-2 and handed over a table (MprtHf,
 * codegen/emit_hf.c): each GPT-2 tensor with the way it is made from our parameters, which
 * are looked up here by name. Our linear weights are [in, out], as GPT-2's Conv1D stores
 * them, so they are copied; q, k and v go side by side into c_attn ([D, 3D]: GPT-2 splits
 * its columns into q|k|v and each into heads of D/H columns, as our kernel does); our
 * bias-less linear gets a zero bias; the head [D, V] is transposed into lm_head, an
 * nn.Linear ([V, D]). Whole tensors are gathered on world rank 0 as for a checkpoint, and
 * rank 0 writes config.json, then model.safetensors, each atomically (io_file.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mprt_trainer.h"

bool mprt_hf_check_dir(const char *dir, MprtErr *err) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return mprt__err(err, "--export-hf %s: not a directory", dir);
        if (access(dir, W_OK | X_OK) != 0)
            return mprt__err(err, "--export-hf %s: %s", dir, strerror(errno));
        return true;
    }
    if (errno != ENOENT) return mprt__err(err, "--export-hf %s: %s", dir, strerror(errno));
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') /* "out/" names "out" */
        parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else
        slash[slash == parent] = 0; /* "/out": the parent is "/" */
    const char *why = stat(parent, &st) != 0             ? strerror(errno)
                      : !S_ISDIR(st.st_mode)             ? "not a directory"
                      : access(parent, W_OK | X_OK) != 0 ? strerror(errno)
                                                         : NULL;
    if (why) return mprt__err(err, "--export-hf %s: cannot create it (%s: %s)", dir, parent, why);
    return true;
}

/* Our parameter called `name` (the codegen's table names only parameters of this model). */
static const MprtParam *param(const MprtModel *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    mprt_fatal("--export-hf: the model has no parameter '%s'", name);
}

/* GPT-2's tensor t on world rank 0 (NULL elsewhere), its shape into ref. Collective. */
static float *make(const MprtModel *m, float *weights, const MprtHfTensor *t, MprtTensorRef *ref) {
    const MprtParam *p = param(m, t->src[0]);
    int64_t last = p->shape[p->ndim - 1], rows = mprt_param_numel(p) / last;
    *ref = (MprtTensorRef){t->name, MPRT_F32, p->ndim, {0}, NULL};
    memcpy(ref->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
    if (t->op == MPRT_HF_ZEROS) {
        *ref = (MprtTensorRef){t->name, MPRT_F32, 1, {last}, NULL};
        return mprt_mesh()->rank == 0 ? mprt_falloc(last) : NULL;
    }
    float *src[3] = {mprt_param_gather(m, p, weights), NULL, NULL};
    if (t->op == MPRT_HF_COPY) return src[0];
    if (t->op == MPRT_HF_TRANSPOSE) {
        ref->shape[0] = last, ref->shape[1] = rows;
        float *out = src[0] ? mprt_falloc(rows * last) : NULL;
        for (int64_t r = 0; out && r < rows; r++)
            for (int64_t c = 0; c < last; c++)
                out[c * rows + r] = src[0][r * last + c];
        free(src[0]);
        return out;
    }
    for (int k = 1; k < 3; k++) /* CONCAT: the three have src[0]'s shape */
        src[k] = mprt_param_gather(m, param(m, t->src[k]), weights);
    ref->shape[p->ndim - 1] = 3 * last;
    float *out = src[0] ? mprt_falloc(3 * rows * last) : NULL;
    for (int64_t r = 0; out && r < rows; r++)
        for (int k = 0; k < 3; k++)
            memcpy(out + (r * 3 + k) * last, src[k] + r * last, sizeof(float) * (size_t)last);
    free(src[0]), free(src[1]), free(src[2]);
    return out;
}

/* GPT-2's config.json for transformers (GPT2Config's keys); dropout 0: the export is for
 * inference and fine-tuning sets its own. */
static char *config_json(const MprtHf *hf) {
    cJSON *c = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddStringToObject(c, "model_type", "gpt2");
    const char *k[6] = {"vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner"};
    double v[6] = {(double)hf->vocab,   (double)hf->n_positions, (double)hf->n_embd,
                   (double)hf->n_layer, (double)hf->n_head,      (double)hf->n_inner};
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(c, k[i], v[i]);
    cJSON_AddNumberToObject(c, "n_ctx", (double)hf->n_positions);
    cJSON_AddStringToObject(c, "activation_function", "gelu_new");
    char eps[32]; /* the .mp file's value, not its float's binary expansion */
    snprintf(eps, sizeof eps, "%.7g", hf->eps);
    cJSON_AddNumberToObject(c, "layer_norm_epsilon", strtod(eps, NULL));
    const char *zero[3] = {"resid_pdrop", "embd_pdrop", "attn_pdrop"};
    for (int i = 0; i < 3; i++)
        cJSON_AddNumberToObject(c, zero[i], 0);
    cJSON_AddBoolToObject(c, "scale_attn_weights", 1);
    cJSON_AddBoolToObject(c, "scale_attn_by_inverse_layer_idx", 0);
    cJSON_AddBoolToObject(c, "reorder_and_upcast_attn", 0);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", 0);
    cJSON_AddNullToObject(c, "bos_token_id"); /* our tokens are not GPT-2's BPE */
    cJSON_AddNullToObject(c, "eos_token_id");
    cJSON_AddStringToObject(c, "torch_dtype", "float32");
    char *s = cJSON_Print(c);
    cJSON_Delete(c);
    if (!s) mprt_fatal("out of memory (config.json)");
    return s;
}

/* Rank 0: the directory (made if new), config.json, then model.safetensors. */
static bool write_dir(const MprtHf *hf, const char *dir, const MprtTensorRef *refs, MprtErr *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mprt__err(err, "--export-hf %s: %s", dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = config_json(hf);
    MprtAtomic w;
    bool ok = mprt__atomic_open(&w, path, err) && mprt__atomic_write(&w, json, strlen(json), err) &&
              mprt__atomic_write(&w, "\n", 1, err) && mprt__atomic_commit(&w, err);
    free(json);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    MprtMeta meta[1] = {{"format", "pt"}}; /* transformers refuses a file without it */
    return ok && mprt_st_save(path, refs, hf->ntensors, meta, 1, err);
}

bool mprt_hf_export(const MprtModel *m, float *weights, const MprtHf *hf, const char *dir,
                    MprtErr *err) {
    if (hf->refusal) return mprt__err(err, "--export-hf: %s", hf->refusal);
    MprtTensorRef *refs = calloc((size_t)hf->ntensors, sizeof *refs);
    float **data = calloc((size_t)hf->ntensors, sizeof *data);
    if (!refs || !data) mprt_fatal("out of memory");
    mprt_stats_pause();
    for (int i = 0; i < hf->ntensors; i++) {
        data[i] = make(m, weights, &hf->tensors[i], &refs[i]);
        refs[i].data = data[i];
    }
    bool ok = mprt_mesh()->rank != 0 || write_dir(hf, dir, refs, err);
    for (int i = 0; i < hf->ntensors; i++)
        free(data[i]);
    free(refs), free(data);
    mprt_stats_resume();
    return ok;
}
