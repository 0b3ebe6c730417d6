#!/usr/bin/env bash
# Everything issue 6 checks on a GPU, for a GPU machine without MLIR, in
# one package and one command (docs/Gpu.md):
#
#   scripts/gpu-session.sh prepare DIR   # here: the tiny steps
#                                        # (gpu-check.sh prepare), the
#                                        # runtime and its libraries
#                                        # (gpu-check.sh bundle), the 1B
#                                        # step and the 8B step (frozen
#                                        # weights in bf16: no recompute
#                                        # needed on 80 GB), packed into
#                                        # DIR/bundle.tar.xz (about 9 MB)
#   scripts/gpu-session.sh run DIR [OUT] # there: FlashTilesTest on the GPU,
#                                        # gpu-check.sh run, the 1B step's
#                                        # LORA_GPU_PROFILE, then the
#                                        # benchmark (per model: lora-train,
#                                        # PyTorch + PEFT eager and
#                                        # torch.compile); logs and
#                                        # profiles into OUT
#
# QUICK=1 in the environment of both: the 1B model only, and no
# torch.compile side (53 s of commands on an H100 instead of about 8
# minutes; prepare skips the 8B compile). PARTS="tiles check profile 1b
# 8b" (the default: all; with QUICK=1 all but 8b) picks what `run` runs.
# RECOMPUTE_8B=layer makes prepare compile the 8B step with per-layer
# recomputation.
#
# `run` keeps going when a part fails or runs out of its time, so what did
# run is reported; each part prints the seconds since the start. The
# parts' limits add up to about 15 minutes; the same parts took 8.5
# minutes in an H100 run (docs/Gpu.md), where torch.compile of the 8B model
# did not finish in 145 s.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:?prepare or run}
dir=${2:?folder}
case $mode in
prepare)
  set -e
  work=$(mktemp -d)
  "$root/scripts/gpu-check.sh" prepare "$work/tiny"
  "$root/scripts/gpu-check.sh" bundle "$work/tiny"
  python3 "$root/bench/gpu_training_step.py" --compile "$work/bench" \
    --models 1b
  parts="tiny bench"
  if [[ ${QUICK:-0} != 1 ]]; then
    python3 "$root/bench/gpu_training_step.py" --compile "$work/bench8" \
      --models 8b --recompute "${RECOMPUTE_8B:-none}"
    parts+=" bench8"
  fi
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  tar -C "$work" -cJf "$dir/bundle.tar.xz" $parts
  rm -rf "$work"
  ls -l "$dir/bundle.tar.xz"
  ;;
run)
  out=${3:-${OUT:-$dir}}
  mkdir -p "$out"
  export PYTHONUNBUFFERED=1
  work=$(mktemp -d)
  start=$(date +%s)
  part() { echo "[+$(($(date +%s) - start)) s] $*"; }
  all="tiles check profile 1b 8b"
  [[ ${QUICK:-0} == 1 ]] && all="tiles check profile 1b"
  parts=" ${PARTS:-$all} "
  wants() { [[ $parts == *" $1 "* ]]; }
  tar -C "$work" -xJf "$dir/bundle.tar.xz"
  runtime=$work/tiny/runtime
  export LD_LIBRARY_PATH=$runtime/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader
  if wants tiles; then
    part "FlashTilesTest (the GPU entry points against the row functions)"
    timeout 60 "$runtime/bin/LoraRuntimeTests" --gtest_filter='*FlashTiles*' \
      >"$out/tiles.log" 2>&1
    echo "rc=$?"
    grep -E "^\[  (FAILED|PASSED|SKIPPED) \]|differ|lora:" "$out/tiles.log"
  fi
  if wants check; then
    part "gpu-check.sh run (the tiny step on the GPU against the CPU)"
    timeout 90 "$root/scripts/gpu-check.sh" run "$work/tiny" \
      >"$out/check.log" 2>&1
    echo "rc=$?"
    grep -E "tests|losses agree|tensors|GPU busy|lora:" "$out/check.log"
  fi
  if wants profile; then
    part "the 1B step's profile (LORA_GPU_PROFILE, 4 steps)"
    LORA_GPU_PROFILE=$out/profile-1b.jsonl timeout 90 "$runtime/bin/lora-train" \
      --artifact "$work/bench/1b" --train_file "$work/bench/tokens.bin" \
      --max_steps 4 --logging_steps 1 \
      --output_dir "$work/profile-run" >"$out/profile-1b.log" 2>&1
    echo "rc=$?"
    tail -2 "$out/profile-1b.log"
    python3 "$root/scripts/gpu_profile.py" "$out/profile-1b.jsonl" \
      --artifact "$work/bench/1b" --metrics "$work/profile-run/metrics.jsonl" \
      --top 15
  fi
  # bench SECONDS FOLDER FLAGS...: one invocation of the benchmark.
  bench() {
    local limit=$1 folder=$2
    shift 2
    timeout "$limit" python3 "$root/bench/gpu_training_step.py" \
      --run "$folder" --lora-train "$runtime/bin/lora-train" "$@" 2>&1 |
      tee -a "$out/bench.log"
  }
  # Each model's sides in one invocation, so the rows carry the ratios to
  # lora-train's step time.
  # QUICK=1: no torch.compile side.
  sides=ours,eager,compile
  [[ ${QUICK:-0} == 1 ]] && sides=ours,eager
  if wants 1b; then
    part "benchmark: 1B ($sides)"
    bench 360 "$work/bench" --models 1b --sides "$sides" --timeout 200
  fi
  if wants 8b; then
    part "benchmark: 8B ($sides)"
    bench 330 "$work/bench8" --models 8b --sides "$sides" --steps 4 \
      --timeout 150
  fi
  part "done"
  rm -rf "$work"
  ;;
*)
  echo "usage: $0 prepare DIR | run DIR [OUT]" >&2
  exit 2
  ;;
esac
