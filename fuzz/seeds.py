"""Writes small valid GGUF files into fuzz/corpus/gguf_header/ as fuzzing seeds.

Uses the PyPI `gguf` package's writer, so the seeds are made independently of hypura's code.
Run from the repository root: python3 fuzz/seeds.py
"""

from pathlib import Path

import gguf
import numpy as np

OUT = Path(__file__).parent / "corpus" / "gguf_header"


def write(name, version=3, kvs=(), tensors=(), alignment=None):
    path = OUT / name
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


def main():
    OUT.mkdir(parents=True, exist_ok=True)
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


if __name__ == "__main__":
    main()
