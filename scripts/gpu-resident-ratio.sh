#!/usr/bin/env bash
# Resident plan against plain llama.cpp on a CUDA machine without cargo (e.g. the lent H200):
# decode tok/s of `hypura run --plan` (every tensor on the GPU), `hypura run --plain` (mmap) and
# `hypura run --plain --plain-load direct` (O_DIRECT, how a plan loads), alternating, on a small
# and a larger synthesized dense model: where the resident ratio goes below 1, this says whether
# the loader is why.
# Prepare here (where cargo is), in the repo root:
#   CARGO_TARGET_DIR=target-dl cargo build -p hypura --features dynamic-link
#   mkdir -p .dev && strip -o .dev/hypura target-dl/debug/hypura
#   cp -r ~/.cargo/registry/src/*/llama-cpp-sys-2-0.1.161/llama.cpp .dev/llama.cpp
# then carry .dev and run it there:  scripts/gpu-resident-ratio.sh [SIZES...]  (default 512MiB 4GiB)
# Results go to $OUT/ratio.txt (one line per run) as they come.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-ratio}
mkdir -p "$OUT"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(512MiB 4GiB)
source scripts/gpu-prepare.sh
cp "$OUT/gpu.txt" "$OUT/ratio.txt"
for size in "${sizes[@]}"; do
  m=/tmp/dense-$size.gguf
  [ -f "$m" ] || $B synth --arch llama --size "$size" --type q8_0 -o "$m" >/dev/null
  $B solve --hw /tmp/gpu.toml --model "$m" --greedy -o "$m.plan.json" --force >/dev/null
  n=1000
  for round in 1 2 3 4 5 6 7; do
    for k in mmap plan direct; do
      case $k in
        plan) a=(--plan "$m.plan.json") ;;
        *) a=(--plain --plain-load $k) ;;
      esac
      r=$($B run "${a[@]}" -m "$m" -p "$P" -n $n --ignore-eos --ctx $((n + 64)) --json 2>>"$OUT/err.txt" | field)
      echo "$size round $round $k: $r" | tee -a "$OUT/ratio.txt"
    done
  done
done
# Median tok/s per size and loader, and each against plain mmap.
python3 - "$OUT/ratio.txt" <<'PY' | tee -a "$OUT/ratio.txt"
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) round \d+ (\w+): ([\d.]+) tok/s", line)
    if m:
        runs.setdefault(m[1], {}).setdefault(m[2], []).append(float(m[3]))
for size, kinds in runs.items():
    med = {k: statistics.median(v) for k, v in kinds.items()}
    print(size, ", ".join("%s median %.1f tok/s (%.3f of mmap)" % (k, x, x / med["mmap"]) for k, x in med.items()))
PY
