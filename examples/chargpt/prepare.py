#!/usr/bin/env python3
"""Turns the English text of Debian's fortunes package into character tokens for chargpt.mp.

The text: every fortune file of the `fortunes` package (/usr/share/games/fortunes: quotations,
jokes, definitions, poems, about 2.5 million characters; scripts/setup installs it), except the
pictures of `ascii-art`. Nothing is downloaded. Overstriking (X, backspace, Y: the old way to
print bold and underline) keeps the character printed last, and the few characters outside
printable ASCII are dropped. The fortunes are shuffled with a fixed seed and split into a
training and a validation set, each written as the files' own format: fortunes separated by a
line holding `%`.

The vocabulary is fixed, so a model file can name its size: tab, newline and the 95 printable
ASCII characters (space to `~`), 97 tokens, in that order.

  python3 examples/chargpt/prepare.py OUTDIR [--source DIR] [--val 0.1] [--seed 0]

writes OUTDIR/train.bin and OUTDIR/val.bin (nanoGPT's flat little-endian uint16 tokens, which a
trainer reads with --data) and OUTDIR/vocab.json (the characters, token i being entry i), and
prints the sizes.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

SOURCE = "/usr/share/games/fortunes"
SKIP = {"ascii-art"}  # pictures, not text
VOCAB = "\t\n" + "".join(chr(c) for c in range(32, 127))
OVERSTRIKE = re.compile(r"[^\x08]\x08")


def fortunes(source):
    """Every fortune of every text file in source (not the .dat indexes or .u8 links)."""
    try:
        names = sorted(os.listdir(source))
    except OSError as e:
        sys.exit(f"prepare.py: {source}: {e.strerror} (Debian's fortunes package; "
                 "bash scripts/setup installs it)")
    out = []
    for name in names:
        path = os.path.join(source, name)
        if "." in name or name in SKIP or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = OVERSTRIKE.sub("", f.read())
        text = "".join(c for c in text if c in VOCAB)
        out += [s.strip("\n") for s in re.split(r"^%$", text, flags=re.M) if s.strip()]
    if not out:
        sys.exit(f"prepare.py: no fortune found in {source}")
    return out


def write(path, text):
    ids = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    table = np.full(128, 0xFFFF, dtype=np.uint16)
    table[[ord(c) for c in VOCAB]] = np.arange(len(VOCAB), dtype=np.uint16)
    tokens = table[ids]
    assert (tokens < len(VOCAB)).all()
    tokens.astype("<u2").tofile(path)
    return len(tokens)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--source", default=SOURCE, help=f"folder of fortune files (default {SOURCE})")
    p.add_argument("--val", type=float, default=0.1, help="share of the fortunes kept for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle")
    a = p.parse_args()
    if not 0.0 < a.val < 1.0:
        sys.exit(f"prepare.py: --val {a.val} must be between 0 and 1")
    items = fortunes(a.source)
    order = np.random.default_rng(a.seed).permutation(len(items))
    n_val = max(1, int(round(len(items) * a.val)))
    os.makedirs(a.outdir, exist_ok=True)
    sizes = {}
    for name, idx in (("val", order[:n_val]), ("train", order[n_val:])):
        text = "\n%\n".join(items[i] for i in idx) + "\n%\n"
        sizes[name] = (len(idx), write(os.path.join(a.outdir, name + ".bin"), text))
    with open(os.path.join(a.outdir, "vocab.json"), "w") as f:
        json.dump({"chars": list(VOCAB)}, f, indent=0)
        f.write("\n")
    print(f"chargpt: {sizes['train'][0]} fortunes, {sizes['train'][1]} characters for training, "
          f"{sizes['val'][0]} fortunes, {sizes['val'][1]} characters for validation, "
          f"vocabulary of {len(VOCAB)} in {a.outdir}")


if __name__ == "__main__":
    main()
