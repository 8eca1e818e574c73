#!/usr/bin/env python3
"""Characters to chargpt's token ids and back, with the vocabulary prepare.py wrote.

  python3 examples/chargpt/text.py encode VOCAB.json "Text"   # prints 52,74,71 (for --prompt-tokens)
  ./train --generate N ... | python3 examples/chargpt/text.py decode VOCAB.json

`decode` reads a trainer's output, finds its `prompt:` and `generated:` lines (token ids) and
prints the prompt followed by the generated text; any other line is ignored.
"""
import argparse
import json
import re
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["encode", "decode"])
    p.add_argument("vocab", help="vocab.json from prepare.py")
    p.add_argument("text", nargs="?", help="the text to encode")
    a = p.parse_args()
    with open(a.vocab) as f:
        chars = json.load(f)["chars"]
    if a.mode == "encode":
        if a.text is None:
            sys.exit("text.py: encode needs the text")
        index = {c: i for i, c in enumerate(chars)}
        bad = sorted({c for c in a.text if c not in index})
        if bad:
            sys.exit(f"text.py: {''.join(bad)!r} not in the vocabulary")
        print(",".join(str(index[c]) for c in a.text))
        return
    found = {}
    for line in sys.stdin:
        m = re.match(r"^(prompt|generated):((?: \d+)*)\s*$", line)
        if m:
            found[m.group(1)] = [int(x) for x in m.group(2).split()]
    if "generated" not in found:
        sys.exit("text.py: no 'generated:' line in the input")
    ids = found.get("prompt", []) + found["generated"]
    bad = [i for i in ids if i >= len(chars)]
    if bad:
        sys.exit(f"text.py: token {bad[0]} is outside the vocabulary of {len(chars)}")
    sys.stdout.write("".join(chars[i] for i in ids) + "\n")


if __name__ == "__main__":
    main()
