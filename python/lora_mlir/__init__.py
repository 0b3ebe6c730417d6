"""lora-mlir's Python package: drives the tools and (later) analyses runs."""

from lora_mlir.tools import LoraToolError, find_tool, run_lora_opt

__all__ = ["LoraToolError", "find_tool", "run_lora_opt"]
