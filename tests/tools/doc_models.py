#!/usr/bin/env python3
"""Compiles every .mp example in README.md and docs/*.md, so the docs cannot drift from the
language.

A fenced block tagged ```mp is a model file, or a piece of one (a `def`, a `train` or a
`cluster` section); a piece is appended to a small model of our own so it can be compiled.
Each is run through the planner (`mpcc FILE --emit=plan`) and must exit 0 with no output on
standard error but warnings. A block meant to show an error is tagged ```mp-error: it must
exit 1 with a located one-line error (FILE:LINE:COL: error: ...), never crash. An untagged
block that looks like a model (`model NAME {` at the start of a line) is itself a failure:
tag it, so it is checked.

usage: doc_models.py --mpcc build/mpcc --root SOURCE_DIR --workdir DIR
"""
import argparse
import glob
import os
import re
import subprocess
import sys

FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MODEL_LINE = re.compile(r"^\s*model\s+\w+\s*\{", re.M)
BASE = """
model doc_piece {
    input x: f32[batch, 8];
    label y: i32[batch];
    loss = cross_entropy(linear(x, 4), y);
}
"""


def blocks(path):
    """(line of the opening fence, tag, text) for each fenced block of a Markdown file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            yield i + 1, m.group(2), "\n".join(lines[i + 1:j]) + "\n"
            i = j
        i += 1


def check(mpcc, path, line, tag, text, workdir):
    """Returns a failure message, or None."""
    where = f"{path}:{line}"
    if tag not in ("mp", "mp-error"):
        if MODEL_LINE.search(text):
            return f"{where}: a model in a block tagged {tag or 'nothing'}; tag it ```mp"
        return None
    if not MODEL_LINE.search(text):
        text = BASE + text
    name = re.sub(r"[^A-Za-z0-9]+", "_", os.path.relpath(path)) + f"_{line}.mp"
    mp = os.path.join(workdir, name)
    with open(mp, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([mpcc, mp, "--emit=plan"], capture_output=True, text=True, timeout=300)
    errors = [l for l in r.stderr.splitlines() if ": error: " in l]
    if tag == "mp":
        if r.returncode != 0 or errors:
            return f"{where}: exit {r.returncode}:\n{r.stderr}"
        return None
    located = re.compile(re.escape(mp) + r":\d+:\d+: error: ")
    if r.returncode != 1 or not errors or not located.match(errors[0]):
        return f"{where}: expected a located error and exit 1, got exit {r.returncode}:\n{r.stderr}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    docs = [os.path.join(a.root, "README.md")] + sorted(glob.glob(os.path.join(a.root, "docs", "*.md")))
    failures, checked = [], 0
    for path in docs:
        for line, tag, text in blocks(path):
            checked += tag in ("mp", "mp-error")
            msg = check(a.mpcc, path, line, tag, text, a.workdir)
            if msg:
                failures.append(msg)
    for m in failures:
        print(m, file=sys.stderr)
    print(f"doc_models: {checked} .mp blocks checked, {len(failures)} failed")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
