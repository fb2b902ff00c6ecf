//! Header parse time: the real gemma-3-270m GGUF (262k-token vocabulary, 236 tensors), and a 40 GB
//! Llama-3.3-70B Q4_K_M file with a real-sized BPE tokenizer (128k tokens, 280k merges) whose data
//! section is sparse — the reader never touches tensor data, so only the header costs time.

use criterion::{criterion_group, criterion_main, Criterion};
use gguf::{encode_header, Array, TensorSpec, Value};
use std::path::PathBuf;

fn gemma_path() -> PathBuf {
    testkit::gemma_3_270m_or_panic()
}

/// Writes the catalog's Llama-3.3-70B Q4_K_M as a sparse GGUF: full header, holes for the data.
fn sparse_llama70b(dir: &std::path::Path) -> PathBuf {
    let model = model::catalog::model("llama-3.3-70b").unwrap();
    let inv = model::catalog::lookup("llama-3.3-70b:q4_k_m").unwrap();
    let mut md = model::catalog::shapes::arch_metadata(&(model.spec)());
    let tokens: Vec<String> = (0..128_256).map(|i| format!("Ġtok{i}")).collect();
    let merges: Vec<String> = (0..280_147).map(|i| format!("Ġt ok{i}")).collect();
    md.insert("tokenizer.ggml.model", Value::String("gpt2".into()));
    md.insert("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    md.insert(
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![1; 128_256])),
    );
    md.insert("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
    let specs: Vec<TensorSpec> = inv
        .tensors
        .iter()
        .map(|t| TensorSpec::new(&t.name, t.dims.clone(), t.ggml_type))
        .collect();
    let (header, layout) = encode_header(&md, &specs).unwrap();
    let path = dir.join("llama-3.3-70b-q4_k_m-sparse.gguf");
    let f = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &f, &header).unwrap();
    f.set_len(layout.file_bytes).unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let path = gemma_path();
    c.bench_function("gguf_header/gemma-3-270m", |b| {
        b.iter(|| gguf::GgufHeader::open(&path).unwrap())
    });
    c.bench_function("inventory/gemma-3-270m", |b| {
        b.iter(|| model::Inventory::from_gguf(&path).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let big = sparse_llama70b(dir.path());
    let inv = model::Inventory::from_gguf(&big).unwrap();
    assert!(inv.total_bytes() > 40_000_000_000, "expected a 40 GB model");
    c.bench_function("inventory/llama-3.3-70b-q4_k_m-40GB-sparse", |b| {
        b.iter(|| model::Inventory::from_gguf(&big).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
