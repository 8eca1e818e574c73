#!/usr/bin/env python3
"""The CUDA trainer against the C trainer of the same plan (docs/cuda.md), end to end.

For one model and each device count of --devices: `mpcc -D cluster.devices=N` builds the C and
the CUDA trainer (the same plan: the driver plans alike for both targets), and

  * with --loss STRATEGY, the report (--report-json) gives the cross-entropy that strategy at
    every count above 1 (say vocab-parallel: the loss split over the LM head's classes);
  * both trainers run --steps steps (the CUDA one with --comm, default mpi: the ranks share
    one GPU); both exit 0, print every step, count exactly the bytes the schedule predicts and
    allocate exactly the memory the plan predicts (docs/runtime.md, "Memory");
  * the CUDA loss curve is within --rtol relative of the C one at every step, and the C one
    within --rtol of the first count's C curve (the split does not change the loss).

--gpu-probe names a program that exits 0 when a CUDA device is present; without one the
script prints "SKIPPED: no CUDA device" and exits 77 before building anything.
Exit status 0 when all hold; every failure is printed.
"""
import argparse
import json
import os
import re
import sys

from e2e_common import run

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eEinfa]+)")
BYTES_OK = "bytes: counted == predicted on every rank"
MEMORY_OK = "memory: allocated == predicted on every rank"


def loss_strategy(report):
    """The cross-entropy layer's strategy in a --report-json file."""
    def find(o):
        if isinstance(o, dict):
            if o.get("op") == "cross_entropy":
                return o
            o = list(o.values())
        for v in o if isinstance(o, list) else []:
            x = find(v)
            if x:
                return x
        return None
    with open(report) as f:
        node = find(json.load(f))
    return node.get("strategy") if node else None


class Ctx:
    def __init__(self, a):
        self.a, self.failures = a, []

    def build(self, n, target):
        exe = os.path.join(self.a.workdir, f"{target}_{n}")
        cmd = [self.a.mpcc, self.a.model, "-D", f"cluster.devices={n}", "--target", target, "-o",
               exe, "--report-json", exe + ".json"]
        r = run(cmd, 900)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}")
        with open(exe + (".cu" if target == "cuda" else ".c")) as f:
            ranks = int(re.search(r"mpirun -np (\d+)", f.read()).group(1))
        return exe, ranks

    def train(self, exe, ranks, cuda):
        flags = ["--comm", self.a.comm] if cuda else ["--threads", "1"]
        cmd = [self.a.mpirun, "--oversubscribe", "-np", str(ranks), exe, "--steps",
               str(self.a.steps)] + flags
        r = run(cmd, self.a.timeout)
        losses = {int(m.group(1)): float(m.group(3))
                  for m in (STEP.match(l) for l in r.stdout.splitlines()) if m}
        if r.returncode != 0 or len(losses) != self.a.steps:
            self.failures.append(f"{' '.join(cmd)}: exit {r.returncode}, {len(losses)} steps\n"
                                 f"{r.stdout[-2000:]}")
        elif BYTES_OK not in r.stdout or MEMORY_OK not in r.stdout:
            self.failures.append(f"{' '.join(cmd)}: bytes counted or memory allocated != "
                                 f"predicted\n{r.stdout[-2000:]}")
        return losses

    def close(self, what, got, want):
        worst = 0.0
        for s in sorted(want):
            if s not in got:
                return float("inf")
            worst = max(worst, abs(got[s] - want[s]) / max(abs(want[s]), 1e-12))
        if worst > self.a.rtol:
            self.failures.append(f"{what}: worst relative difference {worst:.3e} > {self.a.rtol}\n"
                                 f"  want {[want[s] for s in sorted(want)]}\n"
                                 f"  got  {[got.get(s) for s in sorted(want)]}")
        return worst


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--devices", default="1,2,4")
    p.add_argument("--loss", help="the cross-entropy strategy every plan above 1 device must have")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--comm", default="mpi", help="the CUDA trainer's --comm (mpi: ranks share a GPU)")
    p.add_argument("--gpu-probe", required=True, help="exits 0 when a CUDA device is present")
    a = p.parse_args()
    if run([a.gpu_probe, "--has-gpu"], 60).returncode != 0:
        print("SKIPPED: no CUDA device (the CUDA trainer's runs need a GPU)")
        return 77
    os.makedirs(a.workdir, exist_ok=True)
    c, first = Ctx(a), None
    for n in (int(x) for x in a.devices.split(",")):
        (ce, ranks), (cu, cranks) = c.build(n, "c"), c.build(n, "cuda")
        strat = loss_strategy(cu + ".json")
        if a.loss and n > 1 and strat != a.loss:
            c.failures.append(f"{n} devices: the CUDA plan's loss is {strat}, expected {a.loss}")
        if loss_strategy(ce + ".json") != strat:
            c.failures.append(f"{n} devices: the C and CUDA plans differ in the loss")
        ref = c.train(ce, ranks, False)
        got = c.train(cu, cranks, True)
        first = first or ref
        w1 = c.close(f"{n} devices: CUDA against C", got, ref)
        w2 = c.close(f"{n} devices: C against {a.devices.split(',')[0]} device(s)", ref, first)
        print(f"{n} devices ({ranks} ranks, loss {strat}): CUDA vs C worst relative {w1:.2e}, "
              f"C vs the first count {w2:.2e}")
    for f in c.failures:
        print("FAIL:", f)
    print("ok" if not c.failures else f"{len(c.failures)} failure(s)")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
