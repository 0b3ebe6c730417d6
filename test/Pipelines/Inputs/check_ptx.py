"""Assembles every PTX file an artifact's manifest lists with ptxas, for the
chip of its folder (ptx/<chip>/<kernel>.ptx), and prints per chip how many
kernels assembled; a failure prints ptxas's message and exits 1."""
import collections
import json
import subprocess
import sys

ptxas, artifact = sys.argv[1], sys.argv[2]
manifest = json.load(open(f"{artifact}/manifest.json"))
assert manifest["device"] == "cuda", manifest["device"]
passed = collections.Counter()
failed = 0
for relative in manifest["ptx"]:
    chip = relative.split("/")[1]
    result = subprocess.run([ptxas, f"-arch={chip}", "-o", "/dev/null",
                             f"{artifact}/{relative}"],
                            capture_output=True, text=True)
    if result.returncode == 0:
        passed[chip] += 1
    else:
        failed += 1
        print(f"FAILED {relative}: {result.stderr.strip()}")
for chip in sorted(passed):
    print(f"{chip}: {passed[chip]} kernels assemble")
print(f"{failed} failed")
sys.exit(1 if failed else 0)
