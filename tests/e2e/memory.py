#!/usr/bin/env python3
"""Memory that does not lie: the C trainer's allocations against the plan's memory per device
(docs/runtime.md, "Memory: allocated against predicted").

For each case (model, pinned mesh SxDxT, train.zero, train.recompute) the trainer runs two
steps with --profile; then on every rank:

  * parameters, gradients and optimizer state allocated equal the plan's bytes exactly;
  * activations allocated plus the per-sample loss values the plan counts and the trainer does
    not keep ("loss_values_not_kept", 4 B per sample of a micro-batch in flight, or 0 on a
    stage without the loss) equal the plan's activations exactly;
  * under ZeRO-2 the gradients allocated are this rank's parts only (the plan's figure, below
    the parameters, and no whole gradient arena), and the transient slots the reduce-scatters
    run from are the plan's "zero_buffers" exactly (two of the largest layer's padded gradient
    and one part of it; docs/runtime.md, "ZeRO"); under ZeRO-3 the parameters are this rank's
    parts as well (as many bytes as its f32 gradient parts), and "zero_buffers" also holds the
    largest layer's gathered weights;
  * the run prints "memory: allocated == predicted on every rank".

bf16 plans (train.precision = "bf16"; docs/runtime.md, "A bf16 trainer") hold to the same
equalities: the bf16 working weights (2 B each), the f32 gradient sums, the f32 master weights
with the optimizer state, and the activations kept in 16 bits (2 B each; the ops' internals —
layer-norm statistics, attention's q, k, v, context and probabilities, max-pooling's argmax —
at the 4 B the plan prices them at). The f32 view of one layer's activations the kernels read
(`work`) and the f32 copy of its weights are among the buffers.

Exit status 0 when all hold; every failure is printed.
"""
import argparse
import json
import os
import sys

from e2e_common import run

# (model file in tests/e2e, mesh, zero, recompute[, -D settings]): data, tensor,
# pipeline(+tensor), attention, conv/maxpool, recomputation, ZeRO-1, 2 and 3, a padded
# vocabulary, SGD with and without momentum.
CASES = [
    ("mlp_adam.mp", "1x4x1", 0, "none"),
    ("mlp_adam.mp", "1x1x4", 0, "none"),
    ("mlp_adam.mp", "2x2x1", 0, "none"),
    ("gpt_small.mp", "2x1x2", 0, "none"),
    ("gpt_small.mp", "2x1x2", 0, "all"),
    ("cnn_small.mp", "1x2x2", 0, "none"),
    ("mlp_adam.mp", "1x4x1", 1, "none"),
    ("mlp_adam.mp", "1x2x2", 1, "none"),
    ("mlp_adam.mp", "1x4x1", 2, "none"),
    ("mlp_adam.mp", "1x2x2", 2, "none"),
    ("mlp_adam.mp", "2x2x1", 2, "none"),
    ("gpt_small.mp", "1x2x2", 2, "none"),
    ("mlp_adam.mp", "1x4x1", 3, "none"),
    ("mlp_adam.mp", "2x2x1", 3, "none"),
    ("gpt_small.mp", "1x2x2", 3, "none"),
    ("gpt_small.mp", "2x2x1", 3, "all"),
    # a padded vocabulary (509 classes over 4 ranks as 128 each): the planner prices the padding
    ("gpt_vocab_odd.mp", "1x1x4", 0, "none"),
    # SGD with and without momentum: the momentum arena is held (and counted) either way
    ("mlp_small.mp", "1x2x1", 0, "none"),
    ("mlp_small.mp", "1x2x1", 0, "none", ("train.momentum=0",)),
    ("mlp_small.mp", "1x2x1", 1, "none", ("train.momentum=0",)),
    # bf16: one device, data, tensor, pipeline with tensor, recomputation, conv
    ("mlp_adam.mp", "1x1x1", 0, "none", ("train.precision=bf16",)),
    ("mlp_adam.mp", "1x4x1", 0, "none", ("train.precision=bf16",)),
    ("mlp_adam.mp", "1x1x4", 0, "none", ("train.precision=bf16",)),
    ("gpt_small.mp", "2x1x2", 0, "none", ("train.precision=bf16",)),
    ("gpt_small.mp", "2x1x2", 0, "all", ("train.precision=bf16",)),
    ("cnn_small.mp", "1x2x2", 0, "none", ("train.precision=bf16",)),
    # bf16 with a pipeline and ZeRO-2, with the vocabulary-parallel loss, with ZeRO-3
    ("mlp_adam.mp", "2x2x1", 2, "none", ("train.precision=bf16",)),
    ("gpt_vocab_odd.mp", "1x1x4", 0, "none", ("train.precision=bf16",)),
    ("gpt_small.mp", "1x2x2", 3, "none", ("train.precision=bf16",)),
]
EXACT = ("params", "grads", "optimizer", "zero_buffers")


def check_rank(name, zero, r, failures, bf16):
    mem = r.get("memory")
    if not mem:
        failures.append(f"{name} rank {r['rank']}: no memory in the profile")
        return
    want, got = mem["predicted"], mem["allocated"]
    for c in EXACT:
        if got[c] != want[c]:
            failures.append(f"{name} rank {r['rank']}: {c} allocated {got[c]} B, predicted "
                            f"{want[c]} B")
    whole = got["params"] * (2 if bf16 else 1)  # the parameters' f32 bytes (bf16: 2 B each)
    if zero == 2 and not (got["grads"] < whole and got["zero_buffers"] > 0):
        failures.append(f"{name} rank {r['rank']}: ZeRO-2 gradients {got['grads']} B are not "
                        f"parts of the {whole} B of f32 parameters, or no slots")
    if zero == 3 and not (got["grads"] == whole and got["zero_buffers"] > 0):
        failures.append(f"{name} rank {r['rank']}: ZeRO-3 parameters {got['params']} B are not "
                        f"the parts its {got['grads']} B of gradients are, or no buffers")
    if zero < 2 and (got["zero_buffers"] or want["zero_buffers"]):
        failures.append(f"{name} rank {r['rank']}: ZeRO-2 slots without ZeRO-2")
    acts = got["activations"] + want["loss_values_not_kept"]
    if acts != want["activations"]:
        failures.append(f"{name} rank {r['rank']}: activations allocated {got['activations']} "
                        f"+ {want['loss_values_not_kept']} B of losses != predicted "
                        f"{want['activations']} B")


def case(a, model, mesh, zero, rc, failures, defines=()):
    S, d, t = (int(x) for x in mesh.split("x"))
    n = S * d * t
    name = " ".join([f"{model} {mesh} zero={zero} recompute={rc}", *defines])
    exe = os.path.join(a.workdir, "_".join([f"{model[:-3]}_{mesh}_z{zero}_{rc}", *defines]))
    extra = [x for kv in defines for x in ("-D", kv)]
    r = run([a.mpcc, os.path.join(a.e2e, model), "-D", f"cluster.devices={n}", "-D",
             f"plan.mesh={mesh}", "-D", f"train.zero={zero}", "-D", f"train.recompute={rc}",
             *extra, "-o", exe, "--report-json", exe + ".plan.json"], 300)
    if r.returncode != 0:
        failures.append(f"{name}: mpcc failed:\n{r.stdout[-2000:]}")
        return
    prof = exe + ".profile.json"
    cmd = [a.mpirun, "-np", str(n), "--oversubscribe", exe, "--steps", "2", "--profile", prof]
    r = run(cmd, a.timeout)
    if r.returncode != 0:
        failures.append(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-2000:]}")
        return
    line = [l for l in r.stdout.splitlines() if l.startswith("memory: ")]
    if len(line) != 1 or "allocated == predicted on every rank" not in line[0]:
        failures.append(f"{name}: memory line {line}")
    with open(prof) as f:
        ranks = json.load(f)["ranks"]
    for rk in ranks:
        check_rank(name, zero, rk, failures, "train.precision=bf16" in defines)
    print(f"{name}: rank 0 allocated {ranks[0].get('memory', {}).get('allocated')}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--e2e", required=True, help="the tests/e2e folder (the models)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    failures = []
    for c in CASES:
        case(a, *c[:4], failures, *c[4:])
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
