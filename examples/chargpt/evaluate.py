#!/usr/bin/env python3
"""Validation loss of a chargpt.mp checkpoint, computed with numpy from its weights.

Runs the network of chargpt.mp (docs/kernels.md gives each op's math: token and position
embeddings, pre-LN blocks of causal multi-head attention and a GELU MLP, a final layernorm and
the LM head without bias) over a token file cut into consecutive windows of the model's
context, each window predicting the same window one token on, and prints the mean
cross-entropy per character (nats) over every position of every window:

  python3 examples/chargpt/evaluate.py CKPT.safetensors val.bin [--windows N]

prints `val: loss L (N windows of T characters)`. The context length, width and heads are
read from the checkpoint (the position table's rows; `--heads` if the model file changes them).
"""
import argparse
import json
import struct
import sys

import numpy as np

EPS = 1e-5  # layernorm's default eps (docs/ops.md)


def read_safetensors(path):
    """{name: float32 array} of a checkpoint's weights (optimizer state left out)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or name.startswith("optimizer."):
            continue
        if info["dtype"] != "F32":
            sys.exit(f"evaluate.py: {path}: tensor {name} is {info['dtype']}, not F32")
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    return out


def layernorm(x, w, name):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w[name + ".gamma"] + w[name + ".beta"]


def attention(x, w, name, heads):
    n, t, d = x.shape
    hd = d // heads

    def split(z):
        return z.reshape(n, t, heads, hd).transpose(0, 2, 1, 3)

    q = split(x @ w[name + ".wq"] + w[name + ".bq"])
    k = split(x @ w[name + ".wk"] + w[name + ".bk"])
    v = split(x @ w[name + ".wv"] + w[name + ".bv"])
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    s = np.where(np.tril(np.ones((t, t), dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    y = (p @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    return y @ w[name + ".wo"] + w[name + ".bo"]


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def logits(w, tok, heads):
    """The LM head's logits [N, T, V] for token windows tok [N, T]."""
    h = w["wte.weight"][tok] + w["wte.pos"][: tok.shape[1]]
    k = 0
    while f"blocks.{k}.ln1.gamma" in w:
        b = f"blocks.{k}"
        h = h + attention(layernorm(h, w, b + ".ln1"), w, b + ".attn", heads)
        m = gelu(layernorm(h, w, b + ".ln2") @ w[b + ".fc1.weight"] + w[b + ".fc1.bias"])
        h = h + m @ w[b + ".fc2.weight"] + w[b + ".fc2.bias"]
        k += 1
    return layernorm(h, w, "lnf") @ w["logits.weight"]


def mean_loss(w, tokens, t, heads, windows, chunk=64):
    """Mean cross-entropy over consecutive windows of t tokens (labels one token on)."""
    n = min((len(tokens) - 1) // t, windows)
    total = 0.0
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x = np.stack([tokens[i * t: i * t + t] for i in range(s, e)]).astype(np.int64)
        y = np.stack([tokens[i * t + 1: i * t + t + 1] for i in range(s, e)]).astype(np.int64)
        z = logits(w, x, heads).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        total -= np.take_along_axis(logp, y[..., None], axis=-1).sum()
    return total / (n * t), n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("tokens", help="a flat uint16 token file (prepare.py's val.bin)")
    p.add_argument("--heads", type=int, default=4, help="attention heads of the model (default 4)")
    p.add_argument("--windows", type=int, default=1 << 30, help="evaluate the first N windows only")
    a = p.parse_args()
    try:
        w = read_safetensors(a.checkpoint)
        tokens = np.fromfile(a.tokens, dtype="<u2")
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"evaluate.py: {e}")
    if "wte.pos" not in w:
        sys.exit(f"evaluate.py: {a.checkpoint} is not a chargpt.mp checkpoint (no wte.pos)")
    t = w["wte.pos"].shape[0]
    if len(tokens) < t + 1:
        sys.exit(f"evaluate.py: {a.tokens}: {len(tokens)} tokens, fewer than one window of {t} plus one")
    loss, n = mean_loss(w, tokens, t, a.heads, a.windows)
    print(f"val: loss {loss:.4f} ({n} windows of {t} characters)")


if __name__ == "__main__":
    main()
