#!/usr/bin/env python3
"""End-to-end text generation (./train --generate N; docs/runtime.md, "Text generation").

Trains a small GPT on one device (synthetic teacher tokens), saves a checkpoint, then samples
from it under plans of 1, 2 and 4 devices (data, tensor and pipeline splits) and checks:

  * every plan prints the same prompt and the same generated tokens for the same seed;
  * temperature 0 and top-k 1 are both greedy (the same tokens), and another seed at
    temperature 1 draws other tokens;
  * every token is in the vocabulary;
  * the errors are one line and exit 1: no checkpoint, a model without a token input,
    a prompt token outside the vocabulary, --generate with --save.

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import os
import re
import subprocess
import sys
import e2e_common


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, **kw)


def build(a, model, devices, tag):
    exe, ranks = e2e_common.build(a.mpcc, a.workdir, model, devices, tag)
    return [a.mpirun, "--oversubscribe", "-np", str(ranks), exe, "--threads", "1"]


def generated(r):
    """The prompt and generated tokens a run printed, or None."""
    p = re.search(r"^prompt:((?: \d+)*)$", r.stdout, re.M)
    g = re.search(r"^generated:((?: \d+)*)$", r.stdout, re.M)
    if r.returncode != 0 or not p or not g:
        return None
    return [int(x) for x in p.group(1).split()], [int(x) for x in g.group(1).split()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True, help="a GPT: token input and label")
    p.add_argument("--other", required=True, help="a model without token input")
    p.add_argument("--vocab", type=int, required=True)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    fails = []
    ckpt = os.path.join(a.workdir, "gpt.safetensors")
    one = build(a, a.model, 1, "gpt")
    r = run(one + ["--steps", "40", "--save", ckpt])
    if r.returncode != 0:
        print(r.stdout)
        return 1
    gen = ["--generate", "16", "--init", ckpt, "--prompt-tokens", "1,2,3", "--seed", "5"]
    ref = None
    for n in (1, 2, 4):
        cmd = build(a, a.model, n, "gpt")
        got = generated(run(cmd + gen))
        print(f"{n} devices ({cmd[3]} ranks): {got}")
        if got is None or got[0] != [1, 2, 3] or len(got[1]) != 16:
            fails.append(f"{n} devices: no prompt/generated lines of 3 and 16 tokens")
            continue
        if any(not 0 <= t < a.vocab for t in got[1]):
            fails.append(f"{n} devices: a token outside [0, {a.vocab}): {got[1]}")
        ref = ref or got
        if got != ref:
            fails.append(f"{n} devices: {got[1]} differs from 1 device's {ref[1]}")
    greedy = generated(run(one + gen + ["--temperature", "0"]))
    topk1 = generated(run(one + gen + ["--top-k", "1"]))
    other = generated(run(one + gen[:-1] + ["6"]))
    if not greedy or greedy != topk1:
        fails.append(f"temperature 0 {greedy} and top-k 1 {topk1} differ")
    if not other or not ref or other == ref:
        fails.append(f"seed 6 drew the same tokens as seed 5: {other}")
    errors = [
        (one + ["--generate", "4"], "needs a checkpoint"),
        (one + gen[:4] + ["--prompt-tokens", f"1,{a.vocab}"], f"[0, {a.vocab})"),
        (one + gen + ["--save", ckpt + ".x"], "neither trains nor saves"),
        (build(a, a.other, 1, "other") + ["--generate", "4", "--init", ckpt], "token sequences"),
    ]
    for cmd, want in errors:
        r = run(cmd)
        lines = [l for l in r.stdout.splitlines() if "error" in l or want in l]
        if r.returncode == 0 or len(lines) != 1 or want not in lines[0]:
            fails.append(f"{' '.join(cmd[4:])}: want one line with '{want}', exit 1; got "
                         f"exit {r.returncode}:\n{r.stdout}")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
