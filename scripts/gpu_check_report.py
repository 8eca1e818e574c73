"""The result of scripts/gpu-check: checks (pass / fail / skip with its reason), figures and
the machine's facts, rendered as the closing text table, as JSON and as markdown.

Kept apart from the orchestration (gpu_check.py) so that tests/tools/test_gpu_check.py can
check the rules on made-up results: a failed check makes the exit status 1, a skipped check
always carries its reason, every check and figure appears in all three renderings.
"""
import json
import os

STATUSES = ("pass", "fail", "skip")
# Put in a detail by the orchestration when a command was stopped because the run's time
# budget ran out: such a check did not fail, it was not finished, so it counts as skipped.
BUDGET_MARK = "the time budget ran out"
WORDS = {"pass": "pass", "fail": "FAIL", "skip": "skipped"}


class Report:
    def __init__(self):
        self.checks = []  # {"name", "status", "detail", "seconds"}
        self.figures = []  # {"name", "value", "unit", "note"}
        self.info = {}  # machine and versions, in insertion order

    def add(self, name, status, detail="", seconds=None):
        """Records one check. A skip without a reason is refused: the table must say why."""
        if status == "fail" and BUDGET_MARK in detail:
            status = "skip"
        if status not in STATUSES:
            raise ValueError(f"check {name}: status {status!r} is not one of {STATUSES}")
        if status == "skip" and not detail.strip():
            raise ValueError(f"check {name}: a skipped check needs its reason")
        self.checks.append({"name": name, "status": status, "detail": detail.strip(),
                            "seconds": None if seconds is None else round(seconds, 1)})

    def figure(self, name, value, unit, note=""):
        self.figures.append({"name": name, "value": value, "unit": unit, "note": note})

    def counts(self):
        return {s: sum(c["status"] == s for c in self.checks) for s in STATUSES}

    def exit_code(self):
        return 1 if self.counts()["fail"] else 0

    def closing_line(self):
        n = self.counts()
        return f"gpu-check: {n['pass']} passed, {n['fail']} failed, {n['skip']} skipped"

    def to_json(self):
        return {"info": self.info, "checks": self.checks, "figures": self.figures,
                "counts": self.counts(), "ok": self.exit_code() == 0}

    def text(self):
        """The closing summary: facts, one row per check, one per figure, the counts."""
        out = ["", "=" * 100, "gpu-check summary", "=" * 100]
        out += [f"{k:<14} {v}" for k, v in self.info.items()]
        w = max([len(c["name"]) for c in self.checks] + [5])
        out += ["", f"{'check':<{w}}  {'result':<7}  {'s':>6}  detail", "-" * 100]
        for c in self.checks:
            sec = "" if c["seconds"] is None else f"{c['seconds']:.1f}"
            lines = c["detail"].splitlines() or [""]
            out.append(f"{c['name']:<{w}}  {WORDS[c['status']]:<7}  {sec:>6}  {lines[0]}")
            out += [f"{'':<{w}}  {'':<7}  {'':>6}  {l}" for l in lines[1:]]
        if self.figures:
            fw = max(len(f["name"]) for f in self.figures)
            out += ["", f"{'figure':<{fw}}  {'value':>12}  unit      note", "-" * 100]
            for f in self.figures:
                out.append(f"{f['name']:<{fw}}  {fmt(f['value']):>12}  {f['unit']:<8}  {f['note']}")
        out += ["", self.closing_line()]
        return "\n".join(out)

    def markdown(self):
        out = ["# gpu-check", ""]
        out += [f"- **{k}**: {md(v)}" for k, v in self.info.items()]
        out += ["", "| check | result | seconds | detail |", "|---|---|---|---|"]
        for c in self.checks:
            sec = "" if c["seconds"] is None else f"{c['seconds']:.1f}"
            out.append(f"| {md(c['name'])} | {WORDS[c['status']]} | {sec} | {md(c['detail'])} |")
        if self.figures:
            out += ["", "| figure | value | unit | note |", "|---|---|---|---|"]
            out += [f"| {md(f['name'])} | {fmt(f['value'])} | {f['unit']} | {md(f['note'])} |" for f in self.figures]
        out += ["", self.closing_line(), ""]
        return "\n".join(out)

    def write(self, folder):
        """summary.json and summary.md into folder (created if missing)."""
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "summary.json"), "w") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        with open(os.path.join(folder, "summary.md"), "w") as f:
            f.write(self.markdown())


def fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def md(s):
    """One table cell: pipes escaped, lines joined with <br>."""
    return str(s).replace("|", "\\|").replace("\n", "<br>")
