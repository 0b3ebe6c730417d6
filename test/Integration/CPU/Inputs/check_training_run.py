"""Checks a lora-run train output directory with the standard library only:
the loss fell, and the PEFT adapter has the keys, shapes and config PEFT
expects. Prints a summary for FileCheck."""
import json
import struct
import sys

out, rank, drop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
steps = [json.loads(line) for line in open(f"{out}/metrics.jsonl")]
first, last = steps[0]["loss"], steps[-1]["loss"]
print(f"steps logged {len(steps)}, first step {steps[0]['step']}, "
      f"last step {steps[-1]['step']}")
if not last < first - drop:
    sys.exit(f"loss did not fall by {drop}: {first} -> {last}")
print("loss fell")

config = json.load(open(f"{out}/adapter_config.json"))
print("peft_type", config["peft_type"], "r", config["r"], "lora_alpha",
      config["lora_alpha"], "target_modules", ",".join(config["target_modules"]))

with open(f"{out}/adapter_model.safetensors", "rb") as f:
    (size,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(size))
header.pop("__metadata__", None)
for key in sorted(header):
    entry = header[key]
    shape = entry["shape"]
    assert entry["dtype"] == "F32", key
    assert key.startswith("base_model.model.model.layers."), key
    assert key.endswith((".lora_A.weight", ".lora_B.weight")), key
    r = shape[0] if key.endswith("lora_A.weight") else shape[1]
    assert r == rank, (key, shape)
print("adapter tensors", len(header))
print("first", sorted(header)[0], header[sorted(header)[0]]["shape"])
