#!/usr/bin/env python3
"""ZeRO in the C trainer (train.zero = 1 | 2 | 3; docs/runtime.md, "ZeRO"), end to end.

For one model trained with Adam, on each pinned mesh of --meshes (plan.mesh SxDxT):

  * the runs with train.zero = 1, 2 and 3 (the CUDA trainer: 1 and 2) print the same loss curve as
    train.zero = 0 on that mesh within --rtol relative on every step (the gradients are
    summed in another order: reduce-scatter instead of all-reduce, and under ZeRO-2/3 per
    micro-batch; ZeRO-3 gathers each layer's weights from the parts before it runs), and the
    loss falls;
  * every run's bytes counted by the runtime equal the bytes the schedule predicted (under
    ZeRO-3 the 2m all-gathers of every layer's weights per step), and its memory allocated
    the plan's (under ZeRO-2/3 the gradients are this rank's parts, below the parameters: no
    whole gradient arena; under ZeRO-3 the parameters too; tests/e2e/memory.py checks every
    category);
  * checkpoints hold whole tensors: a ZeRO-2 run on the first mesh saved at step 10 resumes
    as train.zero = 0 on --resume-mesh (another rank count) and continues the uninterrupted
    curve, and the reverse (saved without ZeRO on --resume-mesh, resumed with ZeRO-2); f32
    only: the same for ZeRO-3 against one rank without ZeRO (1x1x1), both ways.

With --precision bf16 (docs/runtime.md, "ZeRO under bf16") every run is bf16: ZeRO shards
the f32 master weights with the moments, reduce-scatters bf16 gradients and all-gathers the
updated bf16 weights (ZeRO-3: keeps parts of the 16-bit weights too and all-gathers each
layer's, 2 bytes a value, before its forward and its backward). Then:

  * ZeRO-1/2/3 track bf16 without ZeRO within --rtol (see BF16_RTOL below for why not 1e-5);
  * memory allocated == predicted exactly for the parameters (the 16-bit working copy; under
    ZeRO-3 its parts, half the f32 gradient parts), the gradients (f32 sums: whole under
    ZeRO-1, this rank's parts under ZeRO-2/3), the optimizer state (f32 master parts +
    moments, the plan's 4·(copies + 1)·shard) and ZeRO-2's f32 slots (ZeRO-3: and the 16-bit
    gathered layer), and the activations, kept in 16 bits (docs/runtime.md, "A bf16 trainer");
  * checkpoints cross precision and ZeRO: saved by bf16 ZeRO-2 on the first mesh, resumed by
    f32 without ZeRO on --resume-mesh (4 -> 1 ranks) and the reverse, each within
    --cross-rtol of the run it continues (bf16 and f32 trajectories drift apart, as in
    tests/e2e/bf16.py), and bf16 ZeRO-2 resumed from its own checkpoint repeats its
    uninterrupted run digit for digit (the f32 master weights were saved whole, not rounded);
    the same for bf16 ZeRO-3 (saved on the first mesh, resumed by f32 without ZeRO on
    --resume-mesh, and by itself digit for digit).

ZeRO-3 with every layer recomputed (train.recompute = "all") on the first mesh prints the
same losses as without recomputation digit for digit, its third gather per layer and
micro-batch counted as predicted.

Why BF16_RTOL (2e-3 by default, from CMake): under bf16 every gradient sum is a bf16 sum formed
pair by pair in MPI's order (docs/runtime.md, "bf16"). A reduce-scatter sums in another order
than the all-reduce on 4 ranks (on 2 ranks a + b is the same either way), and ZeRO-2 sums each
micro-batch in bf16 and the micro-batches in f32, where plain data parallelism sums the
micro-batches in f32 and rounds once: each reduced gradient may differ by one bf16 rounding
(u = 2^-9 relative) in either direction. Adam normalises the gradient, so such a difference
moves a weight by up to about lr·u per step, of random sign; measured on these meshes the loss
curves differ by 1e-5 to 2e-4 relative over 20 steps. 2e-3 (about u) is 10x that and well
below what a broken sharding does: a rank that updates the wrong part, or whose master weights
are not gathered, leaves those weights at their initial values and moves the loss by 1e-2 and
more within a few steps (the curve falls 1-3 % over 20 steps), and a lost bf16 round shows in
the digit-for-digit resume.

With --target cuda the same checks run on the CUDA trainer (docs/cuda.md, "ZeRO"); then
--gpu-probe names a program that exits 0 when a CUDA device is present, and without one the
script prints "SKIPPED: no CUDA device" and exits 77 before building anything; with
--min-gpus N (NCCL across ranks needs one GPU per rank) fewer than N devices skip the same way
("SKIPPED: fewer than N CUDA devices").

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import concurrent.futures
import os
import re
import sys

from e2e_common import run

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eEinfa]+)")
MEMORY = re.compile(r"params (\d+)/(\d+) B, grads (\d+)/(\d+) B")


class Ctx:
    def __init__(self, a):
        self.a = a
        self.failures = []
        self.built = {}
        self.whole = {}  # (mesh, precision) -> bytes of a rank's whole f32 gradients, no ZeRO

    def build(self, mesh, zero, prec=None, rc=False):
        """The trainer of (mesh, zero, precision: --precision by default, every layer
        recomputed when rc), built once."""
        prec = prec or self.a.precision
        if (mesh, zero, prec, rc) in self.built:
            return self.built[(mesh, zero, prec, rc)]
        S, d, t = (int(x) for x in mesh.split("x"))
        exe = os.path.join(self.a.workdir, f"m{mesh}_z{zero}{'rc' if rc else ''}_{prec}")
        r = run([self.a.mpcc, self.a.model, "-D", f"cluster.devices={S * d * t}", "-D",
                 f"plan.mesh={mesh}", "-D", f"train.zero={zero}", "-D",
                 f"train.precision={prec}", "-D", f"train.recompute={'all' if rc else 'none'}",
                 "--target", self.a.target, "-o", exe], 600)
        if r.returncode != 0:
            raise RuntimeError(r.stdout)
        self.built[(mesh, zero, prec, rc)] = (exe, S * d * t)
        return exe, S * d * t

    def build_all(self, keys):
        """Builds every (mesh, zero) at once (nvcc takes a while per CUDA trainer)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for f in [pool.submit(self.build, *k) for k in sorted(set(keys))]:
                f.result()

    def train(self, exe, n, *flags):
        comm = ["--comm", self.a.comm] if self.a.target == "cuda" else []
        cmd = [self.a.mpirun, "-np", str(n), "--oversubscribe", exe, *comm, *flags]
        r = run(cmd, self.a.timeout)
        if r.returncode != 0:
            self.failures.append(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-2000:]}")
            return {}
        if "counted == predicted on every rank" not in r.stdout:
            self.failures.append(f"{' '.join(cmd)}: bytes counted != predicted")
        self.memory(cmd, r.stdout)
        return {int(m.group(1)): float(m.group(3))
                for m in (STEP.match(l) for l in r.stdout.splitlines()) if m}

    def memory(self, cmd, out):
        """Allocated == the plan's memory, and under ZeRO-2 the gradients are this rank's
        parts: the plan's shard figure, below the parameters (no whole gradient arena)."""
        if "memory: allocated == predicted on every rank" not in out:
            self.failures.append(f"{' '.join(cmd)}: memory allocated != predicted")
        m = MEMORY.search(out)
        # the whole f32 gradients would be the parameters' bytes (f32), twice them (bf16 params)
        whole = int(m.group(1)) * (2 if "_bf16" in cmd[4] else 1) if m else 0
        exe = os.path.basename(cmd[4])
        mesh, prec = exe.split("_")[0], exe.split("_")[-1]
        if m and "_z0_" in exe:  # ZeRO-3's parameters are parts: whole without ZeRO
            self.whole[(mesh, prec)] = whole
        if m and "_z3" in exe:  # parameters and gradients both this rank's parts (16-bit: half)
            whole, half = self.whole.get((mesh, prec), 0), 2 if prec == "bf16" else 1
            if not half * int(m.group(1)) == int(m.group(3)) < whole:
                self.failures.append(f"{' '.join(cmd)}: ZeRO-3 parameters {m.group(1)} B and "
                                     f"gradients {m.group(3)} B are not the same parts of the "
                                     f"{whole} B of whole f32 gradients")
        elif m and "_z2" in exe and not int(m.group(3)) < whole:
            self.failures.append(f"{' '.join(cmd)}: ZeRO-2 gradients {m.group(3)} B are not a "
                                 f"shard of the {whole} B of whole f32 gradients")

    def same(self, what, got, want, steps, rtol=None):
        rtol = self.a.rtol if rtol is None else rtol
        if sorted(got) != steps:
            self.failures.append(f"{what}: printed steps {sorted(got)}, expected {steps}")
            return 0.0
        worst = 0.0
        for s in steps:
            rel = abs(got[s] - want[s]) / max(abs(want[s]), 1e-12)
            worst = max(worst, rel)
            if rel > rtol:
                self.failures.append(f"{what} step {s}: loss {got[s]} vs {want[s]} ({rel:.2e})")
        return worst


def curves(c, a):
    steps = list(range(1, a.steps + 1))
    for mesh in a.meshes.split(","):
        exe, n = c.build(mesh, 0)
        ref = c.train(exe, n, "--steps", str(a.steps))
        q = len(steps) // 4
        if len(ref) == len(steps) and sum(ref[s] for s in steps[-q:]) >= sum(ref[s] for s in steps[:q]):
            c.failures.append(f"mesh {mesh}: the loss does not fall")
        for z in stages(a):
            exe, n = c.build(mesh, z)
            worst = c.same(f"mesh {mesh} zero={z}", c.train(exe, n, "--steps", str(a.steps)), ref, steps)
            print(f"mesh {mesh} on {n} ranks: zero={z} vs zero=0 over {a.steps} steps: worst relative "
                  f"difference {worst:.2e}")


def recomputed(c, a):
    """ZeRO-3 with every layer recomputed on the first mesh: a third gather of each layer's
    weights per micro-batch, before its recomputed forward (counted == predicted), and the same
    losses as without recomputation digit for digit (the same weights, kernels and order)."""
    first, steps = a.meshes.split(",")[0], list(range(1, a.steps + 1))
    ref = c.train(*c.build(first, 3), "--steps", str(a.steps))
    got = c.train(*c.build(first, 3, None, True), "--steps", str(a.steps))
    worst = c.same(f"mesh {first} zero=3 recompute=all", got, ref, steps, 0.0)
    print(f"mesh {first}: zero=3 with recompute=all vs none over {a.steps} steps: worst relative "
          f"difference {worst:.2e}")


def stages(a):
    """The ZeRO stages compared with none: 1 and 2, and 3 on the C trainer (mpcc refuses it
    for the CUDA trainer)."""
    return (1, 2) if a.target == "cuda" else (1, 2, 3)


def resume(c, a, src, dst, rtol=None):
    """Saved at step 10 by (mesh, zero[, precision]) src, resumed by dst, against dst's
    uninterrupted run."""
    exe_a, na = c.build(*src)
    exe_b, nb = c.build(*dst)
    ck = os.path.join(a.workdir, f"ck_{'_'.join(map(str, src))}.safetensors")
    full = c.train(exe_b, nb, "--steps", "20")
    c.train(exe_a, na, "--steps", "10", "--save", ck)
    got = c.train(exe_b, nb, "--steps", "20", "--resume", ck)
    worst = c.same(f"saved by {src}, resumed by {dst}", got, full, list(range(11, 21)), rtol)
    name = lambda k, n: f"mesh {k[0]} zero={k[1]}{' ' + k[2] if len(k) > 2 else ''} ({n} ranks)"
    print(f"saved at step 10 on {name(src, na)}, resumed on {name(dst, nb)}: steps 11-20 "
          f"within {worst:.2e} of the uninterrupted run")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--meshes", default="1x4x1,1x2x2,2x2x1")
    p.add_argument("--resume-mesh", default="1x2x1")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--precision", choices=("f32", "bf16"), default="f32")
    p.add_argument("--cross-rtol", type=float, default=5e-3,
                   help="bf16: a checkpoint resumed in the other precision (tests/e2e/bf16.py)")
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--target", choices=("c", "cuda"), default="c")
    p.add_argument("--comm", default="mpi", help="the CUDA trainer's --comm (mpi: ranks share a GPU)")
    p.add_argument("--gpu-probe", help="with --target cuda: exits 0 when a CUDA device is present")
    p.add_argument("--min-gpus", type=int, default=1, help="with --target cuda: skip with fewer")
    a = p.parse_args()
    if a.target == "cuda" and (not a.gpu_probe or run([a.gpu_probe, "--has-gpu"], 60).returncode):
        print("SKIPPED: no CUDA device (the CUDA trainer's ZeRO runs need a GPU)")
        return 77
    if a.target == "cuda" and run([a.gpu_probe, "--has-gpu", str(a.min_gpus)], 60).returncode:
        print(f"SKIPPED: fewer than {a.min_gpus} CUDA devices (--comm {a.comm} needs one per rank)")
        return 77
    os.makedirs(a.workdir, exist_ok=True)
    c = Ctx(a)
    first = a.meshes.split(",")[0]
    keys = [(m, z) for m in a.meshes.split(",") for z in (0, *stages(a))] + [(a.resume_mesh, 0)]
    if a.precision == "bf16":
        keys += [(a.resume_mesh, 0, "f32")]
    c.build_all(keys)
    curves(c, a)
    if 3 in stages(a):
        recomputed(c, a)
    if a.precision == "bf16":  # across precision and ZeRO, and bf16 ZeRO-2 onto itself
        resume(c, a, (first, 2), (a.resume_mesh, 0, "f32"), a.cross_rtol)
        resume(c, a, (a.resume_mesh, 0, "f32"), (first, 2), a.cross_rtol)
        resume(c, a, (first, 2), (first, 2), 0.0)
        if 3 in stages(a):  # bf16 ZeRO-3: whole f32 master weights too, onto f32 and itself
            resume(c, a, (first, 3), (a.resume_mesh, 0, "f32"), a.cross_rtol)
            resume(c, a, (first, 3), (first, 3), 0.0)
    else:
        resume(c, a, (first, 2), (a.resume_mesh, 0))
        resume(c, a, (a.resume_mesh, 0), (first, 2))
    if 3 in stages(a):  # e.g. 4 ranks of ZeRO-3 onto one without ZeRO, and back
        resume(c, a, (first, 3), ("1x1x1", 0))
        resume(c, a, ("1x1x1", 0), (first, 3))
    for f in c.failures:
        print("FAIL:", f)
    print("ok" if not c.failures else f"{len(c.failures)} failure(s)")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
