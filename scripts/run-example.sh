#!/usr/bin/env bash
# Sets up and builds lora-mlir, then runs the main job. Until lora-run
# exists, that is lora-opt on the shipped LoRA training step of a tiny
# Llama decoder: it verifies the step and prints it canonicalized.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LORA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"

example=$root/examples/tiny-llama-lora-step.mlir
echo "== lora-opt $example -canonicalize -cse"
"$build/bin/lora-opt" "$example" -canonicalize -cse
