#!/usr/bin/env python3
"""`--export-hf` loaded by transformers itself: GPT2LMHeadModel.from_pretrained(DIR).

Needs PyPI's torch and transformers, which the project does not install (docs/hf.md says
how); without them it prints why and exits 77, which ctest reports as skipped. With them:
trains a small GPT on one device, exports it, loads the directory with
transformers.GPT2LMHeadModel.from_pretrained (no missing or unexpected tensors allowed), and
compares its logits (eval mode, float32) with the trainer's own forward (--generate
--temperature 0 --logits) for every context of a greedy generation, under plans of 1 and 4
devices. Nothing is downloaded: the model is read from the directory, offline.

Exit status 0 when the logits agree within --rtol (relative to the largest logit); 1 on a
failure, every failure printed; 77 when torch or transformers is missing.
"""
import argparse
import os
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SKIP = 77


def compare(model, torch, cmd, ckpt, a, tag):
    import numpy as np
    from hf_export import run

    path = os.path.join(a.workdir, f"logits_{tag}.npy")
    r = run(cmd + ["--generate", "12", "--init", ckpt, "--prompt-tokens", "1,2,3",
                   "--temperature", "0", "--logits", path])
    g = re.search(r"^generated:((?: \d+)*)$", r.stdout, re.M)
    if r.returncode != 0 or not g:
        return f"{tag}: --generate --logits failed:\n{r.stdout}"
    got = np.load(path)
    ctx = [1, 2, 3] + [int(x) for x in g.group(1).split()]
    worst = 0.0
    with torch.no_grad():
        for i in range(got.shape[0]):
            window = ctx[: 3 + i][-a.context:]
            ref = model(torch.tensor([window])).logits[0, -1].double().numpy()
            worst = max(worst, float(np.abs(ref - got[i]).max() / max(1.0, np.abs(ref).max())))
    print(f"{tag}: {got.shape[0]} contexts, transformers' logits within {worst:.2e} (relative) "
          f"of the trainer's")
    return None if worst <= a.rtol else f"{tag}: logits differ by {worst:.3e} > {a.rtol}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mpcc", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--workdir", required=True)
    p.add_argument("--model", required=True, help="a GPT-2-shaped model")
    p.add_argument("--context", type=int, required=True, help="the model's T")
    p.add_argument("--rtol", type=float, default=1e-4)
    a = p.parse_args()
    try:
        import numpy  # noqa: F401
        import torch
        import transformers
    except ImportError as e:
        print(f"skipped: {e.name} is not installed for {sys.executable} (docs/hf.md: "
              f"pip install torch transformers)")
        return SKIP
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    from hf_export import build, run
    os.makedirs(a.workdir, exist_ok=True)
    ckpt, out = os.path.join(a.workdir, "gpt.safetensors"), os.path.join(a.workdir, "hf")
    one = build(a, a.model, 1, "gpt")
    r = run(one + ["--steps", "30", "--save", ckpt, "--export-hf", out])
    if r.returncode != 0:
        print(r.stdout)
        return 1
    model, info = transformers.GPT2LMHeadModel.from_pretrained(out, output_loading_info=True)
    model.eval()
    fails = [f"loading: {k}: {v}" for k, v in info.items() if v]  # missing, unexpected, ...
    for n in (1, 4):
        err = compare(model, torch, one if n == 1 else build(a, a.model, n, "gpt"), ckpt, a,
                      f"{n} devices")
        if err:
            fails.append(err)
    for f in fails:
        print("FAIL:", f)
    print("hf_transformers:", "ok" if not fails else f"{len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
