/*
 * io_npy.c: NumPy .npy files
 * (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 *
 * A .npy file is a preamble — the magic "\x93NUMPY", a major and minor version byte, and the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0) — then an ASCII
 * (3.0: UTF-8) Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * padded with spaces and a newline, then the raw array. The header is a Python literal,
 * not JSON, so it is parsed here by a small recursive-descent reader that accepts exactly
 * the three keys with the value types numpy writes, in any order, each once.
 *
 * Everything read from the file is bounded before it is trusted: the header length
 * (≤ 1 MiB and within the file), at most MPRT_MAX_DIMS dimensions, each dimension and their
 * product (overflow-checked), and the data must fill the rest of the file exactly. Only
 * little-endian '<f4', '<i4', '<i8' in C order are accepted; the host must be little-endian
 * too (checked at compile time). Every problem is one line naming the file.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mprt reads and writes little-endian files in host order: a little-endian host is required"
#endif

#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_BYTES ((int64_t)1 << 46) /* 64 TiB: a bound for the arithmetic, not a policy */

typedef struct NpyHdr {
    MprtDtype dtype;
    int ndim;
    int64_t shape[MPRT_MAX_DIMS];
    int64_t numel;
    size_t data_off;
} NpyHdr;

/* The header text being parsed, with the file name for messages. */
typedef struct Lex {
    const char *p, *end, *name;
    MprtErr *err;
} Lex;

static void skip_ws(Lex *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
}

static bool eat(Lex *x, char c) {
    skip_ws(x);
    if (x->p < x->end && *x->p == c) {
        x->p++;
        return true;
    }
    return false;
}

static bool bad(Lex *x, const char *what) {
    return mprt__err(x->err, "%s: bad .npy header: %s", x->name, what);
}

/* A quoted string ('...' or "...", no escapes: numpy never writes any) into out. */
static bool parse_str(Lex *x, char *out, size_t cap) {
    skip_ws(x);
    if (x->p >= x->end || (*x->p != '\'' && *x->p != '"'))
        return bad(x, "expected a quoted string");
    char q = *x->p++;
    size_t n = 0;
    while (x->p < x->end && *x->p != q) {
        if (*x->p == '\\' || n + 1 >= cap) return bad(x, "string too long or escaped");
        if (*x->p < 0x20 || *x->p > 0x7e) /* keeps messages that quote it on one line */
            return bad(x, "control or non-ASCII character in a string");
        out[n++] = *x->p++;
    }
    if (x->p >= x->end) return bad(x, "unterminated string");
    x->p++;
    out[n] = '\0';
    return true;
}

static bool parse_dim(Lex *x, int64_t *v) {
    skip_ws(x);
    if (x->p >= x->end || !isdigit((unsigned char)*x->p)) return bad(x, "expected a dimension");
    int64_t n = 0;
    while (x->p < x->end && isdigit((unsigned char)*x->p)) {
        if (n > (NPY_MAX_BYTES - 9) / 10) return bad(x, "dimension too large");
        n = n * 10 + (*x->p++ - '0');
    }
    *v = n;
    return true;
}

/* '(' [dim {',' dim} [',']] ')' */
static bool parse_shape(Lex *x, NpyHdr *h) {
    if (!eat(x, '(')) return bad(x, "shape must be a tuple");
    h->ndim = 0;
    while (!eat(x, ')')) {
        if (h->ndim == MPRT_MAX_DIMS) return bad(x, "more than 8 dimensions");
        if (!parse_dim(x, &h->shape[h->ndim++])) return false;
        if (!eat(x, ',')) {
            if (!eat(x, ')')) return bad(x, "expected ',' or ')' in shape");
            break;
        }
    }
    return true;
}

static bool parse_descr(Lex *x, NpyHdr *h) {
    char d[32];
    if (!parse_str(x, d, sizeof d)) return false;
    if (strcmp(d, "<f4") == 0)
        h->dtype = MPRT_F32;
    else if (strcmp(d, "<i4") == 0)
        h->dtype = MPRT_I32;
    else if (strcmp(d, "<i8") == 0)
        h->dtype = MPRT_I64;
    else
        return mprt__err(x->err, "%s: unsupported dtype '%s' (mprt reads <f4, <i4 and <i8)",
                         x->name, d);
    return true;
}

static bool parse_fortran(Lex *x) {
    skip_ws(x);
    size_t left = (size_t)(x->end - x->p);
    if (left >= 5 && memcmp(x->p, "False", 5) == 0) {
        x->p += 5;
        return true;
    }
    if (left >= 4 && memcmp(x->p, "True", 4) == 0)
        return mprt__err(x->err,
                         "%s: Fortran-order arrays are not supported (save with "
                         "numpy.ascontiguousarray)",
                         x->name);
    return bad(x, "fortran_order must be True or False");
}

/* key ':' value; seen[] catches duplicates. */
static bool parse_entry(Lex *x, NpyHdr *h, bool seen[3]) {
    char key[32];
    if (!parse_str(x, key, sizeof key)) return false;
    if (!eat(x, ':')) return bad(x, "expected ':'");
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(key, keys[i]) != 0) continue;
        if (seen[i]) return bad(x, "duplicate key");
        seen[i] = true;
        return i == 0 ? parse_descr(x, h) : i == 1 ? parse_fortran(x) : parse_shape(x, h);
    }
    return bad(x, "unknown key");
}

/* '{' entry {',' entry} [','] '}' then only padding. */
static bool parse_dict(Lex *x, NpyHdr *h) {
    bool seen[3] = {false, false, false};
    if (!eat(x, '{')) return bad(x, "expected '{'");
    while (!eat(x, '}')) {
        if (!parse_entry(x, h, seen)) return false;
        if (!eat(x, ',')) {
            if (!eat(x, '}')) return bad(x, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(x);
    if (x->p != x->end) return bad(x, "text after the dictionary");
    if (!seen[0] || !seen[1] || !seen[2]) return bad(x, "missing descr, fortran_order or shape");
    return true;
}

/* The preamble: magic, version, header length; sets the header's span. */
static bool parse_preamble(const unsigned char *buf, size_t size, const char *name, size_t *hoff,
                           size_t *hlen, MprtErr *err) {
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return mprt__err(err, "%s: not a .npy file (bad magic)", name);
    int major = buf[6], minor = buf[7];
    if (major == 1 && minor == 0) {
        *hoff = 10;
        *hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (size < 12) return mprt__err(err, "%s: truncated .npy header", name);
        *hoff = 12;
        *hlen = mprt__le32(buf + 8);
    } else {
        return mprt__err(err, "%s: unsupported .npy format version %d.%d", name, major, minor);
    }
    if (*hlen > NPY_MAX_HEADER)
        return mprt__err(err, "%s: .npy header length %zu exceeds the 1 MiB limit", name, *hlen);
    if (*hlen > size - *hoff)
        return mprt__err(err, "%s: truncated .npy header (%zu bytes declared, %zu present)", name,
                         *hlen, size - *hoff);
    return true;
}

static bool parse_npy(const unsigned char *buf, size_t size, const char *name, NpyHdr *h,
                      MprtErr *err) {
    size_t hoff = 0, hlen = 0;
    if (!parse_preamble(buf, size, name, &hoff, &hlen, err)) return false;
    Lex x = {(const char *)buf + hoff, (const char *)buf + hoff + hlen, name, err};
    memset(h, 0, sizeof *h);
    if (!parse_dict(&x, h)) return false;
    int64_t esize = (int64_t)mprt_dtype_size(h->dtype);
    if (!mprt__numel(h->ndim, h->shape, esize, NPY_MAX_BYTES, &h->numel))
        return mprt__err(err, "%s: .npy shape too large", name);
    h->data_off = hoff + hlen;
    uint64_t have = size - h->data_off, need = (uint64_t)(h->numel * esize);
    if (have != need) {
        char s[256];
        mprt__shape_str(s, sizeof s, h->dtype, h->ndim, h->shape, false);
        return mprt__err(err, "%s: size mismatch: %s needs %llu data bytes, the file has %llu",
                         name, s, (unsigned long long)need, (unsigned long long)have);
    }
    return true;
}

/* The caller's expectation against the file's header. */
static bool check_npy(const NpyHdr *h, const char *name, MprtDtype want, int ndim,
                      const int64_t *shape, int64_t min_rows, MprtErr *err) {
    bool ints = want != MPRT_F32 && h->dtype != MPRT_F32;
    bool ok = (h->dtype == want || ints) && h->ndim == ndim && ndim >= 1 && h->shape[0] >= min_rows;
    for (int i = 1; ok && i < ndim; i++)
        ok = h->shape[i] == shape[i];
    if (ok) return true;
    char e[256], g[256], rows[64] = "";
    mprt__shape_str(e, sizeof e, want, ndim, shape, true);
    mprt__shape_str(g, sizeof g, h->dtype, h->ndim, h->shape, false);
    if (min_rows > 1) snprintf(rows, sizeof rows, " with N >= %lld", (long long)min_rows);
    return mprt__err(err, "%s: expected %s%s, got %s", name, e, rows, g);
}

/* Copies (converting i32 ↔ i64 with a range check) the data into a new buffer. */
static bool convert(const unsigned char *src, const NpyHdr *h, const char *name, MprtDtype want,
                    MprtArray *out, MprtErr *err) {
    size_t n = (size_t)h->numel, esize = mprt_dtype_size(want);
    void *dst = malloc(n ? n * esize : 1);
    if (!dst) return mprt__err(err, "%s: out of memory for %zu bytes", name, n * esize);
    if (h->dtype == want) {
        memcpy(dst, src, n * esize);
    } else if (want == MPRT_I64) {
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            ((int64_t *)dst)[i] = v;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                free(dst);
                return mprt__err(err, "%s: value %lld at index %zu does not fit i32", name,
                                 (long long)v, i);
            }
            ((int32_t *)dst)[i] = (int32_t)v;
        }
    }
    out->dtype = want;
    out->ndim = h->ndim;
    memcpy(out->shape, h->shape, sizeof out->shape);
    out->numel = h->numel;
    out->data = dst;
    return true;
}

bool mprt_npy_parse(const void *buf, size_t size, const char *name, MprtDtype want, int ndim,
                    const int64_t *shape, int64_t min_rows, MprtArray *out, MprtErr *err) {
    NpyHdr h;
    out->data = NULL;
    if ((unsigned)want >= MPRT_DTYPE__COUNT || ndim < 1 || ndim > MPRT_MAX_DIMS)
        return mprt__err(err, "%s: invalid expectation (dtype %d, %d dims)", name, (int)want, ndim);
    const unsigned char *b = buf;
    return parse_npy(b, size, name, &h, err) &&
           check_npy(&h, name, want, ndim, shape, min_rows, err) &&
           convert(b + h.data_off, &h, name, want, out, err);
}

bool mprt_npy_load(const char *path, MprtDtype want, int ndim, const int64_t *shape,
                   int64_t min_rows, MprtArray *out, MprtErr *err) {
    unsigned char *buf = NULL;
    size_t size = 0;
    out->data = NULL;
    if (!mprt__read_file(path, (size_t)NPY_MAX_BYTES, &buf, &size, err)) return false;
    bool ok = mprt_npy_parse(buf, size, path, want, ndim, shape, min_rows, out, err);
    free(buf);
    return ok;
}

/* ───────────────────────────── writing ───────────────────────────── */

/* The 1.0 header, padded so the data starts at a multiple of 64 bytes. */
static size_t npy_header(char *buf, size_t cap, MprtDtype t, int ndim, const int64_t *shape) {
    static const char *const descr[] = {"<f4", "<i4", "<i8"};
    size_t n = (size_t)snprintf(buf + 10, cap - 10,
                                "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[t]);
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + 10 + n, cap - 10 - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    n += (size_t)snprintf(buf + 10 + n, cap - 10 - n, "%s), }", ndim == 1 ? "," : "");
    while ((10 + n + 1) % 64 != 0)
        buf[10 + n++] = ' ';
    buf[10 + n++] = '\n';
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(n & 0xff);
    buf[9] = (char)(n >> 8);
    return 10 + n;
}

bool mprt_npy_save(const char *path, MprtDtype t, int ndim, const int64_t *shape, const void *data,
                   MprtErr *err) {
    int64_t numel = 0;
    if ((unsigned)t >= MPRT_DTYPE__COUNT || ndim < 0 || ndim > MPRT_MAX_DIMS ||
        !mprt__numel(ndim, shape, (int64_t)mprt_dtype_size(t), NPY_MAX_BYTES, &numel))
        return mprt__err(err, "%s: invalid array to save", path);
    char hdr[512];
    size_t hn = npy_header(hdr, sizeof hdr, t, ndim, shape);
    MprtAtomic w;
    return mprt__atomic_open(&w, path, err) && mprt__atomic_write(&w, hdr, hn, err) &&
           mprt__atomic_write(&w, data, (size_t)numel * mprt_dtype_size(t), err) &&
           mprt__atomic_commit(&w, err);
}
