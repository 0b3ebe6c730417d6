#!/usr/bin/env python3
"""Where a GPU step's time goes: reads the file lora-train wrote with
LORA_GPU_PROFILE=FILE (one JSON line per step: GPU milliseconds and calls
per kernel, GEMM shape and attention kernel) and prints, per step after the
first (--skip), the work sorted by time. Kernels are named by their PTX's
hash; with --artifact the hash is matched to the artifact's
ptx/<chip>/<kernel>.ptx.

    LORA_GPU_PROFILE=prof.jsonl lora-train --artifact DIR ...
    python3 scripts/gpu_profile.py prof.jsonl --artifact DIR [--metrics RUN/metrics.jsonl]

--check exits non-zero unless every step has GPU work and every kernel's
hash names one of the artifact's PTX files (gpu-check.sh, step.test).
"""
import argparse
import glob
import json
import os
import sys


def fnv1a(data):
    """The runtime's hash of a module image: bytes up to the first NUL."""
    value = 1469598103934665603
    for byte in data.split(b"\0", 1)[0]:
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"ptx:{value:016x}"


def ptx_names(artifact):
    """Hash -> label. Kernels with the same PTX (one per layer, say) share
    a hash, and the runtime's profile sums them: the label names the first
    and how many there are."""
    files = {}
    for path in glob.glob(os.path.join(artifact, "ptx", "*", "*.ptx")):
        chip = os.path.basename(os.path.dirname(path))
        kernel = os.path.splitext(os.path.basename(path))[0]
        number = kernel.rsplit("_", 1)[-1]
        order = int(number) if number.isdigit() else -1
        files.setdefault(fnv1a(open(path, "rb").read()), []).append(
            (chip, order, kernel))
    names = {}
    for hash_, kernels in files.items():
        chip, _, first = min(kernels)
        same = sum(1 for k in kernels if k[0] == chip)
        names[hash_] = f"{first} ({chip})" + \
            (f" and {same - 1} more with its PTX" if same > 1 else "")
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--artifact", help="the step's artifact folder")
    parser.add_argument("--metrics", help="the run's metrics.jsonl, for the "
                        "host's step times beside the GPU's")
    parser.add_argument("--skip", type=int, default=1,
                        help="steps left out at the start (default 1: the "
                             "first step moves managed memory)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    if not os.path.exists(args.profile):
        sys.exit(f"{args.profile}: no such file (the run writes it when "
                 f"LORA_GPU_PROFILE names it and a GPU step finishes)")
    steps = [json.loads(line) for line in open(args.profile) if line.strip()]
    if not steps:
        sys.exit(f"{args.profile}: no steps")
    names = ptx_names(args.artifact) if args.artifact else {}
    problems = []
    for step in steps:
        if not step["work"]:
            problems.append(f"step {step['step']}: no GPU work recorded")
        for name in step["work"]:
            hash_ = name.split()[-1]
            if hash_.startswith("ptx:") and args.artifact and \
                    hash_ not in names:
                problems.append(f"step {step['step']}: kernel {name} matches "
                                f"no PTX file of {args.artifact}")
    kept = steps[args.skip:] if len(steps) > args.skip else steps
    count = len(kept)
    totals = {}
    for step in kept:
        for name, (calls, ms) in step["work"].items():
            entry = totals.setdefault(name, [0, 0.0])
            entry[0] += calls
            entry[1] += ms
    busy = sum(s["busy_ms"] for s in kept) / count
    window = sum(s["window_ms"] for s in kept) / count
    wall = None
    if args.metrics:
        elapsed = {m["step"]: m["elapsed_s"] for m in
                   map(json.loads, open(args.metrics)) if "elapsed_s" in m}
        kept_steps = [s["step"] for s in kept]
        times = [1e3 * (elapsed[t] - elapsed[t - 1]) for t in kept_steps
                 if t in elapsed and t - 1 in elapsed]
        wall = sum(times) / len(times) if times else None
    print(f"steps {', '.join(str(s['step']) for s in kept)} "
          f"(per step): GPU busy {busy:.2f} ms, first launch to last "
          f"{window:.2f} ms" + (f", host step {wall:.2f} ms" if wall else ""))
    groups = {}
    for name, (calls, ms) in totals.items():
        kind = ("gemm" if name.startswith("gemm") else
                "attention" if name.startswith("flash") else "kernels")
        g = groups.setdefault(kind, [0, 0.0])
        g[0] += calls
        g[1] += ms
    for kind, (calls, ms) in sorted(groups.items(), key=lambda g: -g[1][1]):
        print(f"  {kind}: {calls / count:.0f} calls, {ms / count:.2f} ms "
              f"({100 * ms / max(busy * count, 1e-9):.1f}%)")
    print("| work | calls/step | ms/step | share | us/call |")
    print("| --- | --- | --- | --- | --- |")
    for name, (calls, ms) in sorted(totals.items(),
                                    key=lambda t: -t[1][1])[:args.top]:
        label = name
        hash_ = name.split()[-1]
        if hash_ in names:
            label = names[hash_]
        print(f"| {label} | {calls / count:g} | {ms / count:.3f} | "
              f"{100 * ms / max(busy * count, 1e-9):.1f}% | "
              f"{1e3 * ms / max(calls, 1):.1f} |")
    if args.check:
        for problem in problems:
            print(f"gpu_profile: {problem}", file=sys.stderr)
        if problems:
            sys.exit(1)
        print("profile check: ok")


if __name__ == "__main__":
    main()
