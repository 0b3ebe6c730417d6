#!/usr/bin/env bash
# The GPU checks, for a GPU machine without MLIR (the device of issue 6):
#
#   scripts/gpu-check.sh prepare DIR   # here: compile the tiny step for the
#                                      # CPU and for CUDA into DIR, in fp32
#                                      # and with --bf16
#   scripts/gpu-check.sh bundle DIR    # here, optional: build the runtime
#                                      # (compiler and MPI off, CUDA on) and
#                                      # put it with the shared libraries it
#                                      # needs beyond glibc and CUDA's into
#                                      # DIR/runtime, for a GPU machine that
#                                      # cannot build it (no OpenBLAS there)
#   scripts/gpu-check.sh run DIR       # there: the runtime of DIR/runtime,
#                                      # or else built there (compiler off);
#                                      # train both steps 6 steps, compare
#                                      # losses and adapters
#
# What `run` prints: where the CUDA step's GPU time went (LORA_GPU_PROFILE,
# scripts/gpu_profile.py), its losses against the CPU step's (within 1e-4
# relative) and the adapters (within 1e-3); with --bf16, the losses within
# 1e-3. Exits non-zero on any
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
  "$root/build/bin/lora-run" compile --target_cpu generic --bf16 "${shape[@]}" \
    -o "$dir/cpu-bf16"
  "$root/build/bin/lora-run" compile --device cuda --bf16 "${shape[@]}" \
    -o "$dir/cuda-bf16"
  ;;
bundle)
  build=${LORA_RUNTIME_BUILD:-$root/build-gpu}
  cmake -G Ninja -S "$root" -B "$build" -DLORA_BUILD_COMPILER=OFF \
    -DCMAKE_BUILD_TYPE=Release -DLORA_ENABLE_CUDA=ON -DLORA_ENABLE_MPI=OFF \
    >/dev/null
  cmake --build "$build"
  rm -rf "$dir/runtime"
  mkdir -p "$dir/runtime/bin" "$dir/runtime/lib"
  cp "$build/bin/lora-train" "$build/bin/LoraRuntimeTests" \
    "$build/bin/lora-gemm-limit" "$dir/runtime/bin/"
  # Everything ldd resolves except glibc's own libraries, the C++ runtime
  # and CUDA's (the GPU machine has newer or matching ones).
  ldd "$build/bin/lora-train" "$build/bin/LoraRuntimeTests" |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s)\.so|/cuda' |
    while read -r lib; do cp -L "$lib" "$dir/runtime/lib/"; done
  ls "$dir/runtime/lib"
  ;;
run)
  if [[ -x $dir/runtime/bin/lora-train ]]; then
    build=$dir/runtime
    export LD_LIBRARY_PATH=$dir/runtime/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    "$build/bin/LoraRuntimeTests" --gtest_brief=1 | tail -3
  else
    build=${LORA_RUNTIME_BUILD:-$root/build-runtime}
    cmake -G Ninja -S "$root" -B "$build" -DLORA_BUILD_COMPILER=OFF \
      -DCMAKE_BUILD_TYPE=Release -DLORA_ENABLE_CUDA=ON >/dev/null
    cmake --build "$build"
    (cd "$build" && ctest --output-on-failure | tail -3)
  fi
  # train SIDE: 6 steps of $dir/SIDE into $dir/SIDE-run.
  train() {
    rm -rf "$dir/$1-run"
    "$build/bin/lora-train" --artifact "$dir/$1" --max_steps 6 \
      --logging_steps 1 --output_dir "$dir/$1-run"
  }
  # losses_agree CUDA CPU TOLERANCE: the two runs' losses, printed and kept.
  losses_agree() {
    python3 "$inputs/compare_losses.py" "$dir/$1-run/metrics.jsonl" \
      "$dir/$2-run/metrics.jsonl" "$3" | tee "$dir/losses-$1.txt"
    grep -q "losses agree: True" "$dir/losses-$1.txt"
  }
  train cpu
  # The CUDA side with LORA_GPU_PROFILE: the profile names every kernel
  # by its PTX file, and the timing events must not change the losses.
  LORA_GPU_PROFILE=$dir/profile-cuda.jsonl train cuda
  python3 "$root/scripts/gpu_profile.py" "$dir/profile-cuda.jsonl" \
    --artifact "$dir/cuda" --metrics "$dir/cuda-run/metrics.jsonl" --top 8 \
    --check
  losses_agree cuda cpu 1e-4
  python3 "$inputs/compare_tensors.py" "$dir/cuda-run/adapter_model.safetensors" \
    "$dir/cpu-run/adapter_model.safetensors" 1e-3
  # --bf16 (frozen weights and GEMM inputs in bf16: cuBLASLt's tensor
  # cores against the CPU's widened sgemm, the same rounding, other
  # summation orders; the GPU's attention also on the tensor cores, with
  # its probabilities rounded to bf16, the CPU's in fp32).
  if [[ -d $dir/cuda-bf16 ]]; then
    train cpu-bf16 >/dev/null
    train cuda-bf16 >/dev/null
    losses_agree cuda-bf16 cpu-bf16 1e-3
  fi
  ;;
*)
  echo "usage: $0 prepare|bundle|run DIR" >&2
  exit 2
  ;;
esac
