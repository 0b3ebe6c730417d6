#!/usr/bin/env bash
# Installs what lora-mlir needs on Debian 12 (idempotent: only missing
# packages are installed), then configures and builds into build/.
#
#   scripts/setup.sh              install, configure, build
#   LORA_BUILD_DIR=out scripts/setup.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LORA_BUILD_DIR:-$root/build}

# Debian packages, one reason each.
packages=(
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools # MLIR, lit, FileCheck
  lld-22 ninja-build ccache cmake g++ pkg-config           # fast builds
  zlib1g-dev libzstd-dev libxml2-dev libedit-dev           # LLVM's CMake deps
  libopenblas-dev                                          # CPU GEMMs
  libomp-22-dev                                            # CPU threads (OpenMP)
  libopenmpi-dev openmpi-bin                               # CPU data parallel
  nlohmann-json3-dev                                       # JSON headers
  libcli11-dev                                             # lora-train's flags
  libgtest-dev libgmock-dev                                # unit tests
  python3                                                  # lit
  python3-numpy python3-matplotlib                         # the study (python/)
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
    grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# ccache keys on paths relative to the checkout, so a fresh clone or build
# folder still hits the cache.
export CCACHE_BASEDIR=$root
# The CUDA backend builds where the toolkit is (no GPU needed); nvcc need
# not be on PATH.
cuda=()
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  cuda=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
if [[ ! -f $build/build.ninja ]]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DLORA_ENABLE_MPI=ON \
    "${cuda[@]}" >/dev/null
fi
cmake --build "$build"
