#!/usr/bin/env python3
"""Checkpoints of generated trainers (DESIGN.md §9), end to end.

  * Save at step 10 under the plan for --devices-a devices, resume under the plan for
    --devices-b devices (another mesh): steps 11..20 match the uninterrupted run within --rtol.
  * --init from that checkpoint starts a new run (step 1) from its weights.
  * Bad inputs give one line on stderr (besides mpirun's own banner) and exit status 1: a
    missing file, a truncated file, a checkpoint of another model, a superset of this model's
    tensors or another model's name on a file of them (--resume and --init; --init-partial
    loads what fits), an unknown flag, a bad flag value, a wrong world size.
  * A trainer killed with SIGKILL while saving every step leaves a loadable checkpoint.
"""
import argparse
import glob
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

STEP = re.compile(r"^step (\d+)/(\d+) \| loss ([-+0-9.eEinfa]+)")


def run(cmd, timeout=600):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def build(a, model, devices, name):
    exe = os.path.join(a.workdir, name)
    r = run([a.mpcc, model, "-D", f"cluster.devices={devices}", "-o", exe])
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    with open(exe + ".c") as f:
        np_ = int(re.search(r"mpirun -np (\d+)", f.read()).group(1))
    return exe, np_


def train(a, exe, np_, *flags, check=True):
    r = run([a.mpirun, "--oversubscribe", "-np", str(np_), exe, "--threads", "1"] + list(flags))
    losses = {int(m.group(1)): float(m.group(3)) for m in map(STEP.match, r.stdout.splitlines()) if m}
    if check and r.returncode != 0:
        raise RuntimeError(f"{exe} {flags} failed:\n{r.stdout}{r.stderr}")
    return r, losses


def ckpt_header(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def ckpt_step(path):
    return int(ckpt_header(path)[0]["__metadata__"]["step"])


def write_with_step(src, dst, step):
    """src with its metadata step replaced (the tensor offsets are relative to the data)."""
    hdr, body = ckpt_header(src)
    hdr["__metadata__"]["step"] = step
    js = json.dumps(hdr).encode()
    js += b" " * (-len(js) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + body)


def write_superset(src, dst, model=None):
    """src plus one extra tensor (and, with model, another model name): a file whose tensor
    names are a superset of the model's, which once resumed silently."""
    hdr, body = ckpt_header(src)
    end = len(body)
    hdr["extra.weight"] = {"dtype": "F32", "shape": [2], "data_offsets": [end, end + 8]}
    if model is not None:
        hdr["__metadata__"]["model"] = model
    js = json.dumps(hdr).encode()
    js += b" " * (-len(js) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + body + struct.pack("<2f", 1.0, 2.0))


def one_line_error(r, what, failures):
    # the trainer's own lines start with its name; mpirun adds its banner around them
    lines = [l for l in r.stderr.splitlines() if re.match(r"^ckpt_\w+: ", l)]
    if r.returncode != 1 or len(lines) != 1:
        failures.append(f"{what}: expected exit 1 and one line on stderr, got {r.returncode} and:\n{r.stderr}")
    else:
        print(f"{what}: {lines[0]}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--other", required=True, help="a different model, for the mismatch case")
    p.add_argument("--devices-a", type=int, default=4)
    p.add_argument("--devices-b", type=int, default=2)
    p.add_argument("--rtol", type=float, default=1e-4)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    failures = []
    ck = os.path.join(a.workdir, "ck.safetensors")
    for f in (ck,):
        if os.path.exists(f):
            os.unlink(f)
    exe_a, np_a = build(a, a.model, a.devices_a, "ckpt_a")
    exe_b, np_b = build(a, a.model, a.devices_b, "ckpt_b")
    _, full = train(a, exe_a, np_a, "--steps", "20")
    train(a, exe_a, np_a, "--steps", "10", "--save", ck)
    _, resumed = train(a, exe_b, np_b, "--steps", "20", "--resume", ck)
    if sorted(resumed) != list(range(11, 21)):
        failures.append(f"resumed run printed steps {sorted(resumed)}, expected 11..20")
    for s in sorted(resumed):
        rel = abs(resumed[s] - full[s]) / max(abs(full[s]), 1e-12)
        if rel > a.rtol:
            failures.append(f"step {s}: resumed loss {resumed[s]} vs uninterrupted {full[s]} ({rel:.2e})")
    print(f"saved at step 10 on {np_a} ranks, resumed on {np_b} ranks: steps 11-20 "
          f"{'match' if not failures else 'DIFFER'} (step 20 loss {resumed.get(20)} vs {full[20]})")

    # --init takes the weights but not the step or the optimizer state: a run from it starts
    # at step 0 and prints step 1.
    _, init1 = train(a, exe_b, np_b, "--steps", "1", "--init", ck)
    if sorted(init1) != [1]:
        failures.append(f"--init run printed steps {sorted(init1)}, expected [1]")

    # Bad inputs: one line, exit 1.
    one_line_error(train(a, exe_b, np_b, "--resume", os.path.join(a.workdir, "missing.safetensors"),
                         check=False)[0], "missing checkpoint", failures)
    trunc = os.path.join(a.workdir, "truncated.safetensors")
    with open(ck, "rb") as f, open(trunc, "wb") as g:
        data = f.read()
        g.write(data[: len(data) // 2])
    one_line_error(train(a, exe_b, np_b, "--resume", trunc, check=False)[0], "truncated checkpoint", failures)
    exe_o, np_o = build(a, a.other, 1, "ckpt_other")
    other_ck = os.path.join(a.workdir, "other.safetensors")
    train(a, exe_o, np_o, "--steps", "1", "--save", other_ck)
    one_line_error(train(a, exe_b, np_b, "--resume", other_ck, check=False)[0], "another model's checkpoint",
                   failures)
    # A superset of this model's tensors under its name (the fingerprint differs), or under
    # another model's name: refused by --resume and --init; --init-partial takes what fits.
    sup, renamed = os.path.join(a.workdir, "superset.safetensors"), os.path.join(a.workdir, "renamed.safetensors")
    write_superset(ck, sup)
    write_superset(ck, renamed, model="someone_else")
    for flag in ("--resume", "--init"):
        for path, what in ((sup, "a superset of the tensors"), (renamed, "another model's name")):
            one_line_error(train(a, exe_b, np_b, flag, path, "--steps", "11", check=False)[0],
                           f"{flag} of {what}", failures)
    r, part = train(a, exe_b, np_b, "--init-partial", renamed, "--steps", "1", check=False)
    got = re.search(r"^init: (\d+) of (\d+) parameter tensors from ", r.stdout, re.M)
    if r.returncode != 0 or not got or got.group(1) != got.group(2) or sorted(part) != [1]:
        failures.append(f"--init-partial of a superset: expected every tensor and step 1:\n{r.stdout}{r.stderr}")
    else:
        print(f"--init-partial: {got.group(0)}")
    one_line_error(train(a, exe_b, np_b, "--init-partial", other_ck, check=False)[0],
                   "--init-partial of a file whose shapes differ", failures)
    one_line_error(train(a, exe_b, np_b, "--bogus", check=False)[0], "unknown flag", failures)
    one_line_error(train(a, exe_b, np_b, "--steps", "x", check=False)[0], "bad flag value", failures)
    r = run([a.mpirun, "--oversubscribe", "-np", str(np_b + 1), exe_b, "--steps", "1"])
    one_line_error(r, "wrong world size", failures)
    one_line_error(train(a, exe_b, np_b, "--steps", "99999999999999999999", check=False)[0],
                   "--steps too large", failures)
    # ck is at step 10: --steps 9 is past it (an error), --steps 10 is nothing to do.
    one_line_error(train(a, exe_b, np_b, "--resume", ck, "--steps", "9", check=False)[0],
                   "checkpoint past --steps", failures)
    r, done = train(a, exe_b, np_b, "--resume", ck, "--steps", "10", check=False)
    if r.returncode != 0 or done or "done 0 steps" not in r.stdout:
        failures.append(f"resume at --steps == the checkpoint's step: expected 0 steps, exit 0:\n{r.stdout}{r.stderr}")
    huge = os.path.join(a.workdir, "huge_step.safetensors")
    write_with_step(ck, huge, "864691128455135232")
    one_line_error(train(a, exe_b, np_b, "--resume", huge, "--steps", "20", check=False)[0],
                   "checkpoint step out of range", failures)
    fifo = os.path.join(a.workdir, "fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    for flag in ("--resume", "--data"):
        one_line_error(train(a, exe_b, np_b, flag, fifo, check=False)[0], f"{flag} naming a FIFO", failures)

    # SIGKILL while saving every step: the file left behind is always a whole checkpoint.
    kill_ck = os.path.join(a.workdir, "kill.safetensors")
    train(a, exe_b, np_b, "--steps", "1", "--save", kill_ck)
    proc = subprocess.Popen([a.mpirun, "--oversubscribe", "-np", str(np_b), exe_b, "--threads", "1", "--steps",
                             "100000", "--save", kill_ck, "--save-every", "1", "--log-every", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the ranks may outlive mpirun by a moment: wait until the checkpoint stops changing
    last = None
    for _ in range(40):
        now = os.stat(kill_ck).st_mtime_ns
        if now == last:
            break
        last = now
        time.sleep(0.5)
    # a killed save's rank may be left blocked (its peers are gone): end it, it is ours
    for p in glob.glob(kill_ck + ".tmp.*"):
        pid = int(p.rsplit(".", 1)[1])
        try:
            if os.getsid(pid) == proc.pid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    time.sleep(1)
    # a temporary file of a dead pid (the killed save's, and a planted one) goes at start-up;
    # one of a live pid (this script's) stays
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = f"{kill_ck}.tmp.{dead.pid}", f"{kill_ck}.tmp.{os.getpid()}"
    for p in (stale, live):
        with open(p, "wb") as g:
            g.write(b"partial")
    r, after = train(a, exe_b, np_b, "--resume", kill_ck, "--steps", str(ckpt_step(kill_ck)), check=False)
    if r.returncode != 0:
        failures.append(f"checkpoint left by a killed trainer does not load:\n{r.stderr}")
    else:
        print("checkpoint left by a trainer killed while saving loads")
    left = sorted(os.path.basename(p) for p in glob.glob(kill_ck + ".tmp.*"))
    if left != [os.path.basename(live)]:
        failures.append(f"stale temporary files: expected only {os.path.basename(live)} left, found {left}")
    else:
        print("stale temporary files of dead pids removed at start-up, a live pid's kept")
    os.unlink(live)

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
