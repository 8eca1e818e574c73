#!/usr/bin/env python3
"""Checks the README's two commands and the tree's hygiene, which no other test sees:

1. scripts/demo and scripts/test configure build/ with the same cache settings (compiler,
   build type, Python), so running one after the other reuses the build: a different
   CMAKE_C_COMPILER makes CMake delete the cache and rebuild everything.
2. Every Python the suite runs is the interpreter scripts/setup checked: each configure
   line of scripts/test passes -DPython3_EXECUTABLE=P, and scripts/setup imports numpy and
   jsonschema with that same P.
3. No file names a package index or registry host: package clients are used as the machine
   configures them.

usage: scripts_check.py --root SOURCE_DIR
"""
import argparse
import os
import re
import shlex
import sys

# Index options and registry hosts, spelled in pieces so this file does not match itself.
FORBIDDEN = [
    "--" + "index-url", "--" + "extra-index-url", "pypi" + ".org", "pythonhosted" + ".org",
    "download." + "pytorch.org", "registry." + "npmjs.org", "crates" + ".io", "proxy." + "golang.org",
    "deb." + "debian.org", "archive." + "ubuntu.com", "conda." + "anaconda.org",
]
SKIP_DIRS = {".git", "Output", "__pycache__", ".venv"}


def configure_lines(path):
    """The argument lists of every `cmake -S . -B DIR ...` command in a shell script."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    out = []
    for line in text.split("\n"):
        m = re.search(r"cmake -S \. -B (\S+)(.*)", line)
        if m:
            args = shlex.split(m.group(2).split(">")[0].split("&&")[0])
            out.append((m.group(1), sorted(a for a in args if a.startswith("-D"))))
    return out


def check_scripts(root):
    fails = []
    demo = configure_lines(os.path.join(root, "scripts", "demo"))
    test = configure_lines(os.path.join(root, "scripts", "test"))
    d = [a for b, a in demo if b == "build"]
    t = [a for b, a in test if b == "build"]
    if not d or not t:
        fails.append("scripts/demo or scripts/test does not configure build/")
    elif d[0] != t[0]:
        fails.append(f"scripts/demo configures build/ with {d[0]}, scripts/test with {t[0]}")
    setup = open(os.path.join(root, "scripts", "setup"), encoding="utf-8").read()
    for b, args in test:
        py = [a.split("=", 1)[1] for a in args if a.startswith("-DPython3_EXECUTABLE=")]
        if not py:
            fails.append(f"scripts/test configures {b}/ without -DPython3_EXECUTABLE")
        elif not re.search(re.escape(py[0]) + r" -c '[^']*import numpy", setup):
            fails.append(f"scripts/test runs {py[0]} for {b}/, which scripts/setup does not check")
    return fails


def check_registries(root):
    fails = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith("build")]
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.split("\n"), 1):
                for word in FORBIDDEN:
                    if word in line:
                        fails.append(f"{os.path.relpath(path, root)}:{n}: names '{word}'")
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    root = ap.parse_args().root
    fails = check_scripts(root) + check_registries(root)
    for f in fails:
        print(f"scripts_check: {f}", file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
