/*
 * source.c: getting a .mp file's text into the parser.
 *
 * Before a byte reaches the lexer we decide whether the file is something mpcc should
 * read at all: it must exist, be a regular file (not a directory, a pipe or a device),
 * be at most FE_MAX_SOURCE bytes (a model description is a few kilobytes; a 10,000-layer
 * generated model is a few hundred), and be text: no NUL byte and valid UTF-8. Each of
 * these gets one clear error naming the file instead of a cascade of lexical errors.
 *
 * The accepted text is copied into the arena, NUL-terminated, and registered with the
 * Diag so caret lines can quote it. Then the reentrant flex scanner and the pure bison
 * parser run over it with a FeParser as their shared state; nothing here is global, so
 * the fuzz target can parse again and again in one process.
 */
#include "ast.h"
#include "parser.h"
#define YYSTYPE FE_YYSTYPE
#define YYLTYPE FE_YYLTYPE
#include "lexer.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define FE_MAX_SOURCE ((size_t)1 << 20)

/* A location naming the whole file (no line). */
static SrcLoc file_loc(const char *file) {
    SrcLoc l = {file, 0, 0, 0};
    return l;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    size_t len;
    unsigned min;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, min = 0x80;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, min = 0x800;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    unsigned cp = s[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Rejects text that is not NUL-free UTF-8, pointing at the first bad byte's line. */
static bool check_text(Diag *d, const char *file, const char *src, size_t len) {
    int line = 1;
    for (size_t i = 0; i < len;) {
        if (src[i] == '\0') {
            diag_error(d, file_loc(file),
                       "binary file: NUL byte at offset %zu (line %d); expected a .mp text file", i,
                       line);
            return false;
        }
        size_t k = utf8_seq((const unsigned char *)src + i, len - i);
        if (k == 0) {
            diag_error(
                d, file_loc(file),
                "binary file: invalid UTF-8 at offset %zu (line %d); expected a .mp text file", i,
                line);
            return false;
        }
        if (src[i] == '\n') line++;
        i += k;
    }
    return true;
}

static bool too_large(Diag *d, const char *file, size_t len) {
    if (len <= FE_MAX_SOURCE) return false;
    diag_error(d, file_loc(file), "file is too large (%zu bytes; the limit is %zu bytes)", len,
               FE_MAX_SOURCE);
    return true;
}

Ast *fe_parse_string(Arena *a, Diag *d, const char *file, const char *src, size_t len) {
    file = arena_strdup(a, file);
    SrcLoc whole = file_loc(file);
    if (len == 0) {
        diag_error(d, whole, "file is empty; expected a model");
        return NULL;
    }
    if (too_large(d, file, len) || !check_text(d, file, src, len)) return NULL;
    char *text = arena_strndup(a, src, len);
    diag_set_source(d, file, text, len);

    int errors0 = d->errors;
    FeParser P = {.a = a, .d = d, .file = file, .src = text, .len = len, .line = 1, .col = 1};
    P.ast = arena_alloc(a, sizeof *P.ast);
    P.ast->file = file;
    P.ast->src = text;
    P.ast->src_len = len;
    yyscan_t scanner;
    if (fe_yylex_init_extra(&P, &scanner) != 0) {
        diag_error(d, whole, "internal compiler error: cannot start the lexer");
        return NULL;
    }
    fe_yy_scan_bytes(text, (int)len, scanner);
    fe_yyparse(scanner, &P);
    fe_yylex_destroy(scanner);
    if (d->errors == errors0 && !P.ast->model)
        diag_error(d, whole, "no model in this file; expected 'model NAME { ... }'");
    return d->errors == errors0 ? P.ast : NULL;
}

Ast *fe_parse_file(Arena *a, Diag *d, const char *path) {
    SrcLoc whole = file_loc(path);
    struct stat st;
    if (stat(path, &st) != 0) {
        diag_error(d, whole, "cannot open file: %s", strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        diag_error(d, whole, "is a directory; expected a .mp file");
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        diag_error(d, whole, "not a regular file; expected a .mp file");
        return NULL;
    }
    if (too_large(d, path, (size_t)st.st_size)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, whole, "cannot open file: %s", strerror(errno));
        return NULL;
    }
    char *buf = arena_alloc(a, FE_MAX_SOURCE + 2);
    size_t len = fread(buf, 1, FE_MAX_SOURCE + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        diag_error(d, whole, "cannot read file");
        return NULL;
    }
    return fe_parse_string(a, d, path, buf, len);
}
