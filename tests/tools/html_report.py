#!/usr/bin/env python3
"""Checks mpcc's HTML report (report/html.c, docs/report.md) on every example.

  html_report.py structure --mpcc MPCC --examples DIR --out DIR
      writes each example's HTML, JSON and text report at 1, 8 and 64 devices, twice, and
      checks: the two HTML files are identical; the page draws as many devices, stages,
      tensor and data groups, layers, timeline and memory rows as the JSON plan has; each
      layer row sits on the stage the JSON says; the embedded text report is the text
      report, byte for byte; nothing is fetched (no src=, href=, url( but the page's own).
      Each page also gets a predicted-vs-measured twin (--measured) from a profile made up
      from the JSON plan (every layer 10% slower than predicted, known busy and idle time),
      checked against the numbers the profile implies: one measured bar per stage, one row
      per layer, every layer's error +10%, the measured step.
  html_report.py run --mpcc MPCC --mpirun MPIRUN --model M.mp --ranks N --out DIR
      builds M's trainer, trains a few steps under mpirun with --profile, draws the profile
      into the page and checks the page's measured step and per-layer rows against the
      profile's timers (recomputed here the way report/measured.c does).
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
            measured_twin(mpcc, examples, base, name, d)
            pages.append(base)
    return pages


def synth_profile(j, scale=1.1, steps=5, busy=2e-3, idle=5e-4):
    """A trainer profile for plan j: every layer `scale` times its predicted time in the
    steady state (its "layers" entries), slower in the warm-up its timers include."""
    S, d, t, m = j["mesh"]["S"], j["mesh"]["d"], j["mesh"]["t"], j["microbatches"]
    ranks = []
    for r in range(S * d * t):
        s = r // (d * t)
        timers = [{"name": "stage.busy", "seconds": steps * busy, "calls": steps, "first_s": busy},
                  {"name": "stage.idle", "seconds": steps * idle, "calls": 3 * steps,
                   "first_s": idle}]
        layers = []
        for L in j["layers"]:
            if L["stage"] != s:
                continue
            for k in ("fwd", "bwd"):
                # Steady state `scale` x the prediction (the "layers" entry); the timer also
                # holds slow warm-up calls, so a reader that took the timer instead of the
                # steady-state entry would show another error.
                v = scale * L[k + "_time"]
                timers.append({"name": f"{k}.{L['name']}", "seconds": v * steps * m + 3 * v,
                               "calls": steps * m, "first_s": 2 * v})
            layers.append({"name": L["name"], "measured_fwd_s": scale * L["fwd_time"],
                           "measured_bwd_s": scale * L["bwd_time"]})
        ranks.append({"rank": r, "stage": s, "timers": timers, "layers": layers})
    return {"mprt_version": "test", "mesh": j["mesh"], "world_size": S * d * t,
            "predicted_step_s": j["totals"]["step_time"], "ranks": ranks}


def steady(t):
    c, sec, first = t["calls"], t["seconds"], t.get("first_s")
    if c > 1 and first is not None and sec >= first:
        return (sec - first) / (c - 1)
    return sec / c if c else 0


def expected_stages(j, prof):
    """Per stage (step, ranks), as report/measured.c computes them."""
    S = j["mesh"]["S"]
    acc = [[0.0, 0] for _ in range(S)]
    for r in prof["ranks"]:
        tm = {t["name"]: t for t in r["timers"]}
        steps = tm["stage.busy"]["calls"]
        idle = tm["stage.idle"]["seconds"] / steps if "stage.idle" in tm else 0
        acc[r["stage"]][0] += steady(tm["stage.busy"]) + idle
        acc[r["stage"]][1] += 1
    return [a / n for a, n in acc]


def check_measured_page(page, j, prof, scale=None):
    S, L = j["mesh"]["S"], len(j["layers"])
    if count(page, r'<g data-pm-stage="') != S:
        return f"{count(page, '<g data-pm-stage=')} measured stage bars, want {S}"
    if count(page, r'<tr data-pm-layer="') != L:
        return f"{count(page, '<tr data-pm-layer=')} measured layer rows, want {L}"
    want = expected_stages(j, prof)
    got = [float(x) for x in re.findall(r'data-pm-stage="\d+" data-measured-step="([^"]+)"', page)]
    if any(abs(g - w) > 1e-6 * max(w, 1e-9) for g, w in zip(got, want)):
        return f"measured stage steps {got}, the profile says {want}"
    if "data-other-plan" in page and prof.get("predicted_step_s") == j["totals"]["step_time"]:
        return "says the profile is of another plan, but its predicted_step_s is this plan's"
    step = float(re.search(r'data-measured="([^"]+)"', page).group(1))
    if abs(step - prof.get("measured_step_s", max(want))) > 1e-6 * max(want):
        return f"measured step {step}, want {prof.get('measured_step_s', max(want))}"
    if scale is not None:
        want_err = f"{(scale - 1) * 100:+.0f}%"
        errs = re.findall(r'<td class="r(?: off)?" data-v="[^"]+">([+-]\d+%)</td>', page)
        timed = sum(1 for x in j["layers"] for k in ("fwd", "bwd") if x[k + "_time"] > 0)
        if len(errs) != timed or any(e != want_err for e in errs):
            return f"layer errors {sorted(set(errs))}, want all {want_err}"
    return None


def measured_twin(mpcc, examples, base, name, d):
    """Writes base.profile.json from the plan and base.measured.html from it (twice)."""
    j = json.load(open(base + ".json"))
    prof = synth_profile(j)
    json.dump(prof, open(base + ".profile.json", "w"))
    for out in (".measured.html", ".measured.again.html"):
        subprocess.run([mpcc, os.path.join(examples, name + ".mp"), "-D", f"cluster.devices={d}",
                        "--report-html", base + out, "--measured", base + ".profile.json"],
                       check=True)
    return j, prof


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
    twin = open(base + ".measured.html", encoding="utf-8").read()
    if open(base + ".measured.again.html", encoding="utf-8").read() != twin:
        return "measured page not deterministic"
    why = check_measured_page(twin, j, json.load(open(base + ".profile.json")), scale=1.1)
    if why:
        return "measured page: " + why
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
    for p in [x + ext for x in pages for ext in (".html", ".measured.html")]:
        rc, console, dom = load(b, p)
        why = (f"chromium exited {rc}" if rc else "; ".join(console) if console else
               "the page's script did not finish" if 'data-ready="1"' not in dom else None)
        if why:
            failed += 1
            print(f"FAIL {os.path.basename(p)}: {why}")
    for spec in a.shots:
        png, name, d = spec.split(":")
        page = os.path.join(a.out, f"shot.{name}.{d}.html")
        subprocess.run([a.mpcc, os.path.join(a.examples, name + ".mp"), "-D",
                        f"cluster.devices={d}", "--report-html", page], check=True)
        rc, console, _ = load(b, page, png)
        if rc or console or not os.path.exists(png):
            failed += 1
            print(f"FAIL screenshot {png}: {rc} {console}")
    print(f"loaded {2 * len(pages)} pages in {os.path.basename(b)}, {failed} failed")
    return 1 if failed else 0


def run(a):
    """A real trainer's profile drawn into its plan's page."""
    os.makedirs(a.out, exist_ok=True)
    exe = os.path.join(a.out, "trainer")
    subprocess.run([a.mpcc, a.model, "-o", exe], check=True, stderr=subprocess.DEVNULL)
    prof_path, page_path = os.path.join(a.out, "profile.json"), os.path.join(a.out, "page.html")
    subprocess.run([a.mpirun, "-np", str(a.ranks), exe, "--steps", "4", "--threads", "1",
                    "--profile", prof_path], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([a.mpcc, a.model, "--report-json", page_path + ".json", "--report-html",
                    page_path, "--measured", prof_path], check=True)
    j, prof = json.load(open(page_path + ".json")), json.load(open(prof_path))
    why = check_measured_page(open(page_path, encoding="utf-8").read(), j, prof)
    print(f"FAIL {why}" if why else f"measured page of a {len(prof['ranks'])}-rank run checked")
    return 1 if why else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("structure", "browser", "run"))
    ap.add_argument("--mpcc", required=True)
    ap.add_argument("--examples")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mpirun")
    ap.add_argument("--model")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--shots", nargs="*", default=[], help="PNG:example:devices")
    a = ap.parse_args()
    return {"structure": structure, "browser": browser, "run": run}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
