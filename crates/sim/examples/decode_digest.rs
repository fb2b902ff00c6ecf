//! Fingerprints of full decode simulations on the real DeepSeek-V2-Lite trace, for checking that
//! an engine change keeps every record and report bit for bit, and a driver for profiling the
//! engine: `cargo run --release -p sim --example decode_digest [TRACE_DIR] [REPEAT] [TOKENS]`.
//!
//! Each line names a scenario (profile, cache policy, expert prefetch, dense prefetch depth, host
//! weights on the GPU) and prints an FNV-1a hash of every record's fields (floats by their bits)
//! and of the report's JSON (printed too when `DIGEST_REPORTS` is set); the run is repeated
//! `REPEAT` times (default 1) for profiling, on the trace's first `TOKENS` tokens (default all).

use hw::HwProfile;
use metrics::TokenLayerRecord;
use place::{Mode, SolveOptions, Solved};
use policy::cache::{Partition, Policy};
use sim::decode::{self, DecodePolicy, ExpertPrefetch, Machine, Options, Placement};
use std::path::{Path, PathBuf};
use traces::import::{import, Options as ImportOptions, Source};
use traces::Trace;

struct Fnv(seeded::Fnv1a);

impl Fnv {
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
}

fn record_hash(records: &[TokenLayerRecord]) -> u64 {
    let mut h = Fnv(seeded::Fnv1a::default());
    for r in records {
        h.u64(u64::from(r.token));
        h.u64(r.layer.map_or(u64::MAX, u64::from));
        for f in [
            r.start_s,
            r.wall_s,
            r.compute_s,
            r.io_wait_s,
            r.link_s,
            r.storage_busy_s,
        ] {
            h.u64(f.to_bits());
        }
        h.u64(r.bytes_read);
        h.u64(r.bytes_linked);
        h.u64(u64::from(r.expert_hits));
        h.u64(u64::from(r.expert_accesses));
        h.u64(u64::from(r.prefetch_hits));
    }
    h.0.value()
}

/// Solves DeepSeek-V2-Lite on `profile`, halving memory until experts stream.
fn solve_streaming(root: &Path, profile: &str, trace: &Trace) -> (HwProfile, Solved) {
    let inv = model::load_model("deepseek-v2-lite").unwrap();
    let mut hw = HwProfile::load(root.join("../../profiles").join(profile)).unwrap();
    let opts = SolveOptions {
        rates: Some(decode::expert_rates(trace)),
        ..SolveOptions::default()
    };
    loop {
        let s = place::solve(&inv, &hw, &opts).unwrap();
        if s.plan.mode != Mode::FullResident {
            return (hw, s);
        }
        hw.ram.bytes /= 2;
        hw.ram.os_reserve_bytes /= 2;
        if let Some(g) = hw.gpu.as_mut() {
            if g.unified_memory {
                g.memory_bytes = hw.ram.bytes;
            } else {
                g.memory_bytes /= 2;
            }
            g.working_set_bytes = g.working_set_bytes.min(g.memory_bytes / 3 * 2);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || root.join("../../../shared/data/traces/deepseek-v2-lite"),
        PathBuf::from,
    );
    let repeat: usize = args.next().map_or(1, |s| s.parse().unwrap());
    let tokens: usize = args.next().map_or(usize::MAX, |s| s.parse().unwrap());
    let trace = import(Source::DeepseekCsv, &dir, &ImportOptions::default()).unwrap();
    let trace = decode::first_tokens(&trace, tokens).unwrap();
    for (profile, host_on_gpu) in [("m4-16g.toml", false), ("h100-pcie-80g.toml", true)] {
        let (hw, solved) = solve_streaming(root, profile, &trace);
        let placement = Placement {
            units: &solved.units,
            unit_tiers: &solved.assignment.units,
            experts: &solved.plan.experts,
            cost: &solved.cost,
            dense_pool_bytes: None,
        };
        let machine = Machine::from_profile(&hw);
        let cache = |policy| DecodePolicy::Cache {
            policy,
            capacity_bytes: solved.plan.expert_cache.bytes,
            partition: Partition::Global,
        };
        let scenarios = [
            (DecodePolicy::Static, ExpertPrefetch::None, 1),
            (DecodePolicy::Static, ExpertPrefetch::Coactivation, 0),
            (DecodePolicy::Static, ExpertPrefetch::Oracle, 2),
            (cache(Policy::Lru), ExpertPrefetch::None, 1),
            (cache(Policy::Lru), ExpertPrefetch::Coactivation, 1),
            (cache(Policy::Lru), ExpertPrefetch::Oracle, 0),
            (cache(Policy::Lfru), ExpertPrefetch::Coactivation, 2),
            (cache(Policy::Belady), ExpertPrefetch::None, 1),
        ];
        for (policy, expert_prefetch, prefetch_depth) in scenarios {
            for host_weights_on_gpu in [false, host_on_gpu] {
                let opts = Options {
                    prefetch_depth,
                    expert_prefetch,
                    queue_depth: None,
                    host_weights_on_gpu,
                    keep_records: true,
                };
                let mut run = None;
                let t0 = std::time::Instant::now();
                for _ in 0..repeat {
                    run = Some(
                        decode::simulate(&placement, &machine, &trace, &policy, &opts).unwrap(),
                    );
                }
                let secs = t0.elapsed().as_secs_f64() / repeat as f64;
                let run = run.unwrap();
                let mut h = Fnv(seeded::Fnv1a::default());
                h.0.update(serde_json::to_string(&run.report).unwrap().as_bytes());
                println!(
                    "{profile} {} {} depth {prefetch_depth} host_on_gpu {host_weights_on_gpu}: records {:016x} report {:016x} ({} records, {:.3} M steps/s)",
                    policy.name(),
                    expert_prefetch.name(),
                    record_hash(&run.records),
                    h.0.value(),
                    run.records.len(),
                    run.records.len() as f64 / secs / 1e6,
                );
                if std::env::var_os("DIGEST_REPORTS").is_some() {
                    println!("{}", serde_json::to_string(&run.report).unwrap());
                }
                if !host_on_gpu {
                    break;
                }
            }
        }
    }
}
