#!/usr/bin/env python3
"""Tests of scripts/gpu-check's own logic (scripts/gpu_check.py, scripts/gpu_check_report.py),
so that a short slice of GPU time is not spent finding the script's bugs:

  * the summary rules: a failed check makes the exit status 1; skipped checks carry their
    reason into the text table, the JSON and the markdown; a command stopped by the time
    budget counts as skipped;
  * every GPU step against fakes that print what the real tools print (a trainer's progress
    and bytes lines, bench/gpu_gemm's JSON, bench/torch_gpt.py's JSON): CUDA-vs-C curves
    within and beyond the tolerance, the NCCL case skipped on one GPU, a plan with the wrong
    split, checkpoints both ways, the step time from samples/s, GEMM fractions of the
    datasheet peak, torch figures and ratios;
  * the dry run on this build (--no-gpu --no-build): the C side runs and the CUDA trainers
    build, the rest is skipped with its reason, summary.json/summary.md are written; and the
    same with a failing launcher exits 1.

  test_gpu_check.py --build-dir BUILD [--mpirun MPIRUN]
"""
import argparse
import concurrent.futures as cf
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import gpu_check as gc  # noqa: E402
from gpu_check_report import BUDGET_MARK, Report  # noqa: E402

BUILD, MPIRUN = None, "mpirun"

FAKE_TRAINER = """#!/usr/bin/env python3
# A trainer's output: loss 2/k times (1 + EPS) at step k; --save writes the step, --resume
# continues from it.
import sys
EPS = {eps}
a = sys.argv[1:]
def opt(name):
    return a[a.index(name) + 1] if name in a else None
steps, start = int(opt("--steps") or 20), 0
if opt("--resume"):
    start = int(open(opt("--resume")).read())
for k in range(start + 1, steps + 1):
    print(f"step {{k}}/{{steps}} | loss {{2.0 / k * (1 + EPS):.7g}} | 32.0 samples/s | comm 0.00 MB | "
          "elapsed 0.1s | eta 0.0s")
if opt("--save"):
    open(opt("--save"), "w").write(str(steps))
print("bytes: counted == predicted on every rank")
"""

FAKE_MPIRUN = '#!/bin/sh\nwhile [ "$1" != "-np" ]; do shift; done\nshift 2\nexec "$@"\n'


def script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def read(path):
    with open(path) as f:
        return f.read()


def done(value):
    f = cf.Future()
    f.set_result(value)
    return f


class ReportRules(unittest.TestCase):
    def test_a_failed_check_makes_exit_status_1(self):
        r = Report()
        r.add("a", "pass", "fine")
        r.add("b", "skip", "no GPU")
        self.assertEqual(r.exit_code(), 0)
        r.add("c", "fail", "loss differs")
        self.assertEqual(r.exit_code(), 1)
        self.assertIn("1 passed, 1 failed, 1 skipped", r.text())
        self.assertFalse(r.to_json()["ok"])

    def test_all_skipped_says_why_everywhere(self):
        r = Report()
        r.info["gpu"] = "none"
        r.add("gemm TFLOP/s", "skip", "no GPU: nvidia-smi not found")
        r.add("bench | torch", "skip", "time budget: 3 s left\nsecond line")
        self.assertEqual(r.exit_code(), 0)
        text, md, js = r.text(), r.markdown(), r.to_json()
        for reason in ("no GPU: nvidia-smi not found", "time budget: 3 s left", "second line"):
            self.assertIn(reason, text)
        self.assertIn("| bench \\| torch | skipped |", md)
        self.assertIn("second line", md.split("bench")[1].split("\n")[0])  # one table row
        self.assertEqual([c["status"] for c in js["checks"]], ["skip", "skip"])

    def test_skip_needs_a_reason_and_status_is_checked(self):
        r = Report()
        with self.assertRaises(ValueError):
            r.add("x", "skip", "  ")
        with self.assertRaises(ValueError):
            r.add("x", "ok")

    def test_budget_stop_is_a_skip(self):
        r = Report()
        r.add("x", "fail", f"exit 124 [gpu-check: stopped after 3 s; {BUDGET_MARK}]")
        self.assertEqual(r.checks[0]["status"], "skip")
        self.assertEqual(r.exit_code(), 0)

    def test_write_json_and_markdown(self):
        r = Report()
        r.add("a", "pass", "ok", 1.25)
        r.figure("gemm tf32", 412.5, "TFLOP/s", "83% of peak")
        with tempfile.TemporaryDirectory() as d:
            r.write(os.path.join(d, "out"))
            js = json.loads(read(os.path.join(d, "out", "summary.json")))
            md = read(os.path.join(d, "out", "summary.md"))
        self.assertEqual(js["figures"][0]["value"], 412.5)
        self.assertEqual(js["checks"][0]["seconds"], 1.2)
        self.assertIn("| gemm tf32 | 412.5 | TFLOP/s | 83% of peak |", md)


class Fakes(unittest.TestCase):
    """A context with one GPU 'present', a fake launcher and a fake C trainer."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        mpirun = script(os.path.join(d, "mpirun"), FAKE_MPIRUN)
        self.ctx = gc.Ctx(gc.options(["--build-dir", d, "--mpirun", mpirun]))
        self.ctx.ngpu, self.ctx.have_cuda = 1, True
        self.c = self.trainer("c", 0.0)

    def tearDown(self):
        self.tmp.cleanup()

    def trainer(self, name, eps):
        return script(os.path.join(self.tmp.name, name), FAKE_TRAINER.format(eps=eps))

    def rows(self):
        return {c["name"]: c for c in self.ctx.report.checks}


class GpuStepsWithFakes(Fakes):
    """The GPU side of each step, run against fakes."""

    def equiv(self, model, n, split, eps, mesh):
        futs = {(model, n, "c"): done((self.c, n, mesh)), (model, n, "cuda"): done((self.trainer("cu", eps), n, None))}
        gc.equiv_one(self.ctx, futs, model, n, split)
        return self.rows()

    def test_curves_within_tolerance_pass(self):
        rows = self.equiv("mlp_small", 1, "", 2e-4, (1, 1, 1))
        self.assertEqual(rows["equiv mlp_small 1r"]["status"], "pass", rows)
        self.assertIn("2.00e-04", rows["equiv mlp_small 1r"]["detail"])

    def test_curves_beyond_tolerance_fail_and_nccl_needs_two_gpus(self):
        rows = self.equiv("mlp_pipe2", 2, "pipeline", 5e-3, (2, 1, 1))
        self.assertEqual(rows["equiv mlp_pipe2 2r pipeline --comm mpi"]["status"], "fail")
        nccl = rows["equiv mlp_pipe2 2r pipeline --comm nccl"]
        self.assertEqual(nccl["status"], "skip")
        self.assertIn("2 ranks, 1 GPU(s)", nccl["detail"])
        self.assertEqual(self.ctx.report.exit_code(), 1)

    def test_two_gpus_run_nccl_too(self):
        self.ctx.ngpu = 2
        rows = self.equiv("gpt_tensor", 2, "tensor", 0.0, (1, 1, 2))
        self.assertEqual(rows["equiv gpt_tensor 2r tensor --comm nccl"]["status"], "pass")
        self.assertEqual(rows["equiv gpt_tensor 2r tensor --comm mpi"]["status"], "pass")

    def test_a_plan_without_the_split_fails(self):
        rows = self.equiv("cnn_small", 2, "data", 0.0, (1, 1, 2))
        self.assertEqual(rows["equiv cnn_small 2r data"]["status"], "fail")
        self.assertIn("expected (1, 2, 1)", rows["equiv cnn_small 2r data"]["detail"])

    def test_checkpoints_both_ways(self):
        futs = {("gpt_small", 1, "c"): done((self.c, 1, (1, 1, 1))),
                ("gpt_small", 1, "cuda"): done((self.trainer("cu", 1e-5), 1, None))}
        gc.step_ckpt(self.ctx, futs)
        rows = self.rows()
        for way in ("C -> CUDA", "CUDA -> C"):
            self.assertEqual(rows[f"ckpt gpt_small {way}"]["status"], "pass", rows)
            self.assertIn("steps 11..20", rows[f"ckpt gpt_small {way}"]["detail"])

    def test_checkpoint_resumed_far_off_fails(self):
        futs = {("gpt_small", 1, "c"): done((self.c, 1, (1, 1, 1))),
                ("gpt_small", 1, "cuda"): done((self.trainer("cu", 0.1), 1, None))}
        gc.step_ckpt(self.ctx, futs)
        self.assertEqual(self.rows()["ckpt gpt_small C -> CUDA"]["status"], "fail")

    def test_bench_step_time_from_samples_per_second(self):
        futs = {("gpt", 1, "cuda"): done((self.c, 1, None))}
        ms = gc.bench_mpcc(self.ctx, futs, "tf32")
        self.assertAlmostEqual(ms, 500.0)  # batch 16 at 32 samples/s
        figs = {f["name"]: f["value"] for f in self.ctx.report.figures}
        self.assertEqual(figs["gpt.mp mpcc tf32 throughput"], 16 * 1024 * 2)

    def test_gemm_fraction_of_peak_and_impossible_figures(self):
        os.makedirs(os.path.join(self.ctx.build, "bench"))
        lines = [{"shape": "fc1_fwd", "M": 4096, "N": 3072, "K": 768, "precision": "fp32", "tflops": 33.5},
                 {"shape": "fc1_fwd", "M": 4096, "N": 3072, "K": 768, "precision": "tf32", "tflops": 247.35},
                 {"shape": "fc1_fwd", "M": 4096, "N": 3072, "K": 768, "precision": "bf16", "tflops": 494.7}]
        script(os.path.join(self.ctx.build, "bench", "gpu_gemm"),
               "#!/bin/sh\ncat <<'EOF'\n" + "\n".join(json.dumps(x) for x in lines) + "\nEOF\n")
        self.ctx.report.info["device 0"] = "NVIDIA H200, compute capability 9.0"
        gc.step_gemm(self.ctx)
        notes = [f["note"] for f in self.ctx.report.figures]
        self.assertEqual(notes, ["50% of the H200 fp32 peak", "50% of the H200 tf32 peak",
                                 "50% of the H200 bf16 peak"])
        self.assertEqual(self.rows()["gemm TFLOP/s"]["status"], "pass")
        self.ctx.report = Report()
        self.ctx.report.info["device 0"] = "NVIDIA A100-SXM4-80GB"  # 247 TF32 > 156: wrong
        gc.step_gemm(self.ctx)
        self.assertEqual(self.rows()["gemm TFLOP/s"]["status"], "fail")

    def test_torch_figures_and_ratio(self):
        out = [{"mode": "eager", "median_ms": 750.0, "tokens_per_s": 21845.3, "warmup_s": 2.0},
               {"mode": "compile", "error": "BackendCompilerFailed: boom"}]
        py = script(os.path.join(self.tmp.name, "py"),
                    "#!/bin/sh\ncat <<'EOF'\n" + "\n".join(json.dumps(x) for x in out) + "\nEOF\n")
        gc.bench_torch(self.ctx, py, "tf32", 500.0)
        rows = self.rows()
        self.assertEqual(rows["bench gpt.mp torch eager tf32"]["status"], "pass")
        self.assertIn("torch/mpcc 1.50x", rows["bench gpt.mp torch eager tf32"]["detail"])
        self.assertEqual(rows["bench gpt.mp torch compile tf32"]["status"], "fail")

    def test_torch_without_cuda_is_skipped_with_its_reason(self):
        py = script(os.path.join(self.tmp.name, "py"),
                    '#!/bin/sh\necho \'{"error": "torch 2.9 (built for CUDA 12.8) sees no CUDA device"}\'\nexit 77\n')
        gc.bench_torch(self.ctx, py, "fp32", None)
        row = self.rows()["bench gpt.mp torch fp32"]
        self.assertEqual(row["status"], "skip")
        self.assertIn("sees no CUDA device", row["detail"])


FAKE_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *name,driver_version*) printf 'NVIDIA H200, 570.124.06, 143771 MiB\\nNVIDIA H200, 570.124.06, 143771 MiB\\n' ;;
  *compute_cap*) printf '9.0\\n9.0\\n' ;;
  *) echo '| NVIDIA-SMI 570.124.06     Driver Version: 570.124.06     CUDA Version: 12.8 |' ;;
esac
"""

FAKE_CTEST = """add_test(cuda/a sh -c "echo 'ok: a works'")
add_test(cuda/b sh -c "echo 'SKIPPED: no CUDA device'; exit 77")
set_tests_properties(cuda/b PROPERTIES SKIP_RETURN_CODE 77)
add_test(cuda/c sh -c "echo 'FAIL: c differs by 3e-2'; exit 1")
add_test(other sh -c "exit 1")
"""


class MachineAndToolsWithFakes(Fakes):
    """nvidia-smi's answers, ctest's JUnit file and the whole benchmark step, faked."""

    def test_gpus_from_nvidia_smi(self):
        bindir = os.path.join(self.tmp.name, "bin")
        os.makedirs(bindir)
        script(os.path.join(bindir, "nvidia-smi"), FAKE_NVIDIA_SMI)
        self.ctx.ngpu = 0
        path = os.environ["PATH"]
        os.environ["PATH"] = self.ctx.env["PATH"] = bindir + os.pathsep + path
        try:
            gc.step_gpu(self.ctx)
        finally:
            os.environ["PATH"] = path
        info = self.ctx.report.info
        self.assertEqual((self.ctx.ngpu, self.ctx.arch), (2, "90"))
        self.assertEqual(info["gpu"], "2 × NVIDIA H200 (143771 MiB)")
        self.assertEqual(info["driver"], "570.124.06 (supports CUDA 12.8)")
        self.assertEqual(self.rows()["gpu"]["status"], "pass")

    def test_ctest_rows_from_junit(self):
        with open(os.path.join(self.ctx.build, "CTestTestfile.cmake"), "w") as f:
            f.write(FAKE_CTEST)
        gc.step_ctest(self.ctx)  # one GPU present
        rows = self.rows()
        self.assertEqual(sorted(rows), ["ctest cuda/a", "ctest cuda/b", "ctest cuda/c"])
        self.assertEqual((rows["ctest cuda/a"]["status"], rows["ctest cuda/a"]["detail"]), ("pass", "ok: a works"))
        self.assertEqual(rows["ctest cuda/b"]["status"], "fail")  # skipped with a GPU present
        self.assertIn("skipped although 1 GPU(s) are present", rows["ctest cuda/b"]["detail"])
        self.assertEqual(rows["ctest cuda/c"]["status"], "fail")
        self.assertIn("c differs by 3e-2", rows["ctest cuda/c"]["detail"])
        self.ctx.report, self.ctx.ngpu = Report(), 0
        gc.step_ctest(self.ctx)
        b = self.rows()["ctest cuda/b"]
        self.assertEqual((b["status"], b["detail"]), ("skip", "SKIPPED: no CUDA device"))

    def test_benchmark_step_end_to_end(self):
        out = [{"mode": m, "median_ms": 400.0, "tokens_per_s": 40960.0, "warmup_s": 1.5} for m in ("eager", "compile")]
        py = script(os.path.join(self.tmp.name, "py"),
                    '#!/bin/sh\nif [ "$1" = -c ]; then echo "2.9.0 12.8"; exit 0; fi\ncat <<\'EOF\'\n'
                    + "\n".join(json.dumps(x) for x in out) + "\nEOF\n")
        futs = {("gpt", 1, "cuda"): done((self.c, 1, None))}
        gc.step_bench(self.ctx, futs, (py, None, os.path.join(self.tmp.name, "pip.log")))
        rows = self.rows()
        self.assertEqual(self.ctx.report.info["torch"], "2.9.0 (CUDA 12.8)")
        for name in ("bench gpt.mp mpcc tf32", "bench gpt.mp mpcc fp32", "torch install",
                     "bench gpt.mp torch eager tf32", "bench gpt.mp torch compile fp32"):
            self.assertEqual(rows[name]["status"], "pass", name)
        self.assertIn("torch/mpcc 0.80x", rows["bench gpt.mp torch compile fp32"]["detail"])
        self.assertEqual(len(self.ctx.report.figures), 12)


class DryRun(unittest.TestCase):
    """The real script on this build, no GPU: what can run runs, the rest says why."""

    def run_script(self, out, *extra):
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "gpu_check.py"), "--no-gpu", "--no-build",
               "--build-dir", BUILD, "--skip", "ctest", "--models", "mlp_small,mlp_pipe2",
               "--ckpt-model", "mlp_small", "--mpirun", MPIRUN, "--out", out] + list(extra)
        env = {k: v for k, v in os.environ.items() if k not in ("GPU_CHECK_T0", "GPU_CHECK_SETUP")}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280)
        return r, json.loads(read(os.path.join(out, "summary.json")))

    def test_dry_run(self):
        with tempfile.TemporaryDirectory() as out:
            r, js = self.run_script(out)
            md = read(os.path.join(out, "summary.md"))
            self.assertTrue(os.path.isdir(os.path.join(out, "logs")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = {c["name"]: c for c in js["checks"]}
        cuda = rows["build: CUDA runtime"]["status"] == "pass"
        self.assertEqual(rows["build"]["status"], "pass")
        self.assertEqual(rows["ctest"]["detail"], "--skip ctest given")
        for name in ("equiv mlp_small 1r", "equiv mlp_pipe2 2r pipeline"):
            self.assertEqual(rows[name]["status"], "skip", rows[name])
            self.assertIn("--no-gpu given", rows[name]["detail"])
            self.assertIn("C reference ran: loss", rows[name]["detail"])
            if cuda:
                self.assertIn("CUDA trainer built", rows[name]["detail"])
        for name in ("ckpt mlp_small C -> CUDA", "ckpt mlp_small CUDA -> C"):
            self.assertIn("C saved at step 10", rows[name]["detail"])
        for name in ("gemm TFLOP/s", "bench gpt.mp mpcc", "bench gpt.mp torch"):
            self.assertEqual(rows[name]["status"], "skip")
        self.assertTrue(js["ok"])
        for c in js["checks"]:  # the printed table and the markdown have every row
            self.assertIn(c["name"], r.stdout)
            self.assertIn(c["name"], md)
        self.assertIn(f"gpu-check: {js['counts']['pass']} passed, 0 failed", r.stdout)

    def test_a_failing_check_exits_1(self):
        with tempfile.TemporaryDirectory() as out:
            r, js = self.run_script(out, "--mpirun", "false", "--skip", "ctest,gemm,bench")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertFalse(js["ok"])
        self.assertEqual(js["checks"][[c["name"] for c in js["checks"]].index("equiv mlp_small 1r")]["status"],
                         "fail")
        self.assertIn("FAIL", r.stdout)


def main():
    global BUILD, MPIRUN
    p = argparse.ArgumentParser()
    p.add_argument("--build-dir", required=True)
    p.add_argument("--mpirun", default="mpirun")
    a, rest = p.parse_known_args()
    BUILD, MPIRUN = os.path.abspath(a.build_dir), a.mpirun
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
