#!/usr/bin/env bash
# GPU check, run ON a CUDA machine that has no cargo (e.g. the lent H200): builds llama.cpp's CUDA
# shared libraries from the pinned source, then compares `hypura run` with plain llama.cpp on
# synthesized dense and MoE models (greedy tokens, decode tok/s) and streams FFNs / experts.
# Prepare here (where cargo is), in the repo root:
#   CARGO_TARGET_DIR=target-dl cargo build -p hypura --features dynamic-link
#   mkdir -p .dev && strip -o .dev/hypura target-dl/debug/hypura
#   cp -r ~/.cargo/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp .dev/llama.cpp
#   hypura trace synth --experts 8 --top-k 2 --layers 0-15 --sequences 1 --tokens 400 -o .dev/t16.json
# then carry .dev to the GPU machine and run scripts/gpu-check.sh there (OUT: where results go).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
source scripts/gpu-prepare.sh
[ -f /tmp/d.gguf ] || $B synth --arch llama --size 512MiB --type q8_0 -o /tmp/d.gguf >/dev/null
[ -f /tmp/m.gguf ] || $B synth --arch mixtral --experts 8 --top-k 2 --size 1GiB --type q4_0 -o /tmp/m.gguf >/dev/null
for m in d m; do
  $B solve --hw /tmp/gpu.toml --model /tmp/$m.gguf --greedy -o /tmp/$m-res.json --force >/dev/null
  # Everything resident (the GPU profile puts every tensor on the GPU) against plain llama.cpp,
  # alternating, 1000 tokens each (scripts/gpu-resident-ratio.sh does this at length).
  for k in plain plan plain plan plain plan; do
    if [ $k = plain ]; then a=(--plain); else a=(--plan /tmp/$m-res.json); fi
    echo -n "$m $k: "; $B run "${a[@]}" -m /tmp/$m.gguf -p "$P" -n 1000 --ignore-eos --ctx 1280 --json 2>>"$OUT/err.txt" | field; echo
  done
done
# Streaming: the dense model's FFNs, the MoE model's experts (routing replayed), on NVMe.
python3 - <<'PYEOF'
import json
d = json.load(open("/tmp/d-res.json"))
for n in [n for n in d["tensors"] if ".ffn_" in n and "norm" not in n]:
    d["tensors"][n] = "nvme"
d["pool_bytes"] = 64 << 20
json.dump(d, open("/tmp/d-str.json", "w"))
m = json.load(open("/tmp/m-res.json"))
total = 0
for e in m["experts"]:
    e["nvme"] = sorted(set(e["nvme"]) | set(e["gpu"]) | set(e["ram"])); e["gpu"], e["ram"] = [], []
    total += e["expert_bytes"] * len(e["nvme"])
for n in [n for n in m["tensors"] if "_exps." in n]:
    m["tensors"][n] = "nvme"
m["expert_cache"]["bytes"] = total // 4
m["expert_cache"]["policy"] = "lru"
m["pool_bytes"] = 0
json.dump(m, open("/tmp/m-str.json", "w"))
PYEOF
# The reference for a streamed run on a GPU is plain llama.cpp with the tensors that the plan keeps
# off the GPU in host memory (--plain-like): llama.cpp then computes them on the CPU, as the
# streamed run does, so the greedy tokens must agree; the all-GPU plain run may differ on
# random weights (other kernels, other rounding).
echo -n "d FFN streamed: "; $B run --plan /tmp/d-str.json -m /tmp/d.gguf -p "$P" -n 32 --ignore-eos --json --queue-depth 4 --prefetch-depth 2 2>>"$OUT/err.txt" | field; echo
echo -n "d plain, FFNs in host memory: "; $B run --plain --plain-like /tmp/d-str.json -m /tmp/d.gguf -p "$P" -n 32 --ignore-eos --json 2>>"$OUT/err.txt" | field; echo
echo -n "d plain: "; $B run --plain -m /tmp/d.gguf -p "$P" -n 32 --ignore-eos --json 2>>"$OUT/err.txt" | field; echo
R=.dev/t16.json
echo -n "m resident, replayed routing: "; $B run --plan /tmp/m-res.json -m /tmp/m.gguf -p "$P" -n 64 --ignore-eos --json --replay-trace $R 2>>"$OUT/err.txt" | field; echo
for s in per-expert whole; do
  echo -n "m $s, replayed routing: "
  $B run --plan /tmp/m-str.json -m /tmp/m.gguf -p "$P" -n 64 --ignore-eos --json --replay-trace $R --expert-streaming $s --queue-depth 4 2>>"$OUT/err.txt" | field; echo
done
echo -n "m plain, experts in host memory, replayed routing: "
$B run --plain --plain-like /tmp/m-str.json -m /tmp/m.gguf -p "$P" -n 64 --ignore-eos --json --replay-trace $R 2>>"$OUT/err.txt" | field; echo
echo -n "m plain, replayed routing: "
$B run --plain -m /tmp/m.gguf -p "$P" -n 64 --ignore-eos --json --replay-trace $R 2>>"$OUT/err.txt" | field; echo
