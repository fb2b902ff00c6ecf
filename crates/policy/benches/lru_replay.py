#!/usr/bin/env python3
"""Straightforward per-layer LRU replay of the real DeepSeek-V2-Lite traces: the Python baseline
for `cargo bench -p policy --bench cache_replay` (lru_per_layer, 16 of 64 experts per layer).

Reads ../shared/data/traces/deepseek-v2-lite/*.csv with the csv module (rows layer-major:
`Layer ID,Batch Number,Token,Activated Expert IDs`), rebuilds token-major order (token by token,
layer by layer, sequences back to back, as the Rust replay walks the trace), and replays one
OrderedDict LRU per layer. Only the replay is timed; it prints accesses/s and the hit rate.

Usage: python3 crates/policy/benches/lru_replay.py [TRACE_DIR] [EXPERTS_PER_LAYER]
"""
import csv
import glob
import os
import sys
import time
from collections import OrderedDict


def load(trace_dir):
    """Token-major list of (layer, expert) accesses over all prompts, files sorted by name."""
    accesses = []
    for path in sorted(glob.glob(os.path.join(trace_dir, "*.csv"))):
        rows_by_layer = {}
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)  # header
            for layer, _batch, _token, ids in reader:
                rows_by_layer.setdefault(int(layer), []).append(
                    [int(x) for x in ids.strip("[]").split(",")]
                )
        layers = sorted(rows_by_layer)
        for t in range(len(rows_by_layer[layers[0]])):
            for layer in layers:
                for e in rows_by_layer[layer][t]:
                    accesses.append((layer, e))
    return accesses


def lru_per_layer(accesses, per_layer):
    caches = {}
    hits = 0
    for layer, e in accesses:
        cache = caches.get(layer)
        if cache is None:
            cache = caches[layer] = OrderedDict()
        if e in cache:
            cache.move_to_end(e)
            hits += 1
        else:
            if len(cache) >= per_layer:
                cache.popitem(last=False)
            cache[e] = True
    return hits


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_dir = os.path.join(here, "..", "..", "..", "shared", "data", "traces", "deepseek-v2-lite")
    trace_dir = sys.argv[1] if len(sys.argv) > 1 else default_dir
    per_layer = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    accesses = load(trace_dir)
    best = None
    for _ in range(3):
        start = time.perf_counter()
        hits = lru_per_layer(accesses, per_layer)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    n = len(accesses)
    print(f"accesses {n}  hits {hits}  hit rate {hits / n:.4f}  "
          f"best of 3: {best:.3f} s  {n / best / 1e6:.2f} M accesses/s")


if __name__ == "__main__":
    main()
