#!/usr/bin/env python3
"""bf16 in the CUDA trainer against the C trainer (docs/cuda.md, "bf16"); needs a GPU.

Both trainers round at the same points (docs/runtime.md, "A bf16 trainer"): inputs, every
layer's output, the working weights bf16(master), the gradients before the optimizer, and
everything a counted collective or pipeline send moves. So a CUDA bf16 run follows the C
trainer's bf16 run, not its f32 run. For each --model and --mesh (data, tensor and pipeline
splits; ranks share the GPU through --comm mpi, or one GPU each with --comm nccl):

  equiv  C f32, C bf16 and CUDA bf16 for --steps steps. Every run exits 0 and counts exactly
         the bytes its schedule predicts on every rank, and the CUDA bf16 trainer predicts the
         C bf16 trainer's bytes (the same plan: bf16 on the wire over NCCL too). At step 1 the
         CUDA loss is within --rtol1 relative of the C bf16 loss and at least 3x farther from
         the C f32 loss than from the C bf16 one (the roundings are on, at the C trainer's
         points); over all steps it stays within --rtol of the C bf16 curve. Memory (--profile):
         the CUDA bf16 trainer's parameters (16-bit working weights, 2 B each), gradients (f32
         sums), optimizer state (f32 master weights and moments) and activations (kept in 16
         bits, 2 B each; the ops' internals at 4 B: docs/cuda.md, "16-bit activations")
         allocated are the plan's bytes exactly on every rank, as the C bf16 trainer's (the
         activations plus the per-sample losses the plan counts and the trainers do not keep),
         and both print "memory: allocated == predicted on every rank"; its f32 staging of one
         layer's weights (`wl`) is among its buffers; its activations allocated are the C bf16
         trainer's on every rank (the same plan's buffers, stored the same way).
  ckpt   (the first model) Checkpoints stay whole f32 tensors of the master weights: a CUDA
         bf16 run on the mesh's ranks resumed from its own half-way checkpoint repeats its
         uninterrupted losses digit for digit; the C f32 trainer on 1 rank resumes that
         checkpoint and the CUDA bf16 trainer on 1 rank resumes a C f32 one, each within
         --rtol-ckpt of the run it continues; the checkpoint holds values that are not bf16.
  recompute  (the first model) train.recompute=all and =none give the same CUDA bf16 losses
         digit for digit (the recomputed forward rounds its activations the same way).

Tolerances (estimated: no GPU has run this yet; the script prints the measured figures). Step
1 of the two trainers differs only in the order of f32 additions (cuBLAS's GEMM blocking
against OpenBLAS's, the device's reductions against the host's; the CUDA forward GEMMs run on
bf16 operands on the tensor cores, whose products are exact in f32 as the C trainer's f32
products of the same bf16 values are, and whose f32 sums round their own way, truncating in
the alignment of addends: a few f32 ulps, Fasi, Higham, Mikaitis and Pranesh, "Numerical
behavior of NVIDIA tensor cores", PeerJ CS 2021): a few 1e-8 to 1e-7 relative per value. A bf16 rounding turns that into a difference of one bf16 step (2^-8 relative) only for
a value that lies that close to a rounding boundary (2^-8 apart): about one value in 10^4-10^5,
so on these models (10^3-10^4 rounded values per forward) usually none and rarely more than
one. One flipped activation moves its row's loss by about (gradient ~0.1) x 4e-3 and the
mean loss by that over the rows (32 and more): ~1e-5 absolute, ~5e-6 relative. --rtol1 = 5e-5
allows several flips and stays below the 1e-4 to 3e-4 that bf16 moves the first loss away
from f32 (tests/e2e/bf16.py measures that on the C trainer); the 3x test is what tells the
C trainer's rounding points from f32 behaviour: a CUDA trainer missing a rounding point lands
nearer the f32 loss. Over 20 steps those rare flips compound like the f32 CUDA-vs-C
differences do (scripts/gpu_check.py allows 1e-3 there); bf16 doubles it, --rtol = 2e-3, still
below the 5e-3 that bf16.py allows between bf16 and f32 and far below what a broken update
does (the curves fall 3-15 % over 20 steps).
Checkpoint crossings use bf16.py's 5e-3 (bf16 against f32 continuing from the same weights).

With --zero 1 | 2 (docs/cuda.md, "ZeRO under bf16") every trainer of a mesh with data replicas
(d > 1) is built with train.zero set, the C f32 reference too: the CUDA bf16 ZeRO losses are
compared with the C trainer's bf16 ZeRO losses under the same tolerances (both trainers round
the same values at the same points: the reduce-scattered gradients, the master parts rounded
into the working copy and all-gathered in bf16; only f32 addition orders differ, as without
ZeRO), the bytes with the C bf16 ZeRO trainer's prediction, and the checkpoint checks run on
the last mesh: a CUDA bf16 ZeRO checkpoint (whole f32 tensors gathered from the master
parts) resumed by the C f32 trainer without ZeRO on 1 rank, a C f32 one resumed by the CUDA
bf16 trainer on 1 rank, and the ZeRO run resumed from its own checkpoint repeating itself; the
recomputation check runs on the first mesh, with ZeRO.

Without a CUDA device (--gpu-probe exits non-zero) it prints "SKIPPED: no CUDA device" and
exits 77; with --min-gpus N (NCCL across ranks needs one GPU per rank) fewer than N devices
skip the same way ("SKIPPED: fewer than N CUDA devices").
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import sys

import numpy as np

import e2e_common

STEP = re.compile(r"^step (\d+)/(\d+) \| loss (\S+)")
BYTES_OK = "bytes: counted == predicted on every rank"
MEMORY_OK = "memory: allocated == predicted on every rank"


def run(cmd, timeout=900):
    return e2e_common.run(cmd, timeout)


class Ctx:
    def __init__(self, a):
        self.a = a
        self.failures = []

    def build(self, model, mesh, prec, target, extra=()):
        """(executable, ranks, predicted bytes per step) of one trainer; with --zero, a mesh
        with data replicas gets train.zero too."""
        S, d, t = (int(v) for v in mesh.split("x"))
        if self.a.zero and d > 1:
            extra = (*extra, f"train.zero={self.a.zero}")
        tag = "_".join([os.path.splitext(os.path.basename(model))[0], mesh, prec, target,
                        *[re.sub(r"[^a-z0-9]+", "", x) for x in extra]])
        exe = os.path.join(self.a.workdir, tag)
        cmd = [self.a.mpcc, model, "-D", f"cluster.devices={S * d * t}", "-D",
               f"plan.mesh={mesh}", "-D", f"train.precision={prec}", "--target", target]
        for x in extra:
            cmd += ["-D", x]
        r = run(cmd + ["-o", exe])
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}")
        with open(exe + (".cu" if target == "cuda" else ".c")) as f:
            src = f.read()
        pred = sum(int(v) for v in re.findall(r"\{\d+, MPRT_\w+, MPRT_\w+, (\d+)\}", src))
        return exe, S * d * t, pred

    def train(self, what, exe, n, *flags):
        """{step: loss string}; a failure is recorded when the run fails or miscounts."""
        cuda = "_cuda" in os.path.basename(exe)  # build()'s names: model_mesh_prec_target[_x]
        comm = ["--comm", self.a.comm] if cuda else []
        cmd = [self.a.mpirun, "--oversubscribe", "-np", str(n), exe, "--threads", "1",
               "--log-every", "1", *comm, *flags]
        r = run(cmd)
        losses = {int(m.group(1)): m.group(3) for m in map(STEP.match, r.stdout.splitlines())
                  if m}
        if r.returncode != 0 or BYTES_OK not in r.stdout:
            self.failures.append(f"{what}: exit {r.returncode}, bytes counted == predicted: "
                                 f"{BYTES_OK in r.stdout}\n{r.stdout[-3000:]}")
        if "--profile" in flags and MEMORY_OK not in r.stdout:  # every category, bf16 too
            self.failures.append(f"{what}: no \"{MEMORY_OK}\"\n{r.stdout[-3000:]}")
        return losses


def rel(x, y):
    return abs(float(x) - float(y)) / abs(float(y))


def worst_rel(x, y, steps):
    return max(rel(x[s], y[s]) if s in x and s in y else 1e9 for s in steps)


EXACT = ("params", "grads", "optimizer")


def check_memory(c, what, prof, nl):
    """The planned categories the bf16 trainers hold exactly (docs/cuda.md, "16-bit
    activations"): the activations kept in 16 bits, plus the per-sample losses the plan counts
    and the trainer does not keep, are the plan's activations too."""
    try:
        with open(prof) as f:
            ranks = json.load(f)["ranks"]
    except (OSError, ValueError, KeyError) as e:
        c.failures.append(f"{what}: no profile {prof}: {e}")
        return
    for r in ranks:
        mem = r.get("memory") or {}
        want, got = mem.get("predicted", {}), mem.get("allocated", {})
        for k in EXACT:
            if k not in got or got.get(k) != want.get(k):
                c.failures.append(f"{what} rank {r.get('rank')}: {k} allocated {got.get(k)} B, "
                                  f"predicted {want.get(k)} B")
        acts = got.get("activations", -1) + want.get("loss_values_not_kept", 0)
        if acts != want.get("activations"):
            c.failures.append(f"{what} rank {r.get('rank')}: activations allocated "
                              f"{got.get('activations')} B + {want.get('loss_values_not_kept')} "
                              f"B of losses != predicted {want.get('activations')} B")
        if got.get("buffers", 0) < 4 * nl:
            c.failures.append(f"{what} rank {r.get('rank')}: buffers {got.get('buffers')} B "
                              f"hold no f32 layer staging of {4 * nl} B")


def rank_memory(prof):
    """{rank: the profile's memory object} of one run ({} when it has none)."""
    try:
        with open(prof) as f:
            return {r.get("rank"): r.get("memory") or {} for r in json.load(f)["ranks"]}
    except (OSError, ValueError, KeyError):
        return {}  # check_memory reports the missing profile


def check_activations(c, what, c_prof, cu_prof):
    """The CUDA bf16 trainer holds the C bf16 trainer's activation bytes on every rank (one plan,
    one codegen: the same buffers in the same storage; docs/cuda.md, "bf16")."""
    cm, um = rank_memory(c_prof), rank_memory(cu_prof)
    for r, m in um.items():
        got = m.get("allocated", {}).get("activations")
        want = cm.get(r, {}).get("allocated", {}).get("activations")
        if got is None or got != want:
            c.failures.append(f"{what} rank {r}: CUDA bf16 activations allocated {got} B, the C "
                              f"bf16 trainer's {want} B")


def layer_floats(exe, target):
    """The smallest stage's largest layer (STAGE_LAYER_PARAMS) of a generated bf16 trainer."""
    with open(exe + (".cu" if target == "cuda" else ".c")) as f:
        m = re.search(r"STAGE_LAYER_PARAMS\[MESH_S\] = \{([^}]*)\}", f.read())
    return min(int(v) for v in m.group(1).split(",")) if m else 1 << 60


def check_equiv(c, model, mesh):
    a = c.a
    name = f"{os.path.basename(model)} {mesh}"
    runs = {k: c.build(model, mesh, *k) for k in (("f32", "c"), ("bf16", "c"), ("bf16", "cuda"))}
    L = {k: c.train(f"{name} {k[0]} {k[1]}", exe, n, "--steps", str(a.steps), "--profile",
                    exe + ".profile.json")
         for k, (exe, n, _) in runs.items()}
    for k in (("bf16", "c"), ("bf16", "cuda")):
        exe = runs[k][0]
        check_memory(c, f"{name} {k[0]} {k[1]}", exe + ".profile.json", layer_floats(exe, k[1]))
    check_activations(c, name, runs[("bf16", "c")][0] + ".profile.json",
                      runs[("bf16", "cuda")][0] + ".profile.json")
    if any(len(v) != a.steps for v in L.values()):
        c.failures.append(f"{name}: not every run printed {a.steps} steps")
        return
    if runs[("bf16", "cuda")][2] != runs[("bf16", "c")][2]:
        c.failures.append(f"{name}: the CUDA bf16 trainer predicts {runs[('bf16', 'cuda')][2]} "
                          f"bytes per step, the C bf16 trainer {runs[('bf16', 'c')][2]}")
    cu, c16, c32 = L[("bf16", "cuda")], L[("bf16", "c")], L[("f32", "c")]
    to16, to32 = rel(cu[1], c16[1]), rel(cu[1], c32[1])
    w = worst_rel(cu, c16, range(1, a.steps + 1))
    print(f"equiv {name}: step 1 CUDA bf16 vs C bf16 {to16:.2e}, vs C f32 {to32:.2e}; "
          f"worst over {a.steps} steps vs C bf16 {w:.2e}")
    if to16 > a.rtol1:
        c.failures.append(f"{name}: step 1 CUDA bf16 {cu[1]} vs C bf16 {c16[1]}: {to16:.2e} "
                          f"> {a.rtol1}")
    if not to32 >= 3 * to16:
        c.failures.append(f"{name}: step 1 CUDA bf16 is not nearer C bf16 ({to16:.2e}) than "
                          f"C f32 ({to32:.2e}) by 3x: a rounding point is missing")
    if w > a.rtol:
        c.failures.append(f"{name}: CUDA bf16 strays {w:.2e} from C bf16 (> {a.rtol})")


def not_bf16_exact(ck):
    W, _ = e2e_common.read_safetensors(ck)  # raises unless every tensor is F32
    v = np.concatenate([x.ravel() for k, x in W.items() if not k.startswith("optimizer.")])
    return int(np.count_nonzero(v.astype(np.float32).view(np.uint32) & 0xFFFF))


def check_ckpt(c, model, mesh):
    a, half = c.a, c.a.steps // 2
    cu, n, _ = c.build(model, mesh, "bf16", "cuda")
    cu1, _, _ = c.build(model, "1x1x1", "bf16", "cuda")
    c32, n32, _ = c.build(model, mesh, "f32", "c")
    c32_1, _, _ = c.build(model, "1x1x1", "f32", "c")
    ck = {k: os.path.join(a.workdir, f"ck_{k}.safetensors") for k in ("cu5", "cu", "c5")}
    L = {}
    for name, exe, ranks, flags in (
            ("CUDA bf16", cu, n, ["--steps", str(a.steps), "--save", ck["cu"]]),
            ("CUDA bf16, half", cu, n, ["--steps", str(half), "--save", ck["cu5"]]),
            ("CUDA bf16, resumed", cu, n, ["--steps", str(a.steps), "--resume", ck["cu5"]]),
            ("C f32 1 rank from CUDA bf16", c32_1, 1, ["--steps", str(a.steps), "--resume",
                                                       ck["cu5"]]),
            ("C f32", c32, n32, ["--steps", str(a.steps)]),
            ("C f32, half", c32, n32, ["--steps", str(half), "--save", ck["c5"]]),
            ("CUDA bf16 1 rank from C f32", cu1, 1, ["--steps", str(a.steps), "--resume",
                                                     ck["c5"]])):
        L[name] = c.train(f"ckpt {name}", exe, ranks, *flags)
    rest = range(half + 1, a.steps + 1)
    if any(L["CUDA bf16, resumed"].get(s) != L["CUDA bf16"].get(s) for s in rest):
        c.failures.append("ckpt: the resumed CUDA bf16 run does not repeat the uninterrupted one")
    for name, ref in (("C f32 1 rank from CUDA bf16", "CUDA bf16"),
                      ("CUDA bf16 1 rank from C f32", "C f32")):
        w = worst_rel(L[name], L[ref], rest)
        print(f"ckpt {name}: worst relative {w:.2e} against {ref}")
        if w > a.rtol_ckpt:
            c.failures.append(f"ckpt {name}: strays {w:.2e} from {ref} (> {a.rtol_ckpt})")
    if os.path.exists(ck["cu"]):
        k = not_bf16_exact(ck["cu"])
        print(f"ckpt: {k} master weights of the CUDA bf16 checkpoint are not bf16 values")
        if k == 0:
            c.failures.append("ckpt: the CUDA bf16 checkpoint holds bf16 values, not the masters")


def check_recompute(c, model, mesh):
    res = {}
    for pol in ("none", "all"):
        exe, n, _ = c.build(model, mesh, "bf16", "cuda", [f"train.recompute={pol}"])
        ck = exe + ".safetensors"
        losses = c.train(f"recompute={pol}", exe, n, "--steps", str(c.a.steps), "--save", ck)
        digest = ""
        if os.path.exists(ck):
            with open(ck, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        res[pol] = (losses, digest)
    same = res["none"] == res["all"] and len(res["none"][0]) == c.a.steps
    print(f"recompute: CUDA bf16 with and without recomputation identical: {same}")
    if not same:
        c.failures.append("recompute: CUDA bf16 losses or checkpoints differ with recomputation")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--mesh", action="append", default=[])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol1", type=float, default=5e-5)
    p.add_argument("--rtol", type=float, default=2e-3)
    p.add_argument("--rtol-ckpt", type=float, default=5e-3)
    p.add_argument("--comm", default="mpi", help="the CUDA trainer's --comm (mpi: ranks share a GPU)")
    p.add_argument("--gpu-probe", required=True, help="exits 0 when a CUDA device is present")
    p.add_argument("--min-gpus", type=int, default=1, help="skip with fewer CUDA devices")
    p.add_argument("--zero", type=int, choices=(0, 1, 2), default=0,
                   help="train.zero of every trainer of a mesh with d > 1")
    a = p.parse_args()
    if run([a.gpu_probe, "--has-gpu"], 60).returncode:
        print("SKIPPED: no CUDA device (the CUDA trainer's bf16 runs need a GPU)")
        return 77
    if run([a.gpu_probe, "--has-gpu", str(a.min_gpus)], 60).returncode:
        print(f"SKIPPED: fewer than {a.min_gpus} CUDA devices (--comm {a.comm} needs one per rank)")
        return 77
    os.makedirs(a.workdir, exist_ok=True)
    c = Ctx(a)
    meshes = a.mesh or ["1x1x1"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [pool.submit(check_equiv, c, m, mesh) for m in a.model for mesh in meshes]
        for j in jobs:
            j.result()
    check_ckpt(c, a.model[0], meshes[-1])
    check_recompute(c, a.model[0], meshes[0] if a.zero else "1x1x1")
    for f in c.failures:
        print("FAIL:", f)
    print("cuda_bf16: ok" if not c.failures else f"{len(c.failures)} failure(s)")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
