#!/usr/bin/env python3
"""Issue 6's GPU benchmark: tokens/s and MFU of a LoRA training step for a
Llama-3-8B-shaped and a Llama-3.2-1B-shaped model (random weights, seq
2048, batch 1, rank 16 on all linear layers), against PyTorch + PEFT eager
and torch.compile on the same GPU in the same run.

The GPU machine has no MLIR, so the steps are compiled where lora-run is:

    python3 bench/gpu_training_step.py --compile build/gpu-bench   # here
    # carry build/gpu-bench and the runtime build to the GPU machine, then:
    python3 bench/gpu_training_step.py --run build/gpu-bench \
        --lora-train runtime-build/bin/lora-train

MFU counts, per token, 4N FLOPs for LoRA (forward and activation
gradients of the frozen weights; the adapter's own FLOPs are left out, as
is usual) or 6N for full finetuning, N the parameters of every matrix
multiplied (embeddings are gathered, not multiplied), plus causal
attention: 2·T·d per layer forward (QKᵀ and PV over half the keys on
average), three times that with the backward. Peak: the GPU's dense bf16
tensor-core rate (--peak-tflops, 989 for an H100 SXM).

lora-run's steps are compiled with --bf16 (every GEMM's inputs in bf16 on
tensor cores, fp32 accumulation; the other kernels, parameters and
optimizer state fp32), like PyTorch's bf16 model here in its GEMMs; pass
--precision f32 to --compile for fp32 GEMMs. The dtype column says which
the artifact used (its manifest's gemm_precision).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ, BATCH, RANK = 2048, 1, 16

MODELS = {
    # Llama-3-8B: 32 layers, hidden 4096, GQA 32/8, MLP 14336.
    "8b": {"vocab_size": 128256, "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8,
           "head_dim": 128, "tie_word_embeddings": False},
    # Llama-3.2-1B: 16 layers, hidden 2048, GQA 32/8, MLP 8192, tied.
    "1b": {"vocab_size": 128256, "hidden_size": 2048,
           "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8,
           "head_dim": 64, "tie_word_embeddings": True},
}


def config_of(name):
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "max_position_embeddings": SEQ, "rms_norm_eps": 1e-5,
              "rope_theta": 500000.0}
    config.update(MODELS[name])
    return config


def matmul_parameters(c):
    """N: every weight that is multiplied (the lm_head too, tied or not)."""
    h, i, layers = c["hidden_size"], c["intermediate_size"], \
        c["num_hidden_layers"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i
    return layers * per_layer + h * c["vocab_size"]


def flops_per_token(c, method):
    n = matmul_parameters(c)
    attention = 3 * 2 * SEQ * c["num_attention_heads"] * c["head_dim"] * \
        c["num_hidden_layers"]
    return (4 if method == "lora" else 6) * n + attention


def compile_steps(folder, chips, precision, models, recompute):
    lora_run = os.path.join(ROOT, "build", "bin", "lora-run")
    os.makedirs(folder, exist_ok=True)
    for name in models:
        if name not in MODELS:
            sys.exit(f"--models: no model {name!r} (have {', '.join(MODELS)})")
        config_path = os.path.join(folder, f"{name}.json")
        json.dump(config_of(name), open(config_path, "w"))
        out = os.path.join(folder, name)
        start = time.time()
        subprocess.run([lora_run, "compile", "--device", "cuda",
                        "--config", config_path, "--r", str(RANK),
                        "--per_device_train_batch_size", str(BATCH),
                        "--max_seq_length", str(SEQ), "--cuda_chips", chips,
                        "--recompute", recompute, "-o", out] +
                       (["--bf16"] if precision == "bf16" else []),
                       check=True)
        tokens_file(folder, config_of(name))
        print(f"{name}: compiled in {time.time() - start:.0f} s -> {out}")


PYTORCH = r'''
import json, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
config_path, steps, compiled = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.manual_seed(0)
config = LlamaConfig(**json.load(open(config_path)))
config._attn_implementation = "sdpa"
with torch.device("cuda"):
    model = LlamaForCausalLM(config).to(torch.bfloat16)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32,
                                         target_modules="all-linear"))
if compiled:
    model = torch.compile(model)
optimizer = torch.optim.AdamW([p for p in model.parameters()
                               if p.requires_grad], lr=1e-4)
ids = torch.randint(0, config.vocab_size, (1, 2048), device="cuda")
times = []
for _ in range(steps):
    torch.cuda.synchronize()
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    times.append(time.perf_counter() - start)
print(json.dumps({"step_seconds": times,
                  "peak_gib": torch.cuda.max_memory_allocated() / 2**30}))
'''


def median_after_first(times):
    rest = sorted(times[1:])
    return rest[len(rest) // 2]


def run_child(command, timeout):
    """The finished child, or None with the reason when it outlived
    `timeout` seconds."""
    try:
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=timeout), None
    except subprocess.TimeoutExpired:
        return None, f"stopped after {timeout} s"


def run_torch(config_path, steps, compiled, timeout):
    child, error = run_child([sys.executable, "-c", PYTORCH, config_path,
                              str(steps), "1" if compiled else "0"], timeout)
    if child is None:
        return None, error
    if child.returncode != 0:
        return None, (child.stderr.strip().splitlines() or ["failed"])[-1]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"<!-- {config_path} compiled={compiled}: peak "
          f"{result['peak_gib']:.1f} GiB allocated by PyTorch -->",
          file=sys.stderr)
    return median_after_first(result["step_seconds"]), None


def tokens_file(folder, config):
    """FOLDER/tokens.bin: random token ids (uint32) for 64 sequences, made
    once."""
    tokens = os.path.join(folder, "tokens.bin")
    if not os.path.exists(tokens):
        import random
        random.seed(0)
        with open(tokens, "wb") as f:
            for _ in range(64 * (SEQ + 1)):
                f.write(random.randrange(config["vocab_size"]).to_bytes(
                    4, "little"))
    return tokens


def run_ours(folder, name, lora_train, steps, timeout):
    tokens = tokens_file(folder, config_of(name))
    out = os.path.join(folder, f"{name}-run")
    child, error = run_child([lora_train, "--artifact",
                              os.path.join(folder, name), "--train_file",
                              tokens, "--max_steps", str(steps),
                              "--logging_steps", "1", "--output_dir", out],
                             timeout)
    if child is None:
        return None, error
    # Its own report (planned and measured memory, step times) on stderr,
    # and all of the errors when it failed.
    for line in child.stderr.splitlines():
        if child.returncode != 0 or line.startswith("lora-train:"):
            print(f"<!-- {name}: {line} -->", file=sys.stderr)
    if child.returncode != 0:
        return None, (child.stderr.strip().splitlines() or ["failed"])[-1]
    elapsed = [json.loads(line)["elapsed_s"]
               for line in open(os.path.join(out, "metrics.jsonl"))]
    return median_after_first([b - a for a, b in
                               zip([0.0] + elapsed, elapsed)]), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", metavar="DIR",
                        help="compile the CUDA steps into DIR (needs lora-run)")
    parser.add_argument("--run", metavar="DIR",
                        help="run the steps compiled into DIR and the "
                             "PyTorch baselines (needs a GPU)")
    parser.add_argument("--lora-train",
                        default=os.path.join(ROOT, "build", "bin",
                                             "lora-train"))
    parser.add_argument("--models", default="1b,8b")
    parser.add_argument("--chips", default="sm_90a",
                        help="SM targets of the compiled steps (H100: sm_90a)")
    parser.add_argument("--precision", choices=["bf16", "f32"],
                        default="bf16",
                        help="--compile: the steps' GEMM inputs")
    parser.add_argument("--recompute", choices=["none", "layer", "selective"],
                        default="none",
                        help="--compile: activation checkpointing (the "
                             "fp32-parameter 8B step needs about 78 GiB "
                             "without it)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--sides", default="ours,eager,compile",
                        help="which of ours, eager and compile to run")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds each side may take, start included")
    args = parser.parse_args()
    if args.compile:
        compile_steps(args.compile, args.chips, args.precision,
                      args.models.split(","), args.recompute)
    if not args.run:
        return
    print("| model | side | dtype | s/step | tokens/s | MFU | step time / ours |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models.split(","):
        config_path = os.path.join(args.run, f"{name}.json")
        flops = flops_per_token(config_of(name), "lora")
        wanted = args.sides.split(",")
        if args.no_torch_compile and "compile" in wanted:
            wanted.remove("compile")
        manifest = os.path.join(args.run, name, "manifest.json")
        gemms = "f32"
        if os.path.exists(manifest):
            gemms = json.load(open(manifest))["metadata"].get(
                "gemm_precision", "f32")
        ours_dtype = ("bf16, fp32 master weights" if gemms == "bf16"
                      else "fp32")
        runs = {
            "ours": ("lora-train", ours_dtype, lambda: run_ours(
                args.run, name, args.lora_train, args.steps, args.timeout)),
            "eager": ("PyTorch + PEFT eager", "bf16", lambda: run_torch(
                config_path, args.steps, False, args.timeout)),
            "compile": ("PyTorch + PEFT torch.compile", "bf16",
                        lambda: run_torch(config_path, args.steps, True,
                                          args.timeout)),
        }
        # Each row as soon as its side has run: a long side cut short
        # leaves the others' rows.
        ours = None
        for w in wanted:
            side, dtype, run = runs[w]
            seconds, error = run()
            if w == "ours":
                ours = seconds
            if seconds is None:
                print(f"| {name} | {side} | {dtype} | failed: {error} | | | |")
                continue
            tokens = BATCH * SEQ / seconds
            mfu = tokens * flops / (args.peak_tflops * 1e12)
            ratio = f"{seconds / ours:.2f}x" if ours else "-"
            print(f"| {name} | {side} | {dtype} | {seconds:.3f} | "
                  f"{tokens:.0f} | {100 * mfu:.1f}% | {ratio} |")


if __name__ == "__main__":
    main()
