#!/usr/bin/env python3
"""Issue 5's training-step benchmark: every side measured in this run, on
this machine, with the same thread count.

    pip install torch transformers peft     # for the PyTorch baselines only
    cmake --build build                     # lora-run, lora-train, lora-gemm-limit, lora-step-pair
    python3 bench/training_step.py [--steps 6] [--threads 2] [--pair-rounds 16]
        [--unset-openblas-coretype] [--torch-compile]

The model is a small Llama: hidden 512, 4 layers, 8 query heads sharing 4
kv heads, MLP 1376, vocabulary 1024, sequence 256, batch 8; LoRA rank 16
(alpha 32) on all linear layers; fp32; AdamW. Rows:

  a. LoRA overhead: LoRA step time / frozen step time - 1, beside the FLOP
     overhead of the adapter (GEMM FLOPs of the two compiled steps, counted
     by LORA_GEMM_TRACE). The "frozen step" has the same forward and the
     same activation-gradient backward but no adapter: only layer 0's input
     norm trains, so the gradient must flow through every layer. The LoRA
     step it is compared with trains that norm too: a LoRA step alone
     needs no input gradient in layer 0's attention (nothing below it
     trains), so its backward would be shorter than the frozen step's by
     three GEMMs and the difference would not be the adapter's alone.
     That LoRA step alone is printed too, with its own FLOP overhead.
     PyTorch + PEFT's overheads are measured the same ways.
  b. lora-run fused (lora-fuse-adapters, lora-fuse-linear-cross-entropy)
     vs unfused step time and peak memory.
  c. tokens/s and peak RSS against PyTorch + PEFT eager (and torch.compile
     with --torch-compile).
  d. Step time against its GEMM limit: the same GEMM shapes run by sgemm
     alone through the same OpenBLAS (bench/gemm_limit.cpp), timed in every
     round; the fastest round counts.

Step time is the median of the steps after the first, the fastest of
--repeat interleaved rounds. Row a is measured in one process: the three
steps compiled ahead of time and loaded by lora-step-pair
(bench/step_pair.cpp), each round running each step twice in a row, in
turning orders, and timing the second run (a step follows itself in
training: timed right after another step, the LoRA steps' overhead came
out about 1% lower); the median over --pair-rounds rounds of each LoRA
step's time over the frozen step's in the same round (a slow phase of
the shared machine moves all steps of a round), half of the rounds with
the steps loaded in the opposite order (the first-loaded ran about 0.4%
slower in docs/Performance.md's runs). Peak memory is each process's
maximum RSS. The GEMM traces come from the kept (fastest) runs.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
          "vocab_size": 1024, "hidden_size": 512, "intermediate_size": 1376,
          "num_hidden_layers": 4, "num_attention_heads": 8,
          "num_key_value_heads": 4, "head_dim": 64,
          "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
          "rope_theta": 10000.0, "tie_word_embeddings": False}
BATCH, SEQ, RANK = 8, 256, 16
FROZEN_MODULE = "model.layers.0.input_layernorm"

PYTORCH = r'''
import json, resource, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
config_path, steps, threads, mode, compiled = sys.argv[1:6]
steps, threads = int(steps), int(threads)
torch.set_num_threads(threads)
torch.manual_seed(0)
config = LlamaConfig(**{k: v for k, v in json.load(open(config_path)).items()
                        if k not in ("architectures", "model_type")},
                     attn_implementation="eager")
model = LlamaForCausalLM(config)
if mode.startswith("lora"):
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=2 * RANK,
                                             target_modules="all-linear"))
# "lora+norm" and "frozen": layer 0's input norm trains too (alone when
# frozen), so the gradient flows into layer 0's attention input.
if mode != "lora":
    for name, p in model.named_parameters():
        if name.endswith(FROZEN + ".weight"):
            p.requires_grad = True
        elif mode == "frozen":
            p.requires_grad = False
params = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params, lr=5e-3)
forward = torch.compile(model) if compiled == "1" else model
ids = torch.randint(0, config.vocab_size, (BATCH, SEQ))
times = []
for step in range(steps):
    start = time.perf_counter()
    loss = forward(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    times.append(time.perf_counter() - start)
print(json.dumps({"step_seconds": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''.replace("RANK", str(RANK)).replace("BATCH", str(BATCH)).replace(
    "SEQ", str(SEQ)).replace("FROZEN", repr(FROZEN_MODULE))


def median_after_first(times):
    return statistics.median(times[1:] if len(times) > 1 else times)


def gemm_flops(trace):
    return sum(2 * r["m"] * r["n"] * r["k"] * r["calls"]
               for r in map(json.loads, open(trace)) if r)


def model_flags(folder):
    """lora-run's flags for the benchmark model, batch and rank."""
    return ["--config", os.path.join(folder, "config.json"),
            "--per_device_train_batch_size", str(BATCH),
            "--max_seq_length", str(SEQ), "--r", str(RANK)]


def run_ours(folder, name, steps, env, flags, trace=None):
    out = os.path.join(folder, name)
    command = [os.path.join(BIN, "lora-run"), "train", *model_flags(folder),
               "--train_file", os.path.join(folder, "tokens.bin"),
               "--max_steps", str(steps), "--logging_steps", "1",
               "--output_dir", out, *flags]
    child_env = dict(env)
    if trace:
        child_env["LORA_GEMM_TRACE"] = trace
    # The child's maximum RSS, read by a small wrapper process.
    child = subprocess.run(
        [sys.executable, "-c",
         "import resource, subprocess, sys;"
         "r = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True);"
         "sys.stderr.write(r.stderr[-3000:] if r.returncode else '');"
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024);"
         "sys.exit(r.returncode)", *command],
        env=child_env, capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"lora-run ({name}) failed:\n{child.stderr}")
    elapsed = [json.loads(line)["elapsed_s"]
               for line in open(os.path.join(out, "metrics.jsonl"))]
    times = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return median_after_first(times), float(child.stdout.strip())


# The steps row a compares: lora-run flags for each.
PAIR_STEPS = {"lora": [],
              "lora+norm": ["--full_modules", FROZEN_MODULE],
              "frozen": ["--method", "full", "--full_modules", FROZEN_MODULE]}


def compile_pair_steps(folder, env):
    """The steps of row a, compiled ahead of time; with each artifact the
    GEMM FLOPs per step of a traced two-step run of it."""
    artifacts = {}
    for name, flags in PAIR_STEPS.items():
        out = os.path.join(folder, "pair-" + name.replace("+", "-"))
        subprocess.run([os.path.join(BIN, "lora-run"), "compile",
                        *model_flags(folder), "-o", out, *flags],
                       env=env, capture_output=True, text=True, check=True)
        trace = out + ".gemm.jsonl"
        subprocess.run([os.path.join(BIN, "lora-train"), "--artifact", out,
                        "--train_file", os.path.join(folder, "tokens.bin"),
                        "--max_steps", "2", "--output_dir", out + ".run"],
                       env=dict(env, LORA_GEMM_TRACE=trace),
                       capture_output=True, text=True, check=True)
        artifacts[name] = (out, gemm_flops(trace))
    return artifacts


def step_rounds(env, folders, rounds):
    """lora-step-pair on the compiled steps in `folders`: per step, its
    times, one per round (each round runs every step twice and times the
    second run, which follows the step itself as in training), half of
    the rounds with the steps loaded in the opposite order."""
    times = [[] for _ in folders]
    for order, count in ((list(range(len(folders))), (rounds + 1) // 2),
                         (list(reversed(range(len(folders)))), rounds // 2)):
        if count == 0:
            continue
        result = json.loads(subprocess.run(
            [os.path.join(BIN, "lora-step-pair"),
             *[folders[i] for i in order], "--rounds", str(count),
             "--settle", "1"],
            env=env, capture_output=True, text=True, check=True).stdout)
        for position, i in enumerate(order):
            times[i] += result[chr(ord("a") + position)]
    return times


def run_torch(folder, steps, threads, env, mode, compiled):
    child = subprocess.run([sys.executable, "-c", PYTORCH,
                            os.path.join(folder, "config.json"), str(steps),
                            str(threads), mode, "1" if compiled else "0"],
                           env=env, capture_output=True, text=True)
    if child.returncode != 0:
        return None, child.stderr.strip().splitlines()[-1:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return (median_after_first(result["step_seconds"]),
            result["peak_rss_mb"]), None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds over all configurations; each keeps "
                             "its fastest median step time")
    parser.add_argument("--unset-openblas-coretype", action="store_true",
                        help="drop OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for "
                             "every side (faster AVX-512 kernels)")
    parser.add_argument("--pair-rounds", type=int, default=16,
                        help="rounds of row a's steps timed in one process "
                             "(lora-step-pair)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also measure torch.compile (slow to compile)")
    args = parser.parse_args()
    if args.steps < 3:
        sys.exit("--steps must be at least 3 (the first step is not timed)")
    if args.pair_rounds < 1:
        sys.exit("--pair-rounds must be at least 1")
    for tool in ("lora-run", "lora-train", "lora-gemm-limit",
                 "lora-step-pair"):
        if not os.access(os.path.join(BIN, tool), os.X_OK):
            sys.exit(f"{os.path.join(BIN, tool)} is missing: build first "
                     "(cmake --build build)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    if args.unset_openblas_coretype:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes; ctypes.CDLL('libopenblas.so.0')"],
        env=dict(env, OPENBLAS_VERBOSE="2"), capture_output=True, text=True)
    kernel = (probe.stdout + probe.stderr).strip().replace("\n", "; ")
    print(f"OpenBLAS: {kernel or '(no OPENBLAS_VERBOSE output)'}; threads "
          f"{args.threads}; OPENBLAS_CORETYPE="
          f"{env.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
    print(f"model: hidden 512, 4 layers, GQA 8/4, MLP 1376, vocab 1024, seq "
          f"{SEQ}, batch {BATCH}, LoRA r={RANK} all-linear, fp32, AdamW; "
          f"{args.steps} steps per run", flush=True)
    tokens = BATCH * SEQ
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(CONFIG, f)
        ids = [(i * 7919) % CONFIG["vocab_size"]
               for i in range(BATCH * SEQ * (args.steps + 2))]
        with open(os.path.join(folder, "tokens.bin"), "wb") as f:
            f.write(struct.pack(f"<{len(ids)}i", *ids))
        # Every configuration runs --repeat times, interleaved, and keeps
        # its fastest median (and that run's GEMM trace): the machine is
        # shared and noisy.
        runs, limits = {}, {}
        def keep(name, value):
            time, extra = value
            if name not in runs or time < runs[name][0]:
                runs[name] = (time, extra)
        for repeat in range(args.repeat):
            print(f"round {repeat + 1}/{args.repeat}: lora-run LoRA (fused), "
                  "LoRA (unfused); PyTorch + PEFT LoRA, LoRA + norm, "
                  "frozen ...", flush=True)
            trace = os.path.join(folder, f"lora.{repeat}.gemm.jsonl")
            time, rss = run_ours(folder, "fused", args.steps, env, [], trace)
            keep("fused", (time, (rss, trace)))
            # The GEMM limit is timed in every round too, and the fastest
            # kept, like every other side.
            limits[trace] = json.loads(subprocess.run(
                [os.path.join(BIN, "lora-gemm-limit"), trace,
                 str(args.steps)], env=env, capture_output=True, text=True,
                check=True).stdout)
            keep("unfused", run_ours(folder, "unfused", args.steps, env,
                                     ["--fuse_adapters=false",
                                      "--fuse_loss=false"]))
            for mode in ("lora", "lora+norm", "frozen"):
                result, why = run_torch(folder, args.steps, args.threads, env,
                                        mode, False)
                if result is None:
                    sys.exit(f"PyTorch + PEFT ({mode}) failed: {why}")
                keep("torch_" + mode, result)
        fused, (fused_rss, lora_trace) = runs["fused"]
        unfused, unfused_rss = runs["unfused"]
        limit = dict(limits[lora_trace])
        limit["sgemm_alone_seconds_per_step"] = min(
            l["sgemm_alone_seconds_per_step"] for l in limits.values())
        print(f"row a: {args.pair_rounds} rounds of the LoRA steps and the "
              "frozen step in one process (lora-step-pair) ...", flush=True)
        steps = compile_pair_steps(folder, env)
        times = dict(zip(steps, step_rounds(
            env, [folder_of for folder_of, _ in steps.values()],
            args.pair_rounds)))
        frozen_flops = steps["frozen"][1]
        row_a = {}
        for name in ("lora+norm", "lora"):
            ratios = [x / y - 1 for x, y in zip(times[name], times["frozen"])]
            row_a[name] = (ratios, steps[name][1] / frozen_flops - 1)
        compiled = why_compiled = None
        if args.torch_compile:
            print("torch.compile ...", flush=True)
            compiled, why_compiled = run_torch(folder, args.steps,
                                               args.threads, env, "lora", True)

    print()
    print("| row | measurement | lora-run | baseline | ratio |")
    print("|---|---|---|---|---|")
    torch_lora, torch_frozen = runs["torch_lora"], runs["torch_frozen"][0]
    for name, what in (("lora+norm", "LoRA step (layer 0's input norm "
                        "trains too, as in the frozen step) / frozen step - 1"),
                       ("lora", "the same for the LoRA step alone (no input "
                        "gradient in layer 0's attention)")):
        ratios, flop_overhead = row_a[name]
        middle, ranked = statistics.median(ratios), sorted(ratios)
        quartiles = (ranked[len(ranked) // 4], ranked[(3 * len(ranked)) // 4])
        torch_time = runs["torch_" + name][0]
        print(f"| a | {what}, median of {len(ratios)} interleaved rounds "
              f"(adapter GEMM FLOPs: +{100 * flop_overhead:.1f}%) | "
              f"{100 * middle:+.1f}% (middle half {100 * quartiles[0]:+.1f}% "
              f"to {100 * quartiles[1]:+.1f}%) | PyTorch + PEFT "
              f"{100 * (torch_time / torch_frozen - 1):+.1f}% ({torch_time:.3f}"
              f" / {torch_frozen:.3f} s) | time/FLOP overhead "
              f"{middle / flop_overhead:.2f}x (target <= 1.2x) |")
    print(f"| b | step time (peak RSS), fused vs unfused | {fused:.3f} s "
          f"({fused_rss:.0f} MiB) | unfused {unfused:.3f} s "
          f"({unfused_rss:.0f} MiB) | {unfused / fused:.2f}x |")
    print(f"| c | tokens/s, peak RSS | {tokens / fused:.0f} tok/s, "
          f"{fused_rss:.0f} MiB | PyTorch + PEFT eager {tokens / torch_lora[0]:.0f}"
          f" tok/s, {torch_lora[1]:.0f} MiB | {torch_lora[0] / fused:.2f}x "
          f"(target >= 2x) |")
    if args.torch_compile:
        if compiled:
            print(f"| c | tokens/s, peak RSS | {tokens / fused:.0f} tok/s | "
                  f"torch.compile {tokens / compiled[0]:.0f} tok/s, "
                  f"{compiled[1]:.0f} MiB | {compiled[0] / fused:.2f}x |")
        else:
            print(f"| c | torch.compile | | did not run: {why_compiled} | |")
    alone = limit["sgemm_alone_seconds_per_step"]
    print(f"| d | step time vs GEMM limit ({limit['gemm_flops_per_step'] / 1e9:.1f}"
          f" GFLOP in {limit['shapes']} shapes) | {fused:.3f} s (in GEMMs "
          f"{limit['traced_gemm_seconds_per_step']:.3f} s) | sgemm alone "
          f"{alone:.3f} s | {fused / alone:.2f}x (target <= 1.25x) |")


if __name__ == "__main__":
    main()
