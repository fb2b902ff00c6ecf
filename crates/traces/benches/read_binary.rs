//! Reading a binary trace of 100 M expert ids (DeepSeek-V2-Lite shape: 26 MoE layers, 64
//! experts, top-6, so 641,026 tokens) from the page cache, validation included. Goal: < 2 s.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use traces::{ModelFacts, TokenExtras, TraceBuilder};

const IDS: usize = 100_000_000;

fn write_trace(path: &std::path::Path) {
    let facts = ModelFacts {
        architecture: "deepseek2".into(),
        moe_layers: (1..=26).collect(),
        n_expert: 64,
        top_k: 6,
        n_shared_expert: 2,
    };
    let per_token = facts.ids_per_token();
    let tokens = IDS.div_ceil(per_token);
    let mut b = TraceBuilder::new(facts).unwrap();
    b.reserve_tokens(tokens);
    let mut ids = vec![0u16; per_token];
    let mut state = 0x1234_5678u64;
    for t in 0..tokens {
        if t % 1000 == 0 {
            if t > 0 {
                b.end_sequence().unwrap();
            }
            b.begin_sequence(format!("req-{t}")).unwrap();
        }
        for sel in ids.chunks_exact_mut(6) {
            // Six distinct ids: a random start and stride over the 64 experts (odd stride, so distinct).
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (start, stride) = ((state >> 33) % 64, ((state >> 45) % 32) * 2 + 1);
            for (j, id) in sel.iter_mut().enumerate() {
                *id = ((start + stride * j as u64) % 64) as u16;
            }
        }
        b.push_token(&ids, TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    traces::save(&b.finish().unwrap(), path, false).unwrap();
}

fn read_100m(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("100m.htrace");
    write_trace(&path);
    let mut g = c.benchmark_group("binary");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("read_100M_expert_ids", |b| {
        b.iter(|| {
            let t = traces::binary::read(&path).unwrap();
            assert!(t.n_expert_ids() >= IDS);
            t
        })
    });
    g.finish();
}

criterion_group!(benches, read_100m);
criterion_main!(benches);
