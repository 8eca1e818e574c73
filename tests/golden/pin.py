#!/usr/bin/env python3
"""Pins what mpcc produces, so a refactoring that should change nothing provably changes nothing.

Two sets, each a folder of golden files beside this script:

  plans/  for every example (examples/*.mp and examples/embed/model.mp) at 1, 2, 4, 8 and 64
          devices: the text partition report (--emit=plan), the JSON report (--report-json)
          and the SPMD schedule (--emit=schedule), byte for byte.
  train/  for a set of small models and device counts: every step's printed loss and the
          SHA-256 of the checkpoint the trainer saves after the last step (whole tensors,
          optimizer state and step: the weights to the last bit).

Losses and checkpoint bits depend on the BLAS kernels the CPU runs (OpenBLAS picks a kernel
per CPU: Haswell, SkylakeX, Zen, ...). Each train/ file records the OpenBLAS core it was made
on. On the same core the check is exact; on another one the losses must agree to 1e-5
relative and the checkpoint hash is not compared (the script says so).

  pin.py --mpcc build/mpcc --what plans            # check (the ctest entry)
  pin.py --mpcc build/mpcc --what train --mpirun mpirun
  pin.py ... --update                              # rewrite the golden files

Run from anywhere; paths in the outputs are relative to the repository root. Exit 0 when
everything matches; otherwise each difference is printed (a unified diff for text).
"""
import argparse
import ctypes
import ctypes.util
import difflib
import hashlib
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEVICES = [1, 2, 4, 8, 64]
STEPS = 6
# (model under tests/e2e, devices, extra -D settings): tensor, pipeline, conv, attention,
# embedding and both optimizers, on 1, 2 and 4 ranks.
TRAIN = [
    ("mlp_small", 1, []),
    ("mlp_small", 4, []),
    ("mlp_tensor", 2, []),
    ("mlp_tensor", 4, []),
    ("mlp_adam", 2, []),
    ("cnn_small", 1, []),
    ("cnn_tensor", 2, []),
    ("transformer_tensor", 2, []),
    ("gpt_small", 1, []),
    ("gpt_tensor", 4, []),
    ("mlp_pipe2", 4, ["-D", "train.microbatches=4"]),
    ("gpt_pipe2", 4, ["-D", "train.microbatches=2"]),
]


def examples():
    names = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".mp"))
    return [os.path.join("examples", f) for f in names] + [os.path.join("examples", "embed", "model.mp")]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def plan_outputs(mpcc, tmp):
    """{golden file name: text} for every example and device count."""
    out = {}
    for ex in examples():
        tag = ex[len("examples/"):-len(".mp")].replace("/", "_")
        for n in DEVICES:
            js = os.path.join(tmp, "r.json")
            r = run([mpcc, ex, "--emit=plan", "-D", f"cluster.devices={n}", "--report-json", js])
            out[f"{tag}.{n}.report"] = f"exit {r.returncode}\n" + r.stdout
            out[f"{tag}.{n}.json"] = open(js).read() if os.path.exists(js) else "(none)\n"
            if os.path.exists(js):
                os.remove(js)
            r = run([mpcc, ex, "--emit=schedule", "-D", f"cluster.devices={n}"])
            out[f"{tag}.{n}.schedule"] = f"exit {r.returncode}\n" + r.stdout
    return out


def blas_core():
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError, TypeError):
            continue
    return "unknown"


STEP = re.compile(r"^step (\d+)/\d+ \| loss (\S+)")


def train_outputs(mpcc, mpirun, tmp, core):
    out = {}
    for model, n, extra in TRAIN:
        exe = os.path.join(tmp, f"{model}_{n}")
        r = run([mpcc, f"tests/e2e/{model}.mp", "-D", f"cluster.devices={n}", "-o", exe] + extra)
        if r.returncode != 0:
            raise RuntimeError(f"mpcc failed on {model} at {n} devices:\n{r.stdout}")
        ranks = int(re.search(r"mpirun -np (\d+)", open(exe + ".c").read()).group(1))
        ck = exe + ".safetensors"
        r = run([mpirun, "--oversubscribe", "-np", str(ranks), exe, "--threads", "1",
                 "--steps", str(STEPS), "--log-every", "1", "--save", ck], timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"{model} at {n} devices exited {r.returncode}:\n{r.stdout}")
        losses = [f"step {m.group(1)} loss {m.group(2)}" for m in map(STEP.match, r.stdout.splitlines()) if m]
        digest = hashlib.sha256(open(ck, "rb").read()).hexdigest()
        out[f"{model}.{n}.txt"] = (f"blas-core {core}\nranks {ranks}\n" + "\n".join(losses) +
                                   f"\ncheckpoint-sha256 {digest}\n")
    return out


def compare_train(name, want, got):
    """Exact on the same BLAS core; losses to 1e-5 relative on another. Returns problems."""
    wl, gl = want.splitlines(), got.splitlines()
    if wl[0] == gl[0]:
        return [] if want == got else ["".join(difflib.unified_diff(
            want.splitlines(True), got.splitlines(True), f"golden/{name}", "now"))]
    print(f"note: {name} was pinned on '{wl[0]}', this machine is '{gl[0]}': losses compared "
          f"to 1e-5 relative, checkpoint bits not compared")
    lw = [float(l.split()[-1]) for l in wl if l.startswith("step ")]
    lg = [float(l.split()[-1]) for l in gl if l.startswith("step ")]
    if len(lw) != len(lg):
        return [f"{name}: {len(lg)} loss lines, golden has {len(lw)}"]
    return [f"{name}: step {i + 1} loss {g} vs golden {w}" for i, (w, g) in enumerate(zip(lw, lg))
            if abs(g - w) > 1e-5 * max(abs(w), 1e-6)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--what", choices=["plans", "train"], required=True)
    ap.add_argument("--update", action="store_true", help="rewrite the golden files")
    a = ap.parse_args()
    mpcc = os.path.abspath(a.mpcc)
    folder = os.path.join(HERE, a.what)
    with tempfile.TemporaryDirectory() as tmp:
        if a.what == "plans":
            got = plan_outputs(mpcc, tmp)
        else:
            got = train_outputs(mpcc, a.mpirun, tmp, blas_core())
    if a.update:
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        for name, text in sorted(got.items()):
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        print(f"wrote {len(got)} golden files to {os.path.relpath(folder, ROOT)}")
        return 0
    problems = []
    want_names = set(os.listdir(folder))
    for name in sorted(want_names - set(got)):
        problems.append(f"{name}: golden file with no output (an example or device count gone?)")
    for name, text in sorted(got.items()):
        if name not in want_names:
            problems.append(f"{name}: output with no golden file (run pin.py --update)")
            continue
        want = open(os.path.join(folder, name)).read()
        if a.what == "train":
            problems += compare_train(name, want, text)
        elif want != text:
            problems.append("".join(difflib.unified_diff(
                want.splitlines(True), text.splitlines(True), f"golden/{name}", "now", n=2)))
    for p in problems:
        print(p)
    print(f"{len(got) - len(problems)} passed, {len(problems)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
