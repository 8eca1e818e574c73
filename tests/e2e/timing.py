#!/usr/bin/env python3
"""Predicted against measured time, end to end (docs/runtime.md "Predicted and measured").

A two-stage pipelined trainer on two ranks, its plan as JSON (--report-json) and a run with
--profile and --log-every 2:
  * progress lines every second step carry samples/s per device, ms/step, GFLOP/s and MFU, and
    those agree with each other and with the plan's FLOPs (the report's per-layer flops_fwd +
    flops_bwd) and the preset's peak, to the printed precision;
  * the end-of-run line states the plan's predicted step (the report's) and the steady state
    measured after the warm-up step;
  * the profile has predicted_step_s (= the plan's), measured_step_s, warmup_steps, and per rank
    the layers of its stage with the plan's predicted seconds per micro-batch and the steady
    calls (steps after warm-up × micro-batches);
  * `mpcc compare PLAN PROFILE` lists every layer, largest error first; a missing file, bad
    JSON, a missing field and another model's profile are one-line errors with status 1;
  * `--trace` (Chrome trace-event JSON) holds one process per rank with a compute and a
    communication track, each micro-batch's forward and backward span of every layer of the
    rank's stage in each of the --trace-steps steps after the warm-up, and communication spans
    whose bytes add up per step to the rank's counted bytes per step (the profile's);
  * `mpirun -np 2 ./train --help` prints the usage once.
Times are never compared with a bound: only their consistency (this machine is shared).
"""
import argparse
import json
import os
import re
import subprocess
import sys

PROGRESS = re.compile(r"^step (\d+)/(\d+) \| loss (\S+) \| ([0-9.]+) samples/s \| ([0-9.]+) "
                      r"samples/s/device \| ([0-9.e+-]+) ms/step \| ([0-9.e+-]+) GFLOP/s \| MFU "
                      r"([0-9.e+-]+)% \| comm")
FORECAST = re.compile(r"^time: predicted ([0-9.e+-]+) ms/step, measured ([0-9.e+-]+) ms/step "
                      r"\(steps (\d+)-(\d+); (\d+) warm-up\): ([0-9.e+-]+)x the prediction$")
fails = []


def check(ok, what):
    if not ok:
        fails.append(what)
        print("FAIL:", what)


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600)


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def check_progress(out, plan, ranks):
    flops = sum(l["flops_fwd"] + l["flops_bwd"] for l in plan["layers"])
    peak = plan["cluster"]["flops"]
    lines = [m for m in map(PROGRESS.match, out.splitlines()) if m]
    check([int(m.group(1)) for m in lines] == [2, 4, 6], f"progress at steps 2, 4, 6: {out}")
    for m in lines:
        rate, dev, ms, gflops, mfu = (float(m.group(i)) for i in range(4, 9))
        check(abs(dev * ranks - rate) <= 0.05 * (ranks + 1) + 1e-3 * rate,  # both to 0.1
              f"per device × ranks = samples/s: {m.group(0)}")
        check(close(gflops, flops / (ms * 1e-3) / 1e9, 0.02), f"GFLOP/s from ms/step: {m.group(0)}")
        want = 100 * gflops * 1e9 / (ranks * peak)  # MFU is printed to 0.1 percentage points
        check(abs(mfu - want) <= 0.051 + 0.01 * want, f"MFU from GFLOP/s and the peak: {m.group(0)}")
    f = [m for m in map(FORECAST.match, out.splitlines()) if m]
    check(len(f) == 1, f"one end-of-run time line: {out}")
    if f:
        pred, meas, first, last, warm, ratio = f[0].groups()
        check(close(float(pred) * 1e-3, plan["totals"]["step_time"], 0.006), "predicted = plan's")
        check((first, last, warm) == ("2", "6", "1"), "steps 2-6 after 1 warm-up")
        check(close(float(ratio), float(meas) / float(pred), 0.02), "ratio = measured/predicted")


def check_profile(prof, plan, steps):
    check(close(prof["predicted_step_s"], plan["totals"]["step_time"], 1e-5), "predicted_step_s")
    check(prof["measured_step_s"] > 0 and prof["warmup_steps"] == 1, "measured_step_s, warm-up")
    by_name = {l["name"]: l for l in plan["layers"]}
    m = plan["microbatches"]
    for r in prof["ranks"]:
        names = [l["name"] for l in r["layers"]]
        want = [l["name"] for l in plan["layers"] if l["stage"] == r["stage"]]
        check(names == want, f"rank {r['rank']}: layers {names}, its stage's {want}")
        for l in r["layers"]:
            p = by_name[l["name"]]
            check(close(l["predicted_fwd_s"], p["fwd_time"], 1e-5) and
                  close(l["predicted_bwd_s"], p["bwd_time"], 1e-5), f"{l['name']}: predicted")
            check(l["steady_calls"] == (steps - 1) * m and l["measured_fwd_s"] > 0,
                  f"{l['name']}: {l['steady_calls']} steady calls")


PLAN_KINDS = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "send/recv"}


def check_trace(trace, prof, plan, steps, traced):
    ev = trace["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in ev if e["name"] == "process_name"}
    check(sorted(names) == [0, 1] and all(f"rank {p} (stage" in n for p, n in names.items()),
          f"one named process per rank: {names}")
    threads = sorted((e["pid"], e["tid"], e["args"]["name"]) for e in ev if e["name"] == "thread_name")
    check(threads == [(p, t, n) for p in (0, 1) for t, n in ((0, "compute"), (1, "communication"))],
          f"tracks: {threads}")
    spans = [e for e in ev if e["ph"] == "X"]
    check(all(e["ts"] >= 0 and e["dur"] >= 0 for e in spans), "spans start after the origin")
    for track in {(e["pid"], e["tid"]) for e in spans}:  # Perfetto wants no partial overlaps
        on = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if (e["pid"], e["tid"]) == track)
        check(all(b[0] >= a[1] - 1e-3 for a, b in zip(on, on[1:])), f"track {track} overlaps")
    want_steps = set(range(2, 2 + traced))
    check({e["args"]["step"] for e in spans} == want_steps, f"traced steps {want_steps}")
    m = plan["microbatches"]
    for r in prof["ranks"]:
        mine = [e for e in spans if e["pid"] == r["rank"]]
        for l in (l["name"] for l in plan["layers"] if l["stage"] == r["stage"]):
            for d in ("fwd", "bwd"):
                got = sorted((e["args"]["step"], e["args"]["micro"]) for e in mine
                             if e["name"] == f"{d}.{l}" and e["tid"] == 0)
                check(got == [(s, k) for s in sorted(want_steps) for k in range(m)],
                      f"rank {r['rank']} {d}.{l}: spans {got}")
        for s in want_steps:
            b = sum(e["args"]["bytes"] for e in mine if e["tid"] == 1 and e["name"] in PLAN_KINDS
                    and e["args"]["step"] == s)
            check(b * steps == r["plan_bytes"],
                  f"rank {r['rank']} step {s}: traced {b} B, counted {r['plan_bytes']} / {steps}")


def compare(a, plan_path, prof_path, prof, other_plan):
    r = run([a.mpcc, "compare", plan_path, prof_path])
    check(r.returncode == 0, f"mpcc compare: {r.stderr}")
    rows = r.stdout.splitlines()[4:]
    names = [row.split()[0] for row in rows]
    plan = json.load(open(plan_path))
    check(sorted(names) == sorted(l["name"] for l in plan["layers"]), f"every layer: {names}")
    meas = {l["name"]: l for rk in prof["ranks"] for l in rk["layers"]}
    off = {l["name"]: abs(meas[l["name"]]["measured_fwd_s"] - l["fwd_time"]) +
           abs(meas[l["name"]]["measured_bwd_s"] - l["bwd_time"]) for l in plan["layers"]}
    check(all(off[x] >= off[y] * 0.999 for x, y in zip(names, names[1:])),
          f"largest error first: {names}")
    bad = os.path.join(a.workdir, "bad.json")
    broken = dict(prof)
    del broken["measured_step_s"]
    cases = [(["/nonexistent/p.json", prof_path], "cannot open"),
             ([plan_path, plan_path + ".missing"], "cannot open"),
             ([other_plan, prof_path], "is not in the plan"),
             ([plan_path, bad], "measured_step_s")]
    with open(bad, "w") as f:
        json.dump(broken, f)
    for args, want in cases:
        r = run([a.mpcc, "compare"] + args)
        err = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(err) == 1 and want in err[0],
              f"compare {args}: status {r.returncode}, {r.stderr!r}")
    with open(bad, "w") as f:
        f.write("{ not json")
    r = run([a.mpcc, "compare", plan_path, bad])
    check(r.returncode == 1 and "not valid JSON" in r.stderr, f"bad JSON: {r.stderr!r}")


def oversubscribed(a, exe):
    """More ranks than CPUs on the node: the end of the run says so after the time line (its
    two ranks held to one CPU with taskset; Open MPI's own binding off, so they keep that
    mask); with a CPU per rank (the run above, where this machine has two) it says nothing."""
    note = "note: 2 ranks shared 1 CPU on this node: the plan priced a device per rank"
    r = run(["taskset", "-c", str(min(os.sched_getaffinity(0))), a.mpirun, "--bind-to", "none",
             "-np", "2", exe, "--threads", "1", "--steps", "3", "--log-every", "3"])
    lines = r.stdout.splitlines()
    at = [i for i, ln in enumerate(lines) if FORECAST.match(ln)]
    check(r.returncode == 0 and at and at[0] + 1 < len(lines) and lines[at[0] + 1].startswith(note),
          f"oversubscribed run notes it after the time line: {r.stdout}{r.stderr}")
    if len(os.sched_getaffinity(0)) >= 2:
        r = run([a.mpirun, "-np", "2", exe, "--threads", "1", "--steps", "3", "--log-every", "3"])
        check(r.returncode == 0 and "note:" not in r.stdout, f"no note with a CPU per rank: {r.stdout}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--other", required=True, help="another model, for the wrong-profile case")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe, plan_path = os.path.join(a.workdir, "train"), os.path.join(a.workdir, "plan.json")
    other_plan = os.path.join(a.workdir, "other.json")
    for cmd in ([a.model, "-o", exe, "--report-json", plan_path],
                [a.other, "--report-json", other_plan]):
        r = run([a.mpcc, "-D", "cluster.devices=2"] + cmd)
        if r.returncode != 0:
            sys.exit(f"mpcc failed: {r.stderr}")
    plan, prof_path = json.load(open(plan_path)), os.path.join(a.workdir, "prof.json")
    check(plan["mesh"]["S"] == 2, "the model runs as two pipeline stages")
    trace_path = os.path.join(a.workdir, "trace.json")
    r = run([a.mpirun, "-np", "2", exe, "--threads", "1", "--steps", "6", "--log-every", "2",
             "--profile", prof_path, "--trace", trace_path, "--trace-steps", "2"])
    check(r.returncode == 0, f"train: {r.stderr}")
    if r.returncode == 0:
        check_progress(r.stdout, plan, 2)
        prof = json.load(open(prof_path))
        check_profile(prof, plan, 6)
        check_trace(json.load(open(trace_path)), prof, plan, 6, 2)
        compare(a, plan_path, prof_path, prof, other_plan)
    r = run([a.mpirun, "-np", "2", exe, "--help"])
    check(r.returncode == 0 and r.stdout.count("usage:") == 1, f"--help once: {r.stdout}")
    oversubscribed(a, exe)
    print(f"timing: {'FAILED' if fails else 'ok'} ({len(fails)} failures)")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
