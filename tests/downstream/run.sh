#!/usr/bin/env bash
# run.sh: mpcc used from other projects, the way docs/embedding.md tells a user to.
#
#   run.sh SCENARIO BUILD_DIR SOURCE_DIR MPIRUN
#
# Every scenario installs BUILD_DIR into a fresh temporary prefix (cmake --install, never the
# build tree), copies the downstream project it needs into a temporary folder, builds it
# against the install only, and checks real results:
#   cmake       examples/embed with find_package(mpcc) + mpcc_add_trainer: embed (the C API
#               over MPI) and the stand-alone trainer on 2 ranks, the loss going down
#   pkgconfig   examples/embed with its plain Makefile and pkg-config: the same checks
#   capi        tests/downstream/project: every C API error path (api_errors.c) on 2 ranks,
#               the wrong world size on 1, a program linking only the shared runtime, and the
#               same batch through the C API (2 ranks) and the trainer (1 rank) giving the
#               same losses
#   regenerate  editing the .mp file and rebuilding regenerates the trainer (and only then)
#   diagnostic  an error in the .mp file fails the build with mpcc's file:line:col message
#   relocate    the install moved elsewhere still works: mpcc -o finds its runtime, pkg-config
#               and the CMake package find theirs
#   cuda        (CUDA builds) mpcc_add_trainer(TARGET cuda) builds with nvcc against mpcc::mprt_cuda
set -euo pipefail
scenario=$1 build=$2 src=$3 mpirun=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/mpcc-downstream-$scenario.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
prefix=$work/prefix

fail() { echo "FAIL ($scenario): $*" >&2; exit 1; }
step() { echo "== $*"; }

install_mpcc() {
  step "install into $1"
  cmake --install "$build" --prefix "$1" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
  for f in bin/mpcc include/mpcc/mprt.h include/mpcc/mprt_kernels.h lib/libmprt.a lib/libmprt.so \
           lib/pkgconfig/mprt.pc lib/cmake/mpcc/mpccConfig.cmake lib/cmake/mpcc/mpccConfigVersion.cmake \
           lib/cmake/mpcc/mpccTargets.cmake lib/cmake/mpcc/MpccTrainer.cmake share/doc/mpcc/embedding.md \
           share/mpcc/examples/embed/embed.c; do
    [[ -e $1/$f ]] || fail "the install lacks $f"
  done
}

# cmake_build DIR PREFIX [ARGS...]: configure and build DIR against PREFIX only.
cmake_build() {
  local dir=$1 pfx=$2
  shift 2
  cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$pfx" "$@" >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; fail "configuring $dir"; }
  cmake --build "$dir/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "building $dir"; }
}

# The first and the last loss a trainer printed ("step 1/N | loss X", "final loss Y"): fails
# unless the last is lower.
check_trainer_loss() {
  local log=$1 first last
  first=$(sed -n 's/^step 1\/[0-9]* | loss \([0-9.]*\).*/\1/p' "$log" | head -1)
  last=$(sed -n 's/.*final loss \([0-9.]*\).*/\1/p' "$log" | head -1)
  [[ -n $first && -n $last ]] || { cat "$log"; fail "no loss in the trainer's output"; }
  python3 -c "import sys; sys.exit(0 if $last < $first else 1)" || fail "trainer loss $first -> $last did not go down"
  echo "trainer loss $first -> $last"
}

# The embed program's summary line: the mean loss of the last 5 steps below the first 5.
check_embed_loss() {
  local log=$1 line
  line=$(grep '^embed: mean loss' "$log") || { cat "$log"; fail "embed printed no summary"; }
  echo "$line"
}

run_embed_pair() { # DIR: the embed program and the trainer built there, 2 ranks each
  local dir=$1
  (cd "$dir" && "$mpirun" -np 2 ./embed 60 "$work/embed.safetensors") >"$work/embed.log" 2>&1 ||
    { cat "$work/embed.log"; fail "embed exited non-zero"; }
  check_embed_loss "$work/embed.log"
  [[ -s $work/embed.safetensors ]] || fail "embed wrote no checkpoint"
  (cd "$dir" && "$mpirun" -np 2 ./train --steps 30) >"$work/train.log" 2>&1 ||
    { cat "$work/train.log"; fail "the trainer exited non-zero"; }
  check_trainer_loss "$work/train.log"
  # the trainer resumes the checkpoint the embedding program wrote through the C API
  (cd "$dir" && "$mpirun" -np 2 ./train --resume "$work/embed.safetensors" --steps 62) >"$work/resume.log" 2>&1 ||
    { cat "$work/resume.log"; fail "the trainer could not resume embed's checkpoint"; }
  grep -q "step 62/62" "$work/resume.log" || { cat "$work/resume.log"; fail "resume did not continue at step 61"; }
}

case $scenario in
cmake)
  install_mpcc "$prefix"
  cp -r "$src/examples/embed" "$work/embed"
  cmake_build "$work/embed" "$prefix"
  grep -q "mpcc: model.mp -> mlp" "$work/build.log" || fail "the build did not run mpcc"
  [[ -s $work/embed/build/mlp_mpcc/mlp.report && -s $work/embed/build/train_mpcc/train.report ]] ||
    fail "no report beside the generated trainer"
  grep -q "plan" "$work/embed/build/mlp_mpcc/mlp.report" || fail "the report has no plan"
  run_embed_pair "$work/embed/build"
  ;;
pkgconfig)
  install_mpcc "$prefix"
  cp -r "$src/examples/embed" "$work/embed"
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  [[ $(pkg-config --variable=mpcc mprt) -ef $prefix/bin/mpcc ]] || fail "pkg-config's mpcc variable"
  make -C "$work/embed" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "make"; }
  run_embed_pair "$work/embed"
  ;;
capi)
  install_mpcc "$prefix"
  cp -r "$src/tests/downstream/project" "$work/proj"
  cmake_build "$work/proj" "$prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror"
  "$work/proj/build/rt_only" || fail "rt_only"
  mkdir -p "$work/ck"
  "$mpirun" -np 2 "$work/proj/build/api_errors" "$work/ck" || fail "api_errors on 2 ranks"
  "$mpirun" -np 1 "$work/proj/build/api_errors" "$work/ck" || fail "api_errors on 1 rank (wrong world size)"
  # the same batch through the API (2 ranks, 2 stages) and the trainer (1 rank): same losses
  "$mpirun" -np 2 "$work/proj/build/same_data" "$work/ck" 6 >"$work/api.log" || fail "same_data"
  "$mpirun" -np 1 "$work/proj/build/train" --data "$work/ck/x.npy" --labels "$work/ck/y.npy" --seed 7 --steps 6 \
    >"$work/train.log" 2>&1 || { cat "$work/train.log"; fail "the trainer on same_data's files"; }
  python3 - "$work/api.log" "$work/train.log" <<'PY' || fail "the C API and the trainer disagree"
import re, sys
api = [float(m.group(1)) for m in re.finditer(r"^api loss \d+ (\S+)$", open(sys.argv[1]).read(), re.M)]
tr = [float(m.group(1)) for m in re.finditer(r"^step \d+/\d+ \| loss (\S+) ", open(sys.argv[2]).read(), re.M)]
print("api    ", api)
print("trainer", tr)
ok = len(api) == len(tr) == 6 and all(abs(a - t) <= 1e-5 * max(1.0, abs(t)) for a, t in zip(api, tr))
ok = ok and api[-1] < api[0]
sys.exit(0 if ok else 1)
PY
  ;;
regenerate)
  install_mpcc "$prefix"
  cp -r "$src/tests/downstream/project" "$work/proj"
  cmake_build "$work/proj" "$prefix"
  hdr=$work/proj/build/mlp_mpcc/mlp.h
  grep -q "#define MLP_BATCH 16 " "$hdr" || fail "the header does not have batch 16"
  cmake --build "$work/proj/build" >"$work/again.log" 2>&1 || fail "rebuilding an unchanged project"
  if grep -q "mpcc: model.mp" "$work/again.log"; then fail "mpcc ran again with nothing changed"; fi
  sleep 1 # file times: the edit must be newer than the outputs
  sed -i 's/batch = 16;/batch = 32;/' "$work/proj/model.mp"
  cmake --build "$work/proj/build" >"$work/regen.log" 2>&1 || { cat "$work/regen.log"; fail "rebuilding after the edit"; }
  grep -q "mpcc: model.mp -> mlp" "$work/regen.log" || { cat "$work/regen.log"; fail "the edit did not rerun mpcc"; }
  grep -q "#define MLP_BATCH 32 " "$hdr" || fail "the regenerated header does not have batch 32"
  grep -q "batch 32" "$work/proj/build/mlp_mpcc/mlp.c" || fail "the regenerated trainer does not have batch 32"
  mkdir -p "$work/ck"
  "$mpirun" -np 2 "$work/proj/build/api_errors" "$work/ck" >/dev/null || fail "api_errors after regenerating"
  echo "regenerated on edit: batch 16 -> 32"
  ;;
diagnostic)
  install_mpcc "$prefix"
  cp -r "$src/tests/downstream/project" "$work/proj"
  cmake_build "$work/proj" "$prefix"
  sleep 1
  sed -i 's/h1   = linear(x, 32);/h1   = linaer(x, 32);/' "$work/proj/model.mp"
  if cmake --build "$work/proj/build" >"$work/bad.log" 2>&1; then fail "a .mp error did not fail the build"; fi
  grep -E "model\.mp:5:[0-9]+: error: " "$work/bad.log" || { cat "$work/bad.log"; fail "no file:line:col diagnostic"; }
  grep -q "linaer" "$work/bad.log" || fail "the diagnostic does not quote the source"
  sed -i 's/linaer/linear/' "$work/proj/model.mp"
  cmake --build "$work/proj/build" >"$work/fixed.log" 2>&1 || { cat "$work/fixed.log"; fail "the fixed model does not build"; }
  ;;
relocate)
  install_mpcc "$work/first"
  mv "$work/first" "$prefix"
  cp "$src/tests/downstream/project/model.mp" "$work/model.mp"
  (cd "$work" && "$prefix/bin/mpcc" model.mp -D cluster.devices=2 -o "$work/moved" -v) >"$work/mpcc.log" 2>&1 ||
    { cat "$work/mpcc.log"; fail "the moved mpcc could not build a trainer"; }
  grep -q -- "-I$prefix/" "$work/mpcc.log" || { cat "$work/mpcc.log"; fail "the moved mpcc did not use its own runtime"; }
  "$mpirun" -np 2 "$work/moved" --steps 20 >"$work/train.log" 2>&1 || { cat "$work/train.log"; fail "moved trainer"; }
  check_trainer_loss "$work/train.log"
  PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags mprt | grep -q "$prefix/" || fail "pkg-config after the move"
  cp -r "$src/tests/downstream/project" "$work/proj"
  cmake_build "$work/proj" "$prefix"
  "$work/proj/build/rt_only" || fail "rt_only after the move"
  ;;
cuda)
  # mpcc_add_trainer(TARGET cuda) from the installed package: nvcc builds the generated .cu
  # against mpcc::mprt_cuda (CUDA runtime, cuBLAS, NCCL found by the package); no GPU needed
  install_mpcc "$prefix"
  [[ -e $prefix/lib/libmprt_cuda.a && -e $prefix/include/mpcc/mprt_cuda.h ]] || fail "no CUDA runtime installed"
  mkdir -p "$work/cu"
  cp "$src/tests/downstream/project/model.mp" "$work/cu/"
  printf '%s\n' 'cmake_minimum_required(VERSION 3.20)' 'project(cu LANGUAGES C CUDA)' \
    'find_package(mpcc 0.1 REQUIRED)' 'mpcc_add_trainer(gtrain model.mp TARGET cuda DEVICES 2)' >"$work/cu/CMakeLists.txt"
  cmake_build "$work/cu" "$prefix" -DCMAKE_CUDA_ARCHITECTURES=80
  [[ -s $work/cu/build/gtrain_mpcc/gtrain.cu && -s $work/cu/build/gtrain_mpcc/gtrain.report ]] || fail "no .cu or report"
  "$work/cu/build/gtrain" --help | grep -q "usage: mpirun -np 2" || fail "the CUDA trainer's --help"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS ($scenario)"
