"""Step time at one rank: the mpcc trainer against the same model in PyTorch (CPU, fp32).

Driven by bench/run_step_time.sh. For each configuration it compiles the trainer with
`mpcc -D cluster.devices=1 ...`, then alternates REPS runs of the trainer and of
bench/torch_step.py (alternating so that load from other users of the machine hits both
alike). Both sides discard warm-up the same way: a torch run's step time is the median of its
steps after its warm-up steps; a trainer run's is its steady-state step, from the profile's
`stage.busy` timer, (seconds - first_s) / (calls - 1): every step but the first, whose
first-touch page faults are what torch's warm-up hides. The trainer's all-steps figure
(elapsed_s / steps, start-up and first step included) is printed beside it. The table gives the
median over the REPS runs of each, and the ratio torch / mpcc (> 1: mpcc is faster).
"""
import json
import os
import statistics

from benchlib import parser, run
from npy_data import mlp_data

CONFIGS = {
    # name: (model file, -D overrides, torch arguments, steps, torch warm-up)
    "mlp": ("examples/mlp.mp", ["train.microbatches=1"], ["mlp", "--batch", "128"], 40, 5),
    "mlp_m4": ("examples/mlp.mp", [], ["mlp", "--batch", "128", "--microbatches", "4"], 40, 5),
    "transformer_b4": ("examples/transformer.mp",
                       ["train.batch=4", "train.microbatches=1", "cluster.preset=cpu"],
                       ["transformer", "--batch", "4"], 6, 1),
}


def main():
    p = parser(__doc__)
    p.add_argument("--python", default="bench/.venv/bin/python")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("configs", nargs="*", default=list(CONFIGS))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    rows = []
    for name in a.configs:
        model, defines, targs, steps, warm = CONFIGS[name]
        exe = os.path.join(a.workdir, name)
        cmd = [a.mpcc, model, "-D", "cluster.devices=1"]
        for d in defines:
            cmd += ["-D", d]
        run(cmd + ["-o", exe])
        print("#", " ".join(cmd + ["-o", exe]), flush=True)
        prof = exe + ".profile.json"
        data = []
        if model.endswith("mlp.mp"):
            x, y = mlp_data(a.workdir)
            data = ["--data", x, "--labels", y]
        tcmd = [a.python, "bench/torch_step.py"] + targs + [
            "--threads", str(a.threads), "--steps", str(steps), "--warmup", str(warm)]
        print("#", " ".join(tcmd), flush=True)
        ours, ours_all, theirs = [], [], []
        for _ in range(a.reps):
            run([a.mpirun, "-np", "1", exe, "--threads", str(a.threads), "--steps", str(steps),
                 "--log-every", str(steps), "--profile", prof] + data, env)
            with open(prof) as f:
                p = json.load(f)
            busy = next(t for t in p["ranks"][0]["timers"] if t["name"] == "stage.busy")
            ours.append((busy["seconds"] - busy["first_s"]) / (busy["calls"] - 1) * 1e3)
            ours_all.append(p["elapsed_s"] / steps * 1e3)
            theirs.append(float(run(tcmd).split()[2]))
            print(f"#   {name}: mpcc {ours[-1]:.2f} ms (all steps {ours_all[-1]:.2f} ms)  "
                  f"torch {theirs[-1]:.2f} ms", flush=True)
        rows.append((name, statistics.median(ours), min(ours), statistics.median(ours_all),
                     statistics.median(theirs), min(theirs)))
    print(f"{'config':<16} {'mpcc median':>12} {'mpcc min':>9} {'mpcc all-steps':>15} "
          f"{'torch median':>13} {'torch min':>10} {'torch/mpcc':>11}")
    for name, om, omin, oall, tm, tmin in rows:
        print(f"{name:<16} {om:>9.2f} ms {omin:>6.2f} ms {oall:>12.2f} ms {tm:>10.2f} ms "
              f"{tmin:>7.2f} ms {tm / om:>10.2f}x")


if __name__ == "__main__":
    main()
