"""The share of the MLP's training step spent in GEMM, from the trainer's profile and perf.

Driven by bench/run_gemm_share.sh. Compiles examples/mlp.mp for one device (one micro-batch
of 128, as in bench/step_time.py), gives it a fixed data set (--data, npy_data.py: the
synthetic data the trainer would otherwise draw inside each step is data loading, about 12 %
of this small step) and:
  1. runs it REPS times with --profile; per layer and direction the profile's timer seconds
     over the run's elapsed_s. The linear layers (h1, h2, out) are one cblas_sgemm each way
     (two backward: input and weight gradients) plus an O(rows x cols) bias pass, so their
     share is the GEMM share up to the bias work; the rest is relu, the loss, the optimizer
     and the untimed loop itself. Median over the runs.
  2. if perf is installed, samples the CPU clock over one run and sums the samples in
     OpenBLAS (libopenblas*: the sgemm kernels, their packing copies and the BLAS threads'
     spin-waits, which are part of what a GEMM call costs) against all samples of the process.
"""
import collections
import json
import os
import shutil
import statistics

from benchlib import parser, run
from npy_data import mlp_data

LINEAR = ("h1", "h2", "out")


def main():
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    exe = os.path.join(a.workdir, "mlp_gemm")
    run([a.mpcc, "examples/mlp.mp", "-D", "cluster.devices=1", "-D", "train.microbatches=1",
         "-o", exe])
    prof = exe + ".profile.json"
    x, y = mlp_data(a.workdir)
    data = ["--data", x, "--labels", y]
    shares = collections.defaultdict(list)
    step_ms = []
    for _ in range(a.reps):
        run([a.mpirun, "-np", "1", exe, "--threads", str(a.threads), "--steps", str(a.steps),
             "--log-every", str(a.steps), "--profile", prof] + data, env)
        with open(prof) as f:
            pj = json.load(f)
        total = pj["elapsed_s"]
        linear = 0.0
        for t in pj["ranks"][0]["timers"]:
            shares[t["name"]].append(t["seconds"] / total)
            if t["name"].split(".", 1)[-1] in LINEAR:
                linear += t["seconds"]
        shares["= linear layers (GEMM + bias)"].append(linear / total)
        step_ms.append(total / a.steps * 1e3)
    print(f"profile, median of {a.reps} runs of {a.steps} steps, share of elapsed time:")
    for name, v in shares.items():
        print(f"  {name:<32} {statistics.median(v) * 100:7.2f} %")
    print(f"  step time {statistics.median(step_ms):.2f} ms")
    if shutil.which("perf"):
        samples = exe + ".perf.data"
        run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-o", samples, "--", exe,
             "--threads", str(a.threads), "--steps", str(a.steps), "--log-every", str(a.steps)]
            + data, env)
        rep = run(["perf", "report", "-i", samples, "--no-children", "--sort", "dso,sym", "--stdio",
                   "--percent-limit", "0"])
        by = collections.Counter()
        for line in rep.splitlines():
            f = line.split()
            if len(f) >= 4 and f[0].endswith("%") and not line.startswith("#"):
                pct = float(f[0][:-1])
                dso, sym = f[1], f[-1]
                if "openblas" in dso:
                    by["openblas: " + ("sgemm kernel" if "sgemm_kernel" in sym else
                                       "sgemm packing (copy)" if "sgemm" in sym and "copy" in sym
                                       else "other (thread sync, level-1/2)")] += pct
                elif dso == "[kernel.kallsyms]":
                    by["kernel (scheduler, yields of BLAS threads, faults)"] += pct
                else:
                    by[dso] += pct
        print(f"perf (cpu-clock samples of one {a.steps}-step run, startup included):")
        for k, v in by.most_common():
            if v >= 0.5:
                print(f"  {k:<52} {v:6.2f} %")
        print(f"  {'all of OpenBLAS':<52} "
              f"{sum(v for k, v in by.items() if k.startswith('openblas')):6.2f} %")


if __name__ == "__main__":
    main()
