#!/usr/bin/env bash
# Sets up and builds lora-mlir, then runs the main job: `lora-run train`
# with no arguments, which compiles the LoRA training step of a built-in
# 2-layer Llama for the CPU, trains it on built-in data for 300 steps
# (about half a minute on 2 cores) and writes a PEFT adapter.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LORA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"

out=$build/lora-run-output
rm -rf "$out"
echo "== lora-run train --output_dir $out"
"$build/bin/lora-run" train --output_dir "$out"
echo "== $out:"
ls -l "$out"
