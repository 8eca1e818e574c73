#!/usr/bin/env python3
"""Writes scikit-learn's 8x8 handwritten digits as .npy files for examples/digits/digits.mp.

The data set (1,797 images of 8x8 pixels, values 0..16, ten classes; the UCI "Optical
Recognition of Handwritten Digits" test set) ships inside scikit-learn itself
(sklearn/datasets/data/digits.csv.gz; Debian's python3-sklearn, which scripts/setup installs),
so nothing is downloaded. The images are shuffled with a fixed seed and split into a training
and a validation set; pixels are scaled to [0, 1].

  python3 examples/digits/prepare.py OUTDIR [--val 0.2] [--seed 0]

writes OUTDIR/x_train.npy (f32[N, 64]), y_train.npy (i32[N]), x_val.npy and y_val.npy and
prints how many rows each set has.
"""
import argparse
import os
import sys

import numpy as np


def load():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("prepare.py: scikit-learn is not installed (Debian's python3-sklearn; "
                 "bash scripts/setup installs it)")
    d = load_digits()
    return d.data.astype(np.float32) / np.float32(16.0), d.target.astype(np.int32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--val", type=float, default=0.2, help="share of the images kept for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    a = p.parse_args()
    if not 0.0 < a.val < 1.0:
        sys.exit(f"prepare.py: --val {a.val} must be between 0 and 1")
    x, y = load()
    order = np.random.default_rng(a.seed).permutation(len(x))
    n_val = int(round(len(x) * a.val))
    val, train = order[:n_val], order[n_val:]
    os.makedirs(a.outdir, exist_ok=True)
    for name, idx in (("train", train), ("val", val)):
        np.save(os.path.join(a.outdir, f"x_{name}.npy"), np.ascontiguousarray(x[idx]))
        np.save(os.path.join(a.outdir, f"y_{name}.npy"), np.ascontiguousarray(y[idx]))
    print(f"digits: {len(train)} training and {len(val)} validation images of 8x8 pixels, "
          f"10 classes, in {a.outdir}")


if __name__ == "__main__":
    main()
