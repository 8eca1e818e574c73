#!/usr/bin/env python3
"""Crash consistency of checkpoints (issue 13, "Hardening"), end to end.

  * Kills: a trainer that resumes the checkpoint and saves it again after every step is sent
    SIGKILL at a random moment (start-up, load, a step, a save) --kills times. After every kill
    the file at the final path is a whole checkpoint (header, offsets tiling the data exactly,
    file size, a step never going back), and the next run's --resume of it loads; at the end a
    resume of the last file runs 0 steps and exits 0.
  * A full disk: once the trainer has saved, its file-size limit (RLIMIT_FSIZE, set on the
    running process with prlimit; SIGXFSZ ignored, so writes fail with EFBIG) is cut below the
    checkpoint's size. The next save fails: exit 1, one line naming the file, the previous
    checkpoint whole and loadable at its step (or the next, when a save under way when the
    limit took hold still finished), and no temporary file left behind.

The trainer is the 1-device plan run without mpirun (an MPI singleton), so the kill and the
limit reach exactly the process that writes. The limit is set after start-up because MPI's
own start-up writes shared-memory files that a limit from the start would break.
"""
import argparse
import glob
import json
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import time


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, **kw)


def whole_checkpoint(path):
    """The step of a complete safetensors checkpoint at path, or a string saying what is wrong."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        return f"{len(data)} bytes"
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        return f"header of {n} bytes in a file of {len(data)}"
    try:
        hdr = json.loads(data[8:8 + n])
    except ValueError as e:
        return f"header is not JSON: {e}"
    meta = hdr.pop("__metadata__", {})
    spans = sorted(tuple(t["data_offsets"]) for t in hdr.values())
    pos = 0
    for b, e in spans:
        if b != pos:
            return f"data offsets leave a gap or overlap at {b}"
        pos = e
    if 8 + n + pos != len(data):
        return f"data ends at {8 + n + pos}, file at {len(data)}"
    if "params" not in meta or "step" not in meta:
        return "metadata lacks step or params"
    return int(meta["step"])


def no_sigxfsz():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited across exec: writes get EFBIG


def saved_once(proc, path):
    """Waits until proc has written path again (its start-up is over) or has ended."""
    start = os.stat(path).st_mtime_ns
    for _ in range(1200):
        if os.stat(path).st_mtime_ns != start or proc.poll() is not None:
            return
        time.sleep(0.02)


def kills(a, exe, ck, failures):
    rng = random.Random(a.seed)
    last = whole_checkpoint(ck)
    killed_in = {"start-up": 0, "training": 0}
    for i in range(a.kills):
        proc = subprocess.Popen([exe, "--threads", "1", "--resume", ck, "--steps", "100000000", "--save", ck,
                                 "--save-every", "1", "--log-every", "1000000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if i % 4:  # three kills in four once this run saves (inside or between saves)
            saved_once(proc, ck)
        time.sleep(rng.uniform(0.0, a.max_delay if i % 4 == 0 else 0.3))
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        if not alive:
            failures.append(f"kill {i}: the trainer ended by itself ({proc.returncode}) before the kill:\n{err}")
            break
        got = whole_checkpoint(ck)
        if isinstance(got, str):
            failures.append(f"kill {i}: the file at the final path is not a whole checkpoint: {got}")
            break
        if got < last:
            failures.append(f"kill {i}: the checkpoint went back from step {last} to {got}")
        killed_in["training" if got > last else "start-up"] += 1
        last = got
    r = run([exe, "--threads", "1", "--resume", ck, "--steps", str(last)])
    if r.returncode != 0 or "done 0 steps" not in r.stdout:
        failures.append(f"the last killed run's checkpoint (step {last}) does not load:\n{r.stdout}{r.stderr}")
    print(f"{a.kills} kills (seed {a.seed}): the file at {os.path.basename(ck)} was a whole checkpoint "
          f"every time and loads; {killed_in['training']} kills came after at least one new save, "
          f"{killed_in['start-up']} before; last step {last}")


def full_disk(a, exe, ck, failures):
    limit = os.path.getsize(ck) // 2
    proc = subprocess.Popen([exe, "--threads", "1", "--steps", "100000000", "--save", ck, "--save-every", "1",
                             "--log-every", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=no_sigxfsz)
    saved_once(proc, ck)
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
    except (ProcessLookupError, PermissionError, OSError) as e:
        proc.kill()
        proc.communicate()
        failures.append(f"full disk: could not set the file-size limit of the trainer: {e}")
        return
    before = whole_checkpoint(ck)  # a save under way may still finish: then it is before + 1
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        failures.append("full disk: the trainer went on saving past the file-size limit")
        return
    lines = [l for l in err.splitlines() if l.strip()]
    after = whole_checkpoint(ck)
    tmps = glob.glob(ck + ".tmp.*")
    if proc.returncode != 1 or len(lines) != 1 or os.path.basename(ck) not in lines[0]:
        failures.append(f"full disk: expected exit 1 and one line naming the file, got {proc.returncode}:\n{err}")
    elif isinstance(after, str) or after not in (before, before + 1):
        failures.append(f"full disk: the previous checkpoint (step {before}) is now {after}")
    elif run([exe, "--threads", "1", "--resume", ck, "--steps", str(after)]).returncode != 0:
        failures.append("full disk: the previous checkpoint does not load")
    elif tmps:
        failures.append(f"full disk: temporary files left: {tmps}")
    else:
        print(f"full disk (file-size limit {limit} B): {lines[0]}; the previous checkpoint is intact")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--max-delay", type=float, default=1.5, help="seconds; each kill waits U(0, this)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe = os.path.join(a.workdir, "crash")
    r = run([a.mpcc, a.model, "-D", "cluster.devices=1", "-o", exe])
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        return 1
    ck = os.path.join(a.workdir, "ck.safetensors")
    for f in glob.glob(ck + "*"):
        os.unlink(f)
    r = run([exe, "--threads", "1", "--steps", "1", "--save", ck])
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        return 1
    failures = []
    kills(a, exe, ck, failures)
    full_disk(a, exe, ck, failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
