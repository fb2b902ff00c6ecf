"""Writes small valid inputs into fuzz/corpus/<target>/ as fuzzing seeds.

Every seed is made independently of hypura's code: GGUF files with the PyPI `gguf` package's
writer, traces with Python's `json` and `struct` following crates/traces/FORMAT.md, plan.json
from a dict, importer inputs from the traces crate's test fixtures and from slices of the real
recorded traces in ../shared/data (skipped when that folder is absent). Profiles are the shipped
profiles/*.toml and variants of one.

Run from anywhere: python3 fuzz/seeds.py   (needs numpy and gguf only for the GGUF seeds;
--no-gguf skips them)
"""

import csv
import io
import json
import struct
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "crates" / "traces" / "tests" / "fixtures"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


# --- GGUF ---------------------------------------------------------------------------------


def gguf_seeds():
    import gguf
    import numpy as np

    out = CORPUS / "gguf_header"
    out.mkdir(parents=True, exist_ok=True)

    def write(name, version=3, kvs=(), tensors=(), alignment=None):
        path = out / name
        w = gguf.GGUFWriter(str(path), arch="llama")
        if alignment:
            w.add_custom_alignment(alignment)
        for key, value, vtype in kvs:
            w.add_key_value(key, value, vtype)
        for tname, array, raw_dtype in tensors:
            w.add_tensor(tname, array, raw_dtype=raw_dtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        if version != 3:
            # v2 has v3's layout; the writer only emits v3, so patch the version field.
            data = bytearray(path.read_bytes())
            data[4:8] = version.to_bytes(4, "little")
            path.write_bytes(data)

    T = gguf.GGUFValueType
    write("empty.gguf")
    write("empty_v2.gguf", version=2)
    write(
        "every_type.gguf",
        kvs=[
            ("u8", 200, T.UINT8), ("i8", -3, T.INT8), ("u16", 60000, T.UINT16), ("i16", -300, T.INT16),
            ("u32", 7, T.UINT32), ("i32", -7, T.INT32), ("f32", 0.5, T.FLOAT32), ("b", True, T.BOOL),
            ("s", "héllo", T.STRING), ("u64", 1 << 40, T.UINT64), ("i64", -(1 << 40), T.INT64),
            ("f64", 2.5, T.FLOAT64), ("arr.s", ["a", "bc"], T.ARRAY), ("arr.i", [1, 2, 3], T.ARRAY),
            ("arr.nested", [[1, 2], [3]], T.ARRAY),
        ],
    )
    f32 = np.arange(8, dtype=np.float32)
    q4_0 = np.zeros((2, 18), dtype=np.uint8)  # two Q4_0 blocks: one row of 64 elements
    write(
        "tensors.gguf",
        kvs=[("llama.block_count", 1, T.UINT32)],
        tensors=[("token_embd.weight", f32, None), ("blk.0.attn_q.weight", q4_0, gguf.GGMLQuantizationType.Q4_0)],
    )
    write("aligned64.gguf", tensors=[("a", f32, None), ("b", f32[:3], None)], alignment=64)


# --- traces (FORMAT.md) -------------------------------------------------------------------

# A trace as plain data: model facts, then sequences of tokens, each token a dict with
# "experts" ([layer][k] ids) and optionally "weights", "phase", "t_ns", "text".
SMALL = {
    "model": {"architecture": "deepseek2", "moe_layers": [1, 2], "n_expert": 64, "top_k": 2,
              "n_shared_expert": 2},
    "sequences": [
        {"id": "prompt_0001", "tokens": [
            {"experts": [[8, 26], [3, 35]], "weights": [[0.61, 0.39], [0.7, 0.3]],
             "phase": "prefill", "t_ns": 1200, "text": "How"},
            {"experts": [[1, 0], [63, 2]], "weights": [[0.5, -0.0], [1e-40, 3.4e38]],
             "phase": "decode", "t_ns": 1500, "text": "a, \"q\"\n\u00e9\u2028"},
        ]},
        {"id": "", "tokens": [
            {"experts": [[5, 6], [7, 8]], "weights": [[0.25, 0.75], [1.0, 0.0]],
             "phase": "decode", "t_ns": 18446744073709551615, "text": ""},
        ]},
    ],
}


def bare(trace):
    """The same trace without any optional per-token field."""
    return {
        "model": trace["model"],
        "sequences": [{"id": s["id"], "tokens": [{"experts": t["experts"]} for t in s["tokens"]]}
                      for s in trace["sequences"]],
    }


WIDE = {
    "model": {"architecture": "w", "moe_layers": [0, 3, 511], "n_expert": 300, "top_k": 3},
    "sequences": [{"id": "wide", "tokens": [
        {"experts": [[299, 0, 256], [1, 2, 3], [257, 255, 100]], "t_ns": 7},
        {"experts": [[4, 5, 6], [298, 297, 296], [0, 1, 2]], "t_ns": 9},
    ]}],
}

ONE = {
    "model": {"architecture": "mixtral", "moe_layers": [0], "n_expert": 1, "top_k": 1},
    "sequences": [{"id": "s", "tokens": [{"experts": [[0]]}]}],
}


def trace_json(trace, indent=None, with_format=True):
    doc = {}
    if with_format:
        doc["format"] = "hypura-trace"
    doc["version"] = 1
    doc["model"] = trace["model"]
    doc["sequences"] = trace["sequences"]
    return json.dumps(doc, indent=indent, ensure_ascii=False)


def trace_binary(trace):
    """FORMAT.md's binary layout, written from its table."""
    m = trace["model"]
    toks = [t for s in trace["sequences"] for t in s["tokens"]]
    first = toks[0]
    flags = ((1 if "weights" in first else 0) | (2 if "phase" in first else 0)
             | (4 if "t_ns" in first else 0) | (8 if "text" in first else 0))
    width = 1 if m["n_expert"] <= 256 else 2

    def string(s):
        b = s.encode()
        return struct.pack("<I", len(b)) + b

    out = bytearray(b"HYPTRACE")
    out += struct.pack("<7I", 1, flags, m["n_expert"], m["top_k"], m.get("n_shared_expert", 0),
                       len(m["moe_layers"]), width)
    out += struct.pack("<QQ", len(trace["sequences"]), len(toks))
    out += string(m["architecture"])
    out += struct.pack(f"<{len(m['moe_layers'])}I", *m["moe_layers"])
    for s in trace["sequences"]:
        out += struct.pack("<Q", len(s["tokens"])) + string(s["id"])
    fmt = "B" if width == 1 else "H"
    for t in toks:
        for sel in t["experts"]:
            out += struct.pack(f"<{len(sel)}{fmt}", *sel)
    if flags & 1:
        for t in toks:
            for sel in t["weights"]:
                out += struct.pack(f"<{len(sel)}f", *sel)
    if flags & 2:
        out += bytes(0 if t["phase"] == "prefill" else 1 for t in toks)
    if flags & 4:
        out += b"".join(struct.pack("<Q", t["t_ns"]) for t in toks)
    if flags & 8:
        out += b"".join(string(t["text"]) for t in toks)
    return bytes(out)


def trace_seeds():
    for name, t in [("small", SMALL), ("bare", bare(SMALL)), ("wide", WIDE), ("one", ONE)]:
        put("trace_json", f"{name}.json", trace_json(t))
        put("trace_binary", f"{name}.htrace", trace_binary(t))
    put("trace_json", "small_indented.json", trace_json(SMALL, indent=2))
    put("trace_json", "no_format_key.json", trace_json(ONE, with_format=False))
    # Rejected inputs, to start the fuzzer near the error paths.
    put("trace_json", "version2.json", trace_json(ONE).replace('"version": 1', '"version": 2'))
    put("trace_json", "sequences_first.json",
        '{"sequences": [], "version": 1, "model": {"architecture": "a", "moe_layers": [0], '
        '"n_expert": 2, "top_k": 1}}')


# --- importers ----------------------------------------------------------------------------

# trace_import: byte 0 picks the source, byte 1 the options (see fuzz_targets/trace_import.rs):
# bits 0-1 --n-expert [none, 8, 64, 300], bits 2-3 --top-k [none, 1, 2, 6],
# bits 4-5 --layers [none, 1,2, 1,3, 0..=5], bit 6 --n-shared-expert 2, bit 7 --arch.
CSV, SWITCH, JSONL, ROUTED = range(4)


def opts(n_expert=0, top_k=0, layers=0, shared=False, arch=False):
    return n_expert | top_k << 2 | layers << 4 | shared << 6 | arch << 7


def imp(name, source, options, data):
    if isinstance(data, str):
        data = data.encode()
    put("trace_import", name, bytes([source, options]) + data)


def deepseek_slice(path, positions):
    """The first `positions` rows of every layer block of a real DeepSeek CSV."""
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    header, body = rows[0], rows[1:]
    kept, count = [], {}
    for r in body:
        count[r[0]] = count.get(r[0], 0) + 1
        if count[r[0]] <= positions:
            kept.append(r)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(kept)
    return buf.getvalue()


def import_seeds():
    small = opts(n_expert=1, top_k=2, layers=1)  # 8 experts, top-2, layers 1,2
    imp("deepseek_quoted.csv", CSV, small, (FIXTURES / "deepseek_quoted.csv").read_bytes())
    imp("deepseek_tiny.csv", CSV, small,
        "Layer ID,Batch Number,Token,Activated Expert IDs\n"
        '1,0,a,"[0, 1]"\n2,0,a,"[2, 3]"\n')
    imp("vllm_routes.jsonl", JSONL, opts(n_expert=1), (FIXTURES / "vllm_routes.jsonl").read_bytes())
    imp("vllm_routes_layers.jsonl", JSONL, opts(n_expert=1, top_k=2, layers=2),
        (FIXTURES / "vllm_routes.jsonl").read_bytes())
    imp("vllm_routed.json", ROUTED, opts(n_expert=1), (FIXTURES / "vllm_routed.json").read_bytes())
    imp("vllm_routed_by_request.json", ROUTED, opts(n_expert=1),
        (FIXTURES / "vllm_routed_by_request.json").read_bytes())
    sel = [[[1], [0], [7], [3], [2], [5]], [[4], [4], [3], [3], [4], [1]], [[0], [6], [2], [7], [1], [0]]]
    rt = {"version": 2, "expertsPerLayer": 8, "layers": 6, "topK": 1, "tokens": 3, "selections": sel}
    meta = {"sparse_encoder_block_indices": [1, 3, 5, 7, 9, 11],
            "prompt_spans": [{"id": "p1", "token_start": 0, "token_end_exclusive": 2},
                             {"id": "p2", "token_start": 2, "token_end_exclusive": 3}]}
    imp("switch_meta.json", SWITCH, 0, json.dumps(rt) + "\0" + json.dumps(meta))
    imp("switch_alone.json", SWITCH, 0, json.dumps(rt))
    # Regression: a huge "layers" once made the importer allocate 4 bytes per layer (4 GB here).
    imp("switch_many_layers.json", SWITCH, 0,
        '{"version":2,"expertsPerLayer":8,"layers":1000000000,"topK":1,"tokens":0,"selections":[]}')

    ds = SHARED / "traces" / "deepseek-v2-lite" / "prompt_0002.csv"
    if ds.is_file():
        imp("real_deepseek_prompt_0002_head.csv", CSV, 0, deepseek_slice(ds, 2))
    sw = SHARED / "traces" / "switch-base-8"
    if (sw / "router-trace.v2.json").is_file():
        rt = json.loads((sw / "router-trace.v2.json").read_text())
        meta = json.loads((sw / "capture-metadata.json").read_text())
        n = 8
        real = {"version": rt["version"], "expertsPerLayer": rt["expertsPerLayer"],
                "layers": rt["layers"], "topK": rt["topK"], "tokens": n,
                "selections": rt["selections"][:n]}
        spans = meta["prompt_spans"][:2]
        real_meta = {"sparse_encoder_block_indices": meta["sparse_encoder_block_indices"],
                     "prompt_spans": [{"id": spans[0]["id"], "token_start": 0, "token_end_exclusive": 5},
                                      {"id": spans[1]["id"], "token_start": 5, "token_end_exclusive": n}]}
        imp("real_switch_head.json", SWITCH, 0, json.dumps(real) + "\0" + json.dumps(real_meta))


# --- hardware profiles ------------------------------------------------------------------

CPU_ONLY = """version = 1
name = "CPU only"

[ram]
bytes = 17179869184
bandwidth_gbps = 50.0
os_reserve_bytes = 2147483648

[storage]
seq_read_gbps = 3.0
read_4k_qd1_latency_s = 8e-5

[[storage.read_curve]]
block_bytes = 4096
queue_depth = 1
gbps = 0.05

[[storage.read_curve]]
block_bytes = 1048576
queue_depth = 1
gbps = 2.0

[[storage.read_curve]]
block_bytes = 4096
queue_depth = 32
gbps = 0.9

[[storage.read_curve]]
block_bytes = 1048576
queue_depth = 32
gbps = 3.1

[cpu]
cores = 8
fp32_gflops = 500.0
"""

DISCRETE = CPU_ONLY.replace('name = "CPU only"\n', '''name = "discrete \\"GPU\\" \\u00e9"

[gpu]
name = "Some GPU"
memory_bytes = 25769803776
working_set_bytes = 24000000000
bandwidth_gbps = 1000.0
fp16_tflops = 150.5
fp32_tflops = 60.25
unified_memory = false
compute_headroom_bytes = 1073741824

[host_link]
h2d_gbps = 25.0
d2h_gbps = 26.5
''')


def profile_seeds():
    for p in sorted((ROOT / "profiles").glob("*.toml")):
        put("hw_profile", p.name, p.read_bytes())
    put("hw_profile", "cpu_only.toml", CPU_ONLY)
    put("hw_profile", "discrete.toml", DISCRETE)


# --- plan.json ----------------------------------------------------------------------------

PLAN = {
    "version": 2,
    "inputs": {
        "model": {"name": "tiny.gguf", "file_bytes": 123456, "header_hash": "0123456789abcdef"},
        "profile_name": "m1max", "profile_hash": "fedcba9876543210",
        "trace_hash": "00112233aabbccdd", "ctx": 4096, "kv_type": "f16",
    },
    "mode": "expert-streaming",
    "solver": {"method": "ilp", "status": "optimal", "lp_bound_s": 0.01, "objective_s": 0.0125,
               "mip_bound_s": 0.012, "gap": 0.04, "greedy_objective_s": 0.015},
    "capacities": {"gpu_bytes": 1000000, "ram_bytes": 2000000, "unified": False,
                   "kv_cache_bytes": 4096, "compute_buffer_bytes": 8192, "gpu_used_bytes": 900000,
                   "ram_used_bytes": 100, "nvme_bytes": 5000},
    "tensors": {"token_embd.weight": "ram", "output.weight": "gpu",
                "blk.1.ffn_gate_exps.weight": {"split": {"layer": 1}},
                "blk.1.ffn_up_exps.weight": "nvme"},
    "experts": [{"layer": 1, "tensors": ["blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight"],
                 "expert_bytes": 512, "gpu": [0, 2], "ram": [1], "nvme": [3]}],
    "expert_cache": {"bytes": 1024, "policy": "static-frequency", "hit_rate": 0.75},
    "pool_bytes": 65536,
    "prefetch_depth": 2,
    "io": {"queue_depth": 8, "threads": 4, "dense_block_bytes": 1048576, "dense_gbps": 3.5,
           "expert_block_bytes": 262144, "expert_queue_depth": 6, "expert_gbps": 2.25,
           "row_bytes": 4096, "row_gbps": 0.05},
    "prediction": {"tok_per_s": 80.0, "token_s": 0.0125,
                   "layers": [{"layer": None, "gpu_s": 0.001, "cpu_s": 0.0, "io_dense_s": 0.0,
                               "io_expert_s": 0.0, "total_s": 0.001},
                              {"layer": 1, "gpu_s": 0.002, "cpu_s": 0.0005, "io_dense_s": 1e-300,
                               "io_expert_s": 0.004, "total_s": 0.0065}],
                   "prefill": {"prompt_len": 512, "prefill_s": 0.5, "tok_per_s": 1024.0}},
}


def plan_seeds():
    put("plan_json", "plan.json", json.dumps(PLAN, indent=2))
    greedy = json.loads(json.dumps(PLAN))
    greedy["solver"].update(method="greedy", status="heuristic", lp_bound_s=None, mip_bound_s=None, gap=None)
    del greedy["inputs"]["trace_hash"], greedy["prediction"]["prefill"], greedy["capacities"]["gpu_bytes"]
    greedy["mode"] = "full-resident"
    put("plan_json", "greedy.json", json.dumps(greedy))
    put("plan_json", "version1.json", json.dumps({**PLAN, "version": 1}))


def main():
    if "--no-gguf" not in sys.argv[1:]:
        gguf_seeds()
    trace_seeds()
    import_seeds()
    profile_seeds()
    plan_seeds()


if __name__ == "__main__":
    main()
