//! Temporal reuse within a sequence: reuse-distance histogram and previous-token overlap.

use crate::model::Trace;
use serde::Serialize;

/// Labels of the reuse-distance buckets, in order.
pub const REUSE_BUCKETS: [&str; 9] = [
    "1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", ">64", "first",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReuseHistogram {
    /// Selections per bucket of [`REUSE_BUCKETS`].
    pub counts: [u64; 9],
}

/// Bucket of a reuse distance `d >= 1` (tokens since the last use).
fn bucket(d: usize) -> usize {
    if d > 64 {
        7
    } else {
        (usize::BITS - (d - 1).leading_zeros()) as usize
    }
}

/// Reuse histogram and mean previous-token overlap of MoE layer position `l`.
pub fn layer(trace: &Trace, l: usize) -> (ReuseHistogram, f64) {
    let k = trace.model().top_k as usize;
    let mut last = vec![usize::MAX; trace.model().n_expert as usize];
    let mut counts = [0u64; 9];
    let (mut overlap, mut pairs) = (0u64, 0u64);
    for seq in trace.sequences() {
        last.fill(usize::MAX);
        for t in seq.tokens.clone() {
            for &e in trace.selection(t, l) {
                let prev = last[e as usize];
                counts[if prev == usize::MAX {
                    8
                } else {
                    bucket(t - prev)
                }] += 1;
                last[e as usize] = t;
            }
            if t > seq.tokens.start {
                let before = trace.selection(t - 1, l);
                overlap += trace
                    .selection(t, l)
                    .iter()
                    .filter(|e| before.contains(e))
                    .count() as u64;
                pairs += 1;
            }
        }
    }
    let reuse = if pairs == 0 {
        0.0
    } else {
        overlap as f64 / (pairs * k as u64) as f64
    };
    (ReuseHistogram { counts }, reuse)
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_are_powers_of_two() {
        let got: Vec<usize> = [1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 1000]
            .iter()
            .map(|&d| bucket(d))
            .collect();
        assert_eq!(got, [0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
    }
}
