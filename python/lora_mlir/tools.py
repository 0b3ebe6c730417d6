"""Locating and running lora-mlir's command-line tools from Python."""

import os
import shutil
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


class LoraToolError(RuntimeError):
    """A tool failed; the message carries its command line and stderr."""


def find_tool(name):
    """Path of tool `name`: $LORA_<NAME> (e.g. LORA_OPT for lora-opt), then
    the checkout's build/bin, then PATH."""
    variable = name.upper().replace("-", "_")
    explicit = os.environ.get(variable)
    if explicit:
        return explicit
    built = _REPO / "build" / "bin" / name
    if built.is_file():
        return str(built)
    found = shutil.which(name)
    if found:
        return found
    raise LoraToolError(
        f"cannot find {name}: set {variable}, build the project "
        f"(scripts/setup.sh), or put it on PATH")


def run_lora_opt(mlir, *args):
    """Runs lora-opt with `args` on the MLIR text `mlir`; returns its output.

    >>> run_lora_opt(text, "-canonicalize", "-cse")
    """
    command = [find_tool("lora-opt"), "-", *args]
    result = subprocess.run(command, input=mlir, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise LoraToolError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stderr.strip()}")
    return result.stdout
