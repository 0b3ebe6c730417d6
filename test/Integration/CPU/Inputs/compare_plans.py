"""Reads lora-run train logs and prints each one's planned activation
memory, then whether they fall strictly in the order given."""
import re
import sys

plans = []
for path in sys.argv[1:]:
    text = open(path).read()
    match = re.search(r"activations ([0-9.]+) MiB \(static plan\)", text)
    if not match:
        sys.exit(f"{path}: no planned activation memory in the log")
    plans.append(float(match.group(1)))
print("planned activations MiB:", " ".join(f"{p:.1f}" for p in plans))
print("strictly decreasing:", all(a > b for a, b in zip(plans, plans[1:])))
