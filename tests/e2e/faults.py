#!/usr/bin/env python3
"""Distributed faults (issue 13 item 5 and "Hardening"; runtime/comm_wait.c), end to end.

  * A stopped rank: SIGSTOP of one rank of a training job (the 2-rank tensor-split MLP, rank 1
    stopped; a 4-rank pipeline of two tensor-split stages saving a checkpoint every step, rank 0
    stopped, so that another rank has to report). Each runs with --comm-timeout 10. The job must
    end (it hung forever before) with a non-zero exit and exactly one line from the trainer
    naming the stopped rank and no other; no rank may outlive the job, and the checkpoint's
    final path holds a whole checkpoint or nothing.
  * A killed rank: SIGKILL of rank 1 of a running 4-rank job ends it with a non-zero exit, and
    no rank outlives it (MPI's own detection; this held before, the test keeps it).

Nothing here times the job beyond the bound that decides "it hung" (--bound seconds, generous
for a loaded machine): the job ends, or the test fails.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash import whole_checkpoint  # noqa: E402


def descendants(root):
    """Pids of every live process below root (from /proc's parent links)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def rank_pid(root, exe, rank):
    """The pid of MPI rank `rank` of the job under mpirun `root`, or None."""
    for pid in descendants(root):
        try:
            if os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(exe):
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return pid
    return None


class Job:
    """mpirun in its own session, its output drained by threads (a full pipe would stall rank 0)."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.out, self.err = [], []
        self.ranks = []  # the job's processes, recorded before a signal (orphans leave the tree)
        self.stepping = threading.Event()
        self.threads = [threading.Thread(target=self.drain, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self.drain, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()

    def drain(self, stream, lines):
        for line in stream:
            lines.append(line)
            if line.startswith("step "):
                self.stepping.set()

    def wait(self, bound):
        """The exit status, or None if the job did not end within `bound` seconds."""
        try:
            rc = self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            rc = None
        return rc

    def kill(self):
        """Ends whatever is left of the job (stopped ranks included)."""
        for pid in set(descendants(self.proc.pid) + self.ranks + [self.proc.pid]):
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        self.proc.wait()
        for t in self.threads:
            t.join(timeout=10)

    def text(self):
        return "".join(self.out) + "".join(self.err)


def start(a, exe, ranks, extra, ready):
    """A job of `ranks` ranks training (almost) forever; waits until ready(job) holds."""
    job = Job([a.mpirun, "--oversubscribe", "-np", str(ranks), exe, "--threads", "1", "--steps", "100000000",
               "--log-every", "20"] + extra)
    t_end = time.monotonic() + a.bound
    while time.monotonic() < t_end and job.proc.poll() is None and not ready(job):
        time.sleep(0.1)
    if not ready(job) or job.proc.poll() is not None:
        job.kill()
        return None, f"the job did not start training:\n{job.text()}"
    return job, None


def strike(a, job, exe, rank, sig):
    """Sends sig to `rank` of the job; returns (exit status or None, pids left after the end)."""
    pid = rank_pid(job.proc.pid, exe, rank)
    if pid is None:
        raise RuntimeError(f"no process of rank {rank} under mpirun\n{job.text()}")
    job.ranks = descendants(job.proc.pid)
    os.kill(pid, sig)
    rc = job.wait(a.bound)
    if rc is not None:
        time.sleep(1)  # mpirun has returned; its last SIGKILLs land
    return rc, [p for p in job.ranks if alive(p)]


def stopped(a, what, exe, ranks, rank, ck, failures):
    extra = ["--comm-timeout", str(a.timeout)]
    if ck:
        for f in (ck,):
            if os.path.exists(f):
                os.unlink(f)
        extra += ["--save", ck, "--save-every", "1"]
    job, why = start(a, exe, ranks, extra, lambda j: j.stepping.is_set() and (not ck or os.path.exists(ck)))
    if not job:
        failures.append(f"{what}: {why}")
        return
    rc, left = strike(a, job, exe, rank, signal.SIGSTOP)
    job.kill()
    name = os.path.basename(exe)
    lines = [l.strip() for l in job.err if l.startswith(f"{name}: ")]
    if rc is None:
        failures.append(f"{what}: rank {rank} stopped: the job did not end within {a.bound} s:\n{job.text()}")
        return
    named = set()
    for l in lines:
        m = re.search(r"ranks? ([\d, ]+) did not answer", l)
        if m:
            named |= {int(x) for x in m.group(1).split(",")}
    if rc == 0 or len(lines) != 1 or named != {rank}:
        failures.append(f"{what}: expected a non-zero exit and one line naming rank {rank} alone, got exit {rc}, "
                        f"ranks named {sorted(named)}:\n" + "\n".join(lines) + "\n" + "".join(job.err))
        return
    if left:
        failures.append(f"{what}: processes outlived the job: {left}")
        return
    saved = "" if not ck else "; no checkpoint" if not os.path.exists(ck) else None
    if saved is None:
        step = whole_checkpoint(ck)
        if isinstance(step, str):
            failures.append(f"{what}: the file at the checkpoint's final path is not whole: {step}")
            return
        saved = f"; the checkpoint at the final path is whole (step {step})"
    print(f"{what}: exit {rc}: {lines[0]}{saved}")


def killed(a, what, exe, ranks, rank, failures):
    job, why = start(a, exe, ranks, [], lambda j: j.stepping.is_set())
    if not job:
        failures.append(f"{what}: {why}")
        return
    rc, left = strike(a, job, exe, rank, signal.SIGKILL)
    job.kill()
    if rc is None or rc == 0 or left:
        failures.append(f"{what}: expected the job to end with a non-zero exit, got "
                        f"{'no end' if rc is None else rc}, processes left {left}:\n{job.text()}")
        return
    print(f"{what}: the job ended, exit {rc}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--e2e", required=True, help="tests/e2e (the models)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=int, default=10, help="--comm-timeout of the jobs (seconds)")
    p.add_argument("--bound", type=float, default=240, help="seconds after which a job has hung")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    exe2, exe4 = os.path.join(a.workdir, "tensor2"), os.path.join(a.workdir, "pipe4")
    for exe, model, n in ((exe2, "mlp_small.mp", 2), (exe4, "mlp_pipe2_tensor.mp", 4)):
        r = subprocess.run([a.mpcc, os.path.join(a.e2e, model), "-D", f"cluster.devices={n}", "-o", exe],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            return 1
    failures = []
    stopped(a, "2 ranks, tensor split", exe2, 2, 1, None, failures)
    stopped(a, "4 ranks, 2 stages x 2 tensor ranks, saving every step", exe4, 4, 0,
            os.path.join(a.workdir, "ck.safetensors"), failures)
    killed(a, "4 ranks, SIGKILL of rank 1", exe4, 4, 1, failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
