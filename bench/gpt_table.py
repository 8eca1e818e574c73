#!/usr/bin/env python3
"""gpt_table.py: plans the GPT family of bench/gpt/ in bf16 and prints the published-vs-mpcc table.

For every model of bench/gpt_family.py's PUBLISHED (Narayanan et al. 2021, Table 1) it runs
mpcc twice on the model's file (a100-nvlink preset, the paper's GPU count and batch), both times
as a user would: train.precision = "bf16", train.recompute = "auto", train.zero = "auto":

  searched  mpcc chooses the mesh S×d×t and the micro-batch count;
  pinned    -D plan.mesh=PxDxT, the published t, p and d (mpcc chooses m and the rest).

It times each run (wall and CPU seconds of the mpcc process), reads its JSON report and prints
one Markdown table (docs/benchmarks.md, "The GPT family in bf16").

Throughput per GPU is counted as the paper counts it (its Eq. 3: F = 96·B·s·l·h²·(1 + s/(6h)
+ V/(16·l·h)) FLOPs per step, which includes the extra forward of full activation
recomputation) and divided by mpcc's predicted step time × GPUs, so a predicted figure and the
published measured one compare the step times for the same work: predicted / published =
published step time / predicted step time.

usage: bench/gpt_table.py [--mpcc build/mpcc] [--models gpt-1.7b,gpt-1t] [--jobs DIR]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpt_family import PUBLISHED, SEQ, VOCAB  # noqa: E402

AS_A_USER = ["-D", "train.precision=bf16", "-D", "train.recompute=auto", "-D", "train.zero=auto"]


def paper_flops(batch, layers, hidden):
    """FLOPs of one training step by Narayanan et al. 2021, Eq. 3 (with recomputation)."""
    return 96.0 * batch * SEQ * layers * hidden**2 * (
        1 + SEQ / (6.0 * hidden) + VOCAB / (16.0 * layers * hidden))


def run_mpcc(mpcc, mp, extra, json_path):
    """Runs mpcc --emit=plan; returns (report dict or None, error line, wall s, CPU s)."""
    cmd = [mpcc, mp, "--emit=plan", "--report-json", json_path] + AS_A_USER + extra
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0:
        lines = [x for x in r.stderr.splitlines() if "error" in x] or r.stderr.splitlines()
        return None, (lines[0] if lines else f"exit {r.returncode}"), wall, cpu
    with open(json_path, encoding="utf-8") as f:
        return json.load(f), "", wall, cpu


def describe(rep, flops, gpus):
    """Mesh, micro-batches, ZeRO stage, recomputing stages, predicted TFLOP/s, memory."""
    m = rep["mesh"]
    step = rep["totals"]["step_time"]
    rc = sum(1 for s in rep["stages"] if "recompute" in s)
    zero = rep["train"].get("zero", {}).get("stage", 0)
    return {
        "mesh": f'{m["S"]}×{m["d"]}×{m["t"]}',
        "m": rep["microbatches"],
        "zero": zero,
        "rc": f'{rc}/{m["S"]}',
        "tflops": flops / (step * gpus) / 1e12,
        "step": step,
        "mem": rep["totals"]["mem_peak_bytes"] / 1e9,
        "fits": rep["totals"]["fits"],
    }


def cell(d, err):
    if d is None:
        return f"no plan ({err})", "—"
    what = f'{d["mesh"]}, m={d["m"]}, ZeRO-{d["zero"]}, recompute {d["rc"]}, {d["mem"]:.1f} GB'
    if not d["fits"]:
        what += " DOES NOT FIT"
    return what, f'{d["tflops"]:.0f}'


def row(args, name):
    heads, hidden, layers, t, p, gpus, batch, measured = PUBLISHED[name]
    d = gpus // (t * p)
    mp = os.path.join(HERE, "gpt", name + ".mp")
    flops = paper_flops(batch, layers, hidden)
    js = os.path.join(args.jobs, name)
    s_rep, s_err, s_wall, s_cpu = run_mpcc(args.mpcc, mp, [], js + ".searched.json")
    p_rep, p_err, p_wall, p_cpu = run_mpcc(args.mpcc, mp, ["-D", f"plan.mesh={p}x{d}x{t}"],
                                           js + ".pinned.json")
    s_what, s_tf = cell(s_rep and describe(s_rep, flops, gpus), s_err)
    p_what, p_tf = cell(p_rep and describe(p_rep, flops, gpus), p_err)
    return (f"| {name} | {gpus} | {t} | {p} | {d} | {measured} | {s_what} | {s_tf} | "
            f"{p_what} | {p_tf} | {s_wall:.1f} / {s_cpu:.1f} | {p_wall:.1f} / {p_cpu:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpcc", default="build/mpcc")
    ap.add_argument("--models", default=",".join(PUBLISHED))
    ap.add_argument("--jobs", default="/tmp/mpcc-gpt-table", help="folder for the JSON reports")
    args = ap.parse_args()
    os.makedirs(args.jobs, exist_ok=True)
    print("| model | GPUs | t | p | d | published TFLOP/s per GPU | mpcc's plan (S×d×t) | "
          "predicted TFLOP/s per GPU | published mesh pinned (S×d×t = p×d×t) | "
          "predicted TFLOP/s per GPU | plan time wall / CPU s (searched) | (pinned) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        print(row(args, name), flush=True)


if __name__ == "__main__":
    main()
