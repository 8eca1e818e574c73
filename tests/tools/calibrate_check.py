#!/usr/bin/env python3
"""mpcc-calibrate end to end: run it --quick under mpirun on N ranks, check the preset it
writes has every measured section and loads (mpcc plans examples/mlp.mp with it, and the
report names it), and that --help and a bad flag behave. Timings are not asserted: the
machine is shared."""
import argparse
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", required=True)
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--mpirun", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--np", type=int, required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    out = os.path.join(a.workdir, "calibrated.json")
    if os.path.exists(out):
        os.remove(out)

    r = subprocess.run([a.calibrate, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: mpirun" in r.stdout, r
    r = subprocess.run([a.calibrate, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown or incomplete option '--bogus'" in r.stderr, r

    r = subprocess.run([a.mpirun, "-np", str(a.np), a.calibrate, "-o", out, "--quick",
                        "--base", os.path.join(a.root, "presets", "cpu.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{a.np} rank(s)" in r.stdout and "gemm" in r.stdout, r.stdout
    p = json.load(open(out))
    assert p["format"] == 1 and p["name"] == "calibrated", p
    assert p["devices_per_node"] == a.np, p
    assert p["flops"]["f32"] > 0 and p["memory_bandwidth_bytes_per_s"] > 0, p
    # flops.f32 is the compute roof: the fastest rate of the grid, not one shape's
    assert p["flops"]["f32"] == max(g["flops"] for g in p["gemm"]), p
    shapes = {(g["m"], g["n"], g["k"]) for g in p["gemm"]}
    # a whole grid (every m with every n and k), which the planner interpolates
    ms, ns, ks = ({s[i] for s in shapes} for i in range(3))
    assert (1, 64, 64) in shapes and len(shapes) == len(ms) * len(ns) * len(ks) >= 8, shapes
    # each shape also as the backwards call it: C += A·Bᵀ and C += Aᵀ·B
    assert all(g["flops_nt"] > 0 and g["flops_tn"] > 0 for g in p["gemm"]), p["gemm"][0]
    # the runtime's memory-bound kernels and conv2d's unrolling, forward and backward
    kern = {o["op"]: o for o in p["ops"]}
    assert set(kern) == {"relu", "gelu", "tanh", "add", "layernorm", "maxpool2d", "conv2d",
                         "cross_entropy", "embedding", "dropout"}, kern
    assert all(o["fwd_bytes_per_s"] > 0 and o["bwd_bytes_per_s"] > 0 for o in kern.values()), kern
    assert kern["conv2d"]["bias_fwd_bytes_per_s"] > 0 and kern["conv2d"]["bias_bwd_bytes_per_s"] > 0
    # each optimizer's step
    assert set(p["optimizer"]) == {"sgd", "sgd_momentum", "adam", "adamw"}, p["optimizer"]
    assert all(v > 0 for v in p["optimizer"].values()), p["optimizer"]
    # the hidden share of an all-reduce beside compute and its slowdown: measured only with ranks
    # to reduce over (one rank keeps --base's, presets/cpu.json's)
    with open(os.path.join(a.root, "presets", "cpu.json")) as f:
        base = json.load(f)
    for k in ("grad_overlap", "grad_overlap_slowdown"):
        assert a.np > 1 or p[k] == base[k], (k, p[k])
    assert 0 <= p["grad_overlap"] <= 1 and p["grad_overlap_slowdown"] >= 0, p["grad_overlap"]
    assert "thread(s) per rank" in p["source"], p["source"]
    ops = {c["op"] for c in p["collectives"]}
    want = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "send/recv"} if a.np > 1 else set()
    assert ops == want, ops
    assert all(c["group"] in (2, a.np) for c in p["collectives"]), p["collectives"]
    assert p["memory_bytes"] == 4294967296, "--base's memory_bytes is kept"
    leftovers = [f for f in os.listdir(a.workdir) if ".tmp." in f]
    assert not leftovers, leftovers

    for emit in ("plan", "config"):
        r = subprocess.run([a.mpcc, os.path.join(a.root, "examples", "mlp.mp"), "--emit=" + emit,
                            "-D", "cluster.devices=%d" % a.np, "-D", "cluster.preset=" + out],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if emit == "plan":
            assert "preset calibrated" in r.stdout and "step time" in r.stdout, r.stdout[:800]
        else:
            assert 'cluster.preset = "calibrated"' in r.stdout, r.stdout
    print("calibrate_check: np=%d ok" % a.np)


if __name__ == "__main__":
    sys.exit(main())
