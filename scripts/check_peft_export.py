#!/usr/bin/env python3
"""Checks that PEFT loads what `lora-run train` exports, and that the merged
model lora-run writes equals PEFT's own merge_and_unload().

    pip install torch transformers peft safetensors
    python3 scripts/check_peft_export.py [build-dir]

Trains a few steps on the PyTorch fixture model (test/unittests/Reference/
Inputs/peft-tiny) with token-file data, then compares logits.
"""
import os
import struct
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build")
fixture = os.path.join(root, "test", "unittests", "Reference", "Inputs",
                       "peft-tiny", "model")

with tempfile.TemporaryDirectory() as tmp:
    tokens = os.path.join(tmp, "tokens.bin")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 32, (4000,), generator=g).tolist()
    with open(tokens, "wb") as f:
        f.write(struct.pack(f"<{len(ids)}i", *ids))
    out = os.path.join(tmp, "out")
    subprocess.run([os.path.join(build, "bin", "lora-run"), "train",
                    "--config", os.path.join(fixture, "config.json"),
                    "--model_weights", os.path.join(fixture, "model.safetensors"),
                    "--train_file", tokens, "--max_steps", "20", "--r", "4",
                    "--learning_rate", "1e-2", "--max_seq_length", "16",
                    "--save_merged", "--output_dir", out], check=True)

    config = LlamaConfig.from_pretrained(fixture)
    base = LlamaForCausalLM(config)
    base.load_state_dict(load_file(os.path.join(fixture, "model.safetensors")),
                         strict=False)
    base.eval()
    peft = PeftModel.from_pretrained(base, out)
    peft.eval()
    x = torch.tensor([ids[:16]])
    with torch.no_grad():
        adapted = peft(x).logits
        merged_ref = peft.merge_and_unload()(x).logits
    ours = LlamaForCausalLM(config)
    ours.load_state_dict(load_file(os.path.join(out, "merged",
                                                "model.safetensors")),
                         strict=False)
    ours.eval()
    with torch.no_grad():
        merged_ours = ours(x).logits
    base2 = LlamaForCausalLM(config)
    base2.load_state_dict(load_file(os.path.join(fixture, "model.safetensors")),
                          strict=False)
    with torch.no_grad():
        plain = base2(x).logits
    print("adapter changes the logits by", float((adapted - plain).abs().max()))
    print("PEFT adapter vs PEFT merge:", float((adapted - merged_ref).abs().max()))
    print("PEFT merge vs lora-run merge:",
          float((merged_ref - merged_ours).abs().max()))
    assert (adapted - plain).abs().max() > 1e-3, "the adapter did nothing"
    assert (merged_ref - merged_ours).abs().max() < 1e-4
    print("OK: PEFT loads the adapter; lora-run's merged model matches")
