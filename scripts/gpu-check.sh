#!/usr/bin/env bash
# The GPU checks, for a GPU machine without MLIR (the device of issue 6):
#
#   scripts/gpu-check.sh prepare DIR   # here: compile the tiny step for the
#                                      # CPU and for CUDA into DIR
#   scripts/gpu-check.sh run DIR       # there: build the runtime (compiler
#                                      # off), train both steps 6 steps,
#                                      # compare losses and adapters
#
# What `run` prints: the CUDA step's losses against the CPU step's (within
# 1e-4 relative) and the adapters (within 1e-3). Exits non-zero on any
# difference, or when no GPU answers.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
inputs=$root/test/Integration/CPU/Inputs
mode=${1:?prepare or run}
dir=${2:?folder}
shape=(--config "$inputs/tiny-byte-llama.json" --per_device_train_batch_size 2
       --max_seq_length 16)
case $mode in
prepare)
  # Host code for any x86-64: the GPU machine's CPU is not this one.
  "$root/build/bin/lora-run" compile --target_cpu generic "${shape[@]}" \
    -o "$dir/cpu"
  "$root/build/bin/lora-run" compile --device cuda "${shape[@]}" -o "$dir/cuda"
  ;;
run)
  build=${LORA_RUNTIME_BUILD:-$root/build-runtime}
  cmake -G Ninja -S "$root" -B "$build" -DLORA_BUILD_COMPILER=OFF \
    -DCMAKE_BUILD_TYPE=Release -DLORA_ENABLE_CUDA=ON >/dev/null
  cmake --build "$build"
  (cd "$build" && ctest --output-on-failure | tail -3)
  rm -rf "$dir/cpu-run" "$dir/cuda-run"
  "$build/bin/lora-train" --artifact "$dir/cpu" --max_steps 6 \
    --logging_steps 1 --output_dir "$dir/cpu-run"
  "$build/bin/lora-train" --artifact "$dir/cuda" --max_steps 6 \
    --logging_steps 1 --output_dir "$dir/cuda-run"
  python3 "$inputs/compare_losses.py" "$dir/cuda-run/metrics.jsonl" \
    "$dir/cpu-run/metrics.jsonl" 1e-4 | tee "$dir/losses.txt"
  grep -q "losses agree: True" "$dir/losses.txt"
  python3 "$inputs/compare_tensors.py" "$dir/cuda-run/adapter_model.safetensors" \
    "$dir/cpu-run/adapter_model.safetensors" 1e-3
  ;;
*)
  echo "usage: $0 prepare|run DIR" >&2
  exit 2
  ;;
esac
