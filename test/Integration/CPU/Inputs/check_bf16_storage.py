"""Checks how a --bf16 step stores its parameters, against an f32 run.

Usage: check_bf16_storage.py MANIFEST MERGED_BF16 MERGED_F32

Prints each parameter role's dtypes in the manifest, then, for the frozen
weights that no adapter changes (embeddings, norms, the output layer),
whether the bf16 run's merged export holds exactly the f32 run's values
rounded to bf16 (nearest even): both runs start from the same seeded
initialization, so the bf16 run must have rounded each frozen weight once
when it stored it and widened it exactly when it exported it."""
import json
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


def to_bf16(values):
    """f32 -> bf16 -> f32, rounding to nearest even (no NaNs here)."""
    bits = values.astype("<f4").view("<u4").astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype("<u4").view("<f4")


manifest_path, bf16_path, f32_path = sys.argv[1:4]
manifest = json.load(open(manifest_path))
roles = {}
for argument in manifest["arguments"]:
    if argument["role"]:
        roles.setdefault(argument["role"], set()).add(argument["dtype"])
for role in sorted(roles):
    print(f"{role}: {' '.join(sorted(roles[role]))}")

adapted = {a["name"][: -len(".lora_A.weight")] + ".weight"
           for a in manifest["arguments"]
           if a["name"].endswith(".lora_A.weight")}
frozen = [a["name"] for a in manifest["arguments"]
          if a["role"] == "frozen" and a["name"] not in adapted]
narrow, wide = read(bf16_path), read(f32_path)
exact = [n for n in frozen if np.array_equal(narrow[n], to_bf16(wide[n]))]
changed = [n for n in frozen if not np.array_equal(narrow[n], wide[n])]
print(f"unadapted frozen weights equal to the f32 run's rounded to bf16: "
      f"{len(exact)} of {len(frozen)}")
# Norm weights start at 1, which bf16 holds exactly; the others must move.
print(f"changed by the rounding: {len(changed)} of {len(frozen)}")
if len(exact) != len(frozen):
    print("not rounded:", sorted(set(frozen) - set(exact)))
    sys.exit(1)
