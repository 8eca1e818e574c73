#!/usr/bin/env python3
"""validate_json.py: checks mpcc's JSON partition report against docs/report.schema.json.

Usage: validate_json.py SCHEMA [REPORT.json ...]   (reads stdin when no report is given)

Beyond the schema (types, required fields, enums) it checks what a schema cannot say:
one layer per model layer in order, exactly one chosen alternative per layer and it is the
layer's strategy, stages that tile the layers, cuts between existing stages, per-step bytes
that are the per-micro-batch bytes times m (twice for activations, whose gradients come
back), a step time that is the sum of its four parts, and the chosen plan never predicted
slower than a pure plan that fits (unless plan.mesh pinned it). Prints one line per
problem and exits 1 on any; prints "ok: NAME" per valid report otherwise.
"""
import json
import sys

import jsonschema


def semantic_errors(r):
    if not r.get("planned"):
        return []
    errs = []
    layers = r["layers"]
    if len(layers) != r["model"]["layers"]:
        errs.append(f"{len(layers)} layers listed, model has {r['model']['layers']}")
    for i, layer in enumerate(layers):
        if layer["index"] != i:
            errs.append(f"layer {i} has index {layer['index']}")
        chosen = [a["strategy"] for a in layer["alternatives"] if a["chosen"]]
        if chosen != [layer["strategy"]]:
            errs.append(f"layer {layer['name']}: chosen {chosen}, strategy {layer['strategy']}")
        if not 0 <= layer["stage"] < r["mesh"]["S"]:
            errs.append(f"layer {layer['name']}: stage {layer['stage']} out of range")
    mesh = r["mesh"]
    if mesh["S"] * mesh["d"] * mesh["t"] != r["cluster"]["devices"]:
        errs.append("S*d*t differs from the device count")
    nxt = 0
    for s, st in enumerate(r["stages"]):
        if st["index"] != s or st["first_layer"] != nxt or st["last_layer"] < nxt:
            errs.append(f"stage {s} does not continue at layer {nxt}")
        nxt = st["last_layer"] + 1
    if len(r["stages"]) != mesh["S"] or nxt != len(layers):
        errs.append("stages do not tile the layers")
    for c in r["cuts"]:
        if not 0 <= c["after_stage"] < mesh["S"] - 1:
            errs.append(f"cut after stage {c['after_stage']} has no next stage")
    m = r["microbatches"]
    grads = {layer["name"] for layer in layers}
    for c in r["cuts"]:
        dirs = 2 if c["value"] in grads else 1
        if c["bytes_per_step"] != c["bytes_per_microbatch"] * m * dirs:
            errs.append(f"cut of {c['value']}: per step is not per micro-batch x {m} x {dirs}")
    for x in r["reshards"]:
        if x["bytes_per_step"] != (x["fwd_bytes"] + x["bwd_bytes"]) * m:
            errs.append(f"reshard of {x['value']}: per step is not (fwd + bwd) x {m}")
    t = r["totals"]
    parts = t["compute"] + t["exposed_comm"] + t["bubble"] + t["grad_sync_unhidden"] + t["optimizer"]
    if abs(parts - t["step_time"]) > 1e-6 * t["step_time"]:
        errs.append(f"step time {t['step_time']} is not the sum of its parts {parts}")
    step = r["totals"]["step_time"]
    for p in r["comparison"] if "pinned" not in r else []:  # a pinned mesh may be slower
        t = p.get("totals")
        if p["fits"] and t["step_time"] < step * (1 - 1e-9):
            errs.append(f"pure {p['plan']} is predicted faster than the chosen plan")
    return errs


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    inputs = argv[2:] or ["-"]
    bad = 0
    for name in inputs:
        try:
            if name == "-":
                report = json.load(sys.stdin)
            else:
                with open(name, encoding="utf-8") as f:
                    report = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{name}: cannot read JSON: {e}")
            bad += 1
            continue
        errs = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in sorted(validator.iter_errors(report), key=str)]
        if not errs:
            errs = semantic_errors(report)
        for e in errs:
            print(f"{name}: {e}")
        bad += bool(errs)
        if not errs:
            print(f"ok: {name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
