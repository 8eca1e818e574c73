#!/usr/bin/env python3
"""Ranks agree at start-up (issue 13 item 5; runtime/trainer_agree.c), end to end.

An MPMD launch of two plans of one model (t = 2 on rank 0, d = 2 on rank 1, pinned with
plan.mesh), and launches where one rank's --steps, --seed, --save, --data, --trace or
--comm-timeout differs, each used to hang or train on silently. Each must now end within the
timeout with exit 1 and one line naming rank 1 and the setting; the same trainer on two ranks
with the same flags trains. --help given to one rank only (it used to exit before MPI started, leaving the other
waiting in MPI_Init forever) ends with exit 1 and one line naming both ranks; given to both,
the usage is printed once and the job exits 0.
"""
import argparse
import os
import re
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--model", required=True)
    p.add_argument("--workdir", required=True)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe_t, exe_d = os.path.join(a.workdir, "plan_t2"), os.path.join(a.workdir, "plan_d2")
    for exe, extra in ((exe_t, ["-D", "plan.mesh=1x1x2"]), (exe_d, ["-D", "plan.mesh=1x2x1"])):
        r = subprocess.run([a.mpcc, a.model, "-D", "cluster.devices=2", "-o", exe] + extra,
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            return 1
    base = ["--threads", "1", "--steps", "2"]
    cases = [
        ("two plans (t=2 and d=2)", base, [exe_d] + base, "plan"),
        ("--steps", base, [exe_t, "--threads", "1", "--steps", "3"], "--steps"),
        ("--seed", base, [exe_t] + base + ["--seed", "5"], "--seed"),
        ("--save", base, [exe_t] + base + ["--save", os.path.join(a.workdir, "x.safetensors")], "--save"),
        ("--data", base, [exe_t] + base + ["--data", os.path.join(a.workdir, "x.npy")], "--data"),
        ("--trace", base, [exe_t] + base + ["--trace", os.path.join(a.workdir, "t.json")], "--trace"),
        ("--comm-timeout", base, [exe_t] + base + ["--comm-timeout", "0"], "--comm-timeout"),
    ]
    failures = []
    for what, flags0, rank1, setting in cases:
        cmd = [a.mpirun, "--oversubscribe", "-np", "1", exe_t] + flags0 + [":", "-np", "1"] + rank1
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"{what}: hung (no answer in 120 s)")
            continue
        lines = [l for l in r.stderr.splitlines() if re.match(r"^plan_\w+: ", l)]
        want = f"rank 1 differs from rank 0 in {setting}"
        if r.returncode != 1 or len(lines) != 1 or want not in lines[0]:
            failures.append(f"{what}: expected exit 1 and one line with '{want}', got {r.returncode}:\n{r.stderr}")
        else:
            print(f"{what}: {lines[0]}")
    for who, flags0, flags1 in ((1, base, base + ["--help"]), (0, base + ["--help"], base)):
        cmd = [a.mpirun, "--oversubscribe", "-np", "1", exe_t] + flags0 + [":", "-np", "1", exe_t] + flags1
        want = f"--help was given to rank {who} but not to rank {1 - who}"
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"--help on rank {who} only: hung (no answer in 120 s)")
            continue
        lines = [l for l in r.stderr.splitlines() if re.match(r"^plan_\w+: ", l)]
        if r.returncode != 1 or len(lines) != 1 or want not in lines[0] or "usage:" in r.stdout:
            failures.append(f"--help on rank {who} only: expected exit 1 and one line with '{want}', got "
                            f"{r.returncode}:\n{r.stdout}{r.stderr}")
        else:
            print(f"--help on rank {who} only: {lines[0]}")
    r = subprocess.run([a.mpirun, "--oversubscribe", "-np", "2", exe_t, "--help"], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0 or r.stdout.count("usage:") != 1:
        failures.append(f"--help on both ranks: expected the usage once and exit 0, got {r.returncode}:\n{r.stdout}")
    r = subprocess.run([a.mpirun, "--oversubscribe", "-np", "2", exe_t] + base, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0 or "done 2 steps" not in r.stdout:
        failures.append(f"the same flags on both ranks: expected a run, got {r.returncode}:\n{r.stdout}{r.stderr}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
