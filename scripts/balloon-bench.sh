#!/usr/bin/env bash
# Balloon benchmark: decode tok/s of `hypura run --plan` against plain llama.cpp with mmap when only
# a known amount of memory is left (a balloon process holds the rest), plus the disk bound of each:
# O_DIRECT read GB/s divided by the bytes each run read from storage per decoded token (the
# kernel's read_bytes over the decode steps). The disk is measured before every run, because a
# shared disk's speed drifts: 4 MiB O_DIRECT reads of the model file by --disk-qd parallel dd
# streams. The table gives the median and the range, and for hypura also the speed its own reads
# got (bytes read / seconds with a read in flight), the share of its run time the disk was busy
# and the mean number of its reads in flight while busy.
#
# usage: scripts/balloon-bench.sh --model M.gguf (--budget-gib B | --plan P.json) [options] [-- RUN FLAGS]
#   --model FILE        the GGUF to run (real or from `hypura synth`; dense or MoE)
#   --budget-gib B      RAM budget of the plan: a CPU-only profile with B GiB for the plan (after its
#                       OS reserve) and this disk's measured read speed is written, then `hypura solve`
#   --plan FILE         use this plan instead of solving (then --budget-gib is not needed)
#   --solve "FLAGS"     extra `hypura solve` flags (e.g. "--trace t.htrace --greedy")
#   --leave-gib L       MemAvailable to leave once the balloon is up (no balloon without it)
#   --floor-gib F       refuse to leave less than F GiB available (default 6: others share this
#                       machine; pass 0 on a dedicated one)
#   --tokens N          tokens to generate per run (default 16)
#   --threads T         decode threads (default: all cores)
#   --ctx C             context for solve and run (default 512)
#   --reps R            alternating plain/hypura runs (default 1)
#   --replay-trace T    force both runs' MoE routing from trace T (a synthesized model's random
#                       router collapses onto a few experts; a real or synthesized trace does not)
#   --repack            plain llama.cpp with its CPU weight repacking on (off by default: repacked
#                       weights are anonymous copies, not the mmap)
#   --disk-qd Q         parallel reads when measuring the disk (default 4: `hypura run`'s usual
#                       queue depth; 1 gives a lower bound that mmap's readahead can beat)
#   --sim "FLAGS"       also predict the hypura run with `hypura sim` (the plan, the profile, the
#                       replayed trace, the run's prompt length and token count) plus FLAGS, e.g.
#                       "--policy static --queue-depth 8 --expert-prefetch oracle" to match the run's
#                       -- flags; the profile's read curve is measured at 1, 2, 4, 8 and --disk-qd
#                       parallel reads (with --plan, give the profile with --hw)
#   --hw FILE           the profile for --sim when --plan is given
#   --out DIR           where the JSON of every run goes (default: a new temp dir)
#   --no-build          use target/release as it is
#   --bin-dir DIR       use the binaries in DIR (e.g. target/debug, built with `cargo build -p hypura
#                       -p runtime --bin hypura --example balloon --example plain_decode`); no build
#   -- FLAGS            passed to `hypura run` (e.g. a future expert-streaming switch)
# Every run starts with the model file dropped from the page cache (fadvise DONTNEED via dd).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
model="" budget="" plan="" solve_flags="" leave="" floor=6 tokens=16 threads=$(nproc) ctx=512
reps=1 repack="" replay="" out="" build=1 bin="$root/target/release" disk_qd=4 sim="" hw=""
sim_set=0
prompt="The history of the printing press begins"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --budget-gib) budget=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    --solve) solve_flags=$2; shift 2 ;;
    --leave-gib) leave=$2; shift 2 ;;
    --floor-gib) floor=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --repack) repack=--repack; shift ;;
    --replay-trace) replay=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --sim) sim=$2; sim_set=1; shift 2 ;;
    --hw) hw=$2; shift 2 ;;
    --disk-qd) disk_qd=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --bin-dir) bin=$(cd "$2" && pwd); build=0; shift 2 ;;
    --) shift; break ;;
    *) echo "balloon-bench: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
run_flags=("$@")
plain_flags=()
[ -z "$repack" ] || plain_flags+=("$repack")
if [ -n "$replay" ]; then
  [ -f "$replay" ] || { echo "balloon-bench: --replay-trace: no such file: $replay" >&2; exit 2; }
  plain_flags+=("--replay-trace=$replay")
  run_flags+=(--replay-trace "$replay")
fi
die() { echo "balloon-bench: $*" >&2; exit 2; }
[ -f "$model" ] || die "--model: no such file: ${model:-(none given)}"
[ -n "$plan" ] || [ -n "$budget" ] || die "give --budget-gib or --plan"
[ -z "$plan" ] || [ -f "$plan" ] || die "--plan: no such file: $plan"
[ -z "$hw" ] || [ -f "$hw" ] || die "--hw: no such file: $hw"
[ "$sim_set" = 0 ] || [ -z "$plan" ] || [ -n "$hw" ] || die "--sim with --plan needs --hw PROFILE"
gib() { awk -v g="$1" 'BEGIN { printf "%.0f", g * 1073741824 }'; }
out=${out:-$(mktemp -d /tmp/balloon-bench.XXXXXX)}
mkdir -p "$out"

if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release -q -p hypura -p runtime --bin hypura \
    --example balloon --example plain_decode)
fi
for b in "$bin/hypura" "$bin/examples/balloon" "$bin/examples/plain_decode"; do
  [ -x "$b" ] || die "$b is missing: build it (drop --no-build / --bin-dir)"
done

file_bytes=$(stat -c %s "$model")
echo "model $model: $file_bytes bytes; results in $out"
free -g

# Disk: O_DIRECT sequential read of (up to 2 GiB of) the model file, 4 MiB requests.
count=$(( file_bytes / 4194304 )); [ "$count" -gt 512 ] && count=512
[ "$count" -ge 1 ] || die "the model is smaller than one 4 MiB read"
disk_samples="$out/disk-gbps.txt"
: >"$disk_samples"
[[ "$disk_qd" =~ ^[1-9][0-9]*$ ]] || die "--disk-qd must be a positive integer"
per_stream=$(( count / disk_qd )); [ "$per_stream" -ge 1 ] || per_stream=1
# GB/s of $1 parallel dd streams reading the first 2 GiB (at most) of the model, 4 MiB O_DIRECT.
disk_speed() {
  local q=$1 t0 t1 i n pids=()
  n=$(( count / q )); [ "$n" -ge 1 ] || n=1
  t0=$(date +%s.%N)
  for i in $(seq 0 $((q - 1))); do
    dd if="$model" of=/dev/null bs=4M count="$n" skip=$((i * n)) iflag=direct status=none &
    pids+=($!)
  done
  # Only the dd streams: a bare `wait` would wait for the balloon too.
  wait "${pids[@]}"
  t1=$(date +%s.%N)
  awk -v b=$((q * n * 4194304)) -v a="$t0" -v z="$t1" 'BEGIN { printf "%.3f\n", b / (z - a) / 1e9 }'
}
measure_disk() { disk_speed "$disk_qd" | tee -a "$disk_samples"; }
disk_gbps=$(measure_disk)
echo "disk: $disk_gbps GB/s ($disk_qd parallel dd streams of $per_stream O_DIRECT reads of 4 MiB)"

if [ -z "$plan" ]; then
  reserve=$((512 * 1048576))
  hw="$out/hw.toml"
  curve=""
  if [ "$sim_set" = 1 ]; then
    for q in $(printf '%s\n' 1 2 4 8 "$disk_qd" | sort -n -u); do
      g=$(disk_speed "$q")
      echo "disk curve: $q parallel reads: $g GB/s"
      curve+=$'\n'"[[storage.read_curve]]"$'\n'"block_bytes = 4194304"$'\n'"queue_depth = $q"
      curve+=$'\n'"gbps = $g  # measured: $q parallel dd O_DIRECT streams on the model file"
    done
  else
    curve=$'\n'"[[storage.read_curve]]"$'\n'"block_bytes = 4194304"$'\n'"queue_depth = $disk_qd"
    curve+=$'\n'"gbps = $disk_gbps  # measured: as seq_read_gbps"
  fi
  cat >"$hw" <<EOF
version = 1
name = "balloon-bench: $budget GiB for the plan on $(hostname)"
[ram]
bytes = $(( $(gib "$budget") + reserve ))
bandwidth_gbps = 10.0  # estimate: only the prediction uses it
os_reserve_bytes = $reserve  # the plan's budget is bytes minus this
[storage]
seq_read_gbps = $disk_gbps  # measured: $disk_qd parallel dd O_DIRECT streams, 4 MiB requests, on the model file
read_4k_qd1_latency_s = 0.0001  # estimate$curve
[cpu]
cores = $(nproc)
fp32_gflops = $(( $(nproc) * 50 )).0  # estimate: only the prediction uses it
EOF
  plan="$out/plan.json"
  # shellcheck disable=SC2086
  "$bin/hypura" solve --hw "$hw" --model "$model" --ctx "$ctx" $solve_flags -o "$plan" --force
fi

balloon_pid=""
cleanup() {
  if [ -n "$balloon_pid" ]; then
    exec 3>&- 2>/dev/null || true
    kill "$balloon_pid" 2>/dev/null || true
    wait "$balloon_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
avail_bytes() { awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }
if [ -n "$leave" ]; then
  awk -v l="$leave" -v f="$floor" 'BEGIN { exit !(l >= f) }' ||
    die "--leave-gib $leave is below the floor of $floor GiB (--floor-gib)"
  size=$(( $(avail_bytes) - $(gib "$leave") ))
  if [ "$size" -le 0 ]; then
    echo "only $(avail_bytes) bytes available: no balloon needed to leave $leave GiB"
  else
    fifo="$out/balloon.stdin"
    rm -f "$fifo"; mkfifo "$fifo"
    "$bin/examples/balloon" "$size" <"$fifo" >"$out/balloon.out" &
    balloon_pid=$!
    exec 3>"$fifo"
    until grep -q '^ready' "$out/balloon.out" 2>/dev/null; do
      kill -0 "$balloon_pid" 2>/dev/null || die "the balloon died: $(cat "$out/balloon.out")"
      sleep 0.5
    done
    echo "balloon: $(cat "$out/balloon.out"); now $(avail_bytes) bytes available"
    free -g
  fi
fi

drop_cache() { dd if="$model" iflag=nocache count=0 status=none; }
for r in $(seq 1 "$reps"); do
  [ "$r" = 1 ] || measure_disk >/dev/null
  drop_cache
  "$bin/examples/plain_decode" "$model" "$prompt" "$tokens" "$threads" "$ctx" "${plain_flags[@]}" \
    >"$out/plain-$r.json"
  measure_disk >/dev/null
  drop_cache
  "$bin/hypura" run --plan "$plan" -m "$model" -p "$prompt" -n "$tokens" --ctx "$ctx" \
    --threads "$threads" --json "${run_flags[@]}" >"$out/hypura-$r.json"
done

if [ "$sim_set" = 1 ]; then
  prompt_tokens=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["prompt_tokens"]))' \
    "$out/hypura-1.json")
  sim_args=(sim --plan "$plan" --hw "$hw" --model "$model" --prompt-len "$prompt_tokens"
    --tokens $((tokens - 1)) --json)
  [ -z "$replay" ] || sim_args+=(--trace "$replay")
  # shellcheck disable=SC2086
  "$bin/hypura" "${sim_args[@]}" $sim >"$out/sim.json"
fi

python3 - "$out" "$reps" "$disk_samples" "$plan" "$sim" <<'EOF'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
samples = [float(x) for x in open(sys.argv[3]).read().split()]
disk = statistics.median(samples)
plan = json.load(open(sys.argv[4]))
print(f"plan: mode {plan['mode']}, RAM budget for weights {plan['capacities']['ram_bytes']}, "
      f"pool {plan['pool_bytes']}, NVMe {plan['capacities']['nvme_bytes']} bytes, "
      f"predicted {plan['prediction']['tok_per_s']:.3f} tok/s")
print(f"disk (parallel dd O_DIRECT before each run): median {disk:.3f} GB/s, range "
      f"{min(samples):.3f}-{max(samples):.3f} over {len(samples)}")
print(f"{'run':<10}{'tok/s':>9}{'read/decode':>14}{'I/O bound':>11}{'own GB/s':>10}{'disk busy':>11}"
      f"{'peak RSS':>14}  same tokens")
for r in range(1, reps + 1):
    p = json.load(open(f"{out}/plain-{r}.json"))
    h = json.load(open(f"{out}/hypura-{r}.json"))
    rows = [("plain", p, p.get("read_bytes"), p.get("peak_rss_bytes"), None),
            ("hypura", h, h["stream"]["bytes_read"],
             max(h.get("peak_rss_load_bytes") or 0, h.get("peak_rss_decode_bytes") or 0),
             h["stream"].get("storage_busy_s"))]
    depth = h["stream"].get("storage_request_s", 0) / max(h["stream"].get("storage_busy_s") or 0, 1e-9)
    for name, v, read, rss, busy in rows:
        # Bytes read per decoded token, from the kernel's count over the decode steps only (the
        # prompt batch reads most experts once; the first generated token comes from it).
        steps = max(len(v["tokens"]) - 1, 1)
        per = v["decode_read_bytes"] / steps if v.get("decode_read_bytes") is not None else 0
        bound = f"{disk * 1e9 / per:.2f}" if per > 0 else "none"
        own = f"{read / busy / 1e9:.3f}" if busy else "-"
        # Reads happen during the prompt pass as well as during decode.
        total = v.get("prompt_s", 0) + v.get("decode_s", 0)
        share = f"{100 * busy / total:.0f}%" if busy and total else "-"
        print(f"{name + '-' + str(r):<10}{v['decode_tok_per_s']:>9.3f}{per:>14.0f}{bound:>11}"
              f"{own:>10}{share:>11}{rss or 0:>14}  {v['tokens'] == p['tokens']}")
    print(f"{'':<10}hypura-{r}: {h['stream']['requests']} reads of at most "
          f"{h['stream']['request_bytes']} bytes, mean depth {depth:.2f} while busy "
          f"(queue depth {h['stream']['queue_depth']})")
import os
if os.path.exists(f"{out}/sim.json"):
    s = json.load(open(f"{out}/sim.json"))["summary"]
    runs = [json.load(open(f"{out}/hypura-{r}.json")) for r in range(1, reps + 1)]
    measured = statistics.median(h["decode_tok_per_s"] for h in runs)
    per = statistics.median(h["decode_read_bytes"] / max(len(h["tokens"]) - 1, 1) for h in runs)
    print(f"hypura sim {sys.argv[5]}: {s['tok_per_s']:.3f} tok/s, "
          f"{s['bytes_read_per_token']:.0f} bytes read per decoded token, I/O wait "
          f"{s['io_wait_s_per_token']:.3f} s per token; measured (median of {reps}): "
          f"{measured:.3f} tok/s, {per:.0f} bytes")
EOF
