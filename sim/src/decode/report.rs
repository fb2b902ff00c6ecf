//! The decode simulation's summary, computed from the engine's per-step records: speed, latency
//! percentiles, hit rates, bytes, the time split and storage utilisation.

use super::engine::Outcome;
use super::Options;
use serde::Serialize;
use traces::Trace;

/// Hits and reads of one MoE layer over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub layer: u32,
    /// Accesses the cache policy served (prefetched experts not included).
    pub hits: u64,
    pub accesses: u64,
    pub hit_rate: f64,
    /// Bytes this layer reads from NVMe per token (expert demand reads, used expert prefetches,
    /// its streamed dense weights).
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
    /// Cache misses whose expert a prefetch had already brought in when the router chose,
    /// over all accesses.
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

pub(super) fn summarize(
    out: &Outcome,
    moe_layers: &[u32],
    hits: &[bool],
    trace: &Trace,
    policy: &str,
    cache_bytes: u64,
    opts: &Options,
) -> DecodeReport {
    let n = trace.n_tokens();
    let per = |x: f64| if n > 0 { x / n as f64 } else { 0.0 };
    let mut token_s = vec![0.0; n];
    let (mut compute, mut io_wait, mut link) = (0.0, 0.0, 0.0);
    let mut layers: Vec<LayerReport> = moe_layers
        .iter()
        .map(|&layer| LayerReport {
            layer,
            hits: 0,
            accesses: 0,
            hit_rate: 0.0,
            bytes_read_per_token: 0.0,
        })
        .collect();
    let mut prefetch_hits = 0u64;
    for r in &out.records {
        token_s[r.token as usize] += r.wall_s;
        compute += r.compute_s;
        io_wait += r.io_wait_s;
        link += r.link_s;
        prefetch_hits += u64::from(r.prefetch_hits);
        if let Some(pos) = r
            .layer
            .and_then(|l| moe_layers.iter().position(|&m| m == l))
        {
            let l = &mut layers[pos];
            l.accesses += u64::from(r.expert_accesses);
            l.hits += u64::from(r.expert_hits - r.prefetch_hits);
            l.bytes_read_per_token += r.bytes_read as f64;
        }
    }
    for l in &mut layers {
        l.hit_rate = l.hits as f64 / l.accesses.max(1) as f64;
        l.bytes_read_per_token = per(l.bytes_read_per_token);
    }
    let cache_hits = hits.iter().filter(|&&h| h).count() as u64;
    let accesses = hits.len() as u64;
    let total = out.end_ns as f64 * 1e-9;
    let mut sorted = token_s.clone();
    sorted.sort_by(f64::total_cmp);
    DecodeReport {
        policy: policy.to_string(),
        cache_bytes,
        prefetch_depth: opts.prefetch_depth,
        expert_prefetch: opts.expert_prefetch.name().to_string(),
        tokens: n,
        tok_per_s: if total > 0.0 { n as f64 / total } else { 0.0 },
        token_s_mean: per(total),
        token_s_p50: percentile(&sorted, 0.50),
        token_s_p99: percentile(&sorted, 0.99),
        hit_rate: if accesses > 0 {
            cache_hits as f64 / accesses as f64
        } else {
            1.0
        },
        prefetch_hit_rate: prefetch_hits as f64 / accesses.max(1) as f64,
        bytes_read_per_token: per(out.bytes_read as f64),
        prefetch_wasted_bytes_per_token: per(out.prefetch_wasted_bytes as f64),
        compute_s_per_token: per(compute),
        io_wait_s_per_token: per(io_wait),
        link_s_per_token: per(link),
        storage_utilisation: if total > 0.0 {
            out.busy_ns as f64 * 1e-9 / total
        } else {
            0.0
        },
        layers,
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}
