"""MLP scaling from 1 to 2 to 4 ranks: step time and bytes, counted against predicted.

Driven by bench/run_scaling.sh. For each plan (the searched plan of examples/mlp.mp, and the
pure data-parallel plan of bench/mlp_data.mp, the same network with every linear pinned
@data) and each rank count n it compiles `mpcc -D cluster.devices=n`, reads the predicted
bytes of the busiest device per step from the last line of `--emit=schedule`, and runs the
trainer REPS times under `mpirun --oversubscribe -np n` with --threads max(1, CORES / n).
Step time is the profile's elapsed_s / steps (median over the runs); the measured bytes are
those of the trainer's final `bytes:` line (busiest rank, over all steps) divided by the steps.
The trainers read a fixed data set (--data, npy_data.py).
"""
import json
import os
import re
import statistics
import sys

from benchlib import parser, run
from npy_data import mlp_data

PLANS = {"searched": "examples/mlp.mp", "data": "bench/mlp_data.mp"}


def main():
    p = parser(__doc__)
    p.add_argument("--cores", type=int, default=os.cpu_count())
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--ranks", default="1,2,4")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    x, y = mlp_data(a.workdir)
    print(f"{'plan':<9} {'ranks':>5} {'mesh':<12} {'threads':>7} {'step ms':>8} {'samples/s':>10} "
          f"{'predicted B/step':>17} {'counted B/step':>15}")
    for plan, model in PLANS.items():
        for n in (int(x) for x in a.ranks.split(",")):
            exe = os.path.join(a.workdir, f"mlp_{plan}_{n}")
            base = [a.mpcc, model, "-D", f"cluster.devices={n}"]
            run(base + ["-o", exe])
            sched = run(base + ["--emit=schedule"]).strip().splitlines()[-1]
            m = re.match(r"busiest device: (\d+) B per step \(the plan predicts (\d+) B\)", sched)
            if not m:
                sys.exit(f"unexpected schedule summary: {sched}")
            predicted = int(m.group(1))
            threads = max(1, a.cores // n)
            prof = exe + ".profile.json"
            times, counted, mesh = [], None, "?"
            for _ in range(a.reps):
                out = run([a.mpirun, "--oversubscribe", "-np", str(n), exe, "--threads",
                           str(threads), "--steps", str(a.steps), "--log-every", str(a.steps),
                           "--profile", prof, "--data", x, "--labels", y], env)
                with open(prof) as f:
                    pj = json.load(f)
                times.append(pj["elapsed_s"] / a.steps * 1e3)
                mesh = "{S}x{d}x{t}".format(**pj["mesh"])
                b = re.search(r"bytes: counted == predicted on every rank \(busiest rank (\d+) B "
                              r"over (\d+) steps", out)
                if not b:
                    sys.exit(f"{exe}: counted bytes differ from the prediction:\n{out}")
                counted = int(b.group(1)) / int(b.group(2))
            med = statistics.median(times)
            print(f"{plan:<9} {n:>5} {mesh:<12} {threads:>7} {med:>8.2f} {128 / med * 1e3:>10.0f} "
                  f"{predicted:>17} {counted:>15.0f}", flush=True)


if __name__ == "__main__":
    main()
