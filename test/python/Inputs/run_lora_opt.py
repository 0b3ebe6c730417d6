"""Runs lora-opt through lora_mlir on a good and on a bad input."""
import sys

from lora_mlir import LoraToolError, run_lora_opt

good = open(sys.argv[1]).read()
out = run_lora_opt(good, "-canonicalize", "-cse")
first = next(line for line in out.splitlines() if "func.func" in line)
print("canonicalized:", first.strip().split("(")[0])

bad = """
func.func @f(%x: tensor<2x64xf32>, %w: tensor<16x32xf32>) -> tensor<2x16xf32> {
  %y = lora.linear %x, %w : tensor<2x64xf32>, tensor<16x32xf32> -> tensor<2x16xf32>
  return %y : tensor<2x16xf32>
}
"""
try:
    run_lora_opt(bad)
    print("bad input accepted")
except LoraToolError as error:
    print("error: LoraToolError", " ".join(str(error).split()))
