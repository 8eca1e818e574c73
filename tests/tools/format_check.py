#!/usr/bin/env python3
"""Every C source of mpcc is clang-format clean (STYLE.md §16, the repository's .clang-format).

Checks *.c, *.h and *.cu under the source folders (not build trees, not generated code) with
`clang-format --dry-run --Werror`, and prints each file that is not formatted with the command
that fixes it. Formatting differs between clang-format releases, so the check runs the release
scripts/setup installs (clang-format-14) and exits 77 (skipped, with the reason) when only
another release, or none, is found: never a silent pass.
"""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDERS = ["frontend", "ir", "passes", "report", "codegen", "runtime", "driver", "tools",
           "bench", "tests", "examples"]
SKIP = 77


def sources():
    for top in FOLDERS:
        for dirpath, dirnames, files in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in ("Output", "__pycache__"))
            for f in sorted(files):
                if f.endswith((".c", ".h", ".cu")):
                    yield os.path.join(dirpath, f)


def main():
    tool = shutil.which("clang-format-14") or shutil.which("clang-format")
    if not tool:
        print("SKIPPED: no clang-format-14 (scripts/setup installs it)")
        return SKIP
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    if "version 14." not in version:
        print(f"SKIPPED: {tool} is '{version.strip()}'; the tree is formatted with release 14")
        return SKIP
    files = list(sources())
    bad = []
    for f in files:
        r = subprocess.run([tool, "--dry-run", "--Werror", f], capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(os.path.relpath(f, ROOT))
    for f in bad:
        print(f"not clang-format clean: {f}   (fix: clang-format -i {f})")
    print(f"{len(files) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
