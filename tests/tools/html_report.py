#!/usr/bin/env python3
"""Checks mpcc's HTML report (report/html.c, docs/report.md) on every example.

  html_report.py structure --mpcc MPCC --examples DIR --out DIR
      writes each example's HTML, JSON and text report at 1, 8 and 64 devices, twice, and
      checks: the two HTML files are identical; the page draws as many devices, stages,
      tensor and data groups, layers, timeline and memory rows as the JSON plan has; each
      layer row sits on the stage the JSON says; the embedded text report is the text
      report, byte for byte; nothing is fetched (no src=, href=, url( but the page's own).
  html_report.py browser --mpcc MPCC --examples DIR --out DIR [--shots A.png:EX:D ...]
      loads every page in headless Chromium and fails on any console line (errors,
      uncaught exceptions) or a page whose script did not run to its end (data-ready);
      exits 77 (ctest's SKIP_RETURN_CODE) when no chromium is installed. --shots also
      screenshots example EX at D devices into A.png (how docs/report-*.png are made).
"""
import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys

DEVICES = (1, 8, 64)


def generate(mpcc, examples, out, twice):
    os.makedirs(out, exist_ok=True)
    pages = []
    for f in sorted(os.listdir(examples)):
        if not f.endswith(".mp"):
            continue
        name = f[:-3]
        for d in DEVICES:
            base = os.path.join(out, f"{name}.{d}")
            cmd = [mpcc, os.path.join(examples, f), "--emit=plan", "-D", f"cluster.devices={d}",
                   "--report-json", base + ".json", "--report-html", base + ".html"]
            with open(base + ".txt", "w") as txt:
                subprocess.run(cmd, stdout=txt, check=True)
            if twice:
                cmd[-1] = base + ".again.html"
                subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            pages.append(base)
    return pages


def count(page, pattern):
    return len(re.findall(pattern, page))


def check_page(base):
    page = open(base + ".html", encoding="utf-8").read()
    if open(base + ".again.html", encoding="utf-8").read() != page:
        return "not deterministic"
    j = json.load(open(base + ".json"))
    S, d, t = j["mesh"]["S"], j["mesh"]["d"], j["mesh"]["t"]
    want = {
        r'<rect data-device="': S * d * t,
        r'data-tgroup="': S * d,
        r'data-dgroup="': S * t if d > 1 else 0,
        r'<tr data-layer="': len(j["layers"]),
        r'<g data-tl-stage="': S,
        r'<g data-mem-stage="': S,
        r'<g data-cmp="': 4,
        r'<script>': 1,
    }
    for pat, n in want.items():
        if count(page, pat) != n:
            return f"{count(page, pat)} of '{pat}', want {n}"
    if S * d * t != j["cluster"]["devices"]:
        return "mesh does not cover the devices"
    stages = sorted(set(int(s) for s in re.findall(r'data-device="\d+" data-stage="(\d+)"', page)))
    if stages != list(range(S)):
        return f"device stages {stages}, want 0..{S - 1}"
    rows = re.findall(r'<tr data-layer="(\d+)">.*?<td class="r" data-v="(\d+)" style', page)
    for (i, s), layer in zip(rows, j["layers"]):
        if int(s) != layer["stage"]:
            return f"layer {i} drawn on stage {s}, the plan says {layer['stage']}"
    if re.search(r'\b(src|href)=|https?:|url\((?!#)', page):
        return "refers to something outside the page"
    text = re.search(r"<details>.*?<pre>(.*?)</pre></details>", page, re.S)
    if not text or html.unescape(text.group(1)) != open(base + ".txt", encoding="utf-8").read():
        return "embedded text report differs from --emit=plan"
    return None


def structure(a):
    pages = generate(a.mpcc, a.examples, a.out, True)
    bad = [(p, why) for p in pages for why in [check_page(p)] if why]
    for p, why in bad:
        print(f"FAIL {os.path.basename(p)}.html: {why}")
    if not pages:
        bad.append((a.examples, "no example found"))
    print(f"checked {len(pages)} pages ({len(DEVICES)} per example), {len(bad)} failed")
    return 1 if bad else 0


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    return None


def load(browser, path, shot=None):
    """The console lines and the dumped DOM (or the screenshot's success) of one page."""
    cmd = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", "--window-size=1300,1500",
           f"--user-data-dir={os.path.dirname(os.path.abspath(path))}/.chromium"]
    cmd += [f"--screenshot={shot}"] if shot else ["--dump-dom"]
    r = subprocess.run(cmd + ["file://" + os.path.abspath(path)], capture_output=True,
                       text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    return r.returncode, console, r.stdout


def browser(a):
    b = chromium()
    if not b:
        print("SKIPPED: no chromium on PATH: install Debian's 'chromium' (bash scripts/setup --browser; "
              "scripts/test does) to load the HTML reports in a headless browser")
        return 77
    pages = generate(a.mpcc, a.examples, a.out, False)
    failed = 0
    for p in pages:
        rc, console, dom = load(b, p + ".html")
        why = (f"chromium exited {rc}" if rc else "; ".join(console) if console else
               "the page's script did not finish" if 'data-ready="1"' not in dom else None)
        if why:
            failed += 1
            print(f"FAIL {os.path.basename(p)}.html: {why}")
    for spec in a.shots:
        png, name, d = spec.split(":")
        page = os.path.join(a.out, f"shot.{name}.{d}.html")
        subprocess.run([a.mpcc, os.path.join(a.examples, name + ".mp"), "-D",
                        f"cluster.devices={d}", "--report-html", page], check=True)
        rc, console, _ = load(b, page, png)
        if rc or console or not os.path.exists(png):
            failed += 1
            print(f"FAIL screenshot {png}: {rc} {console}")
    print(f"loaded {len(pages)} pages in {os.path.basename(b)}, {failed} failed")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("structure", "browser"))
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shots", nargs="*", default=[], help="PNG:example:devices")
    a = ap.parse_args()
    return structure(a) if a.mode == "structure" else browser(a)


if __name__ == "__main__":
    sys.exit(main())
