"""Predicted against measured step time, after calibration (issue 14's acceptance; docs/benchmarks.md).

For each rank count N: `mpirun -np N mpcc-calibrate -o cal.N.json`, then for each model the
trainer compiled with `-D cluster.preset=cal.N.json -D cluster.devices=N` (the plan the search
chooses) is run REPS times with --profile. Printed, as Markdown tables to paste:
  1. the step: the plan's predicted_step_s against the trainer's steady-state measured_step_s
     (warm-up excluded), median and min-max over the runs, with the load average;
  2. per layer, for the layers over 5 % of the measured step: forward and backward measured /
     predicted per micro-batch (median, min-max over the runs);
  3. at N > 1, the gradient all-reduce's hidden share: every run is paired with one under
     MPRT_GRAD_SYNC=blocking (each all-reduce waited for where it starts); the profile's
     grad_sync_exposed_s is what each rank waited per step; hidden = 1 - overlapped / blocking
     (rank mean), against the report's share of the wait removed, grad_sync_hidden /
     (grad_sync_hidden + grad_sync_unhidden - grad_sync_slow) (docs/cost-model.md §5);
  4. with --alternatives at N > 1, every pinned mesh of N ranks (-D plan.mesh, at the chosen m)
     run too: is the chosen plan the measured fastest (or within 10 % of it)?
Every model reads bench/npy_data.py's .npy files (--data/--labels): the trainer's synthetic
data is drawn inside the step, which is data generation, not training (the CNN's teacher
labels were more than a third of its step, the transformer's normal draws about a tenth,
docs/benchmarks.md).
"""
import json
import os
import statistics

from benchlib import parser, run
from npy_data import cnn_data, mlp_data, transformer_data

MODELS = {
    # name: (model file, -D overrides, steps)
    "mlp": ("examples/mlp.mp", [], 40),
    "transformer_b4": ("examples/transformer.mp", ["train.batch=4", "train.microbatches=1"], 8),
    "cnn": ("bench/cnn.mp", [], 20),
}
DATA = {"mlp": mlp_data, "transformer_b4": transformer_data, "cnn": cnn_data}


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def spread(xs, fmt="{:.2f}"):
    med = statistics.median(xs)
    return med, f"{fmt.format(med)} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def compile_model(a, name, n, cal, pin):
    model, defines, _ = MODELS[name]
    tag = f"{name}.{n}" + (f".{pin[0]}.{pin[1]}" if pin else "")
    exe = os.path.join(a.workdir, tag)
    cmd = [a.mpcc, model, "-D", f"cluster.preset={cal}", "-D", f"cluster.devices={n}"]
    for d in defines:
        cmd += ["-D", d]
    if pin:
        cmd += ["-D", f"plan.mesh={pin[0]}", "-D", f"plan.microbatches={pin[1]}"]
    run(cmd + ["-o", exe, "--report-json", exe + ".plan.json"])
    with open(exe + ".plan.json") as f:
        return tag, exe, json.load(f)


def run_once(a, env, name, n, exe, blocking):
    model, _, steps = MODELS[name]
    x, y = DATA[name](a.workdir)
    data = ["--data", x, "--labels", y]
    prof = exe + (".blocking" if blocking else "") + ".profile.json"
    e = dict(env, MPRT_GRAD_SYNC="blocking") if blocking else env
    run([a.mpirun, "-np", str(n), exe, "--threads", "1" if n > 1 else "2", "--steps", str(steps),
         "--log-every", str(steps), "--profile", prof] + data, e)
    with open(prof) as f:
        return json.load(f)


def exposed(p):
    return statistics.mean(r.get("grad_sync_exposed_s", 0.0) for r in p["ranks"])


def layer_rows(profiles, plan):
    """Per layer (rank 0): measured/predicted fwd and bwd over the runs, for layers over 5 %."""
    m = plan["microbatches"]
    rows = []
    for i, lay in enumerate(profiles[0]["ranks"][0]["layers"]):
        runs = [p["ranks"][0]["layers"][i] for p in profiles]
        share = statistics.median(
            (r["measured_fwd_s"] + r["measured_bwd_s"]) * m / p["measured_step_s"]
            for r, p in zip(runs, profiles))
        if share < 0.05 or lay["predicted_fwd_s"] <= 0 or lay["predicted_bwd_s"] <= 0:
            continue
        f = [r["measured_fwd_s"] / lay["predicted_fwd_s"] for r in runs]
        b = [r["measured_bwd_s"] / lay["predicted_bwd_s"] for r in runs]
        rows.append((lay["name"], share, spread(f), spread(b)))
    return rows


def predicted_hidden(plan):
    """The report's share of the gradient sync's wait removed: hidden / (hidden + exposed wait),
    the exposed wait being the unhidden sync less the backward's slowdown (grad_sync_slow)."""
    t = plan["totals"]
    all_ = t["grad_sync_hidden"] + t["grad_sync_unhidden"] - t.get("grad_sync_slow", 0.0)
    return t["grad_sync_hidden"] / all_ if all_ > 0 else None


def bench_model(a, env, name, n, cal, pin=None, reps=None):
    tag, exe, plan = compile_model(a, name, n, cal, pin)
    reps = reps or a.reps
    over, block, loads = [], [], []
    for _ in range(reps):
        loads.append(load())
        over.append(run_once(a, env, name, n, exe, False))
        if n > 1:
            block.append(run_once(a, env, name, n, exe, True))
    r = {"tag": tag, "plan": plan, "pred": over[0]["predicted_step_s"],
         "meas": [p["measured_step_s"] for p in over], "load": (min(loads), max(loads)),
         "layers": layer_rows(over, plan)}
    if block:
        hid = [1 - exposed(o) / exposed(b) if exposed(b) > 0 else 0.0 for o, b in zip(over, block)]
        r["hidden"] = (predicted_hidden(plan), hid, [exposed(o) for o in over],
                       [exposed(b) for b in block])
    return r


def mesh_of(plan):
    m = plan["mesh"]
    return f"{m['S']}x{m['d']}x{m['t']}"


def print_step(results):
    print("\n| model | ranks | mesh | m | predicted | measured median (min-max) | measured / predicted "
          "median (min-max) | load |")
    print("|---|---|---|---|---|---|---|---|")
    for n, r in results:
        ms = [x * 1e3 for x in r["meas"]]
        _, txt = spread(ms, "{:.1f}")
        _, ratio = spread([x / r["pred"] for x in r["meas"]])
        print(f"| {r['tag'].split('.')[0]} | {n} | {mesh_of(r['plan'])} | "
              f"{r['plan']['microbatches']} | {r['pred']*1e3:.1f} ms | {txt} ms | {ratio} | "
              f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |")


def print_layers(results):
    print("\n| model | ranks | layer | share of step | fwd measured / predicted | "
          "bwd measured / predicted |")
    print("|---|---|---|---|---|---|")
    for n, r in results:
        for name, share, f, b in r["layers"]:
            print(f"| {r['tag'].split('.')[0]} | {n} | {name} | {share*100:.0f} % | {f[1]} | "
                  f"{b[1]} |")


def print_hidden(results):
    """Every 2-rank plan run (chosen and pinned): the share of the blocking run's sync wait the
    overlapped run removed, against the report's. Judged only where that wait is at least 5 %
    of the step: below it, a wait of a fraction of a millisecond is mostly one rank waiting for
    the other to finish its backward (skew), which no overlap can remove."""
    print("\n| model | ranks | mesh | predicted hidden | measured hidden median (min-max) | "
          "waited per step overlapped / blocking (ms, medians) | blocking wait / step | "
          "within 20 pp? |")
    print("|---|---|---|---|---|---|---|---|")
    for n, r in results:
        if "hidden" not in r:
            continue
        ph, hid, o, b = r["hidden"]
        med, txt = spread([h * 100 for h in hid], "{:.0f}")
        pt = "no gradient sync" if ph is None else f"{ph*100:.0f} %"
        share = statistics.median(b) / statistics.median(r["meas"])
        judged = "" if share < 0.05 or ph is None else (
            "yes" if abs(med - ph * 100) <= 20 else "no")
        print(f"| {r['tag'].split('.')[0]} | {n} | {mesh_of(r['plan'])} | {pt} | {txt} % | "
              f"{statistics.median(o)*1e3:.2f} / {statistics.median(b)*1e3:.2f} | "
              f"{share*100:.1f} % | {judged or 'not judged (< 5 %)'} |")


def alternatives(a, env, name, n, cal, chosen, runs):
    """Every pinned mesh of n ranks at the chosen m; rows for the 'fastest' table (each run's
    result also appended to runs, for the hidden-share table)."""
    m = chosen["plan"]["microbatches"]
    rows = [(mesh_of(chosen["plan"]), chosen["pred"], statistics.median(chosen["meas"]), True)]
    for mesh in (f"1x{n}x1", f"1x1x{n}", f"{n}x1x1"):
        if mesh == rows[0][0]:
            continue
        try:
            r = bench_model(a, env, name, n, cal, (mesh, m), a.alt_reps)
        except SystemExit as e:
            print(f"# {name}.{n} pinned {mesh}: {str(e).splitlines()[0]}", flush=True)
            continue
        rows.append((mesh, r["pred"], statistics.median(r["meas"]), False))
        runs.append((n, r))
    return rows


def print_fastest(table):
    print("\n| model | ranks | mesh | predicted | measured median | chosen | chosen measured "
          "fastest (within 10 %)? |")
    print("|---|---|---|---|---|---|---|")
    for (name, n), rows in table.items():
        best = min(r[2] for r in rows)
        for mesh, pred, meas, ch in rows:
            ok = "yes" if meas <= 1.1 * best else "no"
            print(f"| {name} | {n} | {mesh} | {pred*1e3:.1f} ms | {meas*1e3:.1f} ms | "
                  f"{'**chosen**' if ch else ''} | {ok if ch else ''} |")


def main():
    p = parser(__doc__)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--alt-reps", type=int, default=5)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--alternatives", action="store_true",
                   help="also pin every mesh of N > 1 ranks (at the chosen m) and run it")
    p.add_argument("models", nargs="*", default=list(MODELS))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env.pop("MPRT_GRAD_SYNC", None)
    cal_tool = os.path.join(os.path.dirname(a.mpcc), "tools", "mpcc-calibrate")
    results, pinned, fastest = [], [], {}
    for n in [int(x) for x in a.ranks.split(",")]:
        cal = os.path.join(a.workdir, f"cal.{n}.json")
        print(f"# load {load():.1f}: mpirun -np {n} {cal_tool} -o {cal}", flush=True)
        print(run([a.mpirun, "-np", str(n), cal_tool, "-o", cal], env), flush=True)
        for name in a.models:
            r = bench_model(a, env, name, n, cal)
            results.append((n, r))
            print(f"# {r['tag']}: predicted {r['pred']*1e3:.2f} ms, measured "
                  f"{[round(x*1e3, 2) for x in r['meas']]} ms, load {r['load']}", flush=True)
            if a.alternatives and n > 1:
                fastest[(name, n)] = alternatives(a, env, name, n, cal, r, pinned)
    print_step(results)
    print_layers(results)
    print_hidden(results + pinned)
    if fastest:
        print_fastest(fastest)


if __name__ == "__main__":
    main()
