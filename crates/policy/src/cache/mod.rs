//! Expert-cache replay: policies (LRU, LFU, LFRU, ARC, pinned + LRU, Belady-OPT), partitioning
//! and capacity over a routing trace, and the counts.
//!
//! The trace is replayed in its stored order (token by token, MoE layer by layer, the `top_k`
//! ids of a selection in router order, sequences back to back), one access per expert id. A
//! cache slot holds one routed expert of one layer. Every policy starts empty and fetches only on
//! demand; the online policies cache every fetched expert, Belady-OPT may use one without caching
//! it, which makes it the offline optimum over all of them (pinning with the capacity used up by
//! the hot set reads the others without caching them too). Pinned experts are fetched on their first use and never evicted
//! afterwards; a runtime that preloads them at start saves exactly one miss per pinned expert the
//! trace touches.

mod arc;
mod belady;
mod config;
mod lfru;
mod lfu;
mod lists;
mod lru;
mod online;
mod stats;

pub use config::{CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy, RunPolicy};
pub use online::{Access, OnlineCache};
pub use stats::{LayerCounts, ReplayStats};

use crate::PolicyError;
use traces::Trace;

/// What every policy implements: one access to `slot` (`layer * n_expert + expert`) in
/// partition `part` at access index `pos`; returns whether it hit.
pub(crate) trait CachePolicy {
    fn access(&mut self, slot: u32, part: usize, pos: u32) -> bool;
    /// Whether `slot` is cached now (what [`OnlineCache`] diffs to find evictions).
    fn resident(&self, slot: u32) -> bool;
}

/// Replays `trace` through the cache `config` describes; `bytes` gives each MoE layer's expert
/// size (for byte capacities and bytes read).
pub fn replay(
    trace: &Trace,
    config: &CacheConfig,
    bytes: &ExpertBytes,
) -> Result<ReplayStats, PolicyError> {
    replay_recording(trace, config, bytes, |_| {})
}

/// [`replay`], also returning whether each access hit, in the trace's stored order (parallel to
/// [`Trace::expert_ids`]): what the decode simulation turns into compute and reads.
pub fn replay_hits(
    trace: &Trace,
    config: &CacheConfig,
    bytes: &ExpertBytes,
) -> Result<(ReplayStats, Vec<bool>), PolicyError> {
    let mut hits = Vec::with_capacity(trace.n_expert_ids());
    let stats = replay_recording(trace, config, bytes, |hit| hits.push(hit))?;
    Ok((stats, hits))
}

fn replay_recording(
    trace: &Trace,
    config: &CacheConfig,
    bytes: &ExpertBytes,
    mut record: impl FnMut(bool),
) -> Result<ReplayStats, PolicyError> {
    let setup = config::Setup::new(trace, config, bytes)?;
    let per_layer = setup.partition == Partition::PerLayer;
    let stats = match &config.policy {
        Policy::Lru => run(trace, per_layer, lru::Lru::new(&setup), &mut record),
        Policy::Lfu => run(trace, per_layer, lfu::Lfu::new(&setup), &mut record),
        Policy::Lfru => run(trace, per_layer, lfru::Lfru::new(&setup), &mut record),
        Policy::Arc => run(trace, per_layer, arc::Arc::new(&setup), &mut record),
        Policy::PinnedLru(hot) => run(
            trace,
            per_layer,
            lru::PinnedLru::new(&setup, hot)?,
            &mut record,
        ),
        Policy::Belady => run(
            trace,
            per_layer,
            belady::Belady::new(trace, &setup),
            &mut record,
        ),
    };
    let mut stats = stats.with_bytes(bytes);
    stats.capacities = setup.caps.iter().map(|&c| u64::from(c)).collect();
    Ok(stats)
}

/// The replay loop, monomorphised per policy (and recorder) so the access is inlined.
fn run<P: CachePolicy, R: FnMut(bool)>(
    trace: &Trace,
    per_layer: bool,
    mut policy: P,
    record: &mut R,
) -> ReplayStats {
    let m = trace.model();
    let (n_layers, n_expert, k) = (m.n_layers(), m.n_expert as usize, m.top_k as usize);
    let mut hits = vec![0u64; n_layers];
    let mut accesses = vec![0u64; n_layers];
    let mut pos = 0u32;
    for token in trace.expert_ids().chunks_exact(m.ids_per_token()) {
        for (layer, selection) in token.chunks_exact(k).enumerate() {
            let base = (layer * n_expert) as u32;
            let part = if per_layer { layer } else { 0 };
            let mut layer_hits = 0u64;
            for &e in selection {
                let hit = policy.access(base + u32::from(e), part, pos);
                record(hit);
                layer_hits += u64::from(hit);
                pos = pos.wrapping_add(1);
            }
            hits[layer] += layer_hits;
            accesses[layer] += k as u64;
        }
    }
    ReplayStats::from_counts(&hits, &accesses)
}
