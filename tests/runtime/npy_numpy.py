#!/usr/bin/env python3
"""The runtime's .npy reader and writer against numpy itself (run by ctest when a Python with
numpy is available): files numpy writes in every accepted form load with the right shape and
values, the forms mprt refuses give their one-line errors, and the files mprt writes are
byte-identical to numpy's and load in numpy.

usage: npy_numpy.py TOOL WORKDIR   (TOOL = the rt_npy_tool executable)
"""
import os
import subprocess
import sys

import numpy as np

tool, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
fails = []


def run(*args):
    r = subprocess.run([tool, *map(str, args)], capture_output=True, text=True)
    if r.stderr:  # the tool prints nothing there; a sanitizer or the loader crashing does
        fails.append(f"rt_npy_tool {' '.join(map(str, args))}: exit {r.returncode}, stderr:\n{r.stderr}")
    return r.returncode, r.stdout.strip()


def expect_ok(name, arr, dtype, version=None, order="C"):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        a = np.asarray(arr, order=order)
        if version:
            np.lib.format.write_array(f, a, version=version)
        else:
            np.save(f, a)
    dims = list(arr.shape[1:])
    rc, out = run("load", path, dtype, arr.ndim, *dims)
    want = "ok " + " ".join(map(str, arr.shape))
    total = float(np.asarray(arr, dtype=np.float64).sum())
    if rc != 0 or not out.startswith(want) or abs(float(out.split()[-1]) - total) > 1e-6 * max(1, abs(total)):
        fails.append(f"{name}: got {out!r}, want {want} sum {total}")


def expect_err(name, arr, dtype, text, order="C"):
    path = os.path.join(work, name)
    np.save(path, np.asarray(arr, order=order) if order == "C" else np.asfortranarray(arr))
    rc, out = run("load", path, dtype, arr.ndim, *arr.shape[1:])
    if rc == 0 or text not in out or "\n" in out:
        fails.append(f"{name}: got {out!r}, want an error with {text!r}")


rng = np.random.default_rng(0)
expect_ok("f32.npy", rng.standard_normal((7, 5)).astype(np.float32), "f32")
expect_ok("i64_labels.npy", rng.integers(0, 10, 100), "i32")          # numpy's default int64
expect_ok("i32_3d.npy", rng.integers(-5, 5, (4, 3, 2)).astype(np.int32), "i32")
expect_ok("i32_as_i64.npy", np.arange(9, dtype=np.int32), "i64")
expect_ok("v2.npy", np.ones((3, 2), np.float32), "f32", version=(2, 0))
expect_ok("v3.npy", np.ones((2, 3), np.float32), "f32", version=(3, 0))
expect_err("fortran.npy", np.ones((3, 4), np.float32), "f32", "Fortran-order arrays are not supported", order="F")
expect_err("f64.npy", np.ones((3, 4)), "f32", "unsupported dtype '<f8'")
expect_err("big_endian.npy", np.ones((3, 4), ">f4"), "f32", "unsupported dtype '>f4'")
# files numpy wrote that do not fit the model: no samples, wrong width
np.save(os.path.join(work, "empty.npy"), np.zeros((0, 4), np.float32))
rc, out = run("load", os.path.join(work, "empty.npy"), "f32", 2, 4)
if rc == 0 or "expected f32[N, 4], got f32[0, 4]" not in out:
    fails.append(f"empty.npy: {out!r}")
np.save(os.path.join(work, "wide.npy"), np.ones((3, 785), np.float32))
rc, out = run("load", os.path.join(work, "wide.npy"), "f32", 2, 784)
if rc == 0 or "expected f32[N, 784], got f32[3, 785]" not in out:
    fails.append(f"wide.npy: {out!r}")

# what mprt writes is what numpy writes, byte for byte, and numpy reads it back
for dtype, ref in (("f32", (np.arange(12, dtype=np.float32) / 4 - 1).reshape(3, 4)),
                   ("i64", np.arange(5, dtype=np.int64) << 33)):
    mine, theirs = os.path.join(work, f"mprt_{dtype}.npy"), os.path.join(work, f"numpy_{dtype}.npy")
    rc, out = run("save", mine, dtype)
    np.save(theirs, ref)
    if rc != 0:
        fails.append(f"save {dtype}: {out}")
        continue
    if open(mine, "rb").read() != open(theirs, "rb").read():
        fails.append(f"save {dtype}: bytes differ from numpy.save")
    back = np.load(mine)
    if back.dtype != ref.dtype or not np.array_equal(back, ref):
        fails.append(f"save {dtype}: numpy reads {back!r}")

for f in fails:
    print("FAIL:", f)
print(f"npy_numpy: {'ok' if not fails else f'{len(fails)} failures'} (numpy {np.__version__})")
sys.exit(1 if fails else 0)
