#!/usr/bin/env python3
"""Training-step throughput of lora-run's compiled CPU step against PyTorch
+ PEFT eager, same model, batch, rank and thread count, measured in one run.

    pip install torch transformers peft     # for the baseline only
    python3 bench/step_vs_pytorch.py [--steps 6] [--threads 2]
        [--unset-openblas-coretype]

The model is issue 5's small Llama: hidden 512, 4 layers, 8 query heads
sharing 4 kv heads, MLP 1376, vocabulary 1024, sequence 256, batch 8, LoRA
rank 16 (alpha 32) on all linear layers, fp32, AdamW. Step time is the
median over the steps after the first (which includes lora-run's lazy JIT
and PyTorch's warm-up). Peak memory is each process's maximum RSS.
"""
import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
          "vocab_size": 1024, "hidden_size": 512, "intermediate_size": 1376,
          "num_hidden_layers": 4, "num_attention_heads": 8,
          "num_key_value_heads": 4, "head_dim": 64,
          "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
          "rope_theta": 10000.0, "tie_word_embeddings": False}
BATCH, SEQ, RANK = 8, 256, 16

PYTORCH = r'''
import json, resource, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
config_path, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
config = LlamaConfig(**{k: v for k, v in json.load(open(config_path)).items()
                        if k not in ("architectures", "model_type")},
                     attn_implementation="eager")
model = get_peft_model(LlamaForCausalLM(config),
                       LoraConfig(r=%d, lora_alpha=%d, target_modules="all-linear"))
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                              lr=5e-3)
ids = torch.randint(0, config.vocab_size, (%d, %d))
times = []
for step in range(steps):
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    times.append(time.perf_counter() - start)
print(json.dumps({"step_seconds": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
''' % (RANK, 2 * RANK, BATCH, SEQ)


def measure_ours(folder, steps, env):
    config = os.path.join(folder, "config.json")
    tokens = os.path.join(folder, "tokens.bin")
    ids = [(i * 7919) % CONFIG["vocab_size"] for i in range(BATCH * SEQ * (steps + 2))]
    with open(tokens, "wb") as f:
        f.write(struct.pack(f"<{len(ids)}i", *ids))
    out = os.path.join(folder, "out")
    command = [os.path.join(ROOT, "build", "bin", "lora-run"), "train",
               "--config", config, "--train_file", tokens,
               "--per_device_train_batch_size", str(BATCH),
               "--max_seq_length", str(SEQ), "--r", str(RANK),
               "--max_steps", str(steps), "--logging_steps", "1",
               "--output_dir", out]
    child = subprocess.run(["python3", "-c",
                            "import resource, subprocess, sys, json;"
                            "subprocess.run(sys.argv[1:], check=True, "
                            "stderr=subprocess.DEVNULL);"
                            "print(resource.getrusage(resource.RUSAGE_CHILDREN)"
                            ".ru_maxrss / 1024)", *command],
                           env=env, capture_output=True, text=True, check=True)
    elapsed = [json.loads(line)["elapsed_s"]
               for line in open(os.path.join(out, "metrics.jsonl"))]
    times = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return times, float(child.stdout.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--unset-openblas-coretype", action="store_true",
                        help="drop OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for "
                             "both sides (faster AVX-512 kernels)")
    args = parser.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    if args.unset_openblas_coretype:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    kernel = subprocess.run(["python3", "-c", "import ctypes; ctypes.CDLL('libopenblas.so.0')"],
                            env=dict(env, OPENBLAS_VERBOSE="2"),
                            capture_output=True, text=True)
    kernel = (kernel.stdout + kernel.stderr).strip().replace("\n", "; ")
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(CONFIG, f)
        ours, ours_rss = measure_ours(folder, args.steps, env)
        torch = subprocess.run([sys.executable, "-c", PYTORCH,
                                os.path.join(folder, "config.json"),
                                str(args.steps), str(args.threads)],
                               env=env, capture_output=True, text=True)
        if torch.returncode != 0:
            sys.exit("PyTorch + PEFT baseline failed:\n" + torch.stderr[-2000:])
        baseline = json.loads(torch.stdout.strip().splitlines()[-1])
    tokens = BATCH * SEQ
    ours_step = statistics.median(ours)
    torch_step = statistics.median(baseline["step_seconds"][1:])
    print(f"OpenBLAS: {kernel or '(no OPENBLAS_VERBOSE output)'}; "
          f"threads {args.threads}; OPENBLAS_CORETYPE="
          f"{env.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"model: hidden 512, 4 layers, GQA 8/4, seq {SEQ}, batch {BATCH}, "
          f"LoRA r={RANK} all-linear, fp32, AdamW; {args.steps} steps")
    print("| | step (s, median) | tokens/s | peak RSS (MiB) |")
    print("|---|---|---|---|")
    print(f"| lora-run (compiled CPU step) | {ours_step:.3f} | "
          f"{tokens / ours_step:.0f} | {ours_rss:.0f} |")
    print(f"| PyTorch + PEFT eager | {torch_step:.3f} | "
          f"{tokens / torch_step:.0f} | {baseline['peak_rss_mb']:.0f} |")
    print(f"ratio lora-run / PyTorch tokens/s: {torch_step / ours_step:.2f}x")


if __name__ == "__main__":
    main()
