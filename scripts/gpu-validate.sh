#!/usr/bin/env bash
# `hypura validate` on a CUDA machine without cargo (e.g. the lent H200): a full `hypura profile`
# of that machine (decode terms of its GPU and CPU included), then a synthesized
# DeepSeek-V2-Lite-shaped MoE (width 2048, 64 experts of ff 1408, top-6, Q4_0, 8.1 GiB) replaying
# the real DeepSeek-V2-Lite routing, validated fully resident on the GPU, with the routed
# experts in RAM (GPU budget for the rest), and with them streamed from NVMe (GRID= overrides
# that grid; REPEAT=R runs each point R times).
# Prepare here (where cargo is), in the repo root:
#   CARGO_TARGET_DIR=target-dl cargo build -p hypura --features dynamic-link
#   mkdir -p .dev && strip -o .dev/hypura target-dl/debug/hypura && xz -T2 -f .dev/hypura
#   (cd /tmp && cp -r ~/.cargo/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp . &&
#    rm -rf llama.cpp/{tools,examples} llama.cpp/ggml/src/ggml-{vulkan,sycl,opencl,metal,hip,musa,...} &&
#    tar cJf "$OLDPWD/.dev/llama.tar.xz" llama.cpp)
#   hypura trace import --from deepseek-csv ../shared/data/traces/deepseek-v2-lite -o .dev/ds.htrace
# then carry .dev to the GPU machine and run this there (OUT: where results go). `gpu-validate.sh
# prepare` stops after the profile and the model (the CUDA build alone takes 4-5 minutes); a second
# call on the still-warm machine then runs the validations. With HW=profiles/h200-141g.toml (a
# shipped profile) the machine is not profiled: that profile is validated instead. `split` times
# an MoE layer whose routed experts the CPU computes (see there).
set -uo pipefail
[ -n "${HW:-}" ] && export NO_PROFILE=1
OUT=${OUT:-/tmp/gpu-validate}
mkdir -p "$OUT"
[ -f .dev/hypura ] || xz -dk .dev/hypura.xz
chmod +x .dev/hypura
[ -d .dev/llama.cpp ] || tar xJf .dev/llama.tar.xz -C .dev
source scripts/gpu-prepare.sh
M=/tmp/ds-real.gguf
[ -f $M ] || $B synth --preset tiny-deepseek-v2-lite --embd 2048 --ff 10944 --expert-ff 1408 \
  --heads 16 --kv-heads 16 --vocab 102400 -o $M >"$OUT/synth.txt" 2>&1
if [ -n "${HW:-}" ]; then cp "$HW" /tmp/h200.toml; fi
[ -f /tmp/h200.toml ] || $B profile --disk /tmp -o /tmp/h200.toml >"$OUT/profile.txt" 2>&1 ||
  { tail "$OUT/profile.txt"; exit 1; }
cp /tmp/h200.toml "$OUT/h200.toml"
[ "${1:-}" = prepare ] && { cat "$OUT/profile.txt" 2>/dev/null; exit 0; }
if [ "${1:-}" = split ]; then
  # What an MoE layer costs when the CPU computes its routed experts and the GPU the rest: the
  # resident plan against the same plan with every routed-expert tensor moved to RAM, on the
  # model above and on one with tiny experts (whose extra time is the backend switches and the
  # CPU's fixed costs, not bytes); three interleaved rounds, then the simulator's figures.
  T=/tmp/ds-tiny.gguf
  [ -f $T ] || $B synth --preset tiny-deepseek-v2-lite --embd 2048 --ff 10944 --expert-ff 128 \
    --heads 16 --kv-heads 16 --vocab 102400 -o $T >/dev/null 2>&1
  for m in $M $T; do
    n=$(basename $m .gguf)
    $B solve --hw /tmp/h200.toml --model $m -o /tmp/$n-res.json --force >/dev/null
    python3 - /tmp/$n-res.json /tmp/$n-ram.json <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
for k in p["tensors"]:
    if "_exps." in k:
        p["tensors"][k] = "ram"
for e in p["experts"]:
    e["ram"], e["gpu"] = sorted(e["gpu"] + e["ram"]), []
json.dump(p, open(sys.argv[2], "w"))
EOF
  done
  for i in 1 2 3; do for m in $M $T; do for plan in res ram; do
    n=$(basename $m .gguf)
    echo -n "$n $plan: "
    $B run --plan /tmp/$n-$plan.json -m $m -p "$P" -n 64 --ignore-eos --json 2>>"$OUT/split.err" | field; echo
  done; done; done | tee "$OUT/split.txt"
  for m in $M $T; do for plan in res ram; do
    n=$(basename $m .gguf)
    echo "$n $plan sim: $($B sim --plan /tmp/$n-$plan.json --hw /tmp/h200.toml --tokens 64 2>&1 | grep -E 'speed|error')"
  done; done | tee -a "$OUT/split.txt"
  exit 0
fi
if [ "${1:-}" = diagnose ]; then
  # What the resident run's decode speed depends on: per-layer records (each layer boundary
  # synchronises the backend), against the same plan unrecorded and plain llama.cpp.
  $B solve --hw /tmp/h200.toml --model $M -o /tmp/res.json --force >/dev/null
  R=(-m $M -p "$P" -n 64 --ignore-eos --json)
  for i in 1 2; do
    echo -n "plan: "; $B run --plan /tmp/res.json "${R[@]}" 2>/dev/null | field; echo
    echo -n "plan, records: "; $B run --plan /tmp/res.json "${R[@]}" --metrics /tmp/rec.json --force 2>/dev/null | field; echo
    echo -n "plain: "; $B run --plain "${R[@]}" 2>/dev/null | field; echo
    echo -n "plan, routing replayed: "; $B run --plan /tmp/res.json "${R[@]}" --replay-trace .dev/ds.htrace 2>/dev/null | field; echo
    echo -n "plan, routing recorded: "; $B run --plan /tmp/res.json "${R[@]}" --record-trace /tmp/rec.htrace --force 2>/dev/null | field; echo
  done | tee "$OUT/diagnose.txt"
  $B validate -m $M --hw /tmp/h200.toml --trace .dev/ds.htrace --tokens 48 --prompt-len 16 --warmup 8 \
    --force -o /tmp/v-res8 2>&1 | tail -3 | tee -a "$OUT/diagnose.txt"
  exit 0
fi
V=(validate -m $M --hw /tmp/h200.toml --trace .dev/ds.htrace --tokens 24 --prompt-len 16 --force
  --repeat "${REPEAT:-1}")
# Resident: the default plan puts everything on the GPU.
$B "${V[@]}" -o /tmp/v-res >"$OUT/resident.txt" 2>&1
# Experts in RAM (the GPU keeps the rest), and experts streamed from NVMe through a cache.
$B "${V[@]}" --grid "${GRID:-gpu=2GiB;ram=64GiB,3GiB;policy=static,lru}" -o /tmp/v-off >"$OUT/offload.txt" 2>&1
cp /tmp/v-res/report.json "$OUT/resident.json" 2>/dev/null
cp /tmp/v-off/report.json "$OUT/offload.json" 2>/dev/null
tail -5 "$OUT/profile.txt" "$OUT/resident.txt" "$OUT/offload.txt"
