#!/usr/bin/env python3
"""Everything GPU in one run (docs/cuda.md, "One command on a GPU machine"); started by
scripts/gpu-check after scripts/setup.

In order, each step recorded as checks (pass / fail / skip with the reason) and figures:

  1. the GPUs (nvidia-smi), then in the background PyPI torch for the benchmark;
  2. the build: mpcc, the runtimes, the CUDA tests and bench/gpu_gemm only, with every core;
  3. the C and CUDA trainers the later steps need, built in parallel while
  4. `ctest -R ^cuda/` runs (kernels against the CPU kernels, collectives, nvcc builds, and
     the CUDA trainer's ZeRO and bf16 runs: tests/e2e/zero.py, tests/e2e/cuda_bf16.py);
  5. CUDA against C loss curves over 20 steps (MLP, small GPT, CNN at 1 rank; data, tensor
     and pipeline splits at 2 ranks over host-staged MPI and, with 2 GPUs, NCCL);
  6. checkpoints both ways between the C and CUDA trainers;
  7. GEMM TFLOP/s against the GPU's datasheet peak (bench/gpu_gemm);
  8. examples/gpt.mp step time and tokens/s against PyTorch eager and torch.compile.

Without a GPU (or with --no-gpu) every step that can run still runs (the build, the nvcc
builds, the C side of every comparison) and the rest is skipped with its reason. A time
budget (--budget, counted from the wrapper's start) skips what no longer fits, saying so.
The summary is printed at the end and, when $GPU_CHECK_OUT is set, written there as
summary.json and summary.md with the logs. Exit status 1 when any check failed.
"""
import argparse
import concurrent.futures as cf
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_check_report import BUDGET_MARK, Report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E2E = os.path.join(ROOT, "tests", "e2e")
STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eEinfa]+) \| ([0-9.]+) samples/s")
MESH = re.compile(r"mesh S=(\d+) × d=(\d+) × t=(\d+)")
BYTES_OK = "bytes: counted == predicted on every rank"

# Loss-curve comparisons: (model in tests/e2e, devices, the split its plan must have).
# gpt_vocab's loss is vocabulary-parallel at t = 2 (runtime/cuda/kernels_vocab.cu).
EQUIV = [("mlp_small", 1, ""), ("gpt_small", 1, ""), ("cnn_small", 1, ""),
         ("cnn_small", 2, "data"), ("gpt_tensor", 2, "tensor"), ("mlp_pipe2", 2, "pipeline"),
         ("gpt_vocab", 2, "tensor"), ("gpt_vocab", 4, "tensor+data")]
SPLIT = {"": (1, 1, 1), "data": (1, 2, 1), "tensor": (1, 1, 2), "pipeline": (2, 1, 1),
         "tensor+data": (1, 2, 2)}

# Dense datasheet peaks, TFLOP/s (fp32 on CUDA cores, TF32 and bf16 tensor cores; dense is half
# the with-sparsity figure the H100/H200 sheets print for tensor cores), by the name
# nvidia-smi prints; the first match wins. NVIDIA's H100, H200 and A100 datasheets (docs/cuda.md).
PEAKS = [("H200 NVL", 60.0, 417.5, 835.0), ("H200", 67.0, 494.7, 989.4),
         ("H100 NVL", 60.0, 417.5, 835.0), ("H100 PCIe", 51.0, 378.0, 756.0),
         ("H100", 67.0, 494.7, 989.4), ("A100", 19.5, 156.0, 312.0)]

GPT_SEQ, GPT_BATCH = 1024, 16  # examples/gpt.mp


class Ctx:
    """What the steps share: options, folders, the environment of every child, the GPU count,
    the deadline and the report."""

    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(a.build_dir)
        self.work = os.path.join(self.build, "gpu-check")
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMPI_MCA_rmaps_base_oversubscribe="1")
        if a.no_gpu:
            self.env["CUDA_VISIBLE_DEVICES"] = ""  # the CUDA runtime then finds no device
        t0 = float(os.environ.get("GPU_CHECK_T0", time.time()))
        self.deadline = t0 + a.budget
        self.ngpu = 0
        self.no_gpu_reason = ""
        self.have_cuda = False
        self.arch = ""  # the GPUs' compute capability as CMake writes it ("90"), when one
        self.jobs = os.cpu_count() or 2
        self.report = Report()
        self.mpcc = os.path.join(self.build, "mpcc")

    def left(self):
        return self.deadline - time.time()

    def log(self, name):
        return os.path.join(self.logs, re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".log")

    def gpu_skip(self):
        """The reason a GPU step is skipped, or '' when a GPU is there."""
        return "" if self.ngpu else self.no_gpu_reason


def sh(ctx, cmd, log, timeout=600, cwd=None):
    """Runs cmd (a list), stdout and stderr together into log; returns (status, output).
    Status 124 when it ran past timeout (capped by the time budget), 127 when it cannot start."""
    capped = ctx.left() < timeout
    timeout = max(1, min(timeout, ctx.left()))
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=ctx.env, cwd=cwd, timeout=timeout, errors="replace")
        rc, out = r.returncode, r.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, out = 124, out + f"\n[gpu-check: stopped after {timeout:.0f} s" + (f"; {BUDGET_MARK}]" if capped else "]")
    except OSError as e:
        rc, out = 127, f"cannot run {cmd[0]}: {e}"
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + f"\n{out}\n[exit {rc}]\n")
    return rc, out


def read(path):
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def tail(text, n=6):
    return "\n".join([l for l in text.strip().splitlines() if l.strip()][-n:])


def timed(ctx, name, fn, *args):
    """Runs one step; an exception in the script itself becomes a failed check, not a crash."""
    t0 = time.time()
    try:
        return fn(ctx, *args)
    except Exception as e:  # noqa: BLE001 — the summary must still be written
        ctx.report.add(name, "fail", f"gpu-check itself failed here: {type(e).__name__}: {e}",
                       time.time() - t0)
        return None


# ───────────────────────────── 1. the machine ─────────────────────────────

def step_gpu(ctx):
    rep, a = ctx.report, ctx.a
    rep.info["command"] = " ".join(["scripts/gpu-check"] + sys.argv[1:])
    rep.info["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if a.no_gpu:
        ctx.no_gpu_reason = "no GPU: --no-gpu given (dry run)"
        rep.add("gpu", "skip", ctx.no_gpu_reason)
        return
    if not shutil.which("nvidia-smi"):
        ctx.no_gpu_reason = "no GPU: nvidia-smi not found (no NVIDIA driver)"
        rep.add("gpu", "skip", ctx.no_gpu_reason)
        return
    rc, out = sh(ctx, ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                       "--format=csv,noheader"], ctx.log("gpu"), 30)
    rows = [l.split(", ") for l in out.splitlines() if l.count(", ") == 2] if rc == 0 else []
    if not rows:
        ctx.no_gpu_reason = f"no GPU: nvidia-smi lists none (exit {rc}: {tail(out, 1)})"
        rep.add("gpu", "skip", ctx.no_gpu_reason)
        return
    ctx.ngpu = len(rows)
    rc, cap = sh(ctx, ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], ctx.log("gpu"), 30)
    caps = set(cap.split()) if rc == 0 else set()
    if len(caps) == 1 and re.fullmatch(r"\d+\.\d", next(iter(caps))):
        ctx.arch = next(iter(caps)).replace(".", "")
    _, head = sh(ctx, ["nvidia-smi"], ctx.log("gpu"), 30)
    m = re.search(r"CUDA Version:\s*([0-9.]+)", head)
    rep.info["gpu"] = f"{len(rows)} × {rows[0][0]} ({rows[0][2]})"
    rep.info["driver"] = f"{rows[0][1]} (supports CUDA {m.group(1) if m else '?'})"
    rep.add("gpu", "pass", rep.info["gpu"])


def start_torch_install(ctx):
    """Starts `pip install torch` (PyPI, the default index) into a venv in the build folder
    unless a python with torch exists; returns (python, process or None, log)."""
    log = ctx.log("torch_install")
    for py in (sys.executable, "python3"):
        if subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0:
            return py, None, log
    venv = os.path.join(ctx.build, "gpu-check-venv")
    py = os.path.join(venv, "bin", "python")
    cmd = (f"test -x {py} || {sys.executable} -m venv {venv}; "
           f"{py} -c 'import torch' 2>/dev/null || {py} -m pip install --quiet torch")
    with open(log, "w") as f:
        proc = subprocess.Popen(["bash", "-c", cmd], stdout=f, stderr=subprocess.STDOUT, env=ctx.env)
    return py, proc, log


# ───────────────────────────── 2. the build ─────────────────────────────

CUDA_TARGETS = ["mprt_cuda", "test_cu_link", "test_cu_kernels", "test_cu_bf16", "test_cu_comm", "cu_init_probe",
                "gpu_gemm"]


def step_build(ctx):
    t0, log, rep = time.time(), ctx.log("build"), ctx.report
    cfg = ["cmake", "-S", ROOT, "-B", ctx.build, "-DCMAKE_C_COMPILER=gcc", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
    if ctx.arch:  # only the GPU's own architecture: half the nvcc work of the default 80;90
        cfg.append(f"-DCMAKE_CUDA_ARCHITECTURES={ctx.arch}")
    out = ""
    if not ctx.a.no_build:
        rc, out = sh(ctx, cfg, log, 300)
        if rc != 0:
            rep.add("build", "fail", "cmake configure failed:\n" + tail(out), time.time() - t0)
            return False
    ctx.have_cuda = os.path.isdir(os.path.join(ctx.build, "runtime", "cuda", "CMakeFiles", "mprt_cuda.dir"))
    targets = ["mpcc", "mprt", "mprt_shared"] + (CUDA_TARGETS if ctx.have_cuda else [])
    if not ctx.a.no_build:
        rc, out2 = sh(ctx, ["cmake", "--build", ctx.build, f"-j{ctx.jobs}", "--target"] + targets, log, 600)
        if rc != 0:
            rep.add("build", "fail", f"cmake --build failed (exit {rc}):\n" + tail(out2, 10), time.time() - t0)
            return False
    elif not os.access(ctx.mpcc, os.X_OK):
        rep.add("build", "fail", f"--no-build given but {ctx.mpcc} is missing", time.time() - t0)
        return False
    versions(ctx, out)
    what = "built" if not ctx.a.no_build else "reused (--no-build)"
    rep.add("build", "pass", f"{what}: {' '.join(targets)} with -j{ctx.jobs}", time.time() - t0)
    cuda_side(ctx, out)
    return True


def cuda_side(ctx, configure_out):
    """The build's CUDA side is a check of its own: missing with a GPU present is a failure."""
    if ctx.have_cuda:
        ctx.report.add("build: CUDA runtime", "pass", ctx.report.info.get("cuda", "mprt_cuda built"))
        return
    m = re.search(r"CUDA runtime: (skipped|disabled) \((.*)\)", configure_out)
    why = f"this build has no CUDA side: {m.group(2) if m else 'see cmake/MpccCuda.cmake'}"
    ctx.report.add("build: CUDA runtime", "fail" if ctx.ngpu else "skip", why)
    if not ctx.ngpu:
        ctx.no_gpu_reason += "; " + why


def versions(ctx, configure_out):
    info = ctx.report.info
    m = re.search(r"CUDA runtime: CUDA ([0-9.]+), NCCL ([0-9.]+)", configure_out)
    text = read(os.path.join(ctx.build, "CMakeCache.txt"))
    found = sorted(glob.glob(os.path.join(ctx.build, "CMakeFiles", "*", "CMakeCUDACompiler.cmake")))
    cu = read(found[-1]) if found else ""
    nvcc = re.search(r'set\(CMAKE_CUDA_COMPILER "(.+)"\)', cu)
    ver = re.search(r'set\(CMAKE_CUDA_COMPILER_VERSION "(.+)"\)', cu)
    if nvcc and ctx.have_cuda:
        info["cuda"] = f"nvcc {ver.group(1) if ver else '?'} ({nvcc.group(1)})"
    inc = re.search(r"^NCCL_INCLUDE_DIR:\w+=(.+)$", text, re.M)
    if m:
        info["nccl"] = m.group(2)
    elif inc and os.path.exists(os.path.join(inc.group(1), "nccl.h")):
        h = read(os.path.join(inc.group(1), "nccl.h"))
        parts = [re.search(rf"#define NCCL_{p}\s+(\d+)", h) for p in ("MAJOR", "MINOR", "PATCH")]
        info["nccl"] = ".".join(p.group(1) if p else "?" for p in parts)
    probe = os.path.join(ctx.build, "bench", "gpu_gemm")
    if os.access(probe, os.X_OK):
        r = subprocess.run([probe, "--info"], capture_output=True, text=True, env=ctx.env)
        try:
            d = json.loads(r.stdout)
            info["cuda runtime"] = f"{d.get('runtime_cuda')} (driver API {d.get('driver_cuda', 'none')})"
            if d.get("name"):
                info["device 0"] = f"{d['name']}, compute capability {d['cc']}, {d['sms']} SMs, {d['memory_gib']} GiB"
        except ValueError:
            pass


# ───────────────────────────── 3. trainers ─────────────────────────────

def build_trainer(ctx, model, devices, target, extra=()):
    """mpcc MODEL -D cluster.devices=N [--target cuda] -o EXE; returns (exe, ranks, mesh)."""
    name = f"{os.path.splitext(os.path.basename(model))[0]}_{devices}_{target}"
    exe = os.path.join(ctx.work, "trainers", name)
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    cmd = [ctx.mpcc, model, "-D", f"cluster.devices={devices}", "--target", target, "-o", exe] + list(extra)
    rc, out = sh(ctx, cmd, ctx.log("trainer_" + name), 300)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed (exit {rc}):\n{tail(out)}")
    src = exe + (".cu" if target == "cuda" else ".c")
    ranks = int(re.search(r"mpirun -np (\d+)", read(src)).group(1))
    mesh = MESH.search(out)
    return exe, ranks, tuple(int(x) for x in mesh.groups()) if mesh else None


def submit_trainers(ctx, pool):
    """Every trainer of steps 5, 6 and 8, built in parallel; {(model, devices, target): future}."""
    want = {(m, n) for m, n, _ in EQUIV if selected(ctx, m)}
    if ctx.a.ckpt_model:
        want.add((ctx.a.ckpt_model, 1))
    futs = {}
    for m, n in sorted(want):
        path = os.path.join(E2E, m + ".mp")
        futs[(m, n, "c")] = pool.submit(build_trainer, ctx, path, n, "c")
        if ctx.have_cuda:
            futs[(m, n, "cuda")] = pool.submit(build_trainer, ctx, path, n, "cuda")
    if ctx.have_cuda and "bench" not in ctx.a.skip:
        gpt = os.path.join(ROOT, "examples", "gpt.mp")
        futs[("gpt", 1, "cuda")] = pool.submit(build_trainer, ctx, gpt, 1, "cuda")
    return futs


def selected(ctx, model):
    return not ctx.a.models or model in ctx.a.models.split(",")


# ───────────────────────────── 4. ctest ─────────────────────────────

def step_ctest(ctx):
    t0, rep = time.time(), ctx.report
    if not ctx.have_cuda:
        rep.add("ctest -R ^cuda/", "skip", "the build has no CUDA side, so there are no cuda/ tests")
        return
    junit = os.path.join(ctx.work, "ctest_cuda.xml")
    if os.path.exists(junit):
        os.unlink(junit)
    # 900 s in all: cuda/zero_np4_mpi and cuda/bf16_mpi build and run trainers (their own
    # TIMEOUT, 900 s, overrides --timeout's default for the others)
    rc, out = sh(ctx, ["ctest", "-R", "^cuda/", f"-j{max(2, ctx.jobs // 2)}", "--timeout", "150",
                       "--output-on-failure", "--output-junit", junit], ctx.log("ctest_cuda"), 900, cwd=ctx.build)
    if not os.path.exists(junit):
        rep.add("ctest -R ^cuda/", "fail", f"ctest wrote no results (exit {rc}):\n{tail(out)}", time.time() - t0)
        return
    for case in ET.parse(junit).getroot().iter("testcase"):
        ctest_case(ctx, case)


def ctest_case(ctx, case):
    name, sec = case.get("name"), float(case.get("time") or 0)
    text = "".join(e.text or "" for e in case.iter("system-out"))
    skipped = case.find("skipped") is not None or case.get("status") in ("notrun", "disabled")
    if case.find("failure") is not None or case.get("status") == "fail":
        ctx.report.add(f"ctest {name}", "fail", tail(text, 8) or "failed", sec)
    elif skipped:
        why = next((l.strip() for l in text.splitlines() if "SKIPPED" in l), "") or "skipped by ctest"
        gpu_test = "no CUDA device" in why
        if gpu_test and ctx.ngpu:  # a GPU test that did not see the GPU nvidia-smi lists
            ctx.report.add(f"ctest {name}", "fail", f"skipped although {ctx.ngpu} GPU(s) are present: {why}", sec)
        else:
            ctx.report.add(f"ctest {name}", "skip", why, sec)
    else:
        oks = [l.strip() for l in text.splitlines() if l.strip().startswith("ok")]
        ctx.report.add(f"ctest {name}", "pass", oks[-1] if oks else "passed", sec)


# ───────────────────────────── 5. loss curves ─────────────────────────────

def train(ctx, exe, ranks, flags, name):
    """Runs a trainer under mpirun; returns (status, {step: loss}, bytes_ok, output)."""
    cmd = [ctx.a.mpirun, "--oversubscribe", "-np", str(ranks), exe, "--threads", "1"] + flags
    rc, out = sh(ctx, cmd, ctx.log(name), ctx.a.run_timeout)
    losses = {int(m.group(1)): float(m.group(3)) for m in map(STEP.match, out.splitlines()) if m}
    return rc, losses, BYTES_OK in out, out


def worst_rel(a, b):
    common = sorted(set(a) & set(b))
    return max((abs(a[s] - b[s]) / max(abs(b[s]), 1e-12) for s in common), default=float("inf"))


def step_equiv(ctx, futs):
    for model, n, split in EQUIV:
        if selected(ctx, model):
            timed(ctx, f"equiv {model} {n}r", equiv_one, futs, model, n, split)


def equiv_one(ctx, futs, model, n, split):
    t0, rep, steps = time.time(), ctx.report, ctx.a.steps
    label = f"equiv {model} {n}r" + (f" {split}" if split else "")
    exe, ranks, mesh = futs[(model, n, "c")].result()
    if mesh != SPLIT[split]:
        rep.add(label, "fail", f"the plan's mesh S,d,t = {mesh}, expected {SPLIT[split]} ({split or 'one device'})")
        return
    rc, ref, bytes_ok, out = train(ctx, exe, ranks, ["--steps", str(steps)], f"{label} C")
    if rc != 0 or len(ref) != steps or not bytes_ok or ref[steps] >= ref[1]:
        rep.add(label, "fail", f"C reference: exit {rc}, {len(ref)}/{steps} steps, bytes "
                f"{'ok' if bytes_ok else 'NOT as predicted'}, loss {ref.get(1)} -> {ref.get(steps)}\n{tail(out)}",
                time.time() - t0)
        return
    done = f"C reference ran: loss {ref[1]:.5f} -> {ref[steps]:.5f} over {steps} steps"
    if (model, n, "cuda") in futs:  # a CUDA trainer that does not build fails, GPU or not
        cu, cranks, _ = futs[(model, n, "cuda")].result()
        done += "; CUDA trainer built"
    why = ctx.gpu_skip() or ("--skip cuda given" if "cuda" in ctx.a.skip else "")
    if why:
        rep.add(label, "skip", f"{why} ({done})", time.time() - t0)
        return
    modes = ["auto"] if n == 1 else ["mpi", "nccl"]
    for mode in modes:
        equiv_mode(ctx, label, cu, cranks, mode, ref, t0)
        t0 = time.time()


def equiv_mode(ctx, label, cu, ranks, mode, ref, t0):
    rep, steps = ctx.report, ctx.a.steps
    name = label if mode == "auto" else f"{label} --comm {mode}"
    if mode == "nccl" and ctx.ngpu < ranks:
        rep.add(name, "skip", f"NCCL needs one GPU per rank: {ranks} ranks, {ctx.ngpu} GPU(s) "
                "(--comm mpi shares one GPU and ran above)")
        return
    rc, got, bytes_ok, out = train(ctx, cu, ranks, ["--steps", str(steps), "--comm", mode], name + " CUDA")
    worst = worst_rel(got, ref)
    ok = rc == 0 and len(got) == steps and bytes_ok and worst <= ctx.a.rtol
    detail = (f"CUDA vs C: worst relative loss difference {worst:.2e} (tolerance {ctx.a.rtol:g}) over "
              f"{len(got)}/{steps} steps, counted bytes {'== predicted' if bytes_ok else 'DIFFER from the prediction'}")
    if not ok:
        first = [(s, ref[s], got.get(s)) for s in sorted(ref)][:4]
        detail += f", exit {rc}\n  (step, C, CUDA): {first} ...\n{tail(out)}"
    rep.add(name, "pass" if ok else "fail", detail, time.time() - t0)


# ───────────────────────────── 6. checkpoints ─────────────────────────────

def step_ckpt(ctx, futs):
    m = ctx.a.ckpt_model
    c, cr, _ = futs[(m, 1, "c")].result()
    steps, half = ctx.a.steps, ctx.a.steps // 2
    ck = {t: os.path.join(ctx.work, f"ckpt_{t}.safetensors") for t in ("c", "cuda")}
    for f in ck.values():
        if os.path.exists(f):
            os.unlink(f)
    t0 = time.time()
    rc, full, _, out = train(ctx, c, cr, ["--steps", str(steps)], "ckpt C full")
    rc2, _, _, out2 = train(ctx, c, cr, ["--steps", str(half), "--save", ck["c"]], "ckpt C save")
    if rc or rc2 or len(full) != steps or not os.path.exists(ck["c"]):
        for way in ("C -> CUDA", "CUDA -> C"):
            ctx.report.add(f"ckpt {m} {way}", "fail", f"the C side failed (exit {rc}, {rc2}):\n{tail(out + out2)}",
                           time.time() - t0)
        return
    why = ctx.gpu_skip() or ("" if ("cuda" not in ctx.a.skip) else "--skip cuda")
    if why or (m, 1, "cuda") not in futs:
        done = f"C saved at step {half}: {os.path.getsize(ck['c'])} bytes"
        for way in ("C -> CUDA", "CUDA -> C"):
            ctx.report.add(f"ckpt {m} {way}", "skip", f"{why or 'no CUDA trainer'} ({done})", time.time() - t0)
        return
    cu, ur, _ = futs[(m, 1, "cuda")].result()
    ckpt_way(ctx, f"ckpt {m} C -> CUDA", None, (cu, ur), ck["c"], full)
    ckpt_way(ctx, f"ckpt {m} CUDA -> C", (cu, ur), (c, cr), ck["cuda"], full)


def ckpt_way(ctx, name, saver, resumer, ck, full):
    """saver (None: already saved) writes ck at the half; resumer runs to the end from it;
    steps half+1.. must match the uninterrupted C run."""
    t0, steps, half = time.time(), ctx.a.steps, ctx.a.steps // 2
    if saver:
        rc, _, _, out = train(ctx, saver[0], saver[1], ["--steps", str(half), "--save", ck], name + " save")
        if rc != 0 or not os.path.exists(ck):
            ctx.report.add(name, "fail", f"saving failed (exit {rc}):\n{tail(out)}", time.time() - t0)
            return
    rc, got, _, out = train(ctx, resumer[0], resumer[1], ["--steps", str(steps), "--resume", ck], name + " resume")
    want = list(range(half + 1, steps + 1))
    worst = worst_rel(got, full)
    ok = rc == 0 and sorted(got) == want and worst <= ctx.a.rtol
    detail = (f"saved at step {half}, resumed to {steps}: steps {min(got, default='-')}..{max(got, default='-')}, "
              f"worst relative difference from the uninterrupted C run {worst:.2e} (tolerance {ctx.a.rtol:g})")
    ctx.report.add(name, "pass" if ok else "fail", detail + ("" if ok else f", exit {rc}\n{tail(out)}"),
                   time.time() - t0)


# ───────────────────────────── 7. GEMM throughput ─────────────────────────────

def peak_of(name):
    for key, fp32, tf32, bf16 in PEAKS:
        if key in (name or ""):
            return {"fp32": fp32, "tf32": tf32, "bf16": bf16}, key
    return None, None


def step_gemm(ctx):
    t0, rep = time.time(), ctx.report
    why = ctx.gpu_skip() or ("" if ctx.have_cuda else "no CUDA side in the build")
    if why:
        rep.add("gemm TFLOP/s", "skip", why)
        return
    rc, out = sh(ctx, [os.path.join(ctx.build, "bench", "gpu_gemm"), str(ctx.a.gemm_reps)], ctx.log("gemm"), 180)
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if rc != 0 or not rows:
        rep.add("gemm TFLOP/s", "fail", f"bench/gpu_gemm exit {rc}:\n{tail(out)}", time.time() - t0)
        return
    name = rep.info.get("device 0", rep.info.get("gpu", ""))
    peak, key = peak_of(name)
    best = {}
    for r in rows:
        p = r["precision"]
        frac = f"{r['tflops'] / peak[p]:.0%} of the {key} {p} peak" if peak else "peak unknown"
        rep.figure(f"gemm {r['precision']} {r['shape']} {r['M']}x{r['N']}x{r['K']}", r["tflops"], "TFLOP/s", frac)
        best[r["precision"]] = max(best.get(r["precision"], 0), r["tflops"])
    over = [p for p in best if peak and best[p] > 1.05 * peak[p]]
    detail = ", ".join(f"best {p} {v:.1f} TFLOP/s" + (f" ({v / peak[p]:.0%} of {peak[p]:g})" if peak else "")
                       for p, v in best.items())
    if over:  # above the datasheet: the timing or the peak table is wrong
        rep.add("gemm TFLOP/s", "fail", f"{detail}: above the datasheet peak for {over}", time.time() - t0)
    else:
        rep.add("gemm TFLOP/s", "pass", detail + ("" if peak else f" (no datasheet peak for '{name}')"),
                time.time() - t0)


# ───────────────────────────── 8. GPT-2 small against PyTorch ─────────────────────────────

def step_bench(ctx, futs, torch_job):
    why = ctx.gpu_skip() or ("" if ctx.have_cuda else "no CUDA side in the build")
    built = ""
    if ("gpt", 1, "cuda") in futs:  # the trainer must build, GPU or not
        futs[("gpt", 1, "cuda")].result()
        built = " (examples/gpt.mp CUDA trainer built)"
    if why:
        ctx.report.add("bench gpt.mp mpcc", "skip", why + built)
        ctx.report.add("bench gpt.mp torch", "skip", why)
        return
    mine = {}
    for prec in ctx.a.precisions.split(","):
        mine[prec] = timed(ctx, f"bench gpt.mp mpcc {prec}", bench_mpcc, futs, prec)
    py = torch_ready(ctx, torch_job)
    if py:
        for prec in ctx.a.precisions.split(","):
            timed(ctx, f"bench gpt.mp torch {prec}", bench_torch, py, prec, mine.get(prec))


def bench_mpcc(ctx, futs, prec):
    t0, name, steps = time.time(), f"bench gpt.mp mpcc {prec}", ctx.a.bench_warmup + ctx.a.bench_steps
    if ctx.left() < 60:
        ctx.report.add(name, "skip", f"time budget: {ctx.left():.0f} s left")
        return None
    exe, _, _ = futs[("gpt", 1, "cuda")].result()
    flags = ["--steps", str(steps), "--log-every", "1"] + (["--tf32"] if prec == "tf32" else [])
    rc, out = sh(ctx, [ctx.a.mpirun, "-np", "1", exe] + flags, ctx.log(name), 300)
    rates = [float(m.group(4)) for m in map(STEP.match, out.splitlines()) if m]
    timed_rates = rates[ctx.a.bench_warmup:]
    if rc != 0 or not timed_rates:
        ctx.report.add(name, "fail", f"exit {rc}, {len(rates)} progress lines:\n{tail(out)}", time.time() - t0)
        return None
    ms = statistics.median(GPT_BATCH / r * 1e3 for r in timed_rates)
    tok = GPT_BATCH * GPT_SEQ / (ms / 1e3)
    ctx.report.figure(f"gpt.mp mpcc {prec} step", round(ms, 2), "ms",
                      f"median of {len(timed_rates)} steps, batch {GPT_BATCH} x {GPT_SEQ}")
    ctx.report.figure(f"gpt.mp mpcc {prec} throughput", round(tok), "tokens/s")
    ctx.report.add(name, "pass", f"{ms:.1f} ms/step, {tok:,.0f} tokens/s", time.time() - t0)
    return ms


def torch_ready(ctx, torch_job):
    py, proc, log = torch_job
    t0 = time.time()
    if proc is not None:
        try:
            proc.wait(timeout=max(1, ctx.left() - 120))
        except subprocess.TimeoutExpired:
            proc.kill()
            ctx.report.add("torch install", "skip", f"pip install torch still running when the time budget "
                           f"needed it ({ctx.left():.0f} s left); see {log}")
            return None
    r = subprocess.run([py, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                       capture_output=True, text=True, env=ctx.env)
    if r.returncode != 0:
        text = read(log) or r.stderr
        ctx.report.add("torch install", "skip",
                       f"PyPI torch could not be installed or imported:\n{tail(text + r.stderr, 3)}", time.time() - t0)
        return None
    ctx.report.info["torch"] = r.stdout.strip().replace(" ", " (CUDA ") + ")"
    ctx.report.add("torch install", "pass", f"torch {ctx.report.info['torch']} ({py})", time.time() - t0)
    return py


def bench_torch(ctx, py, prec, mpcc_ms):
    t0 = time.time()
    modes = "eager,compile" if ctx.left() > 150 else "eager"
    cmd = [py, os.path.join(ROOT, "bench", "torch_gpt.py"), "--precision", prec, "--modes", modes,
           "--steps", str(ctx.a.bench_steps), "--warmup", str(ctx.a.bench_warmup)]
    rc, out = sh(ctx, cmd, ctx.log(f"torch_{prec}"), 400)
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if rc == 77 or (rows and "error" in rows[0] and "mode" not in rows[0]):
        ctx.report.add(f"bench gpt.mp torch {prec}", "skip", tail(out, 2), time.time() - t0)
        return
    for mode in ("eager", "compile"):
        r = next((x for x in rows if x.get("mode") == mode), None)
        name = f"bench gpt.mp torch {mode} {prec}"
        if r is None:
            budget = mode not in modes
            why = f"time budget: {ctx.left():.0f} s left" if budget else f"no result (exit {rc}):\n{tail(out)}"
            ctx.report.add(name, "skip" if budget else "fail", why)  # a budget stop becomes a skip
        elif "error" in r:
            ctx.report.add(name, "fail", r["error"])
        else:
            ratio = f", torch/mpcc {r['median_ms'] / mpcc_ms:.2f}x" if mpcc_ms else ""
            ctx.report.figure(f"gpt.mp torch {mode} {prec} step", r["median_ms"], "ms",
                              f"warm-up {r['warmup_s']} s{ratio}")
            ctx.report.figure(f"gpt.mp torch {mode} {prec} throughput", r["tokens_per_s"], "tokens/s")
            ctx.report.add(name, "pass", f"{r['median_ms']:.1f} ms/step, {r['tokens_per_s']:,.0f} tokens/s{ratio}")


# ───────────────────────────── main ─────────────────────────────

def options(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build-gpu"))
    p.add_argument("--no-build", action="store_true", help="use --build-dir as it is (tests)")
    p.add_argument("--no-gpu", action="store_true", help="dry run: hide every GPU (CUDA_VISIBLE_DEVICES=)")
    p.add_argument("--skip", default="", help="comma list of: ctest, equiv, ckpt, gemm, bench, cuda")
    p.add_argument("--models", default="", help="only these tests/e2e models in the loss-curve step")
    p.add_argument("--ckpt-model", default="gpt_small")
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--run-timeout", type=int, default=60, help="seconds per small trainer run")
    p.add_argument("--gemm-reps", type=int, default=10)
    p.add_argument("--precisions", default="tf32,fp32")
    p.add_argument("--bench-steps", type=int, default=6)
    p.add_argument("--bench-warmup", type=int, default=2)
    p.add_argument("--budget", type=float, default=465, help="seconds from the wrapper's start")
    p.add_argument("--out", default=os.environ.get("GPU_CHECK_OUT", ""), help="default: $GPU_CHECK_OUT")
    a = p.parse_args(argv)
    a.skip = set(filter(None, a.skip.split(",")))
    if a.steps < 2:
        p.error("--steps must be at least 2")
    return a


def setup_check(ctx):
    """The wrapper's scripts/setup result (GPU_CHECK_SETUP='status log')."""
    s = os.environ.get("GPU_CHECK_SETUP")
    if not s:
        return
    rc, log = s.split(" ", 1)
    text = read(log)
    ctx.report.add("setup", "pass" if rc == "0" else "fail", tail(text, 1 if rc == "0" else 6))


def run_all(ctx):
    a = ctx.a
    step_gpu(ctx)
    torch_job = start_torch_install(ctx) if ctx.ngpu and "bench" not in a.skip else None
    if not timed(ctx, "build", step_build):
        return
    with cf.ThreadPoolExecutor(max_workers=max(2, ctx.jobs // 2)) as pool:
        futs = submit_trainers(ctx, pool)
        for step, fn, args in (("ctest", step_ctest, ()), ("equiv", step_equiv, (futs,)),
                               ("ckpt", step_ckpt, (futs,)), ("gemm", step_gemm, ()),
                               ("bench", step_bench, (futs, torch_job))):
            if step in a.skip:
                ctx.report.add(step, "skip", f"--skip {step} given")
            elif ctx.left() < 20:
                ctx.report.add(step, "skip", f"time budget spent ({a.budget:.0f} s from the start)")
            else:
                timed(ctx, step, fn, *args)
    if torch_job and torch_job[1] and torch_job[1].poll() is None:
        torch_job[1].kill()


def main(argv=None):
    a = options(sys.argv[1:] if argv is None else argv)
    ctx = Ctx(a)
    setup_check(ctx)
    t0 = time.time()
    run_all(ctx)
    ctx.report.info["elapsed"] = f"{time.time() - float(os.environ.get('GPU_CHECK_T0', t0)):.0f} s"
    print(ctx.report.text(), flush=True)
    if a.out:
        ctx.report.write(a.out)
        shutil.copytree(ctx.logs, os.path.join(a.out, "logs"), dirs_exist_ok=True)
        print(f"gpu-check: summary.json, summary.md and logs/ written to {a.out}")
    return ctx.report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
