#!/usr/bin/env bash
# Fuzz smoke test for CI: builds every fuzz target with libFuzzer's coverage instrumentation
# using stable rustc flags only (no cargo-fuzz, no nightly, no sanitizer), writes the seed
# corpora (fuzz/seeds.py, offline), and runs each target for a while on its corpus. Fails if
# any target crashes (panic, failed oracle, allocation over 2 GB, input slower than 30 s) or
# gets no coverage feedback.
#
# usage: fuzz/smoke.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default: $FUZZ_SMOKE_SECONDS, else 60)
#   TARGET   only these targets (default: every [[bin]] of fuzz/Cargo.toml)
# Crashing inputs are left in fuzz/artifacts/<target>/, logs in fuzz/target/smoke/logs/.
set -euo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ")"
SECONDS_EACH="${1:-${FUZZ_SMOKE_SECONDS:-60}}"
shift || true
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [ "$SECONDS_EACH" -lt 1 ]; then
    echo "smoke.sh: SECONDS must be a positive whole number, not '$SECONDS_EACH'" >&2
    exit 2
fi

cd "$FUZZ"
ALL=$(sed -n '/^\[\[bin\]\]/,/^path/s/^name = "\(.*\)"/\1/p' Cargo.toml)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || read -r -a TARGETS <<< "$(echo $ALL)"
for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<< "$ALL" || { echo "smoke.sh: no fuzz target '$t' (have: $(echo $ALL))" >&2; exit 2; }
done

start=$(date +%s)

# What cargo-fuzz passes, less AddressSanitizer and the nightly-only flags. --target keeps the
# instrumentation off build scripts and proc macros (they do not link libFuzzer).
HOST=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
TARGET_DIR="$FUZZ/target/smoke"
echo "== building ${#TARGETS[@]} fuzz targets ($HOST, coverage-instrumented)"
bins=()
for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
cargo build --quiet --release --target "$HOST" --target-dir "$TARGET_DIR" "${bins[@]}"
BIN="$TARGET_DIR/$HOST/release"

echo "== seed corpora"
PY="$ROOT/.venv/bin/python3"
[ -x "$PY" ] || PY=python3
if "$PY" -c 'import gguf, numpy' 2>/dev/null; then
    "$PY" "$FUZZ/seeds.py"
else
    echo "   (python has no gguf/numpy: GGUF seeds skipped; run scripts/setup.sh for them)"
    "$PY" "$FUZZ/seeds.py" --no-gguf
fi

LOGS="$TARGET_DIR/logs"
mkdir -p "$LOGS"
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$LOGS/$t.log"
    echo "== $t: ${SECONDS_EACH}s on corpus/$t ($(ls "corpus/$t" | wc -l) inputs)"
    rc=0
    "$BIN/$t" "corpus/$t" -max_total_time="$SECONDS_EACH" -timeout=30 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" > "$log" 2>&1 || rc=$?
    # Coverage feedback: counters were registered and the run found covered edges.
    counters=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$rc" -ne 0 ]; then
        echo "   CRASH (exit $rc); input in fuzz/artifacts/$t/, log $log:"
        grep -m1 -A12 -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|out-of-memory|malloc\(' "$log" | sed 's/^/   | /' || tail -20 "$log"
        failed+=("$t")
    elif [ -z "$counters" ] || [ "$counters" -eq 0 ] || [ -z "$cov" ] || [ "$cov" -eq 0 ]; then
        echo "   NO COVERAGE FEEDBACK (counters: ${counters:-none}, cov: ${cov:-none}); log $log"
        failed+=("$t")
    else
        echo "   ok: ${execs:-?} runs, cov: $cov edges, corpus $(ls "corpus/$t" | wc -l) inputs"
    fi
done

echo "== fuzz smoke: ${#TARGETS[@]} targets x ${SECONDS_EACH}s in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
