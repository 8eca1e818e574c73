#!/usr/bin/env python3
"""The README's two real examples, end to end, in a short version (few steps).

  examples.py --example digits  ...   scikit-learn's 8x8 digits and examples/digits/digits.mp
  examples.py --example chargpt ...   Debian's fortunes and examples/chargpt/chargpt.mp

Each runs the example's own scripts as the README does: prepare.py writes the data, mpcc
compiles the example's model for 2 devices, the trainer trains it on 2 ranks, and the example's
evaluate.py computes the validation figure from the saved checkpoint. Checks:

  digits:  validation accuracy at least 80% after 150 steps (chance: 10%), the untrained
           checkpoint near chance, the trainer's loss down from ln 10;
  chargpt: evaluate.py's numpy network gives the trainer's own loss on a one-window token file
           (so its validation figure is the trainer's model); the validation loss after the
           short run is below the validation text's unigram entropy by 0.4 nat (the model uses
           the characters before, not just their frequencies); --generate after a prompt,
           decoded by text.py, prints the prompt and then the requested number of characters.

No timing is asserted. Exit 0 when every check holds; each failure is printed.
"""
import argparse
import math
import os
import re
import subprocess
import sys

import numpy as np

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


def entropy(tokens):
    p = np.bincount(tokens).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def chargpt(a, fails):
    ex = Example(a, "chargpt", "chargpt.mp")
    ex.script("prepare.py", ex.data)
    train, val, vocab = (os.path.join(ex.data, f) for f in ("train.bin", "val.bin", "vocab.json"))
    ck = os.path.join(a.workdir, "ckpt.safetensors")
    out, losses = ex.train("--steps", "120", "--log-every", "10", "--data", train, "--save", ck)
    # One window: a file of T + 1 tokens has a single window, so the trainer's first loss (its
    # forward before the update) is that window's mean cross-entropy.
    one = os.path.join(a.workdir, "one.bin")
    np.fromfile(val, dtype="<u2")[5000:5065].tofile(one)
    _, first = ex.train("--steps", "1", "--init", ck, "--data", one)
    mine = figure(r"loss ([0-9.]+)", ex.script("evaluate.py", ck, one))
    if not first or abs(mine - first[0]) > 2e-4 * first[0]:
        fails.append(f"chargpt: evaluate.py gives {mine} on one window, the trainer {first}")
    res = ex.script("evaluate.py", ck, val, "--windows", "256")
    loss = figure(r"loss ([0-9.]+)", res)
    h1 = entropy(np.fromfile(val, dtype="<u2"))
    print(f"chargpt: trainer loss {losses[0]:.4f} -> {losses[-1]:.4f}; {res.strip()}; "
          f"unigram entropy {h1:.4f}; one window: trainer {first}, evaluate.py {mine}")
    if not loss < h1 - 0.4:
        fails.append(f"chargpt: validation loss {loss} after 120 steps is not below the "
                     f"unigram entropy {h1:.4f} - 0.4")
    prompt = "The "
    ids = ex.script("text.py", "encode", vocab, prompt).strip()
    gen = run(ex.mpi + ["--generate", "40", "--init", ck, "--prompt-tokens", ids,
                        "--temperature", "0.8", "--top-k", "20"])
    text = ex.script("text.py", "decode", vocab, input=gen)
    print(f"chargpt: generated {text!r}")
    if not text.startswith(prompt) or len(text) != len(prompt) + 40 + 1:
        fails.append(f"chargpt: decoded generation {text!r} is not the prompt and 40 characters")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--example", choices=["digits", "chargpt"], required=True)
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--root", required=True, help="the repository (its examples/ folder)")
    p.add_argument("--workdir", required=True)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    fails = []
    try:
        {"digits": digits, "chargpt": chargpt}[a.example](a, fails)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        fails.append(str(e))
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
