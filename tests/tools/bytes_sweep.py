#!/usr/bin/env python3
"""Predicted bytes against the schedule's counted bytes, stage by stage, over a sweep.

For every model of examples/ (and its subdirectories) and tests/e2e/, on each device count,
searched and on every pinned mesh S x d x t of that count, under precision f32/bf16,
train.recompute none/auto/all and train.zero 0-3, one run of
`mpcc MODEL --dump-after=plan --emit=schedule` prints the plan (each stage's predicted bytes
per device per step) and the schedule (each stage's counted bytes, and the busiest device's
against the plan's prediction). Every stage must agree exactly (docs/testing.md, "Bytes
predicted against bytes counted"). Settings a model refuses (a mesh that does not divide its
batch, a plan that does not fit) exit 1 and are skipped; any other failure is an error.

Devices 2, 4, 8, 16, 32 and 64. By default (the ctest plan/bytes_sweep, seconds) each (model,
devices, mesh) takes one of the 24 settings in turn; --full runs every setting (about 32,000
runs, a few minutes).

usage: bytes_sweep.py --mpcc MPCC --root SOURCE_DIR [--full]
"""
import argparse
import glob
import itertools
import os
import re
import subprocess
import sys

STAGE_PLAN = re.compile(r"^stage (\d+): .*, (\d+) B per step$", re.M)
STAGE_SCHED = re.compile(r"^  bytes per device per step:(.*)$", re.M)
BUSIEST = re.compile(r"^busiest device: (\d+) B per step \(the plan predicts (\d+) B\)$", re.M)
SETTINGS = list(itertools.product(["f32", "bf16"], ["none", "auto", "all"], ["0", "1", "2", "3"]))


def meshes(n):
    """None (searched), then every S x d x t with S*d*t = n."""
    out = [None]
    for s in range(1, n + 1):
        for d in range(1, n + 1):
            if n % (s * d) == 0:
                out.append((s, d, n // (s * d)))
    return out


def counted(text):
    """Each stage's counted bytes: the sum of its 'bytes per device per step' line."""
    out = []
    for line in STAGE_SCHED.findall(text):
        out.append(sum(int(x.split()[-1]) for x in line.split(",") if x.strip() != "none"))
    return out


def check(mpcc, model, n, mesh, setting):
    """None when the run agrees, "refused" when mpcc refuses the setting; else a line saying
    what differs."""
    prec, rc, zero = setting
    cmd = [mpcc, model, "-D", f"cluster.devices={n}", "-D", f"train.precision={prec}",
           "-D", f"train.recompute={rc}", "-D", f"train.zero={zero}",
           "--dump-after=plan", "--emit=schedule"]
    if mesh:
        cmd += ["-D", "plan.mesh=%dx%dx%d" % mesh]
    r = subprocess.run(cmd, capture_output=True, text=True)
    what = " ".join(cmd[1:])
    if r.returncode == 1:
        return "refused"
    if r.returncode != 0:
        return f"{what}: exit {r.returncode}: {r.stderr.strip()[-300:]}"
    pred = [int(b) for _, b in STAGE_PLAN.findall(r.stdout)]
    count = counted(r.stdout)
    busy = BUSIEST.search(r.stdout)
    if not busy or not pred or len(pred) != len(count):
        return f"{what}: output not understood"
    if pred != count or busy.group(1) != busy.group(2):
        diff = [f"stage {k}: predicted {p}, counted {c}"
                for k, (p, c) in enumerate(zip(pred, count)) if p != c]
        return f"{what}: " + ("; ".join(diff) or "busiest " + busy.group(0))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    models = sorted(glob.glob(os.path.join(a.root, "examples", "*.mp")) +
                    glob.glob(os.path.join(a.root, "examples", "*", "*.mp")) +
                    glob.glob(os.path.join(a.root, "tests", "e2e", "*.mp")))
    runs, refused, bad, turn = 0, 0, [], 0
    for model in models:
        for n in [2, 4, 8, 16, 32, 64]:
            for mesh in meshes(n):
                chosen = SETTINGS if a.full else [SETTINGS[turn % len(SETTINGS)]]
                turn += 1
                for setting in chosen:
                    err = check(a.mpcc, model, n, mesh, setting)
                    if err == "refused":
                        refused += 1
                    elif err:
                        bad.append(err)
                    else:
                        runs += 1
    for line in bad:
        print("MISMATCH", line)
    print(f"{len(models)} models: {runs} plans with predicted == counted bytes on every stage, "
          f"{len(bad)} without, {refused} settings refused")
    return 1 if bad or runs == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
