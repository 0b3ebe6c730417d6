#!/usr/bin/env bash
# Sets up and builds lora-mlir, then runs the main job. Until `lora-run
# train` exists, that is: build the forward pass and loss of a tiny Llama
# from its config.json, turn it into a LoRA training step (adapters on all
# linear layers, autodiff, AdamW) and show the result.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LORA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"

config=$root/examples/tiny-llama/config.json
out=$build/examples
mkdir -p "$out"
echo "== lora-run emit-mlir --config examples/tiny-llama/config.json --batch-size 2 --seq-len 8"
"$build/bin/lora-run" emit-mlir --config "$config" --batch-size 2 --seq-len 8 \
  -o "$out/tiny-llama-forward.mlir"
echo "== lora-opt --lora-training-pipeline=\"method=lora rank=8\""
"$build/bin/lora-opt" "$out/tiny-llama-forward.mlir" \
  --lora-training-pipeline="method=lora rank=8" -o "$out/tiny-llama-lora-step.mlir"

step=$out/tiny-llama-lora-step.mlir
count() { grep -c "$1" "$step" || true; }
cat <<SUMMARY
wrote $out/tiny-llama-forward.mlir (forward pass and loss)
wrote $step (training step)
  adapters (lora_A/lora_B):      $(grep -o 'lora.role = #lora.role<lora>' "$step" | wc -l)
  weight-gradient GEMMs:         $(count "lora.linear_grad_weight")
  input-gradient GEMMs:          $(count 'lora.linear_grad_input')
  AdamW updates:                 $(count 'lora.adamw')
  step returns:                  loss, grad_norm, new adapters, new AdamW moments
SUMMARY
echo "== the step's first adapted layer:"
grep -m1 -B0 "adapter(" "$step" | sed 's/^ *//'
