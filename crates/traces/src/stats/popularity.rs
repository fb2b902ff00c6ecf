//! Per-layer expert popularity: selection counts, entropy, share of the hottest 10%.

use crate::model::Trace;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Popularity {
    /// Selections of each expert id at this layer.
    pub counts: Vec<u64>,
    pub entropy_bits: f64,
    /// Entropy divided by log2(n_expert): 1 = uniform, near 0 = one expert takes everything.
    pub entropy_norm: f64,
    /// Number of experts in the "top 10%": ceil(n_expert / 10).
    pub top_n: usize,
    pub top10_share: f64,
}

pub fn layer(trace: &Trace, l: usize) -> Popularity {
    let n_expert = trace.model().n_expert as usize;
    let mut counts = vec![0u64; n_expert];
    for t in 0..trace.n_tokens() {
        for &e in trace.selection(t, l) {
            counts[e as usize] += 1;
        }
    }
    from_counts(counts)
}

pub(crate) fn from_counts(counts: Vec<u64>) -> Popularity {
    let n_expert = counts.len();
    let total: u64 = counts.iter().sum();
    let entropy_bits = if total == 0 {
        0.0
    } else {
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.log2()
            })
            .sum()
    };
    let entropy_norm = if n_expert > 1 {
        entropy_bits / (n_expert as f64).log2()
    } else {
        1.0
    };
    let top_n = n_expert.div_ceil(10).max(1);
    let mut sorted = counts.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top: u64 = sorted.iter().take(top_n).sum();
    let top10_share = if total == 0 {
        0.0
    } else {
        top as f64 / total as f64
    };
    Popularity {
        counts,
        entropy_bits,
        entropy_norm,
        top_n,
        top10_share,
    }
}
