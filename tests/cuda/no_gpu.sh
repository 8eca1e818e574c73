#!/bin/sh
# no_gpu.sh PROBE NP MODE MPIRUN...: on a machine without a CUDA device, a CUDA trainer's
# start-up must fail with its error printed once on stderr (whatever the rank count) and exit 1.
# On a machine with a device this check does not apply: it reports itself skipped (77).
probe=$1 np=$2 mode=$3
shift 3
if "$probe" --has-gpu; then
  echo "SKIPPED: a CUDA device is present (this test checks the no-GPU error)"
  exit 77
fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT
timeout 120 "$@" "$np" "$probe" "$mode" "$np" >/dev/null 2>"$err"
rc=$?
want="cu_init_probe: no CUDA device found (a CUDA trainer needs a GPU; build the C target with --target c to train on CPUs)"
if [ "$rc" -ne 1 ]; then
  echo "FAIL: exit status $rc, expected 1"; cat "$err"; exit 1
fi
# mpirun adds its own report of the non-zero exit; ours must be there exactly once.
if [ "$(grep -cxF "$want" "$err")" -ne 1 ]; then
  echo "FAIL: expected this line exactly once on stderr:"; echo "  $want"; echo "got:"; cat "$err"; exit 1
fi
echo "ok: $np rank(s), --comm $mode: one-line error, exit 1"
