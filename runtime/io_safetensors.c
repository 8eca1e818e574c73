/*
 * io_safetensors.c: checkpoints in the safetensors format
 * (https://github.com/huggingface/safetensors).
 *
 * Layout: an unsigned 64-bit little-endian header size N, then N bytes of JSON (UTF-8,
 * padded with spaces to a multiple of 8 so the data is aligned), then the data area. The
 * JSON maps each tensor name to {"dtype": "F32", "shape": [784, 4096],
 * "data_offsets": [begin, end]} (offsets relative to the data area) and may hold a
 * "__metadata__" object of string → string. mprt stores whole (unsharded) tensors, the
 * optimizer state as more tensors, and the step, optimizer and plan in the metadata, so a
 * checkpoint written under one plan loads under any other.
 *
 * Reading trusts nothing: N must be ≤ 100 MB and fit in the file; the JSON is parsed by
 * cJSON (and may be followed only by padding); every entry must have exactly the three keys,
 * a dtype mprt knows (F32, I32, I64), at most 8 integral dimensions ≥ 0, and offsets whose
 * span is numel × dtype size; sorted by offset the entries must tile the data area exactly
 * — no gap, no overlap, nothing left over — as the format requires. Only then is a handle
 * returned; tensors are read on demand with pread (or memcpy for the in-memory variant the
 * fuzz target uses). Names from the file are printed escaped and clipped, so a hostile
 * name cannot forge extra lines in an error message.
 *
 * Writing goes through the atomic writer (io_file.c): temporary file, fsync, rename,
 * directory fsync.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define ST_MAX_INT 9007199254740992.0 /* 2^53: JSON numbers beyond are not exact in cJSON */

typedef struct StEntry {
    char *name;
    MprtDtype dtype;
    int ndim;
    int64_t shape[MPRT_MAX_DIMS];
    uint64_t begin, end;
} StEntry;

struct MprtSt {
    char *path;
    int fd;                   /* -1 for the in-memory variant */
    const unsigned char *mem; /* the whole file, in-memory variant */
    uint64_t data_start, data_size;
    StEntry *e;
    int n;
    char **meta; /* key, value, key, value, ... */
    int nmeta;
};

static const char *const st_dtypes[] = {"F32", "I32", "I64"};

/* A name from a file, safe to print: at most 64 characters, non-printables as '?'. */
static const char *clean(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; *s && n + 4 < cap && n < 64; s++)
        buf[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s) buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    buf[n] = '\0';
    return buf;
}

/* ───────────────────────────── writing ───────────────────────────── */

static cJSON *int_array(const int64_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

/* The header JSON for the tensors; sizes[i] gets each tensor's bytes. */
static cJSON *st_header(const char *path, const MprtTensorRef *t, int nt, const MprtMeta *meta,
                        int nmeta, int64_t *sizes, MprtErr *err) {
    cJSON *root = cJSON_CreateObject();
    if (nmeta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < nmeta; i++)
            cJSON_AddStringToObject(m, meta[i].key, meta[i].value);
    }
    int64_t off = 0;
    for (int i = 0; i < nt; i++) {
        int64_t numel = 0;
        bool ok = t[i].name && t[i].name[0] && strcmp(t[i].name, "__metadata__") != 0 &&
                  !cJSON_GetObjectItemCaseSensitive(root, t[i].name) &&
                  (unsigned)t[i].dtype < MPRT_DTYPE__COUNT && t[i].ndim >= 0 &&
                  t[i].ndim <= MPRT_MAX_DIMS &&
                  mprt__numel(t[i].ndim, t[i].shape, (int64_t)mprt_dtype_size(t[i].dtype),
                              (int64_t)ST_MAX_INT / 2, &numel);
        if (!ok) {
            cJSON_Delete(root);
            mprt__err(err,
                      "%s: cannot save tensor %d ('%s'): bad or duplicate name, dtype or shape",
                      path, i, t[i].name ? t[i].name : "");
            return NULL;
        }
        sizes[i] = numel * (int64_t)mprt_dtype_size(t[i].dtype);
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        cJSON_AddStringToObject(e, "dtype", st_dtypes[t[i].dtype]);
        cJSON_AddItemToObject(e, "shape", int_array(t[i].shape, t[i].ndim));
        int64_t span[2] = {off, off + sizes[i]};
        cJSON_AddItemToObject(e, "data_offsets", int_array(span, 2));
        off += sizes[i];
    }
    return root;
}

bool mprt_st_save(const char *path, const MprtTensorRef *tensors, int ntensors,
                  const MprtMeta *meta, int nmeta, MprtErr *err) {
    int64_t *sizes = calloc((size_t)(ntensors > 0 ? ntensors : 1), sizeof *sizes);
    if (!sizes) return mprt__err(err, "%s: out of memory", path);
    cJSON *root = st_header(path, tensors, ntensors, meta, nmeta, sizes, err);
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) {
        free(sizes);
        return root ? mprt__err(err, "%s: out of memory", path) : false;
    }
    size_t jn = strlen(json), padded = (jn + 7) / 8 * 8;
    unsigned char pre[8];
    mprt__put_le64(pre, padded);
    MprtAtomic w;
    bool ok = mprt__atomic_open(&w, path, err) && mprt__atomic_write(&w, pre, 8, err) &&
              mprt__atomic_write(&w, json, jn, err) &&
              mprt__atomic_write(&w, "        ", padded - jn, err);
    for (int i = 0; ok && i < ntensors; i++)
        ok = mprt__atomic_write(&w, tensors[i].data, (size_t)sizes[i], err);
    ok = ok && mprt__atomic_commit(&w, err);
    cJSON_free(json);
    free(sizes);
    return ok;
}

/* ───────────────────────────── validating a header ───────────────────────────── */

static bool st_int(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > ST_MAX_INT || v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool st_fail(MprtSt *f, MprtErr *err, const char *name, const char *what) {
    char nb[80];
    return mprt__err(err, "%s: bad safetensors header: tensor '%s': %s", f->path,
                     clean(name, nb, sizeof nb), what);
}

static bool st_dtype(MprtSt *f, const cJSON *v, StEntry *e, MprtErr *err) {
    if (!cJSON_IsString(v)) return st_fail(f, err, e->name, "dtype must be a string");
    for (int t = 0; t < MPRT_DTYPE__COUNT; t++)
        if (strcmp(v->valuestring, st_dtypes[t]) == 0) {
            e->dtype = (MprtDtype)t;
            return true;
        }
    char nb[80], db[80];
    return mprt__err(err, "%s: tensor '%s': unsupported dtype '%s' (mprt reads F32, I32, I64)",
                     f->path, clean(e->name, nb, sizeof nb), clean(v->valuestring, db, sizeof db));
}

static bool st_entry(MprtSt *f, const cJSON *obj, StEntry *e, MprtErr *err) {
    if (!cJSON_IsObject(obj) || cJSON_GetArraySize(obj) != 3)
        return st_fail(f, err, e->name, "expected an object with dtype, shape, data_offsets");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!st_dtype(f, dt, e, err)) return false;
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > MPRT_MAX_DIMS)
        return st_fail(f, err, e->name, "shape must be an array of at most 8 dimensions");
    e->ndim = 0;
    for (const cJSON *d = sh->child; d; d = d->next)
        if (!st_int(d, &e->shape[e->ndim++]))
            return st_fail(f, err, e->name, "shape dimensions must be integers >= 0");
    int64_t b = 0, end = 0, numel = 0;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !st_int(of->child, &b) ||
        !st_int(of->child->next, &end) || b > end)
        return st_fail(f, err, e->name, "data_offsets must be [begin, end] with begin <= end");
    int64_t esize = (int64_t)mprt_dtype_size(e->dtype);
    if (!mprt__numel(e->ndim, e->shape, esize, (int64_t)ST_MAX_INT, &numel) ||
        end - b != numel * esize)
        return st_fail(f, err, e->name, "data_offsets span does not match dtype and shape");
    if ((uint64_t)end > f->data_size)
        return st_fail(f, err, e->name, "data_offsets beyond the end of the file");
    e->begin = (uint64_t)b, e->end = (uint64_t)end;
    return true;
}

static bool st_meta(MprtSt *f, const cJSON *m, MprtErr *err) {
    if (!cJSON_IsObject(m))
        return mprt__err(err, "%s: bad safetensors header: __metadata__ must be an object",
                         f->path);
    int n = cJSON_GetArraySize(m);
    f->meta = calloc((size_t)(2 * n + 1), sizeof(char *));
    if (!f->meta) return mprt__err(err, "%s: out of memory", f->path);
    for (const cJSON *v = m->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            return mprt__err(err, "%s: bad safetensors header: __metadata__ values must be strings",
                             f->path);
        char **kv = &f->meta[2 * f->nmeta++];
        kv[0] = strdup(v->string);
        kv[1] = strdup(v->valuestring);
        if (!kv[0] || !kv[1]) return mprt__err(err, "%s: out of memory", f->path);
    }
    return true;
}

static int by_begin(const void *a, const void *b) {
    const StEntry *x = *(StEntry *const *)a, *y = *(StEntry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Sorted by offset, the entries must tile [0, data_size) exactly. */
static bool st_tiling(MprtSt *f, MprtErr *err) {
    StEntry **order = malloc((size_t)(f->n > 0 ? f->n : 1) * sizeof *order);
    if (!order) return mprt__err(err, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++)
        order[i] = &f->e[i];
    qsort(order, (size_t)f->n, sizeof *order, by_begin);
    uint64_t at = 0;
    bool ok = true;
    char nb[80];
    for (int i = 0; ok && i < f->n; i++) {
        if (order[i]->begin != at)
            ok = mprt__err(err, "%s: bad safetensors header: tensor '%s' %s", f->path,
                           clean(order[i]->name, nb, sizeof nb),
                           order[i]->begin < at ? "overlaps another tensor"
                                                : "leaves a gap before it in the data");
        at = order[i]->end;
    }
    free(order);
    if (ok && at != f->data_size)
        return mprt__err(err,
                         "%s: bad safetensors header: tensors cover %llu of the %llu data "
                         "bytes",
                         f->path, (unsigned long long)at, (unsigned long long)f->data_size);
    return ok;
}

static bool st_entries(MprtSt *f, const cJSON *root, MprtErr *err) {
    if (!cJSON_IsObject(root))
        return mprt__err(err, "%s: bad safetensors header: not a JSON object", f->path);
    f->e = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *f->e);
    if (!f->e) return mprt__err(err, "%s: out of memory", f->path);
    bool seen_meta = false;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (seen_meta || !st_meta(f, c, err))
                return seen_meta ? mprt__err(err, "%s: duplicate __metadata__", f->path) : false;
            seen_meta = true;
            continue;
        }
        for (int i = 0; i < f->n; i++)
            if (strcmp(f->e[i].name, c->string) == 0)
                return st_fail(f, err, c->string, "appears twice");
        StEntry *e = &f->e[f->n];
        if (!(e->name = strdup(c->string))) return mprt__err(err, "%s: out of memory", f->path);
        f->n++;
        if (!st_entry(f, c, e, err)) return false;
    }
    return st_tiling(f, err);
}

/* Parses the N header bytes (not NUL-terminated): JSON, then only space padding. */
static bool st_parse(MprtSt *f, const unsigned char *hdr, size_t n, MprtErr *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)hdr, n, &end, false);
    if (!root)
        return mprt__err(err, "%s: bad safetensors header: invalid JSON near byte %zu", f->path,
                         end ? (size_t)(end - (const char *)hdr) + 8 : (size_t)8);
    for (const char *p = end; p < (const char *)hdr + n; p++)
        if (*p != ' ' && *p != '\0') {
            cJSON_Delete(root);
            return mprt__err(err, "%s: bad safetensors header: text after the JSON", f->path);
        }
    bool ok = st_entries(f, root, err);
    cJSON_Delete(root);
    return ok;
}

/* ───────────────────────────── opening ───────────────────────────── */

static MprtSt *st_new(const char *name) {
    MprtSt *f = calloc(1, sizeof *f);
    if (f && !(f->path = strdup(name))) {
        free(f);
        return NULL;
    }
    if (f) f->fd = -1;
    return f;
}

/* Reads the preamble and the header from fd or memory and validates them. */
static MprtSt *st_load(MprtSt *f, uint64_t size, MprtErr *err) {
    unsigned char pre[8], *hdr = NULL;
    bool ok = size >= 8;
    if (!ok)
        mprt__err(err, "%s: not a safetensors file (truncated: %llu bytes)", f->path,
                  (unsigned long long)size);
    if (ok && f->mem)
        memcpy(pre, f->mem, 8);
    else if (ok && pread(f->fd, pre, 8, 0) != 8)
        ok = mprt__err(err, "%s: read failed: %s", f->path, strerror(errno));
    uint64_t n = ok ? mprt__le64(pre) : 0;
    if (ok && (n > ST_MAX_HEADER || n > size - 8))
        ok = mprt__err(err, "%s: safetensors header size %llu exceeds %s", f->path,
                       (unsigned long long)n, n > ST_MAX_HEADER ? "the 100 MB limit" : "the file");
    if (ok && !(hdr = malloc(n ? n : 1))) ok = mprt__err(err, "%s: out of memory", f->path);
    if (ok && f->mem)
        memcpy(hdr, f->mem + 8, n);
    else if (ok && pread(f->fd, hdr, n, 8) != (ssize_t)n)
        ok = mprt__err(err, "%s: read failed", f->path);
    if (ok) {
        f->data_start = 8 + n;
        f->data_size = size - 8 - n;
        ok = st_parse(f, hdr, n, err);
    }
    free(hdr);
    if (!ok) {
        mprt_st_close(f);
        return NULL;
    }
    return f;
}

MprtSt *mprt_st_open(const char *path, MprtErr *err) {
    MprtSt *f = st_new(path);
    if (!f) {
        mprt__err(err, "%s: out of memory", path);
        return NULL;
    }
    size_t size = 0;
    f->fd = mprt__open_regular(path, &size, err);
    if (f->fd < 0) {
        mprt_st_close(f);
        return NULL;
    }
    return st_load(f, (uint64_t)size, err);
}

MprtSt *mprt_st_open_mem(const void *buf, size_t size, const char *name, MprtErr *err) {
    MprtSt *f = st_new(name);
    if (!f) {
        mprt__err(err, "%s: out of memory", name);
        return NULL;
    }
    f->mem = buf;
    return st_load(f, size, err);
}

void mprt_st_close(MprtSt *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i < f->n; i++)
        free(f->e[i].name);
    free(f->e);
    for (int i = 0; i < 2 * f->nmeta; i++)
        free(f->meta[i]);
    free(f->meta);
    free(f->path);
    free(f);
}

/* ───────────────────────────── queries ───────────────────────────── */

int mprt_st_count(const MprtSt *f) { return f->n; }

MprtTensorRef mprt_st_info(const MprtSt *f, int i) {
    MprtTensorRef r = {0};
    if (i < 0 || i >= f->n) return r;
    r.name = f->e[i].name;
    r.dtype = f->e[i].dtype;
    r.ndim = f->e[i].ndim;
    memcpy(r.shape, f->e[i].shape, sizeof r.shape);
    return r;
}

const char *mprt_st_meta(const MprtSt *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

static bool same_shape(const StEntry *e, MprtDtype t, int ndim, const int64_t *shape) {
    if (e->dtype != t || e->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (e->shape[i] != shape[i]) return false;
    return true;
}

static bool st_copy(MprtSt *f, const StEntry *e, void *dst, MprtErr *err) {
    uint64_t n = e->end - e->begin, done = 0;
    if (n == 0) return true;
    if (f->mem) {
        memcpy(dst, f->mem + f->data_start + e->begin, n);
        return true;
    }
    while (done < n) {
        ssize_t r =
            pread(f->fd, (char *)dst + done, n - done, (off_t)(f->data_start + e->begin + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return mprt__err(err, "%s: reading tensor '%s' failed: %s", f->path, e->name,
                             r < 0 ? strerror(errno) : "file truncated");
        done += (uint64_t)r;
    }
    return true;
}

bool mprt_st_read(MprtSt *f, const char *name, MprtDtype t, int ndim, const int64_t *shape,
                  void *dst, MprtErr *err) {
    char nb[80], want[256], got[256];
    for (int i = 0; i < f->n; i++) {
        const StEntry *e = &f->e[i];
        if (strcmp(e->name, name) != 0) continue;
        if (!same_shape(e, t, ndim, shape))
            return mprt__err(err, "%s: tensor '%s': expected %s, found %s", f->path,
                             clean(name, nb, sizeof nb),
                             mprt__shape_str(want, sizeof want, t, ndim, shape, false),
                             mprt__shape_str(got, sizeof got, e->dtype, e->ndim, e->shape, false));
        return st_copy(f, e, dst, err);
    }
    return mprt__err(err, "%s: tensor '%s' is missing", f->path, clean(name, nb, sizeof nb));
}
