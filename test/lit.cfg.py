# lit configuration of the lora-mlir regression tests.
import os
import shutil
import subprocess

import lit.formats

config.name = "lora-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "unittests", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.lora_obj_root, "test")

# Our tools first, then FileCheck, not, count and split-file from LLVM.
config.environment["PATH"] = os.pathsep.join(
    [config.lora_tools_dir, config.llvm_tools_dir,
     config.environment.get("PATH", os.environ.get("PATH", ""))])
config.substitutions.append(("%lora_src_root", config.lora_src_root))
config.substitutions.append(("%lora_obj_root", config.lora_obj_root))
# mlir-runner's printing functions (vector.print), from libmlir-22.
config.substitutions.append(
    ("%mlir_c_runner_utils",
     os.path.join(os.path.dirname(config.llvm_tools_dir), "lib",
                  "libmlir_c_runner_utils.so")))


def _gpu_present():
    """A GPU test runs only where a driver answers for at least one GPU;
    elsewhere lit reports it UNSUPPORTED, never passed."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


if _gpu_present():
    config.available_features.add("gpu")

if config.lora_have_cuda:
    config.available_features.add("cuda-backend")

# ptxas checks the PTX the GPU pipeline makes, with or without a GPU.
_ptxas = shutil.which("ptxas") or (
    "/usr/local/cuda/bin/ptxas"
    if os.path.exists("/usr/local/cuda/bin/ptxas") else None)
if _ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _ptxas))

import sys
config.substitutions.append(("%python", sys.executable))

# Data-parallel tests: two ranks under Open MPI's mpirun, when the runtime
# was built with MPI. Open MPI refuses root unless told twice (CI runs as
# root); --oversubscribe lets two ranks share fewer cores.
if config.lora_have_mpi and shutil.which("mpirun"):
    config.available_features.add("mpi")
    for name in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"):
        config.environment[name] = "1"
    config.substitutions.append(
        ("%mpirun", "mpirun --oversubscribe --bind-to none -np"))
