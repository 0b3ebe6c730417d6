#!/usr/bin/env python3
"""Writes a profile of the shape LORA_GPU_PROFILE makes (three steps: one
kernel of ARTIFACT's ptx/sm_80/step_kernel_5.ptx, hashed as the runtime
hashes module images, and one GEMM) to OUT, for gpu-profile.test; with
--unknown the kernel's hash matches no PTX file."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                "scripts"))
import gpu_profile  # noqa: E402

artifact, out = sys.argv[1], sys.argv[2]
ptx = os.path.join(artifact, "ptx", "sm_80", "step_kernel_5.ptx")
kernel = "ptx:0000000000000000" if "--unknown" in sys.argv else \
    gpu_profile.fnv1a(open(ptx, "rb").read())
with open(out, "w") as f:
    for step in (1, 2, 3):
        f.write(json.dumps({"step": step, "busy_ms": 3.0, "window_ms": 4.0,
                            "work": {"step_kernel " + kernel: [2, 1.0],
                                     "gemm bf16 4x8x16 tB": [3, 2.0]}}) +
                "\n")
