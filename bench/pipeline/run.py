#!/usr/bin/env python3
"""Pipeline benchmark (issue 6; results in docs/benchmarks.md).

Compiles bench/pipeline/mlp_pipe4.mp (four equal linear layers, one pinned per stage) for
S stages and m micro-batches, and the same network with every layer @data (pure data
parallelism) on the same ranks; runs each trainer with --profile and reports, per plan:

  * the predicted step time and bubble (the `mpcc -o` plan line) and the 1F1B fraction
    (S-1)/(m+S-1);
  * the measured bubble: per stage, stage.idle / (stage.busy + stage.idle) from the profile
    (docs/codegen.md, "Measuring the bubble"), averaged over the stage's ranks;
  * the measured steady-state step time and throughput;
  * bytes: whether the trainer's counted bytes equal the prediction per group on every rank,
    and rank 0's bytes per step.

Start-up (MPI connections, first touches of memory) is removed by running each trainer twice,
for --short and --long steps, and differencing every quantity; each measurement is repeated
--repeat times and the median printed (the machine is shared).

  python3 bench/pipeline/run.py --mpcc build/mpcc [--stages 4] [--micro 4,8,16] [--repeat 3]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PLAN = re.compile(r"predicted step ([0-9.]+) (ns|µs|ms|s):.*bubble ([0-9.]+) (ns|µs|ms|s)")
UNIT = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
BYTES = re.compile(r"bytes: counted == predicted on every rank .*rank 0 counted (\d+), predicted (\d+)")


def sh(cmd, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}")
    return r.stdout


def model_for(work, stages, data):
    """The benchmark model cut into `stages` pinned stages, or with every layer @data."""
    with open(os.path.join(HERE, "mlp_pipe4.mp")) as f:
        text = f.read()
    def repl(m):
        return "@data" if data else f"@stage({int(m.group(1)) * stages // 4})"

    text = re.sub(r"@stage\((\d+)\)", repl, text)
    path = os.path.join(work, f"bench_S{stages}{'_data' if data else ''}.mp")
    with open(path, "w") as f:
        f.write(text)
    return path


def build(a, model, devices, m, name):
    exe = os.path.join(a.work, re.sub(r"[^A-Za-z0-9_]", "_", name))
    out = sh([a.mpcc, model, "-D", f"cluster.devices={devices}", "-D", f"train.microbatches={m}", "-o", exe])
    p = PLAN.search(out)
    with open(exe + ".c") as f:
        np_ = int(re.search(r"mpirun -np (\d+)", f.read()).group(1))
    return exe, np_, float(p.group(1)) * UNIT[p.group(2)], float(p.group(3)) * UNIT[p.group(4)]


def profile(a, exe, np_, steps):
    prof = exe + f".{steps}.json"
    out = sh([a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1", "--steps", str(steps),
              "--profile", prof])
    b = BYTES.search(out)
    with open(prof) as f:
        p = json.load(f)
    per_stage = {}
    for r in p["ranks"]:
        t = {x["name"]: x["seconds"] for x in r["timers"]}
        per_stage.setdefault(r["stage"], []).append((t["stage.busy"], t["stage.idle"]))
    return p["elapsed_s"], per_stage, (int(b.group(1)), int(b.group(2))) if b else None


def measure(a, exe, np_):
    """One steady-state measurement: (step seconds, per-stage bubble list, bytes ok, bytes/step)."""
    e1, s1, b1 = profile(a, exe, np_, a.short)
    e2, s2, b2 = profile(a, exe, np_, a.long)
    n = a.long - a.short
    bubbles = []
    for s in sorted(s2):
        fr = []
        for (busy1, idle1), (busy2, idle2) in zip(s1[s], s2[s]):
            busy, idle = busy2 - busy1, idle2 - idle1
            fr.append(idle / (busy + idle))
        bubbles.append(sum(fr) / len(fr))
    ok = b1 is not None and b2 is not None
    per_step = (b2[0] - b1[0]) // n if ok else -1
    return (e2 - e1) / n, bubbles, ok, per_step


def bench(a, label, model, devices, m, batch):
    exe, np_, pred_step, pred_bubble = build(a, model, devices, m, f"{label}_m{m}")
    runs = [measure(a, exe, np_) for _ in range(a.repeat)]
    step = statistics.median(r[0] for r in runs)
    S = len(runs[0][1])
    bub = [statistics.median(r[1][s] for r in runs) for s in range(S)]
    ok = all(r[2] for r in runs)
    print(f"| {label} | {np_} | {m} | {(S - 1) / (m + S - 1):.3f} | {pred_bubble / pred_step:.3f} | "
          f"{statistics.mean(bub):.3f} ({', '.join(f'{x:.2f}' for x in bub)}) | {pred_step * 1e3:.1f} | "
          f"{step * 1e3:.1f} | {batch / step:.0f} | {'equal' if ok else 'DIFFER'} ({runs[0][3]} B/step rank 0) |",
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--stages", type=int, default=4, choices=[2, 4])
    p.add_argument("--micro", default="4,8,16")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--short", type=int, default=3)
    p.add_argument("--long", type=int, default=13)
    a = p.parse_args()
    a.work = tempfile.mkdtemp(prefix="mpcc_bench_pipe_")
    with open(os.path.join(HERE, "mlp_pipe4.mp")) as f:
        batch = int(re.search(r"batch = (\d+)", f.read()).group(1))
    S = a.stages
    print(f"| plan | ranks | m | (S-1)/(m+S-1) | predicted bubble | measured bubble, mean (per stage) | "
          f"predicted step ms | measured step ms | samples/s | bytes counted vs predicted |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in (int(x) for x in a.micro.split(",")):
        bench(a, f"pipeline S={S}", model_for(a.work, S, False), S, m, batch)
    bench(a, f"data d={S}", model_for(a.work, S, True), S, 1, batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
