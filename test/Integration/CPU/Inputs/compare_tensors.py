"""Compares the F32 tensors of two safetensors files: the same names and
shapes, and the largest difference relative to the largest magnitude of
each tensor. Prints one line per file pair; exits 1 above the tolerance."""
import os
import sys

import numpy as np

# The project's safetensors reader (python/lora_mlir), from the checkout
# this script lies in.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                *[os.pardir] * 4, "python"))
from lora_mlir.spectrum import read_safetensors  # noqa: E402


def read(path):
    """The file's tensors, all of them F32."""
    return read_safetensors(path, dtypes=("F32",))

a_path, b_path, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])
a, b = read(a_path), read(b_path)
if sorted(a) != sorted(b):
    print("DIFFERENT tensor names:", sorted(set(a) ^ set(b)))
    sys.exit(1)
worst, worst_name = 0.0, ""
for name in sorted(a):
    scale = max(float(np.abs(a[name]).max()), 1e-30)
    diff = float(np.abs(a[name].astype(np.float64) - b[name]).max()) / scale
    if diff > worst:
        worst, worst_name = diff, name
ok = worst <= tolerance
print(f"{len(a)} tensors, largest relative difference "
      f"{'within' if ok else 'ABOVE'} {tolerance:g} ({worst:.2e} in {worst_name or '-'})")
sys.exit(0 if ok else 1)
