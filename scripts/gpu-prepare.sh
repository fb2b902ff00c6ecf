# Sourced by the GPU scripts (gpu-check.sh, gpu-resident-ratio.sh), run on a CUDA machine without
# cargo, in the repo root with .dev carried (see their headers): builds llama.cpp's CUDA libraries
# once (into /tmp/llb), points the dynamically linked .dev/hypura at them, profiles the machine into
# /tmp/gpu.toml (not with NO_PROFILE set), and defines `field`, which reads `hypura run --json` on stdin and prints
# "<tok/s> tok/s, <n> tokens #<crc of the token ids>".
# Needs OUT (build.log and gpu.txt, the GPU's name, go there); sets B (the binary) and P (the prompt).
B=$PWD/.dev/hypura
P="The history of the printing press begins"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
[ -f /tmp/llb/bin/libllama.so ] || bash scripts/cuda-libs.sh .dev/llama.cpp /tmp/llb 90 >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/tmp/llb/bin
[ -n "${NO_PROFILE:-}" ] || $B profile --disk /tmp --quick -o /tmp/gpu.toml >/dev/null 2>&1
field() {
  python3 -c "import json,sys,zlib; v=json.load(sys.stdin); t=v['tokens']; print('%.1f tok/s, %d tokens #%05d' % (v['decode_tok_per_s'], len(t), zlib.crc32(str(t).encode()) % 100000), end='')"
}
