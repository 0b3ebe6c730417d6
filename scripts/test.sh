#!/usr/bin/env bash
# Sets up and builds lora-mlir, then runs every test: the lit suites and
# the GoogleTest units (through ctest). Exits non-zero if any fails.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LORA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh" || exit 1

status=0
echo "== lit"
/usr/lib/llvm-22/bin/lit -sv "$build/test" || status=1
echo "== ctest"
ctest --test-dir "$build" --output-on-failure -j2 || status=1
exit $status
