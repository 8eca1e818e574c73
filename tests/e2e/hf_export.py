#!/usr/bin/env python3
"""`./train --export-hf DIR` (docs/hf.md) against an independent GPT-2 forward in numpy.

Trains a small GPT on one device, exports it at the end of the run, and checks:

  * the directory holds config.json (GPT-2's keys: gelu_new, the eps, untied head, the real
    vocabulary) and model.safetensors (metadata format "pt", exactly GPT-2's tensor names
    and shapes for n_layer blocks);
  * exporting the saved checkpoint (--init F --steps 0 --export-hf) under plans of 1, 2 and
    4 devices writes the same bytes;
  * GPT-2's forward pass in numpy (tests/e2e/gpt2_numpy.py), reading those files by GPT-2's
    names, gives the logits the trainer's own forward gives (--generate --logits, greedy, 1
    and 4 devices) for every context, within float tolerance;
  * a model that is not GPT-2-shaped is refused at start-up with one line naming the .mp
    file, line and column (relu MLP, non-causal attention, a head with bias, no learned
    positions, a model that is not a language model), and bad directories are refused
    before any step, naming the path; nothing is written in either case.

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_numpy  # noqa: E402
import e2e_common

RTOL = 1e-4  # float32 trainer vs float64 reference, relative to the largest logit


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


def build(a, model, devices, tag):
    exe, ranks = e2e_common.build(a.mpcc, a.workdir, model, devices, tag)
    return [a.mpirun, "--oversubscribe", "-np", str(ranks), exe, "--threads", "1"]


def expected_names(n_layer):
    names = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
             "transformer.ln_f.bias", "lm_head.weight"}
    for i in range(n_layer):
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names |= {f"transformer.h.{i}.{part}.weight", f"transformer.h.{i}.{part}.bias"}
    return names


def check_files(d, a, fails):
    cfg, w, meta = gpt2_numpy.load(d)
    want = {"model_type": "gpt2", "activation_function": "gelu_new", "tie_word_embeddings": False,
            "vocab_size": a.vocab, "n_layer": a.layers, "layer_norm_epsilon": 1e-5}
    for k, v in want.items():
        if cfg.get(k) != v:
            fails.append(f"config.json: {k} is {cfg.get(k)!r}, expected {v!r}")
    if meta.get("format") != "pt":
        fails.append(f"model.safetensors: metadata {meta}, transformers needs format pt")
    if set(w) != expected_names(a.layers):
        fails.append(f"tensor names differ from GPT-2's: {sorted(set(w) ^ expected_names(a.layers))}")
        return cfg, w
    D, V, inner = cfg["n_embd"], cfg["vocab_size"], cfg["n_inner"]
    shapes = {"transformer.wte.weight": (V, D), "lm_head.weight": (V, D),
              "transformer.h.0.attn.c_attn.weight": (D, 3 * D),
              "transformer.h.0.mlp.c_fc.weight": (D, inner),
              "transformer.h.0.mlp.c_proj.weight": (inner, D),
              "transformer.wpe.weight": (cfg["n_positions"], D)}
    for k, s in shapes.items():
        if w[k].shape != s:
            fails.append(f"{k}: shape {w[k].shape}, expected {s}")
    return cfg, w


def check_logits(a, cmd, ckpt, cfg, w, fails, tag):
    path = os.path.join(a.workdir, f"logits_{tag}.npy")
    r = run(cmd + ["--generate", "10", "--init", ckpt, "--prompt-tokens", "1,2,3",
                   "--temperature", "0", "--logits", path])
    g = re.search(r"^generated:((?: \d+)*)$", r.stdout, re.M)
    if r.returncode != 0 or not g:
        fails.append(f"{tag}: --generate --logits failed:\n{r.stdout}")
        return
    ctx = [1, 2, 3] + [int(x) for x in g.group(1).split()]
    got = np.load(path)
    T = a.context
    worst = 0.0
    for i in range(got.shape[0]):
        window = ctx[: 3 + i][-T:]
        ref = gpt2_numpy.logits(cfg, w, window)[-1]
        worst = max(worst, float(np.abs(ref - got[i]).max() / max(1.0, np.abs(ref).max())))
    print(f"{tag}: {got.shape[0]} contexts, logits within {worst:.2e} (relative) of numpy GPT-2")
    if not got.shape == (10, a.vocab) or worst > RTOL:
        fails.append(f"{tag}: logits {got.shape} differ from numpy GPT-2 by {worst:.3e} > {RTOL}")


def one_line_error(r, fails, what, pattern, cmd):
    prog = os.path.basename(cmd[4]) + ": "  # the trainer's messages start with its name
    lines = [l for l in r.stdout.splitlines() if l.startswith(prog)]
    if r.returncode == 0 or len(lines) != 1 or not re.search(pattern, lines[0]):
        fails.append(f"{what}: expected exit 1 and one line matching {pattern!r}, got "
                     f"{r.returncode}:\n{r.stdout}")
    elif re.search(r"^step \d", r.stdout, re.M):
        fails.append(f"{what}: steps ran before the error")
    else:
        print(f"{what}: {lines[0]}")


# (what, substitution in the model's text, the token on the line the error must point at,
#  the message)
REFUSALS = [
    ("relu MLP", (r"gelu\(", "relu("), "relu(", r"activation is gelu"),
    ("non-causal attention", (r"causal=true", "causal=false"), "attention(", r"causal=true"),
    ("head with bias", (r"30, bias=false\)", "30)"), "logits", r"lm_head has no bias"),
    ("no learned positions", (r", positions=8", ""), "embedding(", r"learned positions"),
]


def check_refusals(a, fails):
    with open(a.model) as f:
        text = f.read()
    for what, (pat, rep), token, msg in REFUSALS:
        src = re.sub(pat, rep, text)
        path = os.path.join(a.workdir, "refuse_" + re.sub(r"\W", "_", what) + ".mp")
        with open(path, "w") as f:
            f.write(src)
        lines = src.splitlines()
        out = os.path.join(a.workdir, "refused_out")
        cmd = build(a, path, 1, "refuse")
        r = run(cmd + ["--steps", "3", "--export-hf", out])
        m = re.search(r"--export-hf: (.+?):(\d+):(\d+): ", r.stdout)
        one_line_error(r, fails, what, re.escape(path) + r":\d+:\d+: .*" + msg, cmd)
        if m and token not in lines[int(m.group(2)) - 1]:
            fails.append(f"{what}: the error points at line {m.group(2)}, "
                         f"'{lines[int(m.group(2)) - 1].strip()}', not at {token}")
        if os.path.exists(out):
            fails.append(f"{what}: {out} was created")
    cmd = build(a, a.other, 1, "other")
    r = run(cmd + ["--steps", "3", "--export-hf", os.path.join(a.workdir, "refused_out")])
    one_line_error(r, fails, "not a language model",
                   re.escape(a.other) + r":\d+:\d+: GPT-2 is a language model", cmd)


def check_dirs(a, cmd, fails):
    missing = os.path.join(a.workdir, "no", "such", "dir")
    r = run(cmd + ["--steps", "3", "--export-hf", missing])
    one_line_error(r, fails, "missing parent", re.escape(missing) + r": cannot create it", cmd)
    afile = os.path.join(a.workdir, "a_file")
    open(afile, "w").close()
    r = run(cmd + ["--steps", "3", "--export-hf", afile])
    one_line_error(r, fails, "a regular file", re.escape(afile) + r": not a directory", cmd)
    r = run(cmd + ["--steps", "3", "--logits", os.path.join(a.workdir, "l.npy")])
    one_line_error(r, fails, "--logits alone", r"--logits goes with --generate", cmd)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True, help="a GPT-2-shaped model")
    p.add_argument("--other", required=True, help="a model that is not a language model")
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--context", type=int, required=True, help="the model's T")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    fails = []
    ckpt, trained = os.path.join(a.workdir, "gpt.safetensors"), os.path.join(a.workdir, "hf")
    one = build(a, a.model, 1, "gpt")
    r = run(one + ["--steps", "30", "--save", ckpt, "--export-hf", trained])
    if r.returncode != 0 or "export-hf: " not in r.stdout:
        print(r.stdout)
        return 1
    cfg, w = check_files(trained, a, fails)
    with open(os.path.join(trained, "model.safetensors"), "rb") as f:
        ref = f.read()
    for n in (1, 2, 4):
        cmd = one if n == 1 else build(a, a.model, n, "gpt")
        out = os.path.join(a.workdir, f"hf_{n}")
        r = run(cmd + ["--init", ckpt, "--steps", "0", "--export-hf", out])
        with open(os.path.join(out, "model.safetensors"), "rb") if r.returncode == 0 else \
                open(os.devnull, "rb") as f:
            same = f.read() == ref
        print(f"{n} devices ({cmd[3]} ranks): export {'identical' if same else 'DIFFERENT'}")
        if not same:
            fails.append(f"{n} devices: the export of the checkpoint differs:\n{r.stdout}")
        if n in (1, 4) and not fails:
            check_logits(a, cmd, ckpt, cfg, w, fails, f"{n} devices")
    check_refusals(a, fails)
    check_dirs(a, one, fails)
    for f in fails:
        print("FAIL:", f)
    print("hf_export:", "ok" if not fails else f"{len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
