#!/usr/bin/env python3
"""End-to-end equivalence of generated trainers (DESIGN.md §10).

For one model, compiles a trainer per device count with `mpcc -D cluster.devices=N -o ...`
(the search picks the mesh; annotations in the model pin strategies or stages), runs each
under `mpirun -np <ranks the plan needs> --oversubscribe` for a number of steps, and checks:

  * every run exits 0 and prints one progress line per step;
  * its loss curve matches the reference run (the first device count, or --ref MODEL at one
    device) within --rtol relative on every step;
  * the bytes the runtime counted equal the bytes the schedule predicted, on every rank
    (the trainer's "bytes:" line), and the plan's report says the same per-step total;
  * with --werror, the generated C compiles warning-free with -Wall -Wextra -Werror.

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eEinfa]+)")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def ranks_of(csrc):
    with open(csrc) as f:
        m = re.search(r"mpirun -np (\d+)", f.read())
    return int(m.group(1))


def build(a, model, devices, tag, extra):
    exe = os.path.join(a.workdir, f"{tag}_{devices}")
    cmd = [a.mpcc, model, "-D", f"cluster.devices={devices}", "-o", exe, "-v"] + extra
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}")
    if a.werror:  # the build command -v printed, again with warnings as errors
        line = next(l for l in r.stdout.splitlines() if " -std=c11 " in l)
        argv = shlex.split(line)
        argv = argv[:1] + ["-Wall", "-Wextra", "-Werror"] + argv[1:]
        argv[argv.index("-o") + 1] = exe + ".werror"
        w = run(argv)
        if w.returncode != 0:
            raise RuntimeError(f"{exe}.c does not compile warning-free:\n{w.stdout}")
    return exe


def train(a, exe, flags):
    np_ = ranks_of(exe + ".c")
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1"] + flags
    r = run(cmd, timeout=a.timeout)
    losses = {}
    bytes_ok = False
    for line in r.stdout.splitlines():
        m = STEP.match(line)
        if m:
            losses[int(m.group(1))] = float(m.group(3))
        if line.startswith("bytes: counted == predicted on every rank"):
            bytes_ok = True
    return r, losses, bytes_ok, np_


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--ref", help="reference model, run at 1 device (default: --model at the first count)")
    p.add_argument("--ref-unpinned", action="store_true",
                   help="reference: --model with its @stage(k) pins removed, run at 1 device")
    p.add_argument("--devices", default="1,2,4")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--werror", action="store_true")
    p.add_argument("-D", dest="defs", action="append", default=[])
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    extra = sum((["-D", d] for d in a.defs), [])
    tag = os.path.splitext(os.path.basename(a.model))[0]
    flags = ["--steps", str(a.steps)]
    failures = []
    counts = [int(x) for x in a.devices.split(",")]
    ref = None
    if a.ref_unpinned:
        a.ref = os.path.join(a.workdir, tag + "_unpinned.mp")
        with open(a.model) as f, open(a.ref, "w") as out:
            out.write(re.sub(r"\s*@stage\(\d+\)", "", f.read()))
    if a.ref:
        exe = build(a, a.ref, 1, tag + "_ref", extra)
        r, ref, _, _ = train(a, exe, flags)
        if r.returncode != 0 or len(ref) != a.steps:
            print(r.stdout)
            return 1
    for n in counts:
        exe = build(a, a.model, n, tag, extra)
        r, losses, bytes_ok, np_ = train(a, exe, flags)
        if r.returncode != 0 or len(losses) != a.steps:
            failures.append(f"{n} devices: exit {r.returncode}, {len(losses)} progress lines\n{r.stdout}")
            continue
        if not bytes_ok:
            failures.append(f"{n} devices: counted bytes differ from the prediction\n{r.stdout}")
        if ref is None:
            ref = losses
        worst = max(abs(losses[s] - ref[s]) / max(abs(ref[s]), 1e-12) for s in ref)
        mesh = re.search(r"plan: (.*?),", r.stdout)
        print(f"{tag}: {n} devices, {np_} ranks ({mesh.group(1) if mesh else '?'}): "
              f"loss {losses[1]:.6f} -> {losses[a.steps]:.6f}, worst relative difference {worst:.2e}")
        if worst > a.rtol:
            failures.append(f"{n} devices: loss curve differs by {worst:.3e} > {a.rtol}\n"
                            f"  ref  {[ref[s] for s in sorted(ref)]}\n  got  {[losses[s] for s in sorted(losses)]}")
    if ref and ref[a.steps] >= ref[1]:
        failures.append(f"the loss did not decrease: {ref[1]} -> {ref[a.steps]}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
