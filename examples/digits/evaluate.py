#!/usr/bin/env python3
"""Validation accuracy of a digits.mp checkpoint, computed with numpy from its weights.

Reads the safetensors checkpoint a trainer saved (--save), runs the network of digits.mp
(linear layers in the checkpoint's order, relu between them) on the validation images
prepare.py wrote, and prints the mean cross-entropy and the share of images whose largest
logit is the right digit:

  python3 examples/digits/evaluate.py CKPT.safetensors DATADIR

prints `val: loss L | accuracy A% (K of N)`.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    """{name: float64 array} of a checkpoint's weights (optimizer state left out)."""
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
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def logits(weights, x):
    layers = [k[: -len(".weight")] for k in weights if k.endswith(".weight")]
    h = x
    for i, name in enumerate(layers):
        h = h @ weights[name + ".weight"] + weights[name + ".bias"]
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("datadir")
    a = p.parse_args()
    try:
        x = np.load(os.path.join(a.datadir, "x_val.npy")).astype(np.float64)
        y = np.load(os.path.join(a.datadir, "y_val.npy"))
        w = read_safetensors(a.checkpoint)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"evaluate.py: {e}")
    z = logits(w, x)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    right = int((z.argmax(axis=1) == y).sum())
    print(f"val: loss {loss:.4f} | accuracy {100.0 * right / len(y):.2f}% ({right} of {len(y)})")


if __name__ == "__main__":
    main()
