/*
 * fuzz_tokens.c: libFuzzer target for the runtime's token-stream reader (runtime/io_tokens.c):
 * nanoGPT's flat uint16 files and llm.c's 256-int32 header variant.
 *
 * Input layout: byte 0 selects the vocabulary the "model" has (0: unchecked, else 1 + b·257,
 * so small and large vocabularies are both reached), byte 1 the window (sequence length) 1 +
 * b % 64, and the rest is the file, parsed with mprt_tokens_parse — the checks mprt_tokens_open
 * runs on the mapped file. On success every token is read, so ASan sees a count or width the
 * parser got wrong. Findings: crashes, sanitizer reports, leaks, a message with a newline (errors
 * must be one line), a stream shorter than one window plus a token, or a token outside the
 * vocabulary.
 *
 * Built with -DMPCC_FUZZ=ON under clang; docs/testing.md ("runtime fuzzing") shows how to run it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mprt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int64_t vocab = data[0] ? 1 + (int64_t)data[0] * 257 : 0, window = 1 + data[1] % 64;
    MprtTokens t;
    MprtErr err = {""};
    if (!mprt_tokens_parse(data + 2, size - 2, "fuzz.bin", vocab, window, &t, &err)) {
        if (err.msg[0] == '\0' || strchr(err.msg, '\n')) abort();
        return 0;
    }
    if (t.count < window + 1 || (t.width != 2 && t.width != 4)) abort();
    for (int64_t i = 0; i < t.count; i++) {
        int64_t v = mprt_tokens_at(&t, i);
        if (v < 0 || (vocab > 0 && v >= vocab)) abort();
    }
    return 0;
}
