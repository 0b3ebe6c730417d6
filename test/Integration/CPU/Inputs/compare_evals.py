"""Reads lora-run eval JSON lines (one per file) and prints how they
relate, for FileCheck."""
import json
import sys

base, adapted, merged = (json.load(open(p)) for p in sys.argv[1:4])
print("adapter lowers the held-out loss:", adapted["eval_loss"] < base["eval_loss"])
print("merged model equals base + adapter:",
      abs(merged["eval_loss"] - adapted["eval_loss"]) < 1e-4)
print("same tokens scored:", base["eval_tokens"] == adapted["eval_tokens"] ==
      merged["eval_tokens"])
