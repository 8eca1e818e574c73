"""What the trainer benchmarks (step_time, gemm_share, scaling) share: running a command
that must succeed, and the command-line options that locate mpcc, mpirun and a scratch
folder."""
import argparse
import subprocess
import sys


def run(cmd, env=None):
    """Runs cmd and returns its stdout; exits with its output if it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def parser(doc):
    """An argument parser described by the script's docstring, with --mpcc, --mpirun and
    --workdir already added."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--mpcc", default="build/mpcc")
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", default="/tmp/mpcc-bench")
    return p
