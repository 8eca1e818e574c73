#!/usr/bin/env python3
"""The README's real examples, end to end, in a short version (few steps).

  examples.py --example digits  ...   scikit-learn's 8x8 digits and examples/digits/digits.mp

Each runs the example's own scripts as the README does: prepare.py writes the data, mpcc
compiles the example's model for 2 devices, the trainer trains it on 2 ranks, and the example's
evaluate.py computes the validation figure from the saved checkpoint. Checks:

  digits:  validation accuracy at least 80% after 150 steps (chance: 10%), the untrained
           checkpoint near chance, the trainer's loss down from ln 10.

No timing is asserted. Exit 0 when every check holds; each failure is printed.
"""
import argparse
import math
import os
import re
import subprocess
import sys

STEP = re.compile(r"^step (\d+)/\d+ \| loss ([-+0-9.eE]+)", re.M)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}")
    return r.stdout


class Example:
    def __init__(self, a, name, model):
        self.a, self.name = a, name
        self.dir = os.path.join(a.root, "examples", name)
        self.data = os.path.join(a.workdir, "data")
        self.exe = os.path.join(a.workdir, "train")
        run([a.mpcc, os.path.join(self.dir, model), "-o", self.exe])
        self.mpi = [a.mpirun, "--oversubscribe", "-np", "2", self.exe, "--threads", "1"]

    def script(self, name, *args, **kw):
        return run([sys.executable, os.path.join(self.dir, name)] + list(args), **kw)

    def train(self, *args):
        out = run(self.mpi + list(args))
        return out, [float(m.group(2)) for m in STEP.finditer(out)]


def figure(pattern, text):
    m = re.search(pattern, text)
    if not m:
        raise RuntimeError(f"no '{pattern}' in:\n{text}")
    return float(m.group(1))


def digits(a, fails):
    ex = Example(a, "digits", "digits.mp")
    ex.script("prepare.py", ex.data)
    d = lambda f: os.path.join(ex.data, f)
    ck0, ck = os.path.join(a.workdir, "init.safetensors"), os.path.join(a.workdir, "ckpt.safetensors")
    ex.train("--steps", "0", "--save", ck0)
    out, losses = ex.train("--steps", "150", "--log-every", "10", "--data", d("x_train.npy"),
                           "--labels", d("y_train.npy"), "--init", ck0, "--save", ck)
    acc0 = figure(r"accuracy ([0-9.]+)%", ex.script("evaluate.py", ck0, ex.data))
    val = ex.script("evaluate.py", ck, ex.data)
    acc = figure(r"accuracy ([0-9.]+)%", val)
    print(f"digits: trainer loss {losses[0]:.4f} -> {losses[-1]:.4f}; untrained {acc0:.2f}%; {val.strip()}")
    if len(losses) != 15 or not losses[-1] < 0.5 * math.log(10):
        fails.append(f"digits: trainer losses {losses} do not fall below ln(10)/2")
    if not acc0 < 30.0:
        fails.append(f"digits: the untrained network scores {acc0}%, not near chance (10%)")
    if not acc >= 80.0:
        fails.append(f"digits: validation accuracy {acc}% after 150 steps, expected at least 80%")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--example", choices=["digits"], required=True)
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--root", required=True, help="the repository (its examples/ folder)")
    p.add_argument("--workdir", required=True)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    fails = []
    try:
        {"digits": digits}[a.example](a, fails)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        fails.append(str(e))
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
