#!/usr/bin/env python3
"""The generated trainer against an independent numpy implementation (issue 5).

Compiles a small MLP (linear → relu → linear → relu → linear → cross-entropy) for one
device, writes its initial weights with `--steps 0 --save`, trains it for --steps steps on
.npy data, and trains the same network in numpy (float64) from the same weights on the same
samples in the same order with the same optimizer (SGD with momentum, or Adam/AdamW; PyTorch
semantics). The two loss curves must agree within --rtol relative on every step.
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np

import e2e_common

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eE]+)")


def forward_backward(W, x, y, layers, batch):
    acts = [x]
    for i, name in enumerate(layers):
        z = acts[-1] @ W[name + ".weight"] + W[name + ".bias"]
        acts.append(z if i == len(layers) - 1 else np.maximum(z, 0))
    logits = acts[-1]
    m = logits.max(axis=1, keepdims=True)
    p = np.exp(logits - m)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).sum() / batch
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    d /= batch
    grads = {}
    for i in reversed(range(len(layers))):
        name = layers[i]
        if i < len(layers) - 1:
            d = d * (acts[i + 1] > 0)
        grads[name + ".weight"] = acts[i].T @ d
        grads[name + ".bias"] = d.sum(axis=0)
        d = d @ W[name + ".weight"].T
    return loss, grads


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--opt", choices=["sgd", "adam", "adamw"], required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=1e-5)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe = os.path.join(a.workdir, "ref_" + a.opt)
    r = subprocess.run([a.mpcc, a.model, "-D", "cluster.devices=1", "-o", exe], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        return 1
    init = os.path.join(a.workdir, f"init_{a.opt}.safetensors")
    W = None
    rng = np.random.default_rng(11)
    n_samples = 2 * a.batch
    run = [a.mpirun, "--oversubscribe", "-np", "1", exe, "--threads", "1"]
    subprocess.run(run + ["--steps", "0", "--save", init], check=True, capture_output=True)
    W, _ = e2e_common.read_safetensors(init)
    layers = [k[: -len(".weight")] for k in W if k.endswith(".weight") and not k.startswith("optimizer.")]
    layers.sort(key=lambda n: list(W).index(n + ".weight"))
    fin = W[layers[0] + ".weight"].shape[0]
    classes = W[layers[-1] + ".weight"].shape[1]
    x = rng.standard_normal((n_samples, fin)).astype(np.float32)
    y = rng.integers(0, classes, n_samples).astype(np.int32)
    np.save(os.path.join(a.workdir, "x.npy"), x)
    np.save(os.path.join(a.workdir, "y.npy"), y)
    r = subprocess.run(run + ["--steps", str(a.steps), "--init", init, "--data", os.path.join(a.workdir, "x.npy"),
                              "--labels", os.path.join(a.workdir, "y.npy")], capture_output=True, text=True)
    got = {int(m.group(1)): float(m.group(3)) for m in map(STEP.match, r.stdout.splitlines()) if m}
    if r.returncode != 0 or len(got) != a.steps:
        print(r.stdout + r.stderr)
        return 1

    W = {k: v for k, v in W.items() if not k.startswith("optimizer.")}
    state1 = {k: np.zeros_like(v) for k, v in W.items()}
    state2 = {k: np.zeros_like(v) for k, v in W.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    worst = 0.0
    for step in range(a.steps):
        idx = (step * a.batch + np.arange(a.batch)) % n_samples
        loss, g = forward_backward(W, x[idx].astype(np.float64), y[idx], layers, a.batch)
        rel = abs(got[step + 1] - loss) / abs(loss)
        worst = max(worst, rel)
        for k in W:
            if a.opt == "sgd":
                gk = g[k] + a.weight_decay * W[k]
                state1[k] = a.momentum * state1[k] + gk
                W[k] -= a.lr * state1[k]
            else:
                t = step + 1
                if a.opt == "adamw":
                    W[k] -= a.lr * a.weight_decay * W[k]
                    gk = g[k]
                else:
                    gk = g[k] + a.weight_decay * W[k]
                state1[k] = b1 * state1[k] + (1 - b1) * gk
                state2[k] = b2 * state2[k] + (1 - b2) * gk * gk
                mhat = state1[k] / (1 - b1 ** t)
                vhat = state2[k] / (1 - b2 ** t)
                W[k] -= a.lr * mhat / (np.sqrt(vhat) + eps)
        print(f"step {step + 1}: trainer {got[step + 1]:.6f}  numpy {loss:.6f}  relative {rel:.2e}")
    print(f"{a.opt}: worst relative difference {worst:.2e} over {a.steps} steps (tolerance {a.rtol})")
    return 0 if worst <= a.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
