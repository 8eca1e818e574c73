"""e2e_common.py: what the end-to-end scripts share.

- args(): the command line every script takes (--mpcc, --mpirun, --workdir, --e2e), with the
  work directory created.
- build(): `mpcc MODEL -D cluster.devices=N -o WORKDIR/NAME_N`, returning the trainer and the
  rank count its generated source names (`mpirun -np R`, which is N unless the plan pins
  another mesh); a failed compile raises with mpcc's output.
- read_safetensors(): a checkpoint's tensors as float64 arrays, and its metadata.
- run(): a command's exit status and its output, stdout and stderr as one text.
"""
import argparse
import json
import os
import re
import struct
import subprocess


def args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--e2e", required=True, help="tests/e2e")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    return a


def build(mpcc, workdir, model, devices, name=None):
    name = name or os.path.splitext(os.path.basename(model))[0]
    exe = os.path.join(workdir, f"{name}_{devices}")
    r = subprocess.run([mpcc, model, "-D", f"cluster.devices={devices}", "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mpcc {model} at {devices} devices failed:\n{r.stdout}{r.stderr}")
    with open(exe + ".c") as f:
        return exe, int(re.search(r"mpirun -np (\d+)", f.read()).group(1))


def run(cmd, timeout=600, env=None):
    """cmd run to its end (within timeout seconds): the CompletedProcess, its stdout holding
    stdout and stderr as one text."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=env)


def read_safetensors(path):
    """name -> float64 array, and the metadata."""
    import numpy as np  # only the scripts that read checkpoints need numpy
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}, expected F32")
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out, header.get("__metadata__", {})
