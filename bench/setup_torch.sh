#!/usr/bin/env bash
# Installs PyTorch into bench/.venv for the CPU step-time comparison in bench/run_step_time.sh
# (docs/benchmarks.md), with pip as the machine configures it (its own index settings; this
# script names none).
#
# The Linux x86-64 torch wheel is a CUDA build that declares several GB of nvidia-* dependencies.
# On CPU none of them is called, but the dynamic loader still needs every library that
# libtorch*.so links directly (DT_NEEDED) for `import torch` to succeed. So torch is installed
# with --no-deps, with its small pure-Python dependencies listed by hand, plus only the CUDA
# wheels whose libraries are linked directly and are not already on the machine: on the
# development VM (which has CUDA 13.0 under /usr/local for the project's CUDA runtime) these
# are cuFile, cuSPARSELt, NVSHMEM and NCCL (the system's NCCL is too old: torch needs
# ncclCommResume). Found with `ldd torch/lib/*.so | grep 'not found'`. Versions are the ones
# torch 2.15.0 pins. If `import torch` still fails (a machine without CUDA libraries at all),
# the script falls back to the full dependency set, which downloads the whole CUDA wheel set.
# Idempotent: re-running only checks that `import torch` works.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
py="$venv/bin/python"
can_import() { "$py" -c 'import torch' 2>/dev/null; }
if ! can_import; then
	"$py" -m pip install --quiet \
		filelock typing-extensions sympy networkx jinja2 fsspec mpmath MarkupSafe numpy
	"$py" -m pip install --quiet --no-deps torch==2.15.0 \
		nvidia-cufile==1.17.1.22 nvidia-cusparselt-cu13==0.8.1 nvidia-nvshmem-cu13==3.7.2 \
		nvidia-nccl-cu13==2.30.7
fi
if ! can_import; then
	echo "setup_torch: the minimal install cannot load libtorch; installing torch's full dependencies" >&2
	"$py" -m pip install --quiet torch==2.15.0
fi
"$py" -c 'import torch; x = torch.ones(64, 64); assert float((x @ x)[0, 0]) == 64.0; print("torch", torch.__version__, "works on CPU")'
