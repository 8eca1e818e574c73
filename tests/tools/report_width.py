#!/usr/bin/env python3
"""Checks what mpcc prints for people (docs/report.md, "Width, units and words"):

  report_width.py --mpcc MPCC --examples DIR [--width 160]

for every example at 1, 2, 4, 8 and 64 devices, the text report (--emit=plan), the plan
space (--plan-space 10) and the schedule (--emit=schedule): no line wider than WIDTH
columns (one per code point), no "1 devices"-style plural after a count of one, no mesh
written with an x instead of ×, and the model file named as it was given.
"""
import argparse
import os
import re
import subprocess
import sys

DEVICES = (1, 2, 4, 8, 64)
PLURAL_AFTER_ONE = re.compile(
    r"(?<![\d.])1 (devices|samples|layers|micro-batches|stages|replicas|ranks|data replicas|"
    r"tensor ranks)\b")
X_MESH = re.compile(r"\b\d+ ?x ?\d+ ?x ?\d+\b|stages? x ")


def outputs(mpcc, path, d):
    common = [mpcc, path, "-D", f"cluster.devices={d}"]
    for what in (["--emit=plan"], ["--plan-space", "10"], ["--emit=schedule"]):
        r = subprocess.run(common + what, capture_output=True, text=True)
        if r.returncode == 0:
            yield " ".join(what), r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--width", type=int, default=160)
    a = ap.parse_args()
    bad, n, widest = [], 0, 0
    for f in sorted(x for x in os.listdir(a.examples) if x.endswith(".mp")):
        path = os.path.join(a.examples, f)
        for d in DEVICES:
            for what, text in outputs(a.mpcc, path, d):
                n += 1
                where = f"{f} at {d} ({what})"
                # the schedule lists every instruction with its shapes; only its header is prose
                lines = text.splitlines()[:2] if "schedule" in what else text.splitlines()
                for ln in lines:
                    if "schedule" not in what:
                        widest = max(widest, len(ln))
                        if len(ln) > a.width:
                            bad.append(f"{where}: {len(ln)} columns: {ln[:60]}...")
                    if PLURAL_AFTER_ONE.search(ln):
                        bad.append(f"{where}: plural after one: {ln.strip()}")
                    if X_MESH.search(ln):
                        bad.append(f"{where}: x for ×: {ln.strip()}")
                if f"({path})" not in text:
                    bad.append(f"{where}: does not name the file as given ({path})")
    for b in bad[:40]:
        print("FAIL", b)
    print(f"checked {n} outputs, widest line {widest} columns (limit {a.width}), {len(bad)} failed")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
