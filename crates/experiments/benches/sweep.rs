//! Sweep speed end to end (`experiments::sweep::sweep`: one plan per budget, cache replays and
//! Belady bounds shared, decodes on all cores, rows written as Parquet) on the real
//! DeepSeek-V2-Lite trace (22,287 tokens, 26 MoE layers, 3.48 M expert accesses per
//! configuration) with the catalog model on the M4 16 GB profile narrowed to 6 GiB of RAM, so
//! experts stream. Throughput is configurations per second; `hypura sweep` prints the same
//! and expert accesses per second (README, "hypura sweep"; RESEARCH_NOTES, "Sweep speed").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use experiments::sweep::{self, grid, Identity, ResultsDir, Run, Setup, Shard};
use hw::HwProfile;
use std::path::Path;
use std::time::Duration;
use traces::import::{import, Options as ImportOptions, Source};

/// 24 configurations: 2 policies x 2 cache sizes x 3 expert prefetches x 2 dense depths (the
/// depths decode alike: nothing dense streams).
const GRID: &str =
    "ram=6GiB;policy=lru,belady;cache=1GiB,4GiB;prefetch=none,coactivation,oracle;depth=0..1";

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // HYPURA_DEEPSEEK_DIR points elsewhere when the bench binary runs away from its checkout.
    let dir = std::env::var_os("HYPURA_DEEPSEEK_DIR").map_or_else(
        || root.join("../../../shared/data/traces/deepseek-v2-lite"),
        Into::into,
    );
    let trace = import(Source::DeepseekCsv, &dir, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("the bench replays the real trace: {e}"));
    let inventory = model::load_model("deepseek-v2-lite").unwrap();
    let hw = HwProfile::load(root.join("../../profiles/m4-16g.toml")).unwrap();
    let identity = Identity {
        hypura_version: env!("CARGO_PKG_VERSION").into(),
        model: plan::ModelIdentity::of(&inventory),
        profile_name: hw.name.clone(),
        profile_hash: plan::profile_hash(&hw),
        trace_name: "deepseek-v2-lite".into(),
        trace_hash: "bench".into(),
        tokens: trace.n_tokens() as u64,
    };
    let setup = Setup {
        inventory,
        hw,
        trace,
        identity,
        plan: None,
    };
    let configs = grid::parse(GRID).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = Run {
        threads,
        shard: Shard::ALL,
        rows_per_file: 4096,
        flush_seconds: 60.0,
    };
    let mut g = c.benchmark_group("sweep_deepseek_v2_lite");
    g.throughput(Throughput::Elements(configs.len() as u64));
    g.measurement_time(Duration::from_secs(60));
    g.sample_size(10);
    g.bench_function(
        format!("{} configurations, {threads} threads", configs.len()),
        |b| {
            b.iter(|| {
                let out = tempfile::tempdir().unwrap();
                let mut results = ResultsDir::open(out.path(), Shard::ALL).unwrap();
                let s = sweep::sweep(&setup, &configs, &mut results, &run, &mut |_| {}).unwrap();
                assert_eq!((s.run, s.failed), (configs.len(), 0));
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
