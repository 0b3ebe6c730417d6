"""Compares two lora-run output folders: the losses of the steps both
logged, and the bytes of the files named after the folders."""
import filecmp
import json
import sys

a, b, *files = sys.argv[1:]


def losses(folder):
    out = {}
    for line in open(f"{folder}/metrics.jsonl"):
        record = json.loads(line)
        out[record["step"]] = record["loss"]
    return out


la, lb = losses(a), losses(b)
common = sorted(set(la) & set(lb))
same = [s for s in common if la[s] == lb[s]]
print(f"steps compared {len(common)}, equal losses {len(same)}")
for name in files:
    print(name, "identical" if filecmp.cmp(f"{a}/{name}", f"{b}/{name}",
                                           shallow=False) else "DIFFERENT")
