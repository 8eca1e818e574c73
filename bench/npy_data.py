"""Writes the MLP benchmarks' data set as .npy files, without numpy (any python3 runs it).

The trainer's synthetic data is generated inside the step (a normal draw per input element),
which is data loading, not training; PyTorch's side of the comparison draws its batch once.
So the MLP benchmarks give the trainer a fixed data set through --data/--labels instead:
ROWS samples of 784 standard-normal floats and labels 0..9 (seeded, format 1.0 .npy).
"""
import array
import os
import random


def _write(path, descr, shape, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # pad so data starts at 64·k
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        values.tofile(f)
    os.replace(tmp, path)


def mlp_data(workdir, rows=1280, seed=1):
    """Returns (x.npy, y.npy) paths under workdir, writing them when missing."""
    x = os.path.join(workdir, f"mlp_x_{rows}.npy")
    y = os.path.join(workdir, f"mlp_y_{rows}.npy")
    if not (os.path.exists(x) and os.path.exists(y)):
        rng = random.Random(seed)
        _write(x, "<f4", (rows, 784), array.array("f", (rng.gauss(0, 1) for _ in range(rows * 784))))
        _write(y, "<i4", (rows,), array.array("i", (rng.randrange(10) for _ in range(rows))))
    return x, y
