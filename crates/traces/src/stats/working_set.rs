//! Working-set size: distinct (layer, expert) pairs in a sliding window over the token stream.

use crate::model::Trace;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkingSet {
    pub window: usize,
    /// Mean over every window position of the distinct (layer, expert) pairs it touches.
    pub mean: f64,
    pub max: usize,
    /// `mean` as a fraction of all routed experts (n_layers * n_expert).
    pub mean_fraction: f64,
}

/// One entry per window size no longer than the trace (windows of 0 tokens are skipped).
pub fn compute(trace: &Trace, windows: &[usize]) -> Vec<WorkingSet> {
    windows
        .iter()
        .filter(|&&w| w > 0 && w <= trace.n_tokens())
        .map(|&w| window(trace, w))
        .collect()
}

fn window(trace: &Trace, w: usize) -> WorkingSet {
    let m = trace.model();
    let (n_expert, k, n_layers) = (m.n_expert as usize, m.top_k as usize, m.n_layers());
    let per_token = m.ids_per_token();
    let ids = trace.expert_ids();
    let slot = |i: usize| (i % per_token) / k * n_expert + ids[i] as usize;
    let mut counts = vec![0u32; n_layers * n_expert];
    let mut distinct = 0usize;
    let (mut sum, mut max, mut positions) = (0f64, 0usize, 0u64);
    for t in 0..trace.n_tokens() {
        for i in t * per_token..(t + 1) * per_token {
            let c = &mut counts[slot(i)];
            distinct += (*c == 0) as usize;
            *c += 1;
        }
        if t >= w {
            for i in (t - w) * per_token..(t - w + 1) * per_token {
                let c = &mut counts[slot(i)];
                *c -= 1;
                distinct -= (*c == 0) as usize;
            }
        }
        if t + 1 >= w {
            sum += distinct as f64;
            max = max.max(distinct);
            positions += 1;
        }
    }
    let mean = sum / positions as f64;
    WorkingSet {
        window: w,
        mean,
        max,
        mean_fraction: mean / (n_layers * n_expert) as f64,
    }
}
