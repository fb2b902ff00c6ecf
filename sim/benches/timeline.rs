//! Event-core speed: (token, layer) steps per second through `sim::events::simulate`, on the
//! DeepSeek-V2-Lite shape (22,287 tokens x 26 MoE layers = 579,462 steps) with a miss pattern of
//! 0 to 5 reads per step. Goal of the full simulation: >= 2 M steps/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim::events::{simulate, Step, Storage};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let steps: Vec<Step> = (0..22_287 * 26)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let misses = (state >> 61) as usize % 6;
            Step {
                attention_ns: 40_000,
                experts_ns: 60_000,
                reads: vec![2_752_512; misses],
            }
        })
        .collect();
    let storage = Storage {
        bandwidth_bytes_per_s: 5e9,
        latency_ns: 80_000,
    };
    let mut g = c.benchmark_group("timeline");
    g.throughput(Throughput::Elements(steps.len() as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    g.bench_function("decode_steps", |b| {
        b.iter(|| simulate(&steps, storage).unwrap().end_ns())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
