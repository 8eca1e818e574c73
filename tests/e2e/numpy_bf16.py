#!/usr/bin/env python3
"""One bf16 step of the C trainer against an independent numpy bf16 reference.

Builds the MLP (linear → relu → linear → relu → linear → cross-entropy, SGD with momentum) for
one device with -D train.precision=bf16, writes its initial weights (--steps 0 --save), trains
one step on .npy data and saves the weights and momentum, and repeats that step in numpy with
the rounding points docs/runtime.md ("A bf16 trainer") defines, bf16 meaning round to nearest
even of the f32 value:

  * the kernels read bf16(master weights); the inputs are stored as bf16;
  * every layer's output (activation) is stored as bf16 of its f32 result (a linear layer:
    bf16(x·W + b) from f32 products accumulated in f32; relu of a bf16 value is one);
  * the loss and the activation gradients are f32, unrounded;
  * each parameter gradient, summed in f32 over the step's micro-batches, is rounded to bf16
    once; the optimizer (SGD with momentum) updates the f32 master weights with it in f32.

numpy computes in float64 and rounds where the trainer rounds. The two can still differ where
an f32 result sits within f32's error of a bf16 rounding boundary (a bf16 value then differs by
one bf16 unit), so the checks are statistical where they must be and exact where they can be:

  * step 1's loss (the trainer prints 6 decimals) within 1e-5 relative;
  * the momentum after one step is the bf16 gradient: at least 99 % of its elements equal the
    reference's bf16 gradient exactly, and every one within one bf16 unit (2^-7 relative);
  * the master weights after the step: their distance from the bf16 reference is under a tenth
    of the distance between the bf16 and an unrounded (float64) reference, i.e. the trainer
    rounds where the reference does, not merely somewhere.
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np

import e2e_common

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eE]+)")


def bf16(v):
    """Round to nearest even to bf16, returned as float64 (NaN-free inputs)."""
    u = np.asarray(v, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return (u.astype(np.uint32)).view(np.float32).astype(np.float64)


def step_grads(W, x, y, layers, batch, micro, rnd):
    """Loss and parameter gradients of one step (micro-batches accumulated), rounded per rnd."""
    Wb = {k: rnd(v) for k, v in W.items()}
    grads = {k: np.zeros_like(v) for k, v in W.items()}
    total, mb = 0.0, len(y) // micro
    for m in range(micro):
        acts = [rnd(x[m * mb:(m + 1) * mb])]
        for i, name in enumerate(layers):
            z = rnd(acts[-1] @ Wb[name + ".weight"] + Wb[name + ".bias"])
            acts.append(z if i == len(layers) - 1 else np.maximum(z, 0))
        logits, lab = acts[-1], y[m * mb:(m + 1) * mb]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        total += -np.log(p[np.arange(mb), lab]).sum() / batch
        d = p.copy()
        d[np.arange(mb), lab] -= 1
        d /= batch
        for i in reversed(range(len(layers))):
            name = layers[i]
            if i < len(layers) - 1:
                d = d * (acts[i + 1] > 0)
            grads[name + ".weight"] += acts[i].T @ d
            grads[name + ".bias"] += d.sum(axis=0)
            d = d @ Wb[name + ".weight"].T
    return total, {k: rnd(g) for k, g in grads.items()}


def trainer_run(a, exe, x, y, init, out):
    run = [a.mpirun, "--oversubscribe", "-np", "1", exe, "--threads", "1"]
    r = subprocess.run(run + ["--steps", "1", "--init", init, "--data", x, "--labels", y,
                              "--save", out], capture_output=True, text=True)
    got = [float(m.group(3)) for m in map(STEP.match, r.stdout.splitlines()) if m]
    if r.returncode != 0 or len(got) != 1:
        raise RuntimeError(r.stdout + r.stderr)
    return got[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--micro", type=int, default=2)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe = os.path.join(a.workdir, "bf16_ref")
    r = subprocess.run([a.mpcc, a.model, "-D", "cluster.devices=1", "-D", "train.precision=bf16",
                        "-D", f"train.microbatches={a.micro}", "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        return 1
    init, after = (os.path.join(a.workdir, n) for n in ("init.safetensors", "after.safetensors"))
    subprocess.run([a.mpirun, "--oversubscribe", "-np", "1", exe, "--steps", "0", "--save", init],
                   check=True, capture_output=True)
    W0, _ = e2e_common.read_safetensors(init)
    W0 = {k: v for k, v in W0.items() if not k.startswith("optimizer.")}
    layers = sorted((k[:-len(".weight")] for k in W0 if k.endswith(".weight")),
                    key=lambda n: list(W0).index(n + ".weight"))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((a.batch, W0[layers[0] + ".weight"].shape[0])).astype(np.float32)
    y = rng.integers(0, W0[layers[-1] + ".weight"].shape[1], a.batch).astype(np.int32)
    xf, yf = os.path.join(a.workdir, "x.npy"), os.path.join(a.workdir, "y.npy")
    np.save(xf, x), np.save(yf, y)
    got = trainer_run(a, exe, xf, yf, init, after)
    W1, _ = e2e_common.read_safetensors(after)

    loss, g = step_grads(W0, x.astype(np.float64), y, layers, a.batch, a.micro, bf16)
    loss64, g64 = step_grads(W0, x.astype(np.float64), y, layers, a.batch, a.micro, lambda v: v)
    failures = []
    rel = abs(got - loss) / abs(loss)
    print(f"loss: trainer {got:.6f}, numpy bf16 {loss:.6f} (relative {rel:.1e}), "
          f"numpy float64 {loss64:.6f}")
    if rel > 1e-5:
        failures.append(f"step 1 loss {got} against the bf16 reference {loss}")
    exact = total = 0
    worst = 0.0
    d_ref = d_64 = 0.0
    for k in W0:
        mom = W1["optimizer.momentum." + k]
        exact += int(np.count_nonzero(mom == g[k]))
        total += mom.size
        worst = max(worst, float(np.max(np.abs(mom - g[k]) / np.maximum(np.abs(g[k]), 1e-30))))
        d_ref += float(np.sum((W1[k] - (W0[k] - a.lr * g[k])) ** 2))
        d_64 += float(np.sum(((W0[k] - a.lr * g64[k]) - (W0[k] - a.lr * g[k])) ** 2))
    d_ref, d_64 = d_ref ** 0.5, d_64 ** 0.5
    print(f"momentum = bf16 gradient: {exact}/{total} elements exact, worst relative {worst:.1e}")
    print(f"weights after the step: {d_ref:.3e} from the bf16 reference, "
          f"{d_64:.3e} between the bf16 and float64 references")
    if exact < 0.99 * total or worst > 2.0 ** -7:
        failures.append("the momentum is not the reference's bf16 gradient")
    if not d_ref < 0.1 * d_64:
        failures.append("the master weights do not follow the bf16 reference")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
