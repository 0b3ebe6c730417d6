"""Compares the F32 tensors of two safetensors files: the same names and
shapes, and the largest difference relative to the largest magnitude of
each tensor. Prints one line per file pair; exits 1 above the tolerance."""
import sys

import numpy as np
from safetensors_f32 import read

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
