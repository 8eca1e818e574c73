#!/usr/bin/env python3
"""Builds and runs a trainer from a .mp whose names, file name or statement text are hostile
to generated C (quotes, backslashes, comment terminators, newlines, trigraphs, non-ASCII,
C keywords, runtime symbols), for tests/lit/codegen/names_*.test.

Writes CASE's model into WORKDIR under CASE's file (and directory) name, runs
`mpcc FILE -o OUT` (OUT named alike), then OUT (copied to WORKDIR/trainer) with
`--steps 2 --threads 1` as one rank, and
prints `built`, the trainer's `done 2 steps` line, and `escaped` when the hostile text sits
in train.c only inside comments and string literals, never as code.

usage: hostile_names.py --mpcc MPCC --workdir DIR CASE
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

BODY = """model {model} {{
    input x: f32[batch, 4];
    label y: i32[batch];
{stmts}
}}
train {{ batch = 4; steps = 2; optimizer = sgd(lr = 0.1); }}
cluster {{ devices = 1; }}
"""
PLAIN = "    h = linear(x, 3);\n    loss = cross_entropy(h, y);"

# case: (directory, file name, model name, statements)
CASES = {
    "quotes": ("q'\"dir", "it's \"a\".mp", "m", "    h = linear(x, 3 /* \"quoted\" 'and' \" */);\n    loss = cross_entropy(h, y);"),
    "backslash": ("back\\slash", "a\\b\\.mp", "m", "    h = linear(x, 3 /* ends in \\ */);\n    loss = cross_entropy(h, y); /* \\\n */"),
    "comment_end": ("d*", "*x /*.mp".replace("/", ""), "m", "    h = linear(x /* */, 3 /* int bad; */);\n    loss = cross_entropy(h, y);"),
    "newline": ("new\nline", "a\nb.mp", "m", "    h = linear(x,\n        3 /* two\n lines */);\n    loss = cross_entropy(h, y);"),
    "trigraph": ("t??", "??'??!??-.mp", "m", "    h = linear(x, 3 /* ??/ */) /* ??/\n */;\n    loss = cross_entropy(h, y);"),
    "non_ascii": ("répertoire", "modèle ✓.mp", "m", "    h = linear(x, 3 /* é ✓ \u202e */);\n    loss = cross_entropy(h, y);"),
    "keywords": ("kw", "int.mp", "while",
                 "    int = linear(x, 3);\n    return_ = relu(int);\n    static = linear(return_, 3);\n"
                 "    loss = cross_entropy(static, y);"),
    "runtime_symbols": ("rt", "mprt.mp", "main",
                        "    main = linear(x, 3);\n    mprt_init = relu(main);\n    MPI_Init = linear(mprt_init, 3);\n"
                        "    train_step = relu(MPI_Init);\n    trainer_main = linear(train_step, 3);\n"
                        "    free_all = relu(trainer_main);\n    prm = linear(free_all, 3);\n"
                        "    printf = relu(prm);\n    malloc = linear(printf, 3);\n    loss = cross_entropy(malloc, y);"),
}
HOSTILE = {"quotes": '"quoted"', "backslash": "ends in \\", "comment_end": "*x *.mp", "newline": "two",
           "trigraph": "??/", "non_ascii": "é", "keywords": None, "runtime_symbols": None}


def code_only(c_text):
    """train.c without its comments and string literals."""
    return re.sub(r'/\*.*?\*/|"(?:\\.|[^"\\\n])*"', " ", c_text, flags=re.S)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    d, fname, model, stmts = CASES[a.case]
    shutil.rmtree(a.workdir, ignore_errors=True)
    folder = os.path.join(a.workdir, d)
    os.makedirs(folder)
    mp = os.path.join(folder, fname)
    with open(mp, "w", encoding="utf-8") as f:
        f.write(BODY.format(model=model, stmts=stmts))
    out = os.path.join(folder, os.path.splitext(fname)[0] + " train")
    r = subprocess.run([a.mpcc, mp, "-o", out], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        print(f"mpcc failed ({r.returncode}):\n{r.stderr}")
        return 1
    print("built")
    # Run a copy with a plain path: LeakSanitizer's symbolizer (the sanitizer build) cannot
    # take a module path with quotes or newlines and hangs; the path is not what is tested.
    runnable = os.path.join(a.workdir, "trainer")
    shutil.copy(out, runnable)
    t = subprocess.run([runnable, "--steps", "2", "--threads", "1", "--log-every", "1"], capture_output=True,
                       text=True, timeout=600)
    lines = [l for l in t.stdout.splitlines() if l.startswith("done ")]
    if t.returncode != 0 or not lines:
        print(f"trainer failed ({t.returncode}):\n{t.stdout}\n{t.stderr}")
        return 1
    print(lines[0].split("|")[0].strip())
    c_text = open(out + ".c", encoding="utf-8", errors="replace").read()
    h = HOSTILE[a.case]
    if h is None or (h not in code_only(c_text)):
        print("escaped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
