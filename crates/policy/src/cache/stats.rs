//! Replay results: hits, misses and bytes read, per MoE layer and in total.

use super::config::ExpertBytes;
use serde::Serialize;

/// Counts of one MoE layer (position in `moe_layers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LayerCounts {
    pub hits: u64,
    pub misses: u64,
    /// `misses` times the layer's expert size.
    pub bytes_read: u64,
}

/// What a replay measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayStats {
    /// Partition capacities in experts the replay ran with (one, or one per layer).
    pub capacities: Vec<u64>,
    pub per_layer: Vec<LayerCounts>,
}

impl ReplayStats {
    pub(crate) fn from_counts(hits: &[u64], accesses: &[u64]) -> ReplayStats {
        let per_layer = hits
            .iter()
            .zip(accesses)
            .map(|(&h, &a)| LayerCounts {
                hits: h,
                misses: a - h,
                bytes_read: 0,
            })
            .collect();
        ReplayStats {
            capacities: Vec::new(),
            per_layer,
        }
    }

    pub(crate) fn with_bytes(mut self, bytes: &ExpertBytes) -> ReplayStats {
        for (c, &b) in self.per_layer.iter_mut().zip(bytes.per_layer()) {
            c.bytes_read = c.misses * b;
        }
        self
    }

    pub fn hits(&self) -> u64 {
        self.per_layer.iter().map(|c| c.hits).sum()
    }

    pub fn misses(&self) -> u64 {
        self.per_layer.iter().map(|c| c.misses).sum()
    }

    pub fn accesses(&self) -> u64 {
        self.hits() + self.misses()
    }

    pub fn bytes_read(&self) -> u64 {
        self.per_layer.iter().map(|c| c.bytes_read).sum()
    }

    /// Hits over accesses; 0 for an empty trace.
    pub fn hit_rate(&self) -> f64 {
        self.hits() as f64 / self.accesses().max(1) as f64
    }
}
