#!/usr/bin/env python3
"""End-to-end equivalence of generated trainers (DESIGN.md §10).

For one model, compiles a trainer per device count with `mpcc -D cluster.devices=N -o ...`
(the search picks the mesh; annotations in the model pin strategies or stages), runs each
under `mpirun -np <ranks the plan needs> --oversubscribe` for a number of steps, and checks:

  * every run exits 0 and prints one progress line per step;
  * its loss curve matches the reference run (the first device count, or --ref MODEL at one
    device) within --rtol relative on every step, and the reference's loss falls (the mean of
    its last quarter of steps below that of its first quarter);
  * the bytes the runtime counted equal the bytes the schedule predicted, on every rank
    (the trainer's "bytes:" line), and the plan's report says the same per-step total;
  * with --werror, the generated C compiles warning-free with -Wall -Wextra -Werror;
  * with --tokens flat|llmc, every run trains on the same token stream (`--data train.bin`,
    written here in nanoGPT's flat uint16 layout or llm.c's header layout), whose random
    windows must be the same whatever the plan;
  * the --profile JSON has, on every rank, the per-stage timers stage.busy (one call per step,
    positive) and stage.idle, whose sum fits in the run's elapsed time, and pipelined plans
    (S > 1) record idle time on every rank (docs/codegen.md, "Measuring the bubble").

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import json
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


def write_tokens(path, layout, vocab):
    """A token stream of English-like text (letters, space, '.', ',' and the rest mapped into
    [0, vocab)), deterministic, in nanoGPT's flat uint16 layout or llm.c's (a header of 256
    int32s: magic 20240520, version 1, token count)."""
    import random
    import struct
    rng = random.Random(1)
    words = "the quick brown fox jumps over a lazy dog and then runs back to its den".split()
    text = ". ".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 9)))
                     for _ in range(400))
    code = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz .,")}
    toks = [code.get(c, len(code)) % vocab for c in text]
    with open(path, "wb") as f:
        if layout == "llmc":
            f.write(struct.pack("<256i", 20240520, 1, len(toks), *([0] * 253)))
        f.write(struct.pack(f"<{len(toks)}H", *toks))


def check_profile(path, steps):
    """The per-stage busy/idle timers of one run's profile; returns the problems found."""
    with open(path) as f:
        p = json.load(f)
    errs = []
    for r in p["ranks"]:
        t = {x["name"]: x for x in r["timers"]}
        if "stage.busy" not in t or "stage.idle" not in t:
            errs.append(f"rank {r['rank']}: no stage.busy/stage.idle timers in the profile")
            continue
        busy, idle = t["stage.busy"], t["stage.idle"]
        if busy["calls"] != steps or busy["seconds"] <= 0:
            errs.append(f"rank {r['rank']}: stage.busy {busy} is not one positive interval per step")
        if idle["seconds"] < 0 or busy["seconds"] + idle["seconds"] > p["elapsed_s"]:
            errs.append(f"rank {r['rank']}: busy {busy['seconds']} + idle {idle['seconds']} s "
                        f"exceed the run's {p['elapsed_s']} s")
        if p["mesh"]["S"] > 1 and idle["seconds"] <= 0:
            errs.append(f"rank {r['rank']}: a pipelined run recorded no idle time")
    return errs


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
    p.add_argument("--model-D", dest="model_defs", action="append", default=[],
                   help="a -D setting for --model's builds only, not the --ref run (plan.mesh)")
    p.add_argument("--tokens", choices=["flat", "llmc"],
                   help="train every run on a token stream of this layout (--data)")
    p.add_argument("--vocab", type=int, default=30, help="the token stream's vocabulary")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    extra = sum((["-D", d] for d in a.defs), [])
    tag = os.path.splitext(os.path.basename(a.model))[0]
    flags = ["--steps", str(a.steps)]
    if a.tokens:
        stream = os.path.join(a.workdir, f"train_{a.tokens}.bin")
        write_tokens(stream, a.tokens, a.vocab)
        flags += ["--data", stream]
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
        exe = build(a, a.model, n, tag, extra + sum((["-D", d] for d in a.model_defs), []))
        r, losses, bytes_ok, np_ = train(a, exe, flags + ["--profile", exe + ".profile.json"])
        if r.returncode != 0 or len(losses) != a.steps:
            failures.append(f"{n} devices: exit {r.returncode}, {len(losses)} progress lines\n{r.stdout}")
            continue
        failures += [f"{n} devices: {e}" for e in check_profile(exe + ".profile.json", a.steps)]
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
    # Synthetic data is fresh every step (the teacher, docs/runtime.md), so one step's loss is
    # noisy: the mean of the last quarter of the steps must be below that of the first.
    q = max(1, a.steps // 4)
    if ref and len(ref) == a.steps:
        head = sum(ref[s] for s in range(1, q + 1)) / q
        tail = sum(ref[s] for s in range(a.steps - q + 1, a.steps + 1)) / q
        if tail >= head:
            failures.append(f"the loss did not decrease: mean {head} over steps 1-{q}, "
                            f"{tail} over the last {q}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
