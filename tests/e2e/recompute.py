#!/usr/bin/env python3
"""Activation recomputation is bit-identical (docs/cost-model.md, "Activation recomputation").

For each case (a model, a device count) it builds two trainers, with `-D train.recompute=none`
and with `-D train.recompute=all`, and checks:

  * both plans are the same plan (the schedule without its recomputation lines and byte
    totals), and the "all" plan does recompute on every stage ("all" prices one more forward
    per layer, so the search may choose other layouts or cuts: a case must be one whose plan
    does not change, e.g. with its strategies and stages annotated);
  * both runs exit 0 and print the same loss on every step, digit for digit (the same kernels in
    the same order on the same inputs; dropout draws its numbers from (seed, layer, step,
    sample), so a recomputed dropout replays them);
  * their --save checkpoints are the same bytes;
  * each run's counted bytes equal its schedule's prediction on every rank (the recomputing run
    predicts the tensor-group collectives its recomputed layers run again);
  * the recomputing trainer allocates the recomputed layers' activations once per stage (its
    C source holds the `rf` arena) while the other keeps them per micro-batch in flight, and on
    every stage with k > 1 micro-batches in flight that one copy is exactly the memory the plan
    says recomputation saves divided by k − 1 (the JSON report's activations_saved).

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

from e2e_common import run

STEP = re.compile(r"^step (\d+)/(\d+) \| loss (\S+)")


def plan_text(a, model, devices, policy):
    r = run([a.mpcc, model, "-D", f"cluster.devices={devices}", "-D",
             f"train.recompute={policy}", "--emit=schedule"])
    if r.returncode != 0:
        raise RuntimeError(r.stdout)
    keep, skip = [], False
    for line in r.stdout.splitlines():
        if line.startswith("  recomputed at the start"):
            skip = True
            continue
        if skip and line.startswith("    "):
            continue
        skip = False
        if ": warning: " in line:  # a warning names the time, which recomputation changes
            continue
        if not line.startswith(("  bytes per device per step", "busiest device")):
            keep.append(line)
    return "\n".join(keep), r.stdout.count("recomputed at the start")


def build_and_run(a, model, devices, policy, tag):
    exe = os.path.join(a.workdir, f"{tag}_{policy}")
    r = run([a.mpcc, model, "-D", f"cluster.devices={devices}", "-D",
             f"train.recompute={policy}", "-o", exe])
    if r.returncode != 0:
        raise RuntimeError(r.stdout)
    with open(exe + ".c") as f:
        src = f.read()
    np_ = int(re.search(r"mpirun -np (\d+)", src).group(1))
    ck = exe + ".safetensors"
    r = run([a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1", "--steps",
             str(a.steps), "--log-every", "1", "--save", ck])
    losses = [m.group(3) for m in map(STEP.match, r.stdout.splitlines()) if m]
    bytes_ok = "bytes: counted == predicted on every rank" in r.stdout
    with open(ck, "rb") if os.path.exists(ck) else open(os.devnull, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return r, losses, bytes_ok, sha, "float *rf = mprt_falloc_in" in src, np_


def check_alloc(a, model, devices, tag, failures):
    """The one-copy arenas of the "all" trainer against the plan's saving, stage by stage."""
    exe = os.path.join(a.workdir, f"{tag}_all")
    r = run([a.mpcc, model, "-D", f"cluster.devices={devices}", "-D", "train.recompute=all",
             "--emit=plan", "--report-json", exe + ".json"])
    if r.returncode != 0:
        failures.append(f"{tag}: report failed\n{r.stdout}")
        return
    with open(exe + ".json") as f:
        rep = json.load(f)
    with open(exe + ".c") as f:
        src = f.read()
    S, m = rep["mesh"]["S"], rep["microbatches"]
    for st in rep["stages"]:
        s = st["index"]
        body = re.search(r"static void stage%d_alloc\(void\) \{(.*?)\n\}" % s, src, re.S).group(1)
        one = sum(int(x) * 4 for x in re.findall(r"\*r[fn] = mprt_[if]alloc_in\(MPRT_MEM_ACTS, (\d+)\)", body))
        k = min(S - s, m)
        saved = st.get("recompute", {}).get("activations_saved", 0)
        if k > 1 and one * (k - 1) != saved:
            failures.append(f"{tag} stage {s}: one copy of {one} B allocated, the plan saves "
                            f"{saved} B with {k} micro-batches in flight")


def check_case(a, model, devices, failures):
    tag = f"{os.path.splitext(os.path.basename(model))[0]}_{devices}"
    none_plan, n0 = plan_text(a, model, devices, "none")
    all_plan, n1 = plan_text(a, model, devices, "all")
    if none_plan != all_plan:
        failures.append(f"{tag}: recompute=all plans another mesh or cut; pin the model")
        return
    S = int(re.search(r"mesh S=(\d+)", none_plan).group(1))
    if n0 != 0 or n1 != S:
        failures.append(f"{tag}: recomputing stages: none {n0}, all {n1} of {S}")
    runs = {p: build_and_run(a, model, devices, p, tag) for p in ("none", "all")}
    for p, (r, losses, bytes_ok, sha, rf, np_) in runs.items():
        if r.returncode != 0 or len(losses) != a.steps:
            failures.append(f"{tag} {p}: exit {r.returncode}, {len(losses)} steps\n{r.stdout}")
        if not bytes_ok:
            failures.append(f"{tag} {p}: counted bytes differ from the prediction\n{r.stdout}")
        if rf != (p == "all"):
            failures.append(f"{tag} {p}: one-copy arena of recomputed layers: {rf}")
    check_alloc(a, model, devices, tag, failures)
    (_, l0, _, s0, _, np_), (_, l1, _, s1, _, _) = runs["none"], runs["all"]
    if l0 != l1:
        failures.append(f"{tag}: losses differ\n  none {l0}\n  all  {l1}")
    if s0 != s1:
        failures.append(f"{tag}: checkpoints differ ({s0[:12]} vs {s1[:12]})")
    print(f"{tag}: {np_} ranks, {S} stage(s), {len(l0)} steps, losses and checkpoint "
          f"{'identical' if l0 == l1 and s0 == s1 else 'DIFFERENT'} with recomputation")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--case", action="append", required=True, help="MODEL:DEVICES")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    failures = []
    for c in a.case:
        model, devices = c.rsplit(":", 1)
        try:
            check_case(a, model, int(devices), failures)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            failures.append(f"{c}: {e}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
