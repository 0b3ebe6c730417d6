"""Prints whether two metrics.jsonl files logged the same steps with losses
equal within a relative tolerance."""
import json
import sys

a, b, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])
la = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(a)}
lb = {json.loads(l)["step"]: json.loads(l)["loss"] for l in open(b)}
print("same steps:", sorted(la) == sorted(lb), len(la))
print("losses agree:", all(abs(la[s] - lb[s]) <= tolerance * abs(lb[s]) for s in la))
