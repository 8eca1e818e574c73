"""e2e_build.py: the one way the end-to-end scripts compile a model into a trainer.

build() runs `mpcc MODEL -D cluster.devices=N -o WORKDIR/NAME_N` and returns the trainer and
the rank count its generated source names (`mpirun -np R`, which is N unless the plan pins
another mesh); a failed compile raises with mpcc's output.
"""
import os
import re
import subprocess


def build(mpcc, workdir, model, devices, name=None):
    name = name or os.path.splitext(os.path.basename(model))[0]
    exe = os.path.join(workdir, f"{name}_{devices}")
    r = subprocess.run([mpcc, model, "-D", f"cluster.devices={devices}", "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"mpcc {model} at {devices} devices failed:\n{r.stdout}{r.stderr}")
    with open(exe + ".c") as f:
        return exe, int(re.search(r"mpirun -np (\d+)", f.read()).group(1))
