//! The decode simulation's summary: speed, latency percentiles, hit rates and the time split.

use serde::Serialize;

/// Hits and reads of one MoE layer over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub layer: u32,
    pub hits: u64,
    pub accesses: u64,
    pub hit_rate: f64,
    /// Expert bytes this layer reads from NVMe per token.
    pub bytes_read_per_token: f64,
}

/// What a decode simulation measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodeReport {
    pub policy: String,
    /// Bytes of streaming-layer experts the cache holds.
    pub cache_bytes: u64,
    pub tokens: usize,
    /// Tokens over the summed token times.
    pub tok_per_s: f64,
    pub token_s_mean: f64,
    pub token_s_p50: f64,
    pub token_s_p99: f64,
    /// Routed-expert accesses served from memory, over all MoE layers.
    pub hit_rate: f64,
    /// Bytes read from NVMe per token: expert misses, streamed dense weights, embedding rows.
    pub bytes_read_per_token: f64,
    /// Seconds per token computing (GPU then CPU share of every layer).
    pub compute_s_per_token: f64,
    /// Seconds per token waiting for NVMe beyond compute (expert misses, embedding rows,
    /// dense reads that prefetch did not hide).
    pub io_wait_s_per_token: f64,
    pub layers: Vec<LayerReport>,
}

pub(super) struct Accumulator {
    layers: Vec<LayerReport>,
    token_s: Vec<f64>,
    compute_s: f64,
    bytes: f64,
}

impl Accumulator {
    pub fn new(layers: &[u32]) -> Accumulator {
        Accumulator {
            layers: layers
                .iter()
                .map(|&layer| LayerReport {
                    layer,
                    hits: 0,
                    accesses: 0,
                    hit_rate: 0.0,
                    bytes_read_per_token: 0.0,
                })
                .collect(),
            token_s: Vec::new(),
            compute_s: 0.0,
            bytes: 0.0,
        }
    }

    pub fn layer(&mut self, pos: usize, hits: u64, accesses: u64, bytes: f64) {
        let l = &mut self.layers[pos];
        l.hits += hits;
        l.accesses += accesses;
        l.bytes_read_per_token += bytes;
    }

    pub fn token(&mut self, total_s: f64, compute_s: f64, bytes: f64) {
        self.token_s.push(total_s);
        self.compute_s += compute_s;
        self.bytes += bytes;
    }

    pub fn finish(mut self, policy: &str, cache_bytes: u64) -> DecodeReport {
        let n = self.token_s.len();
        let per = |x: f64| if n > 0 { x / n as f64 } else { 0.0 };
        let total: f64 = self.token_s.iter().sum();
        for l in &mut self.layers {
            l.hit_rate = l.hits as f64 / l.accesses.max(1) as f64;
            l.bytes_read_per_token = per(l.bytes_read_per_token);
        }
        let hits: u64 = self.layers.iter().map(|l| l.hits).sum();
        let accesses: u64 = self.layers.iter().map(|l| l.accesses).sum();
        let mut sorted = self.token_s.clone();
        sorted.sort_by(f64::total_cmp);
        DecodeReport {
            policy: policy.to_string(),
            cache_bytes,
            tokens: n,
            tok_per_s: if total > 0.0 { n as f64 / total } else { 0.0 },
            token_s_mean: per(total),
            token_s_p50: percentile(&sorted, 0.50),
            token_s_p99: percentile(&sorted, 0.99),
            hit_rate: if accesses > 0 {
                hits as f64 / accesses as f64
            } else {
                1.0
            },
            bytes_read_per_token: per(self.bytes),
            compute_s_per_token: per(self.compute_s),
            io_wait_s_per_token: per(total - self.compute_s),
            layers: self.layers,
        }
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
