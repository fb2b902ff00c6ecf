//! `hypura trace stats`: the locality statistics that expert placement and caching depend on.
//!
//! Definitions (all per MoE layer unless said otherwise; tokens are compared only within their
//! own sequence, except for the working set, which runs over all sequences back to back):
//! - popularity: each expert's share of the layer's selections; `entropy_bits` of that
//!   distribution, `entropy_norm` = entropy / log2(n_expert), `top10_share` = share of the
//!   ceil(n_expert / 10) most selected experts.
//! - reuse distance: for each selected expert, tokens since the same expert was last selected
//!   at this layer in this sequence (1 = previous token); buckets 1, 2, 3-4, 5-8, ..., 33-64,
//!   >64 and `first` (not selected before in the sequence).
//! - `prev_token_reuse`: fraction of a token's selected experts that the previous token also
//!   selected (mean over consecutive token pairs).
//! - co-activation: pairs of experts selected by the same token in one layer, and pairs
//!   (expert at layer i, expert at the next MoE layer) for the same token; the top pairs by
//!   count, with lift = P(both) / (P(first) P(second)).
//! - working set: distinct (layer, expert) pairs touched in a sliding window of W tokens.
//! - LRU hit rate: one LRU cache of (layer, expert) slots of a given size, fed every selection.

mod coactivation;
mod lru;
pub(crate) mod popularity;
pub(crate) mod reuse;
mod table;
mod working_set;

pub use coactivation::{CrossLayerPairs, Pair};
pub use lru::{hit_rate as lru_hit_rate, LruPoint};
pub use popularity::Popularity;
pub use reuse::{ReuseHistogram, REUSE_BUCKETS};
pub use table::render;
pub use working_set::{compute as working_set, WorkingSet};

use crate::model::Trace;
use serde::Serialize;

/// What to compute beyond the fixed statistics.
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// Co-activation pairs to keep per layer and per adjacent-layer pair.
    pub top_pairs: usize,
    /// Window sizes (tokens) for the working-set statistic.
    pub windows: Vec<usize>,
    /// LRU cache sizes as fractions of all routed experts (n_layers * n_expert).
    pub lru_fractions: Vec<f64>,
}

impl Default for StatsOptions {
    fn default() -> StatsOptions {
        StatsOptions {
            top_pairs: 5,
            windows: vec![1, 16, 64, 256, 1024],
            lru_fractions: vec![0.1, 0.25, 0.5],
        }
    }
}

/// Statistics of one MoE layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerStats {
    pub layer: u32,
    pub popularity: Popularity,
    pub reuse: ReuseHistogram,
    pub prev_token_reuse: f64,
    pub top_pairs: Vec<Pair>,
}

/// Everything `hypura trace stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub architecture: String,
    pub n_expert: u32,
    pub top_k: u32,
    pub sequences: usize,
    pub tokens: usize,
    pub selections: usize,
    pub expert_ids: usize,
    pub layers: Vec<LayerStats>,
    pub cross_layer: Vec<CrossLayerPairs>,
    pub working_set: Vec<WorkingSet>,
    pub lru: Vec<LruPoint>,
}

pub fn compute(trace: &Trace, opts: &StatsOptions) -> Stats {
    let m = trace.model();
    let layers = (0..m.n_layers())
        .map(|l| {
            let (reuse, prev_token_reuse) = reuse::layer(trace, l);
            LayerStats {
                layer: m.moe_layers[l],
                popularity: popularity::layer(trace, l),
                reuse,
                prev_token_reuse,
                top_pairs: coactivation::within_layer(trace, l, opts.top_pairs),
            }
        })
        .collect();
    let cross_layer = (0..m.n_layers().saturating_sub(1))
        .map(|l| coactivation::adjacent_layers(trace, l, opts.top_pairs))
        .collect();
    Stats {
        architecture: m.architecture.clone(),
        n_expert: m.n_expert,
        top_k: m.top_k,
        sequences: trace.n_sequences(),
        tokens: trace.n_tokens(),
        selections: trace.n_selections(),
        expert_ids: trace.n_expert_ids(),
        layers,
        cross_layer,
        working_set: working_set::compute(trace, &opts.windows),
        lru: lru::at_fractions(trace, &opts.lru_fractions),
    }
}
