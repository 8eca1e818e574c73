"""Writes the benchmarks' data sets as .npy files, without numpy (any python3 runs it).

The trainer's synthetic data is generated inside the step (a normal draw per input element),
which is data loading, not training; PyTorch's side of the comparison draws its batch once.
So the benchmarks give the trainer a fixed data set through --data/--labels instead: ROWS
samples of standard-normal floats (784 for the MLP, 3x32x32 for the CNN) and labels 0..9, or
for the transformer a standard-normal target sequence as its label (seeded, format 1.0 .npy). For the CNN the teacher's labels (a 32-unit network over
each 3,072-float sample, drawn again every micro-batch) cost more than a third of its step on the
2-vCPU EPYC (docs/benchmarks.md), and for examples/transformer.mp the normal draws of its input
and target sequences (4x128x512 floats each) and the teacher's targets about 10 % (39 ms of
408 at batch 4).
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


def npy_data(workdir, name, shape, rows, seed=1, label_shape=None):
    """Returns (x.npy, y.npy) paths under workdir: rows samples of `shape` floats and labels
    0..9 (or, with label_shape, rows of standard-normal floats of that shape), writing them when
    missing."""
    x = os.path.join(workdir, f"{name}_x_{rows}.npy")
    y = os.path.join(workdir, f"{name}_y_{rows}.npy")
    if not (os.path.exists(x) and os.path.exists(y)):
        rng = random.Random(seed)

        def normal(shape):
            n = rows
            for d in shape:
                n *= d
            return array.array("f", (rng.gauss(0, 1) for _ in range(n)))

        _write(x, "<f4", (rows,) + tuple(shape), normal(shape))
        if label_shape:
            _write(y, "<f4", (rows,) + tuple(label_shape), normal(label_shape))
        else:
            _write(y, "<i4", (rows,), array.array("i", (rng.randrange(10) for _ in range(rows))))
    return x, y


def mlp_data(workdir, rows=1280, seed=1):
    """Returns (x.npy, y.npy) paths under workdir, writing them when missing."""
    return npy_data(workdir, "mlp", (784,), rows, seed)


def cnn_data(workdir, rows=640, seed=1):
    """bench/cnn.mp's images (3x32x32) and labels: 20 steps of 32 samples."""
    return npy_data(workdir, "cnn", (3, 32, 32), rows, seed)


def transformer_data(workdir, rows=32, seed=1):
    """examples/transformer.mp's input and target sequences (128x512 floats each): 8 steps of
    batch 4."""
    return npy_data(workdir, "transformer", (128, 512), rows, seed, label_shape=(128, 512))
