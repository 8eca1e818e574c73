"""Predicted against measured step time, after calibration (issue 14's acceptance; docs/benchmarks.md).

For each rank count N it first runs `mpirun -np N mpcc-calibrate -o cal.N.json`, then for each
model compiles the trainer with `-D cluster.preset=cal.N.json -D cluster.devices=N` (the plan
the search chooses, and with --alternatives every pinned mesh S×d×t of N at the chosen m),
runs it REPS times with --profile and prints, per run, the trainer's own steady-state figure
(`measured_step_s`: warm-up steps excluded the way the end-of-run line does) beside the plan's
`predicted_step_s`, with the 1-minute load average before the run (the machine is shared).
The per-layer table of the last run is `mpcc compare`'s (largest error first). Synthetic data
(the trainer's default) except for mlp, which reads the .npy files of bench/npy_data.py.
"""
import json
import os
import statistics

from benchlib import parser, run
from npy_data import mlp_data

MODELS = {
    # name: (model file, -D overrides, steps)
    "mlp": ("examples/mlp.mp", [], 40),
    "transformer_b4": ("examples/transformer.mp", ["train.batch=4", "train.microbatches=1"], 8),
    "cnn": ("bench/cnn.mp", [], 20),
}


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def one(a, env, name, n, cal, pin, reps):
    model, defines, steps = MODELS[name]
    tag = f"{name}.{n}" + (f".{pin[0]}.{pin[1]}" if pin else "")
    exe = os.path.join(a.workdir, tag)
    cmd = [a.mpcc, model, "-D", f"cluster.preset={cal}", "-D", f"cluster.devices={n}"]
    for d in defines:
        cmd += ["-D", d]
    if pin:
        cmd += ["-D", f"plan.mesh={pin[0]}", "-D", f"plan.microbatches={pin[1]}"]
    run(cmd + ["-o", exe, "--report-json", exe + ".plan.json"])
    data = []
    if model.endswith("mlp.mp"):
        x, y = mlp_data(a.workdir)
        data = ["--data", x, "--labels", y]
    prof = exe + ".profile.json"
    got = []
    for _ in range(reps):
        ld = load()
        run([a.mpirun, "-np", str(n), exe, "--threads", "1" if n > 1 else "2", "--steps",
             str(steps), "--log-every", str(steps), "--profile", prof] + data, env)
        with open(prof) as f:
            p = json.load(f)
        got.append((p["measured_step_s"], ld))
        pred = p["predicted_step_s"]
    with open(exe + ".plan.json") as f:
        mesh = json.load(f)["mesh"]
    ms = [g[0] for g in got]
    med = statistics.median(ms)
    print(f"{tag:<28} mesh {mesh['S']}x{mesh['d']}x{mesh['t']} pred {pred*1e3:8.2f} ms  measured "
          f"median {med*1e3:8.2f} ms (min {min(ms)*1e3:.2f}, max {max(ms)*1e3:.2f})  "
          f"meas/pred {med/pred:5.2f}  load {min(g[1] for g in got):.1f}-"
          f"{max(g[1] for g in got):.1f}", flush=True)
    if a.layers:
        print(run([a.mpcc, "compare", exe + ".plan.json", prof]), flush=True)
    return med


def main():
    p = parser(__doc__)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--layers", action="store_true", help="print mpcc compare for each plan")
    p.add_argument("--alternatives", action="store_true",
                   help="also pin every mesh of N ranks (at the chosen m) and run it")
    p.add_argument("models", nargs="*", default=list(MODELS))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    cal_tool = os.path.join(os.path.dirname(a.mpcc), "tools", "mpcc-calibrate")
    for n in [int(x) for x in a.ranks.split(",")]:
        cal = os.path.join(a.workdir, f"cal.{n}.json")
        print(f"# load {load():.1f}: mpirun -np {n} {cal_tool} -o {cal}", flush=True)
        run([a.mpirun, "-np", str(n), cal_tool, "-o", cal], env)
        for name in a.models:
            one(a, env, name, n, cal, None, a.reps)
            if a.alternatives and n > 1:
                with open(os.path.join(a.workdir, f"{name}.{n}.plan.json")) as f:
                    m = json.load(f)["microbatches"]
                for mesh in (f"1x{n}x1", f"1x1x{n}", f"{n}x1x1"):
                    try:
                        one(a, env, name, n, cal, (mesh, m), a.reps)
                    except SystemExit as e:
                        print(f"{name}.{n} pinned {mesh}: {str(e).splitlines()[0]}")


if __name__ == "__main__":
    main()
