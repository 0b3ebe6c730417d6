"""The study in miniature: pretrain a small Llama on the source domain
(text), finetune it on the target domain (arithmetic) fully and with LoRA,
and measure what "LoRA Learns Less and Forgets Less" (Biderman et al.,
2024) measured: learning (target loss and exact-match accuracy), forgetting
(source loss over the base model's), diversity of generations, and the
spectral rank of the weight change.

    python3 -m lora_mlir.study --out study-results            # ~10 min, 2 cores
    python3 -m lora_mlir.study --size tiny --out /tmp/study   # ~2 min (CI)

Writes results.json, results.csv, results.md and three PNG plots. The base
model is cached in <out>/base and reused when its settings match.
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from lora_mlir.spectrum import rank_for_variance, read_safetensors
from lora_mlir.tools import find_tool

SIZES = {
    # hidden, layers, heads, kv, ffn; steps; the runs.
    "tiny": dict(hidden=32, layers=1, heads=2, kv=1, ffn=64, seq=32, batch=8,
                 pretrain_steps=150, finetune_steps=60, save_steps=30,
                 full_lrs=[1e-3], lora_ranks=[2, 8], lora_lr_factor=10,
                 targets={"all": "all-linear"}, eval_examples=40),
    "default": dict(hidden=64, layers=2, heads=4, kv=2, ffn=128, seq=32,
                    batch=16, pretrain_steps=1200, finetune_steps=400,
                    save_steps=100, full_lrs=[3e-4, 1e-3],
                    lora_ranks=[4, 16, 64], lora_lr_factor=10,
                    targets={"all": "all-linear", "attn": "self_attn"},
                    eval_examples=100),
}
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
           "down_proj"]


def log(message):
    print(f"[study {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*args):
    """Runs lora-run; its stderr (progress) goes to our stderr."""
    command = [find_tool("lora-run"), *map(str, args)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"study: {' '.join(command)} failed ({result.returncode})")
    return result.stdout


def write_config(path, size):
    head_dim = size["hidden"] // size["heads"]
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "vocab_size": 257, "hidden_size": size["hidden"],
              "intermediate_size": size["ffn"],
              "num_hidden_layers": size["layers"],
              "num_attention_heads": size["heads"],
              "num_key_value_heads": size["kv"], "head_dim": head_dim,
              "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "tie_word_embeddings": False}
    with open(path, "w") as f:
        json.dump(config, f, indent=1)


def pretrain(out, size, config):
    """The base model on the source domain, cached by its settings."""
    base = os.path.join(out, "base")
    stamp = json.dumps({k: size[k] for k in ("hidden", "layers", "heads",
                                             "kv", "ffn", "seq", "batch",
                                             "pretrain_steps")})
    stamp_path = os.path.join(base, "settings.json")
    weights = os.path.join(base, "model.safetensors")
    if os.path.exists(weights) and os.path.exists(stamp_path) and \
            open(stamp_path).read() == stamp:
        log(f"base model cached in {base}")
        return weights
    shutil.rmtree(base, ignore_errors=True)
    log("pretraining the base model on the source domain (text)")
    run("train", "--config", config, "--method", "full", "--dataset", "text",
        "--max_steps", size["pretrain_steps"], "--learning_rate", 3e-3,
        "--per_device_train_batch_size", size["batch"], "--max_seq_length",
        size["seq"], "--logging_steps", 50, "--output_dir", base)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return weights


def evaluate(config, weights, size):
    """Learning, forgetting and diversity of one set of weights."""
    target = json.loads(run("eval", "--config", config, "--model_weights",
                            weights, "--dataset", "arithmetic",
                            "--max_seq_length", size["seq"]))
    source = json.loads(run("eval", "--config", config, "--model_weights",
                            weights, "--dataset", "text", "--max_seq_length",
                            size["seq"]))
    generated = json.loads(run(
        "generate", "--config", config, "--model_weights", weights,
        "--prompts_dataset", "arithmetic-test", "--num_examples",
        size["eval_examples"], "--max_new_tokens", 5, "--num_samples", 5,
        "--temperature", 1.0))
    return {"target_loss": target["eval_loss"],
            "source_loss": source["eval_loss"],
            "accuracy": generated["exact_match"],
            "diversity": generated["diversity"]}


def weight_names(layers):
    return [(layer, module,
             f"model.layers.{layer}."
             f"{'self_attn' if module.endswith(('q_proj', 'k_proj', 'v_proj', 'o_proj')) else 'mlp'}"
             f".{module}.weight")
            for layer in range(layers) for module in MODULES]


def spectrum(base_weights, tuned_weights, layers, rng):
    """Rank for 90% of the variance of ΔW, of W and of a Gaussian matrix of
    the same shape, per adapted matrix."""
    base = read_safetensors(base_weights)
    tuned = read_safetensors(tuned_weights)
    rows = []
    for layer, module, name in weight_names(layers):
        delta = tuned[name].astype(np.float64) - base[name]
        rows.append({"layer": layer, "module": module,
                     "delta_rank": rank_for_variance(delta),
                     "base_rank": rank_for_variance(base[name]),
                     "random_rank": rank_for_variance(
                         rng.standard_normal(delta.shape)),
                     "full_rank": min(delta.shape)})
    return rows


def finetune(out, name, config, base_weights, size, method_args):
    folder = os.path.join(out, "runs", name)
    shutil.rmtree(folder, ignore_errors=True)
    log(f"finetuning {name} on the target domain (arithmetic)")
    run("train", "--config", config, "--model_weights", base_weights,
        "--dataset", "arithmetic", "--max_steps", size["finetune_steps"],
        "--save_steps", size["save_steps"], "--per_device_train_batch_size",
        size["batch"], "--max_seq_length", size["seq"], "--logging_steps", 10,
        "--output_dir", folder, *method_args)
    return folder


def checkpoints(folder):
    found = []
    for entry in os.listdir(folder):
        if entry.startswith("checkpoint-") and not entry.endswith(".tmp"):
            found.append((int(entry.split("-")[1]), os.path.join(folder, entry)))
    return sorted(found)


def merged_weights(config, base_weights, checkpoint, method_args, size):
    """The checkpoint's weights as one model.safetensors."""
    export = checkpoint + "-export"
    run("export", "--config", config, "--model_weights", base_weights,
        "--checkpoint", checkpoint, "--output_dir", export, "--save_merged",
        "--max_seq_length", size["seq"], *method_args)
    merged = os.path.join(export, "merged", "model.safetensors")
    return merged if os.path.exists(merged) else \
        os.path.join(export, "model.safetensors")


def pareto(points):
    """Indices of (forgetting, learning) points that no other point beats on
    both (less forgetting, more learning), by forgetting."""
    front = []
    for i, (f, a) in enumerate(points):
        if not any(f2 <= f and a2 >= a and (f2, a2) != (f, a)
                   for f2, a2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plot(out, results, spectra, curves):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    colors = {"full": "tab:red", "lora": "tab:blue"}
    # Learning as the drop of the held-out target loss: informative even
    # where exact-match accuracy is still 0 (the tiny size).
    points = [(r["forgetting"], r["learning"]) for r in results]
    for r in results:
        ax.scatter(r["forgetting"], r["learning"], color=colors[r["method"]],
                   s=18 + 40 * r["step"] / max(x["step"] for x in results),
                   alpha=0.8)
    for r in results:
        if r["step"] == max(x["step"] for x in results if x["run"] == r["run"]):
            ax.annotate(r["run"], (r["forgetting"], r["learning"]), fontsize=7)
    front = pareto(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front],
            "k--", lw=1, label="Pareto front")
    ax.scatter([], [], color="tab:red", label="full finetuning")
    ax.scatter([], [], color="tab:blue", label="LoRA")
    ax.set_xlabel("forgetting: source loss - base source loss (lower is better)")
    ax.set_ylabel("learning: base target loss - target loss (higher is better)")
    ax.set_title("Learning vs forgetting (points: checkpoints; larger: later)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "learning_vs_forgetting.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 5))
    labels = [f"L{row['layer']}.{row['module']}"
              for row in next(iter(spectra.values()))]
    width = 0.8 / (len(spectra) + 2)
    x = np.arange(len(labels))
    for i, (run_name, rows) in enumerate(spectra.items()):
        ax.bar(x + i * width, [r["delta_rank"] for r in rows], width,
               label=f"ΔW {run_name}")
    first = next(iter(spectra.values()))
    ax.bar(x + len(spectra) * width, [r["base_rank"] for r in first], width,
           label="W (base)", color="grey")
    ax.bar(x + (len(spectra) + 1) * width, [r["random_rank"] for r in first],
           width, label="Gaussian", color="black")
    ax.set_xticks(x + width * len(spectra) / 2, labels, rotation=60,
                  fontsize=7)
    ax.set_ylabel("singular values for 90% of the variance")
    ax.set_title("Rank of the weight change per layer and module")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "delta_rank.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    for run_name, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=run_name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (target domain)")
    ax.set_title("Loss curves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss_curves.png"), dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--out", default="study-results")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    start = time.time()
    config = os.path.join(out, "config.json")
    write_config(config, size)
    base_weights = pretrain(out, size, config)
    log("evaluating the base model")
    base = evaluate(config, base_weights, size)

    # (name, method, learning rate, rank, targets, the flags that shape the
    # model: train and export both take them).
    runs = []
    for lr in size["full_lrs"]:
        runs.append((f"full-lr{lr:g}", "full", lr, None, None,
                     ["--method", "full"]))
    for target_name, targets in size["targets"].items():
        for rank in size["lora_ranks"]:
            # The study: LoRA wants about 10x full finetuning's rate; one
            # LoRA run per full-finetuning rate.
            for full_lr in size["full_lrs"]:
                lr = full_lr * size["lora_lr_factor"]
                runs.append((f"lora-r{rank}-{target_name}-lr{lr:g}", "lora",
                             lr, rank, target_name,
                             ["--method", "lora", "--r", rank,
                              "--target_modules", targets]))

    results, spectra, curves = [], {}, {}
    rng = np.random.default_rng(0)
    for name, method, lr, rank, targets, method_args in runs:
        folder = finetune(out, name, config, base_weights, size,
                          method_args + ["--learning_rate", lr])
        steps, losses = [], []
        for line in open(os.path.join(folder, "metrics.jsonl")):
            record = json.loads(line)
            steps.append(record["step"])
            losses.append(record["loss"])
        curves[name] = (steps, losses)
        last = None
        for step, checkpoint in checkpoints(folder):
            log(f"evaluating {name} at step {step}")
            weights = merged_weights(config, base_weights, checkpoint,
                                     method_args, size)
            metrics = evaluate(config, weights, size)
            results.append({"run": name, "method": method,
                            "learning_rate": lr, "rank": rank,
                            "targets": targets, "step": step, **metrics,
                            "learning": base["target_loss"] -
                            metrics["target_loss"],
                            "forgetting": metrics["source_loss"] -
                            base["source_loss"]})
            last = weights
        spectra[name] = spectrum(base_weights, last, size["layers"], rng)
        mean_rank = float(np.mean([r["delta_rank"] for r in spectra[name]]))
        for r in results:
            if r["run"] == name:
                r["mean_delta_rank"] = mean_rank

    summary = {"size": args.size, "settings": size, "base": base,
               "results": results, "spectra": spectra,
               "seconds": round(time.time() - start, 1)}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    keys = ["run", "method", "learning_rate", "rank", "targets", "step",
            "target_loss", "learning", "accuracy", "source_loss", "forgetting",
            "diversity", "mean_delta_rank"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"# Study results ({args.size}, {summary['seconds']} s)\n\n")
        f.write(f"Base model: target loss {base['target_loss']:.3f}, "
                f"accuracy {base['accuracy']:.2f}, source loss "
                f"{base['source_loss']:.3f}\n\n")
        f.write("| run | step | target loss | learning | accuracy | "
                "source loss | forgetting | diversity | mean rank ΔW (90%) |\n")
        f.write("|---|---|---|---|---|---|---|---|---|\n")
        for r in results:
            f.write(f"| {r['run']} | {r['step']} | {r['target_loss']:.3f} | "
                    f"{r['learning']:+.3f} | "
                    f"{r['accuracy']:.2f} | {r['source_loss']:.3f} | "
                    f"{r['forgetting']:+.3f} | {r['diversity']:.2f} | "
                    f"{r['mean_delta_rank']:.1f} |\n")
        f.write("\nRank for 90% of the variance of ΔW, mean over matrices, "
                "beside the base W and a Gaussian matrix of the same shape: ")
        first = next(iter(spectra.values()))
        f.write(f"W {np.mean([r['base_rank'] for r in first]):.1f}, Gaussian "
                f"{np.mean([r['random_rank'] for r in first]):.1f}, full "
                f"rank {first[0]['full_rank']}.\n")
    plot(out, results, spectra, curves)
    log(f"done in {summary['seconds']} s: {out}/results.md")


if __name__ == "__main__":
    main()
