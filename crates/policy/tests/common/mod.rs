//! Helpers shared by the integration tests: trace construction, the real-trace folder, and
//! brute-force reference caches that are slow but obviously correct.
#![allow(dead_code)]

pub mod reference;

use std::path::PathBuf;
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

/// `../shared/data` beside the repository (real recorded traces; never copied into the repo).
pub fn shared_data() -> PathBuf {
    testkit::shared_data("")
}

/// The real DeepSeek-V2-Lite trace, imported from its CSVs once per test binary.
pub fn deepseek() -> &'static Trace {
    static TRACE: std::sync::OnceLock<Trace> = std::sync::OnceLock::new();
    TRACE.get_or_init(|| {
        let dir = shared_data().join("traces/deepseek-v2-lite");
        traces::import::import(
            traces::import::Source::DeepseekCsv,
            &dir,
            &traces::import::Options::default(),
        )
        .unwrap()
    })
}

/// The first `n` sequences of `trace` as a trace of their own.
pub fn first_sequences(trace: &Trace, n: usize) -> Trace {
    let mut b = TraceBuilder::new(trace.model().clone()).unwrap();
    let per_token = trace.model().ids_per_token();
    for seq in trace.sequences().take(n) {
        b.begin_sequence(seq.id).unwrap();
        for t in seq.tokens {
            let ids = &trace.expert_ids()[t * per_token..(t + 1) * per_token];
            b.push_token(ids, TokenExtras::default()).unwrap();
        }
        b.end_sequence().unwrap();
    }
    b.finish().unwrap()
}

/// A trace of one sequence whose selections come from `raw`, skewed towards low expert ids
/// (so caches see reuse) and made distinct within each selection.
pub fn skewed_trace(n_layers: usize, n_expert: u32, top_k: u32, raw: &[u16]) -> Trace {
    let facts = ModelFacts {
        architecture: "test".into(),
        moe_layers: (0..n_layers as u32).collect(),
        n_expert,
        top_k,
        n_shared_expert: 0,
    };
    let per_token = facts.ids_per_token();
    let mut b = TraceBuilder::new(facts).unwrap();
    b.begin_sequence("s").unwrap();
    for token in raw.chunks_exact(per_token) {
        let mut ids = Vec::with_capacity(per_token);
        for selection in token.chunks_exact(top_k as usize) {
            let start = ids.len();
            for &v in selection {
                // v in 0..1000; squaring bunches ids near 0.
                let v = u64::from(v % 1000);
                let mut e = (v * v * u64::from(n_expert) / 1_000_000) as u16;
                while ids[start..].contains(&e) {
                    e = (e + 1) % n_expert as u16;
                }
                ids.push(e);
            }
        }
        b.push_token(&ids, TokenExtras::default()).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}
