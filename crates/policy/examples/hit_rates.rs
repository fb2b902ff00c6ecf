//! Hit rate of every policy and partitioning on the real DeepSeek-V2-Lite trace at a few cache
//! sizes, as the Markdown table in RESEARCH_NOTES.md:
//! `cargo run --release -p policy --example hit_rates [TRACE_DIR]`.
//! Pinned-LRU pins, in every layer, the most used experts of that layer over the whole trace
//! (half of the layer's share of the capacity).

use policy::cache::{replay, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use std::path::PathBuf;
use traces::import::{import, Options, Source};
use traces::Trace;

fn hot_set(trace: &Trace, per_layer: usize) -> HotSet {
    let m = trace.model();
    let mut uses = vec![vec![0u64; m.n_expert as usize]; m.n_layers()];
    for t in 0..trace.n_tokens() {
        for (l, layer_uses) in uses.iter_mut().enumerate() {
            for &e in trace.selection(t, l) {
                layer_uses[e as usize] += 1;
            }
        }
    }
    let mut hot = Vec::new();
    for (l, layer_uses) in uses.iter().enumerate() {
        let mut order: Vec<u16> = (0..m.n_expert as u16).collect();
        order.sort_by_key(|&e| (std::cmp::Reverse(layer_uses[e as usize]), e));
        hot.extend(order[..per_layer].iter().map(|&e| (l, e)));
    }
    HotSet(hot)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/traces/deepseek-v2-lite")
        });
    let trace = import(Source::DeepseekCsv, &dir, &Options::default())?;
    let m = trace.model();
    let all = m.n_layers() * m.n_expert as usize;
    let bytes = ExpertBytes::uniform(m.n_layers(), 1)?;
    let fractions = [0.0625, 0.125, 0.25, 0.5];
    print!("| policy | partition |");
    for f in fractions {
        print!(" {}% ({}) |", f * 100.0, (all as f64 * f) as usize);
    }
    println!("\n|---|---|{}", "---|".repeat(fractions.len()));
    for (partition, label) in [
        (Partition::PerLayer, "per-layer"),
        (Partition::Global, "global"),
    ] {
        for name in Policy::NAMES {
            print!("| {name} | {label} |");
            for f in fractions {
                let cap = (all as f64 * f) as usize;
                let policy = match Policy::from_name(name)? {
                    Policy::PinnedLru(_) => {
                        Policy::PinnedLru(hot_set(&trace, cap / m.n_layers() / 2))
                    }
                    p => p,
                };
                let cfg = CacheConfig {
                    policy,
                    partition,
                    capacity: Capacity::Experts(cap as u64),
                };
                print!(" {:.3} |", replay(&trace, &cfg, &bytes)?.hit_rate());
            }
            println!();
        }
    }
    Ok(())
}
