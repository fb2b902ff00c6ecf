#!/usr/bin/env bash
# Builds llama.cpp's shared libraries with CUDA, from the same llama.cpp source that the pinned
# llama-cpp-sys-2 ships, for a `hypura` binary built with `--features dynamic-link` on a machine
# without CUDA: that binary, run with LD_LIBRARY_PATH pointing at these libraries, uses the GPU.
# (Same source, same public and internal headers: the C shim's buffer-type layout matches.)
#   scripts/cuda-libs.sh LLAMA_CPP_SRC BUILD_DIR [CUDA_ARCH]
# LLAMA_CPP_SRC: llama-cpp-sys-2-0.1.161/llama.cpp from ~/.cargo/registry/src/*/ (tools, tests and
# the other GPU backends may be removed from a copy to make it smaller). CUDA_ARCH default 90 (H100/H200).
# Needs nvcc, cmake and ninja. The libraries land in BUILD_DIR/bin.
set -euo pipefail
src=${1:?llama.cpp source dir}
build=${2:?build dir}
arch=${3:-90}
cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_CUDA_NCCL=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >/dev/null
ninja -C "$build" llama ggml
ls "$build"/bin/*.so*
