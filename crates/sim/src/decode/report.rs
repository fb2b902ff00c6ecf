//! The decode simulation's report: the [`Summary`] of its per-step records (speed, latency
//! percentiles, hit rates, bytes, the time split, storage utilisation) in per-token units, with
//! the run's settings and the prefetch bytes no step used.

use super::Options;
use metrics::{Latency, Summary};
use serde::Serialize;

/// Hits and reads of one MoE layer over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub layer: u32,
    /// Accesses the cache policy served (prefetched experts not included).
    pub hits: u64,
    pub accesses: u64,
    pub hit_rate: f64,
    /// Bytes this layer reads from NVMe per token (expert demand reads, the expert prefetches
    /// settled at it, used or not, its streamed dense weights).
    pub bytes_read_per_token: f64,
}

/// What a decode simulation measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodeReport {
    pub policy: String,
    /// Bytes of streaming-layer experts the cache holds.
    pub cache_bytes: u64,
    pub prefetch_depth: u32,
    pub expert_prefetch: String,
    pub tokens: usize,
    /// Tokens over the simulated run time.
    pub tok_per_s: f64,
    pub token_s_mean: f64,
    pub token_s_p50: f64,
    pub token_s_p99: f64,
    /// Routed-expert accesses the cache policy served, over all MoE layers.
    pub hit_rate: f64,
    /// Cache misses whose expert a prefetch had brought in (or was bringing in) when the router
    /// chose, over all accesses.
    pub prefetch_hit_rate: f64,
    /// Bytes read from NVMe per token: expert reads (wasted prefetches included), streamed
    /// dense weights, embedding rows.
    pub bytes_read_per_token: f64,
    /// Of those, prefetched expert bytes that the router did not select.
    pub prefetch_wasted_bytes_per_token: f64,
    /// Seconds per token computing (GPU then CPU share of every layer).
    pub compute_s_per_token: f64,
    /// Seconds per token waiting for storage reads with nothing to compute.
    pub io_wait_s_per_token: f64,
    /// Seconds per token copying host weights to the GPU.
    pub link_s_per_token: f64,
    /// Fraction of the run with at least one storage request in service.
    pub storage_utilisation: f64,
    pub layers: Vec<LayerReport>,
}

impl DecodeReport {
    /// The report of a decode whose records `summary` summarises: every number but the wasted
    /// prefetch bytes (which the records count with the rest) is the summary's, in per-token
    /// units; `moe_layers` are the layers with routed experts, in trace order.
    pub(super) fn from_summary(
        summary: &Summary,
        moe_layers: &[u32],
        prefetch_wasted_bytes: u64,
        opts: &Options,
    ) -> DecodeReport {
        let s = summary;
        let per = |x: f64| {
            if s.tokens > 0 {
                x / s.tokens as f64
            } else {
                0.0
            }
        };
        let layers = moe_layers
            .iter()
            .map(|&layer| {
                let (accesses, hits, bytes) =
                    s.per_layer
                        .iter()
                        .find(|l| l.layer == layer)
                        .map_or((0, 0, 0), |l| {
                            (
                                l.expert_accesses,
                                l.expert_hits - l.prefetch_hits,
                                l.bytes_read,
                            )
                        });
                LayerReport {
                    layer,
                    hits,
                    accesses,
                    hit_rate: hits as f64 / accesses.max(1) as f64,
                    bytes_read_per_token: per(bytes as f64),
                }
            })
            .collect();
        let cache_hits = s.expert_hits - s.prefetch_hits;
        let latency = |f: fn(&Latency) -> f64| s.latency.as_ref().map_or(0.0, f);
        DecodeReport {
            policy: s.run.policy.clone(),
            cache_bytes: s.run.cache_bytes,
            prefetch_depth: opts.prefetch_depth,
            expert_prefetch: opts.expert_prefetch.name().to_string(),
            tokens: s.tokens as usize,
            tok_per_s: s.tok_per_s.unwrap_or(0.0),
            token_s_mean: latency(|l| l.mean_s),
            token_s_p50: latency(|l| l.p50_s),
            token_s_p99: latency(|l| l.p99_s),
            hit_rate: if s.expert_accesses > 0 {
                cache_hits as f64 / s.expert_accesses as f64
            } else {
                1.0
            },
            prefetch_hit_rate: s.prefetch_hits as f64 / s.expert_accesses.max(1) as f64,
            bytes_read_per_token: per(s.bytes_read as f64),
            prefetch_wasted_bytes_per_token: per(prefetch_wasted_bytes as f64),
            compute_s_per_token: per(s.time.compute_s),
            io_wait_s_per_token: per(s.time.io_wait_s),
            link_s_per_token: per(s.time.link_s),
            storage_utilisation: s.storage_utilisation.unwrap_or(0.0),
            layers,
        }
    }
}
