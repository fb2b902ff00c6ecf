//! Full decode simulation speed, end to end (`sim::decode::simulate`: cache replay, step setup,
//! the event-driven engine, records and summary), on the real DeepSeek-V2-Lite trace (22,287
//! tokens; 27 layers + globals = 28 steps per token) with the catalog model on an M4 16 GB
//! profile whose RAM is shrunk until experts stream. Throughput is in (token, layer) steps per
//! second; goal >= 2 M on one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hw::HwProfile;
use place::{Mode, SolveOptions};
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, ExpertPrefetch, Machine, Options, Placement};
use std::path::Path;
use std::time::Duration;
use traces::import::{import, Options as ImportOptions, Source};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // HYPURA_DEEPSEEK_DIR points elsewhere when the bench binary runs away from its checkout.
    let dir = std::env::var_os("HYPURA_DEEPSEEK_DIR").map_or_else(
        || root.join("../../../shared/data/traces/deepseek-v2-lite"),
        Into::into,
    );
    let trace = import(Source::DeepseekCsv, &dir, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("the bench replays the real trace: {e}"));
    let inv = model::load_model("deepseek-v2-lite").unwrap();
    let mut hw = HwProfile::load(root.join("../profiles/m4-16g.toml")).unwrap();
    let opts = SolveOptions {
        rates: Some(decode::expert_rates(&trace)),
        ..SolveOptions::default()
    };
    let solved = loop {
        let s = place::solve(&inv, &hw, &opts).unwrap();
        if s.plan.mode != Mode::FullResident {
            break s;
        }
        hw.ram.bytes /= 2;
        hw.ram.os_reserve_bytes /= 2;
        if let Some(g) = hw.gpu.as_mut() {
            g.memory_bytes = hw.ram.bytes;
            g.working_set_bytes = g.working_set_bytes.min(hw.ram.bytes / 3 * 2);
        }
    };
    let placement = Placement {
        units: &solved.units,
        unit_tiers: &solved.assignment.units,
        experts: &solved.plan.experts,
        cost: &solved.cost,
        dense_pool_bytes: None,
    };
    let machine = Machine::from_profile(&hw);
    let steps = trace.n_tokens() as u64 * (u64::from(solved.units.n_layer) + 1);
    let mut g = c.benchmark_group("decode_deepseek_v2_lite");
    g.throughput(Throughput::Elements(steps));
    g.measurement_time(Duration::from_secs(10));
    g.sample_size(10);
    for (name, policy, prefetch) in [
        ("static", DecodePolicy::Static, ExpertPrefetch::None),
        (
            "lru",
            DecodePolicy::Cache {
                policy: Policy::Lru,
                capacity_bytes: solved.plan.expert_cache.bytes,
                partition: Partition::Global,
            },
            ExpertPrefetch::None,
        ),
        (
            "lru_coactivation",
            DecodePolicy::Cache {
                policy: Policy::Lru,
                capacity_bytes: solved.plan.expert_cache.bytes,
                partition: Partition::Global,
            },
            ExpertPrefetch::Coactivation,
        ),
    ] {
        let opts = Options {
            expert_prefetch: prefetch,
            ..Options::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                decode::simulate(&placement, &machine, &trace, &policy, &opts)
                    .unwrap()
                    .report
                    .tok_per_s
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
