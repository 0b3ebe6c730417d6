#!/usr/bin/env python3
"""Fails unless every op defined in LoraOps.td appears in ops.mlir (the
round-trip test) and in the committed dialect docs, so a new op cannot land
without both."""
import re
import sys

td, *files = sys.argv[1:]
ops = re.findall(r'Lora_Op<"([a-z_]+)"', open(td).read())
if not ops:
    sys.exit(f"no ops found in {td}")
missing = []
for path in files:
    text = open(path).read()
    for op in ops:
        if not re.search(r"\blora\." + op + r"\b", text):
            missing.append(f"{path}: lora.{op}")
if missing:
    sys.exit("ops missing from tests or docs:\n  " + "\n  ".join(missing))
print(f"{len(ops)} ops covered")
