//! Pure cache replay speed on the real DeepSeek-V2-Lite trace (3,476,772 expert accesses; 26 MoE
//! layers x 64 experts, top-6), one core. Goal: LRU >= 100 M accesses/s. Throughput is reported
//! in accesses (elements) per second; `python3 crates/policy/benches/lru_replay.py` is the Python baseline.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use policy::cache::{replay, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use std::path::Path;
use std::time::Duration;
use traces::import::{import, Options, Source};

fn bench(c: &mut Criterion) {
    // HYPURA_DEEPSEEK_DIR points elsewhere when the bench binary runs away from its checkout.
    let dir = std::env::var_os("HYPURA_DEEPSEEK_DIR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/traces/deepseek-v2-lite")
        },
        Into::into,
    );
    let trace = import(Source::DeepseekCsv, &dir, &Options::default())
        .unwrap_or_else(|e| panic!("the bench replays the real trace: {e}"));
    let m = trace.model();
    let bytes = ExpertBytes::uniform(m.n_layers(), 1).unwrap();
    // 25% of all experts: 416 of 1664, i.e. 16 per layer.
    let capacity = Capacity::Experts((m.n_layers() * m.n_expert as usize / 4) as u64);
    let hot = HotSet(
        (0..m.n_layers())
            .flat_map(|l| (0..4u16).map(move |e| (l, e)))
            .collect(),
    );
    let mut g = c.benchmark_group("replay_deepseek_v2_lite_25pct");
    g.throughput(Throughput::Elements(trace.n_expert_ids() as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    let cases = [
        ("lru_per_layer", Policy::Lru, Partition::PerLayer),
        ("lru_global", Policy::Lru, Partition::Global),
        (
            "pinned_lru_per_layer",
            Policy::PinnedLru(hot),
            Partition::PerLayer,
        ),
        ("arc_per_layer", Policy::Arc, Partition::PerLayer),
        ("lfu_per_layer", Policy::Lfu, Partition::PerLayer),
        ("lfru_per_layer", Policy::Lfru, Partition::PerLayer),
        ("lfru_global", Policy::Lfru, Partition::Global),
        ("belady_per_layer", Policy::Belady, Partition::PerLayer),
    ];
    for (name, policy, partition) in cases {
        let config = CacheConfig {
            policy,
            partition,
            capacity,
        };
        g.bench_function(name, |b| {
            b.iter(|| replay(&trace, &config, &bytes).unwrap().hits())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
