/*
 * io_tokens.c: token streams, the training data of language models as nanoGPT and llm.c write
 * them (MprtTokens in mprt.h; docs/runtime.md "Token streams").
 *
 * Two layouts, told apart by the first four bytes:
 *   - llm.c's: a header of 256 little-endian int32s — [0] the magic 20240520, [1] the version
 *     (1: uint16 tokens, GPT-2's; 2: uint32 tokens, Llama 3's), [2] the token count — then the
 *     tokens (karpathy/llm.c, dev/data/data_common.py, write_datafile);
 *   - nanoGPT's: the tokens alone, little-endian uint16 (its prepare.py's
 *     `np.array(ids, dtype=np.uint16).tofile(...)`).
 * A flat file could begin with the magic only if its first token were 50632 (0xC5C8), which no
 * GPT-2 vocabulary has, so the guess is safe for the files people make.
 *
 * Everything is checked before the first step: the layout (an odd length, a header cut short,
 * a count the data does not match either way), the size (at most MPRT_MAX_TOKENS), at least
 * one window of tokens, and every token below the model's vocabulary (the first one that is
 * not is named by its position). A file is memory-mapped, read only; the parse works on any
 * buffer, so the fuzz targets and the tests give it bytes.
 *
 * Nothing here uses MPI, so the fuzz targets build the loader without it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LLMC_MAGIC 20240520u
#define LLMC_HEADER 1024 /* 256 int32s */

/* The layout of buf: the first token, the token count and width; false with err when it does
 * not hold together. */
static bool tokens_layout(const unsigned char *buf, size_t size, const char *name, MprtTokens *out,
                          MprtErr *err) {
    size_t width = 2, data = size;
    const unsigned char *tok = buf;
    if (size >= 4 && mprt__le32(buf) == LLMC_MAGIC) {
        if (size < LLMC_HEADER)
            return mprt__err(err, "%s: truncated llm.c token header (%zu of %d bytes)", name, size,
                             LLMC_HEADER);
        uint32_t version = mprt__le32(buf + 4), count = mprt__le32(buf + 8);
        if (version != 1 && version != 2)
            return mprt__err(err,
                             "%s: unsupported llm.c token file version %u (mprt reads 1: uint16, "
                             "2: uint32)",
                             name, version);
        if (count > INT32_MAX)
            return mprt__err(err, "%s: bad llm.c header: negative token count", name);
        width = version == 1 ? 2 : 4, tok = buf + LLMC_HEADER, data = size - LLMC_HEADER;
        if (data != (size_t)count * width)
            return mprt__err(err,
                             "%s: %s: the header declares %u tokens (%zu bytes), the file has %zu "
                             "bytes of tokens",
                             name, data < (size_t)count * width ? "truncated" : "oversized", count,
                             (size_t)count * width, data);
    } else if (size % 2)
        return mprt__err(err, "%s: odd length (%zu bytes): not a stream of uint16 tokens", name,
                         size);
    if (data / width > (size_t)MPRT_MAX_TOKENS)
        return mprt__err(err, "%s: oversized: %zu tokens, more than the %lld a stream may hold",
                         name, data / width, (long long)MPRT_MAX_TOKENS);
    out->tok = tok, out->count = (int64_t)(data / width), out->width = (int)width;
    return true;
}

int64_t mprt_tokens_at(const MprtTokens *t, int64_t i) {
    const unsigned char *p = t->tok + (size_t)i * (size_t)t->width;
    return t->width == 2 ? (int64_t)(p[0] | p[1] << 8) : (int64_t)mprt__le32(p);
}

bool mprt_tokens_parse(const void *buf, size_t size, const char *name, int64_t vocab,
                       int64_t window, MprtTokens *out, MprtErr *err) {
    memset(out, 0, sizeof *out);
    MprtTokens t = {0};
    if (!tokens_layout((const unsigned char *)buf, size, name, &t, err)) return false;
    if (t.count < window + 1)
        return mprt__err(err,
                         "%s: %lld tokens, fewer than one window of the model's %lld plus the "
                         "next token",
                         name, (long long)t.count, (long long)window);
    for (int64_t i = 0; vocab > 0 && i < t.count; i++) {
        int64_t v = mprt_tokens_at(&t, i);
        if (v >= vocab)
            return mprt__err(err,
                             "%s: token %lld at position %lld is outside the vocabulary [0, %lld)",
                             name, (long long)v, (long long)i, (long long)vocab);
    }
    *out = t;
    return true;
}

bool mprt_tokens_open(const char *path, int64_t vocab, int64_t window, MprtTokens *out,
                      MprtErr *err) {
    memset(out, 0, sizeof *out);
    size_t size = 0;
    int fd = mprt__open_regular(path, &size, err);
    if (fd < 0) return false;
    if (size == 0) {
        close(fd);
        return mprt__err(err, "%s: empty token file", path);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return mprt__err(err, "%s: cannot map: %s", path, strerror(e));
    if (!mprt_tokens_parse(map, size, path, vocab, window, out, err)) {
        munmap(map, size);
        return false;
    }
    out->map = map, out->map_size = size;
    return true;
}

void mprt_tokens_close(MprtTokens *t) {
    if (t && t->map) munmap(t->map, t->map_size);
    if (t) memset(t, 0, sizeof *t);
}
