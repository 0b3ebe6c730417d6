"""Checks a study output folder for content, not just existence."""
import json
import math
import sys

out = sys.argv[1]
summary = json.load(open(f"{out}/results.json"))
results = summary["results"]
runs = sorted({r["run"] for r in results})
print("runs:", ", ".join(runs))
print("checkpoints per run:", sorted({sum(r["run"] == run for r in results)
                                      for run in runs}))
numbers = ["target_loss", "source_loss", "accuracy", "diversity",
           "forgetting", "learning", "mean_delta_rank"]
finite = all(isinstance(r[k], (int, float)) and math.isfinite(r[k])
             for r in results for k in numbers)
print("all metrics finite:", finite)
print("accuracy and diversity in [0, 1]:",
      all(0 <= r["accuracy"] <= 1 and 0 <= r["diversity"] <= 1
          for r in results))
# Forgetting is measured against the base model's source loss.
base = summary["base"]
print("forgetting = source loss - base:",
      all(abs(r["forgetting"] - (r["source_loss"] - base["source_loss"]))
          < 1e-9 for r in results))
# A rank-r adapter's weight change s·B·A has rank <= r: so must its 90%
# rank, for every matrix. Full finetuning changes every matrix.
for run in runs:
    ranks = [row["delta_rank"] for row in summary["spectra"][run]]
    print(f"{run}: max rank of dW {max(ranks)}, min {min(ranks)}")
lora_ok = all(row["delta_rank"] <= int(run.split("-r", 1)[1].split("-")[0])
              for run in runs if run.startswith("lora")
              for row in summary["spectra"][run])
print("LoRA dW rank <= r everywhere:", lora_ok)
print("full finetuning changes every matrix:",
      all(row["delta_rank"] > 0 for run in runs if run.startswith("full")
          for row in summary["spectra"][run]))
for plot in ("learning_vs_forgetting", "delta_rank", "loss_curves"):
    with open(f"{out}/{plot}.png", "rb") as f:
        head = f.read(8)
        f.seek(0, 2)
        print(f"{plot}.png is a PNG:", head == b"\x89PNG\r\n\x1a\n",
              f.tell() > 10000)
table = open(f"{out}/results.md").read()
print("table rows:", table.count("\n| lora") + table.count("\n| full"))
