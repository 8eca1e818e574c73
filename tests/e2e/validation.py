#!/usr/bin/env python3
"""Validation (--val-data, --val-labels, --eval-every, --val-batches; docs/runtime.md) gives the
same numbers whatever the plan.

Trains the small MLP on .npy files (1, 2 and 4 ranks: tensor split; pipeline stages with
replicas) and the tiny GPT on a token stream (1, 2 and 4 ranks: Megatron tensor splits; 4 ranks
of gpt_pipe2, pipeline stages with tensor splits, against its unpinned file at 1 rank), each with a validation set evaluated every 2
steps. Every plan of a model must print the same val_loss (relative 1e-5) and val_acc on the
same steps, the totals line must give the last values, --profile must hold them, and the byte
counters must still match the plan (the evaluation is not plan traffic). The validation loss
must also be a real one: the MLP's first evaluation, of a model that has trained 2 steps on the
validation set's own distribution, lies near ln(10), and a run whose validation set is its
training set (--val-data = --data, a token stream) sees it fall.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import e2e_common

VAL = re.compile(r"^step (\d+)/\d+ .*\| val_loss (\S+)(?: val_acc (\S+))?$", re.M)
DONE = re.compile(r"^done .*\| val_loss (\S+)(?: val_acc (\S+))?$", re.M)


def build(a, model, devices):
    return e2e_common.build(a.mpcc, a.workdir, model, devices)


def run(a, exe, np_, flags):
    prof = exe + ".profile.json"
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1", "--steps", "6",
           "--eval-every", "2", "--log-every", "5", "--profile", prof] + flags
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    vals = [(int(s), float(l), None if c is None else float(c)) for s, l, c in VAL.findall(r.stdout)]
    done = DONE.search(r.stdout)
    with open(prof) as f:
        v = json.load(f)["validation"]
    problems = []
    if [s for s, _, _ in vals] != [2, 4, 6]:
        problems.append(f"validation lines at steps {[s for s, _, _ in vals]}, want 2, 4, 6")
    if not done or float(done.group(1)) != vals[-1][1]:
        problems.append("the totals line does not give the last val_loss")
    if v["step"] != 6 or abs(v["loss"] - vals[-1][1]) > 1e-6 * abs(vals[-1][1]):
        problems.append(f"profile validation {v} does not match the last line")
    if "counted == predicted on every rank" not in r.stdout:
        problems.append("byte counters no longer match the plan")
    if problems:
        raise RuntimeError(f"{' '.join(cmd)}: " + "; ".join(problems) + "\n" + r.stdout)
    return vals, v


def same(ref, got):
    for (s0, l0, c0), (s1, l1, c1) in zip(ref, got):
        if s0 != s1 or abs(l0 - l1) > 1e-5 * abs(l0) or (c0 is None) != (c1 is None):
            return False
        if c0 is not None and abs(c0 - c1) > 1.5 / 96:  # one row of 96 may flip on a near-tie
            return False
    return len(ref) == len(got)


def main():
    a = e2e_common.args()
    p = lambda n: os.path.join(a.workdir, n)
    rng = np.random.default_rng(3)
    np.save(p("vx.npy"), rng.standard_normal((100, 48)).astype(np.float32))
    np.save(p("vy.npy"), rng.integers(0, 10, 100).astype(np.int32))
    toks = np.array([(i * 7 + (i // 13)) % 30 for i in range(4000)], dtype=np.uint16)
    toks.tofile(p("train.bin"))
    cases = [
        ("mlp_small", [1, 2, 4], ["--val-data", p("vx.npy"), "--val-labels", p("vy.npy")]),
        ("gpt_tensor", [1, 2, 4], ["--data", p("train.bin"), "--val-data", p("train.bin"),
                                   "--val-batches", "3"]),
    ]
    fails, runs = [], {}
    for model, counts, flags in cases:
        for n in counts:
            exe, np_ = build(a, os.path.join(a.e2e, model + ".mp"), n)
            runs.setdefault(model, []).append((f"{model} at {np_} ranks", run(a, exe, np_, flags)))
    # gpt_pipe2 (batch 16, pinned stages): its reference is the file without the pin at 1 rank
    with open(os.path.join(a.e2e, "gpt_pipe2.mp")) as f, open(p("gpt_unpinned.mp"), "w") as out:
        out.write(re.sub(r"\s*@stage\(\d+\)", "", f.read()))
    for name, model, n in [("gpt_unpinned", p("gpt_unpinned.mp"), 1),
                           ("gpt_pipe2", os.path.join(a.e2e, "gpt_pipe2.mp"), 4)]:
        exe, np_ = build(a, model, n)
        runs.setdefault("gpt_pipe2", []).append((f"{name} at {np_} ranks", run(a, exe, np_, cases[1][2])))
    for model, rs in runs.items():
        (name0, (ref, prof0)), rest = rs[0], rs[1:]
        print(f"{name0}: {ref}")
        for name, (vals, _) in rest:
            ok = same(ref, vals)
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {vals}")
            if not ok:
                fails.append(f"{name}: {vals} differ from {name0}: {ref}")
        if prof0["accuracy"] is None or prof0["batches"] != 3:
            fails.append(f"{model}: profile validation {prof0}: want an accuracy and 3 batches")
    mlp, gpt = runs["mlp_small"][0][1][0], runs["gpt_tensor"][0][1][0]
    if not abs(mlp[0][1] - np.log(10)) < 0.2:
        fails.append(f"mlp_small's first val_loss {mlp[0][1]} is not near ln(10)")
    if not gpt[-1][1] < gpt[0][1] - 0.05:
        fails.append(f"gpt_tensor's val_loss on its training stream did not fall: {gpt}")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
