#!/usr/bin/env python3
"""Where a compiled step's own kernels spend their time, kernel by kernel.

    LORA_PROFILE_IR=/tmp/loops.mlir lora-run compile ... -o step
    perf record -F 2000 -o perf.data lora-train --artifact step ...
    python3 scripts/profile_kernels.py perf.data /tmp/loops.mlir [--top 30]

LORA_PROFILE_IR makes the CPU pipeline write the step's loop-level IR
(linalg on buffers, after bufferization and memory planning) to the file
and use it as the code's line table. perf then attributes each sample in
step.so to a line of that file; this script sums the lines of each
top-level op of the step function (a linalg kernel, or a whole loop such
as attention's per-head loop) and prints the heaviest, with the share of
all samples and the arithmetic in the kernel's body. GEMMs are not in
step.so: they show up under OpenBLAS in `perf report --sort dso`.
"""
import argparse
import bisect
import collections
import re
import subprocess
import sys


def op_starts(lines):
    """Line numbers (1-based) where a top-level op of @step begins."""
    starts, inside = [], False
    for number, line in enumerate(lines, 1):
        if re.match(r"\s*func\.func @step\(", line):
            inside = True
            continue
        if inside and re.match(r"    \S", line):
            starts.append(number)
        elif inside and re.match(r"  \}", line):
            break
    return starts


def body_ops(lines, start):
    """The arithmetic of the op starting at `start`: 'mulf exp addf ...'."""
    ops = []
    for line in lines[start:start + 60]:
        if re.match(r"    \S", line):
            break
        match = re.search(r"= (arith|math)\.(\w+)", line)
        if match:
            ops.append(match.group(2))
    return " ".join(ops[:12])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("perf_data")
    parser.add_argument("loops_ir", help="the file LORA_PROFILE_IR named")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    lines = open(args.loops_ir).read().split("\n")
    starts = op_starts(lines)
    if not starts:
        sys.exit(f"{args.loops_ir}: no func.func @step in it")
    report = subprocess.run(
        ["perf", "report", "-i", args.perf_data, "--no-children", "--stdio",
         "--sort", "srcline", "-F", "overhead,srcline"],
        capture_output=True, text=True)
    if report.returncode != 0:
        sys.exit("perf report failed:\n" + report.stderr)
    name = re.escape(args.loops_ir.rsplit("/", 1)[-1])
    totals, in_step = collections.Counter(), 0.0
    for row in report.stdout.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+" + name + r":(\d+)", row)
        if not match:
            continue
        share, line = float(match.group(1)), int(match.group(2))
        in_step += share
        index = bisect.bisect_right(starts, line) - 1
        totals[starts[index] if index >= 0 else 0] += share
    if not totals:
        sys.exit(f"no samples map to {args.loops_ir}: was step.so compiled "
                 "with LORA_PROFILE_IR set to this file?")
    print(f"{in_step:.2f}% of all samples are in the step's own kernels")
    print(f"{'share':>7}  {'line':>6}  op | body")
    for start, share in totals.most_common(args.top):
        text = lines[start - 1].strip() if start else "(before @step)"
        kind = re.sub(r"^%\S+ = ", "", text).split(" ")[0]
        print(f"{share:6.2f}%  {start:6d}  {kind} | {body_ops(lines, start)}")


if __name__ == "__main__":
    main()
