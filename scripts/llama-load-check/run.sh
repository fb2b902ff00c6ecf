#!/usr/bin/env bash
# Checks that every `hypura synth` preset and weight type loads in llama.cpp and decodes with finite
# logits. llama.cpp's source comes from the pinned crates.io package llama-cpp-sys-2 (fetched by cargo);
# libllama is built on the CPU with GGML_NATIVE=OFF (AVX2/FMA/F16C, no AMX). Needs cmake and g++.
# Takes ~10 min on 2 cores the first time (the build is cached in target/llama-load-check).
#   scripts/llama-load-check/run.sh [hypura-binary]
set -euo pipefail
cd "$(dirname "$0")/../.."
hypura=${1:-target/release/hypura}
work=$PWD/target/llama-load-check
mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" <<'TOML'
[package]
name = "fetch-llama-cpp"
version = "0.0.0"
edition = "2021"
[dependencies]
llama-cpp-sys-2 = "=0.1.161"
[workspace]
TOML
echo 'fn main() {}' > "$work/fetch/src/main.rs"
(cd "$work/fetch" && cargo fetch -q)
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp | head -n 1)
if [ ! -f "$work/build/bin/libllama.so" ]; then
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX=ON \
    -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_COMMON=OFF >/dev/null
  cmake --build "$work/build" -j"$(nproc)" --target llama >/dev/null
fi
g++ -O2 -std=c++17 scripts/llama-load-check/load.cpp -I"$src/include" -I"$src/ggml/include" \
  -L"$work/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$work/build/bin" -o "$work/load"
fail=0
for preset in tiny-llama tiny-mixtral tiny-qwen-moe tiny-qwen3-moe tiny-deepseek-v2-lite; do
  for type in q4_0 q8_0 f16; do
    f="$work/$preset-$type.gguf"
    "$hypura" synth --preset "$preset" --type "$type" --seed 1 --force -o "$f" >/dev/null
    if out=$("$work/load" "$f" 6 2>"$work/$preset-$type.log"); then
      echo "ok    $preset $type: $(echo "$out" | grep generated)"
    else
      echo "FAIL  $preset $type (log: $work/$preset-$type.log)"; fail=1
    fi
    rm -f "$f"
  done
done
exit $fail
