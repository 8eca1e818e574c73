#!/usr/bin/env python3
"""The non-finite guard and the start-up check of output paths (docs/runtime.md).

Guard: the small MLP with a learning rate that makes it diverge (1 and 2 ranks, a tensor
split) must stop with exit 1 and one line naming the step, "non-finite" and a parameter, at the
same step under both plans; its --save file must be the last --save-every checkpoint, from
before that step, with every weight finite, and no temporary file may be left.
Outputs: --save, --profile and --trace into a directory that does not exist, or onto a
directory, must each be one line that names the user's path first (the temporary file only in
parentheses), exit 1,
before any step, with nothing written.
"""
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import e2e_common


def build(a, src, devices, name):
    return e2e_common.build(a.mpcc, a.workdir, src, devices, name)


def run(a, exe, np_, flags):
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1"] + flags
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = [l for l in r.stderr.splitlines()
             if l.startswith(os.path.basename(exe) + ":") or "rror" in l or "anitizer" in l]
    return r, lines


def st_read(path):
    """The metadata and every F32 tensor of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        body = f.read()
    meta = head.pop("__metadata__", {})
    return meta, {k: np.frombuffer(body[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)
                  for k, v in head.items()}


def guard(a, fails):
    with open(os.path.join(a.e2e, "mlp_small.mp")) as f:
        src = f.read().replace("lr = 0.05", "lr = 3e18")
    mp = os.path.join(a.workdir, "mlp_diverge.mp")
    with open(mp, "w") as f:
        f.write(src)
    seen = set()
    for n in (1, 2):
        exe, np_ = build(a, mp, n, "mlp_diverge")
        ck = os.path.join(a.workdir, f"diverge_{n}.safetensors")
        if os.path.exists(ck):
            os.unlink(ck)
        r, lines = run(a, exe, np_, ["--steps", "20", "--save", ck, "--save-every", "1"])
        m = re.search(r"step (\d+): non-finite (loss|gradient) .*is (\S+)'s; stopped: (\S+) \(step (\d+)\) is the last good",
                      lines[0] if lines else "")
        print(f"{np_} ranks: {lines[0] if lines else '(no message)'}")
        ok = r.returncode == 1 and len(lines) == 1 and m is not None
        if ok:
            step, kept = int(m.group(1)), int(m.group(5))
            meta, tensors = st_read(ck)
            ok = (m.group(4) == ck and kept == step - 1 and int(meta["step"]) == kept
                  and all(np.isfinite(t).all() for t in tensors.values())
                  and not [f for f in os.listdir(a.workdir) if ".tmp." in f])
            seen.add((step, m.group(2), m.group(3)))
        if not ok:
            fails.append(f"guard at {np_} ranks: rc {r.returncode}\n{r.stdout}{r.stderr}")
    if len(seen) > 1:
        fails.append(f"the plans stopped differently: {seen}")


def outputs(a, fails):
    exe, np_ = build(a, os.path.join(a.e2e, "mlp_small.mp"), 2, "mlp_small")
    missing = os.path.join(a.workdir, "no_such_dir", "out.file")
    for flag in ("--save", "--profile", "--trace"):
        for path, why in ((missing, "No such file or directory"), (a.workdir, "is a directory")):
            r, lines = run(a, exe, np_, ["--steps", "2", flag, path])
            want = f"{path}: cannot write: {why}"
            ok = (r.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"{os.path.basename(exe)}: {want}")
                  and "step " not in r.stdout and not os.path.exists(os.path.dirname(missing)))
            print(f"{'ok  ' if ok else 'FAIL'} {flag} {path}: {lines[0] if lines else '(no message)'}")
            if not ok:
                fails.append(f"{flag} {path}: rc {r.returncode}, want one line with '{want}'\n{r.stdout}{r.stderr}")


def main():
    a = e2e_common.args()
    fails = []
    guard(a, fails)
    outputs(a, fails)
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
