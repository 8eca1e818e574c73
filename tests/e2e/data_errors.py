#!/usr/bin/env python3
"""Bad training data is refused before the first step (docs/runtime.md, "Data files").

Compiles the small MLP (f32 inputs, class labels) and the small GPT (token sequences) at 1 and
2 devices and runs each with one broken data set at a time. Every case must exit with status
1, print exactly one line on stderr (besides mpirun's banner) holding the expected text, print
no progress line, and leave no checkpoint behind (--save is given to every run). Then one
good run of each kind: a .npy pair and a token stream of both layouts train and save.
"""
import os
import struct
import subprocess
import sys

import numpy as np
import e2e_common


def build(a, model, devices):
    return e2e_common.build(a.mpcc, a.workdir, model, devices)


def run(a, exe, np_, flags):
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1", "--steps", "2"]
    return subprocess.run(cmd + flags, capture_output=True, text=True, timeout=300)


def tokens(path, toks, header=None):
    with open(path, "wb") as f:
        if header is not None:
            f.write(struct.pack("<256i", *header, *([0] * (256 - len(header)))))
        f.write(np.asarray(toks, dtype=np.uint16).tobytes())


def files(w):
    """The broken (and good) data sets, written into w."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 48)).astype(np.float32)
    y = rng.integers(0, 10, 64).astype(np.int32)
    p = lambda n: os.path.join(w, n)
    np.save(p("x.npy"), x), np.save(p("y.npy"), y)
    np.save(p("y_short.npy"), y[:40])
    np.save(p("x_few.npy"), x[:20]), np.save(p("y_few.npy"), y[:20])
    xn = x.copy(); xn[37, 5] = np.nan; np.save(p("x_nan.npy"), xn)
    xi = x.copy(); xi[3, 0] = np.inf; np.save(p("x_inf.npy"), xi)
    np.save(p("x_f64.npy"), x.astype(np.float64))
    np.save(p("x_shape.npy"), x[:, :47])
    y9 = y.copy(); y9[11] = 10; np.save(p("y_range.npy"), y9)
    toks = (np.arange(3000) * 7 % 30).astype(np.uint16)
    tokens(p("train.bin"), toks)
    tokens(p("train_llmc.bin"), toks, [20240520, 1, len(toks)])
    tokens(p("trunc.bin"), toks[:100], [20240520, 1, 200])
    tokens(p("over.bin"), toks[:100], [20240520, 1, 50])
    tokens(p("vocab.bin"), np.concatenate([toks[:500], [31], toks[:10]]))
    tokens(p("short.bin"), toks[:8])
    with open(p("odd.bin"), "wb") as f:
        f.write(toks[:10].tobytes() + b"\0")
    return p


def main():
    a = e2e_common.args()
    p = files(a.workdir)
    mlp = [build(a, os.path.join(a.e2e, "mlp_small.mp"), n) for n in (1, 2)]
    gpt = [build(a, os.path.join(a.e2e, "gpt_small.mp"), n) for n in (1, 2)]
    bad = [
        (mlp, ["--data", p("x.npy"), "--labels", p("y_short.npy")],
         "x.npy has 64 rows but " + p("y_short.npy") + " has 40: inputs and labels pair row by row"),
        (mlp, ["--data", p("x_few.npy"), "--labels", p("y_few.npy")],
         "x_few.npy: expected f32[N, 48] with N >= 32, got f32[20, 48]"),
        (mlp, ["--data", p("x_nan.npy")], "x_nan.npy: non-finite value nan at row 37, element 5"),
        (mlp, ["--data", p("x_inf.npy")], "x_inf.npy: non-finite value inf at row 3, element 0"),
        (mlp, ["--data", p("x_f64.npy")], "x_f64.npy: unsupported dtype '<f8'"),
        (mlp, ["--data", p("x_shape.npy")], "x_shape.npy: expected f32[N, 48] with N >= 32, got f32[64, 47]"),
        (mlp, ["--labels", p("y_range.npy")], "y_range.npy: value 10 at row 11, element 0 is outside [0, 10)"),
        (mlp, ["--data", p("train.bin")], "train.bin: not a .npy file (bad magic)"),
        (gpt, ["--data", p("trunc.bin")],
         "trunc.bin: truncated: the header declares 200 tokens (400 bytes), the file has 200 bytes of tokens"),
        (gpt, ["--data", p("over.bin")],
         "over.bin: oversized: the header declares 50 tokens (100 bytes), the file has 200 bytes of tokens"),
        (gpt, ["--data", p("odd.bin")], "odd.bin: odd length (21 bytes): not a stream of uint16 tokens"),
        (gpt, ["--data", p("vocab.bin")], "vocab.bin: token 31 at position 500 is outside the vocabulary [0, 30)"),
        (gpt, ["--data", p("short.bin")], "short.bin: 8 tokens, fewer than one window of the model's 8 plus the next token"),
        (gpt, ["--data", p("train.bin"), "--labels", p("y.npy")], "holds the labels (each window's next tokens); drop --labels"),
        # the validation set (--val-data, --val-labels) is checked the same way, before any step
        (mlp, ["--val-data", p("x.npy"), "--val-labels", p("y_short.npy")],
         "x.npy has 64 rows but " + p("y_short.npy") + " has 40: inputs and labels pair row by row"),
        (mlp, ["--val-data", p("x_nan.npy"), "--val-labels", p("y.npy")],
         "x_nan.npy: non-finite value nan at row 37, element 5"),
        (mlp, ["--val-data", p("x_f64.npy"), "--val-labels", p("y.npy")], "x_f64.npy: unsupported dtype '<f8'"),
        (mlp, ["--val-data", p("x_few.npy"), "--val-labels", p("y_few.npy")],
         "x_few.npy: expected f32[N, 48] with N >= 32, got f32[20, 48]"),
        (mlp, ["--val-data", p("x.npy")], "x.npy needs --val-labels (the labels of its rows)"),
        (mlp, ["--val-labels", p("y.npy")], "--val-labels needs --val-data"),
        (mlp, ["--eval-every", "2"], "--eval-every needs --val-data"),
        (gpt, ["--val-data", p("trunc.bin")], "trunc.bin: truncated: the header declares 200 tokens"),
        (gpt, ["--data", p("train.bin"), "--val-data", p("train.bin"), "--val-labels", p("y.npy")],
         "--val-labels " + p("y.npy") + ": the token stream " + p("train.bin") + " holds the labels"),
    ]
    fails = []
    save = p("never.safetensors")
    for exes, flags, want in bad:
        for exe, np_ in exes:
            r = run(a, exe, np_, flags + ["--save", save])
            # the trainer's own lines start with its name; mpirun adds its banner around them
            lines = [l for l in r.stderr.splitlines()
                     if l.startswith(os.path.basename(exe) + ":") or "rror" in l or "anitizer" in l]
            ok = (r.returncode == 1 and len(lines) == 1 and want in lines[0] and "step " not in r.stdout
                  and not os.path.exists(save))
            print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(exe)} {' '.join(os.path.basename(f) for f in flags)}: "
                  f"{lines[0] if lines else '(no message)'}")
            if not ok:
                fails.append(f"{exe} {flags}: rc {r.returncode}, want one line with '{want}'\n{r.stdout}{r.stderr}")
    good = [(mlp, ["--data", p("x.npy"), "--labels", p("y.npy")]), (gpt, ["--data", p("train.bin")]),
            (gpt, ["--data", p("train_llmc.bin")])]
    for exes, flags in good:
        for exe, np_ in exes:
            ck = p("good.safetensors")
            r = run(a, exe, np_, flags + ["--save", ck])
            if r.returncode != 0 or "step 2/2" not in r.stdout or not os.path.exists(ck):
                fails.append(f"{exe} {flags}: a good data set failed\n{r.stdout}{r.stderr}")
            if os.path.exists(ck):
                os.unlink(ck)
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
