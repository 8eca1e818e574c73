#!/usr/bin/env python3
"""bf16 mixed precision in the C trainer (docs/runtime.md, "A bf16 trainer").

  track  For each model and mesh (-D plan.mesh=SxDxT: data, tensor and pipeline splits, 1 to 4
         ranks) it trains the same plan in f32 and with -D train.precision=bf16 for --steps
         steps and checks: both exit 0; both count exactly the bytes their schedule predicts on
         every rank; where both precisions choose the same per-layer plan, the bf16 one predicts
         half the f32 bytes (2 bytes per element; integer rounding aside); the bf16 curve is not
         the f32 curve (bf16 is really on: they differ by more than 1e-5 somewhere, where two
         f32 runs of a plan agree exactly) and tracks it: every step's loss within --rtol
         relative of the f32 loss.
  ckpt   Checkpoints are whole f32 tensors holding the f32 master weights (some values are not
         bf16-representable), and they cross: a bf16 run resumed from its own step-5 checkpoint
         repeats the uninterrupted run's losses digit for digit; an f32 run on 1 rank resumes a
         bf16 checkpoint of 4 ranks (another plan), and a bf16 run on 1 rank resumes an f32
         checkpoint of 4 ranks, each within --rtol of the run it continues.
  recompute  train.recompute=all and =none give the same bf16 losses, digit for digit, and
         the same checkpoint bytes (the recomputed forward rounds its activations the same way).

Why the tolerance (--rtol, 5e-3 by default) fits bf16: bf16 keeps 8 significant bits, so each
rounding of a stored value errs by at most u = 2^-9 ≈ 2e-3 relative. A step's loss sees the
inputs, every layer's activations and the working weights rounded once each, errors of random
sign that mostly average out over the hundreds of values a loss sums (the measured first-step
difference is 1e-4 to 3e-4), and over 20 steps the bf16 and f32 trajectories drift apart slowly
(the script prints the worst difference: 2e-4 to 9e-4 on these models and meshes). 5e-3 = 2.5 u
leaves a 5x margin over that and stays well below what a broken bf16 step does to these
losses: the f32 curve falls 3-5 % (MLP) and 10-15 % (GPT) below its first step by steps 13-20, so
a run whose working weights stopped following the master copy, or lost its updates, strays by
several times the tolerance. The exact arithmetic of one step is checked separately against
numpy (tests/e2e/numpy_bf16.py).
"""
import argparse
import hashlib
import os
import re
import sys

import numpy as np

import e2e_common
from e2e_common import run

STEP = re.compile(r"^step (\d+)/(\d+) \| loss (\S+)")


def build(a, model, mesh, prec, extra=()):
    tag = f"{os.path.splitext(os.path.basename(model))[0]}_{mesh}_{prec}"
    for x in extra:
        tag += "_" + re.sub(r"[^a-z0-9]+", "", x.split("=")[-1] + x.split("=")[0][-4:])
    exe = os.path.join(a.workdir, tag)
    S, d, t = (int(v) for v in mesh.split("x"))
    cmd = [a.mpcc, model, "-D", f"cluster.devices={S * d * t}", "-D", f"plan.mesh={mesh}",
           "-D", f"train.precision={prec}"]
    for x in extra:
        cmd += ["-D", x]
    r = run(cmd + ["-o", exe])
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}")
    with open(exe + ".c") as f:
        src = f.read()
    pred = sum(int(v) for v in re.findall(r"\{\d+, MPRT_\w+, MPRT_\w+, (\d+)\}", src))
    return exe, S * d * t, pred


def train(a, exe, np_, *flags):
    r = run([a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1",
             "--log-every", "1", *flags])
    losses = {int(m.group(1)): m.group(3) for m in map(STEP.match, r.stdout.splitlines()) if m}
    ok = r.returncode == 0 and "bytes: counted == predicted on every rank" in r.stdout
    return r, losses, ok


def worst_rel(x, y, steps):
    return max(abs(float(x[s]) - float(y[s])) / abs(float(y[s])) for s in steps)


def check_track(a, model, mesh, failures):
    out = {}
    for prec in ("f32", "bf16"):
        exe, np_, pred = build(a, model, mesh, prec)
        r, losses, ok = train(a, exe, np_, "--steps", str(a.steps))
        if not ok or len(losses) != a.steps:
            failures.append(f"{model} {mesh} {prec}: exit {r.returncode}, {len(losses)} steps, "
                            f"bytes agree {ok}\n{r.stdout}")
            return
        with open(exe + ".c") as f:
            plan = re.search(r" \* plan:\n(.*?) \*/", f.read(), re.S).group(1)
        out[prec] = (losses, pred, plan)
    (lf, pf, _), (lb, pb, _) = out["f32"], out["bf16"]
    if out["f32"][2] == out["bf16"][2] and pf and not 0.49 * pf <= pb <= 0.51 * pf:
        failures.append(f"{model} {mesh}: bf16 predicts {pb} bytes per step, f32 {pf}")
    steps = range(1, a.steps + 1)
    w = worst_rel(lb, lf, steps)
    if w < 1e-5:
        failures.append(f"{model} {mesh}: the bf16 losses are the f32 losses: bf16 is not on")
    if w > a.rtol:
        failures.append(f"{model} {mesh}: bf16 strays {w:.2e} relative from f32 (> {a.rtol})")
    same = "same plan" if out["f32"][2] == out["bf16"][2] else "other per-layer plan"
    print(f"track {os.path.basename(model)} {mesh}: bf16 vs f32 worst relative {w:.2e}; "
          f"predicted bytes/step bf16 {pb}, f32 {pf} ({same})")


def not_bf16_exact(ck):
    W, _ = e2e_common.read_safetensors(ck)  # raises unless every tensor is F32
    v = np.concatenate([x.ravel() for k, x in W.items() if not k.startswith("optimizer.")])
    return int(np.count_nonzero(v.astype(np.float32).view(np.uint32) & 0xFFFF))


def check_ckpt(a, model, failures):
    half = a.steps // 2
    four, np4, _ = build(a, model, "1x2x2", "bf16")
    one16, _, _ = build(a, model, "1x1x1", "bf16")
    four32, _, _ = build(a, model, "1x2x2", "f32")
    one32, _, _ = build(a, model, "1x1x1", "f32")
    ck = {k: os.path.join(a.workdir, f"ck_{k}.safetensors") for k in ("b5", "b", "f5", "f")}
    runs = [("bf16 4 ranks", four, np4, ["--steps", str(a.steps), "--save", ck["b"]]),
            ("bf16 4 ranks, half", four, np4, ["--steps", str(half), "--save", ck["b5"]]),
            ("bf16 4 ranks, resumed", four, np4, ["--steps", str(a.steps), "--resume", ck["b5"]]),
            ("f32 1 rank from bf16", one32, 1, ["--steps", str(a.steps), "--resume", ck["b5"]]),
            ("f32 4 ranks", four32, np4, ["--steps", str(a.steps), "--save", ck["f"]]),
            ("f32 4 ranks, half", four32, np4, ["--steps", str(half), "--save", ck["f5"]]),
            ("bf16 1 rank from f32", one16, 1, ["--steps", str(a.steps), "--resume", ck["f5"]])]
    L = {}
    for name, exe, np_, flags in runs:
        r, L[name], ok = train(a, exe, np_, *flags)
        if not ok:
            failures.append(f"ckpt {name}: exit {r.returncode} or bytes differ\n{r.stdout}")
            return
    rest = range(half + 1, a.steps + 1)
    if any(L["bf16 4 ranks, resumed"].get(s) != L["bf16 4 ranks"][s] for s in rest):
        failures.append("ckpt: the resumed bf16 run does not repeat the uninterrupted one")
    for name, ref in (("f32 1 rank from bf16", "bf16 4 ranks"),
                      ("bf16 1 rank from f32", "f32 4 ranks")):
        w = worst_rel(L[name], L[ref], rest) if all(s in L[name] for s in rest) else 1e9
        print(f"ckpt {name}: worst relative {w:.2e} against {ref}")
        if w > a.rtol:
            failures.append(f"ckpt {name}: strays {w:.2e} from {ref} (> {a.rtol})")
    n = not_bf16_exact(ck["b"])
    print(f"ckpt: {n} master weights of the bf16 checkpoint are not bf16 values")
    if n == 0:
        failures.append("ckpt: the bf16 checkpoint holds bf16 values, not the f32 masters")


def check_recompute(a, model, failures):
    res = {}
    for pol in ("none", "all"):
        exe, np_, _ = build(a, model, "1x1x1", "bf16", [f"train.recompute={pol}"])
        ck = exe + ".safetensors"
        r, losses, ok = train(a, exe, np_, "--steps", str(a.steps), "--save", ck)
        if not ok or len(losses) != a.steps:
            failures.append(f"recompute={pol}: exit {r.returncode}\n{r.stdout}")
            return
        with open(ck, "rb") as f:
            res[pol] = (losses, hashlib.sha256(f.read()).hexdigest())
    if res["none"] != res["all"]:
        failures.append("recompute: bf16 losses or checkpoints differ with recomputation")
    print(f"recompute: bf16 with and without recomputation identical: {res['none'] == res['all']}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--what", choices=["track", "ckpt", "recompute"], required=True)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--mesh", action="append", default=[])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=5e-3)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    failures = []
    for model in a.model:
        if a.what == "track":
            for mesh in a.mesh:
                check_track(a, model, mesh, failures)
        else:
            {"ckpt": check_ckpt, "recompute": check_recompute}[a.what](
                a, model, failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
