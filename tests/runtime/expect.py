#!/usr/bin/env python3
"""Runs a command and checks how it ended: the exit status, lines that must appear in its
stderr exactly once, and regular expressions its stdout/stderr must match. Used by the
runtime's ctest entries whose point is an error path (wrong world size, MPI failure,
a user error agreed across ranks) or an output format (the progress line).

usage: expect.py [--rc N | --rc nonzero] [--stderr-once LINE]... [--stderr-has TEXT]...
                 [--stdout-re RE]... [--timeout S] -- command args...
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rc", default="0")
    ap.add_argument("--stderr-once", action="append", default=[])
    ap.add_argument("--stderr-has", action="append", default=[])
    ap.add_argument("--stdout-re", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"FAIL: {cmd} did not finish in {a.timeout}s (hang)")
        return 1
    fails = []
    if a.rc == "nonzero":
        if p.returncode == 0:
            fails.append("exit status 0, expected non-zero")
    elif p.returncode != int(a.rc):
        fails.append(f"exit status {p.returncode}, expected {a.rc}")
    lines = p.stderr.splitlines()
    for want in a.stderr_once:
        n = lines.count(want)
        if n != 1:
            fails.append(f"stderr has the line {want!r} {n} times, expected once")
    for want in a.stderr_has:
        if want not in p.stderr:
            fails.append(f"stderr lacks {want!r}")
    for rx in a.stdout_re:
        if not re.search(rx, p.stdout, re.M):
            fails.append(f"stdout does not match {rx!r}")
    if fails:
        print("command:", " ".join(cmd))
        print("--- stdout ---\n" + p.stdout + "--- stderr ---\n" + p.stderr)
        for f in fails:
            print("FAIL:", f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
