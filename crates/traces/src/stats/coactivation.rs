//! Co-activation: expert pairs selected by one token within a layer and across adjacent layers.

use crate::model::Trace;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub first: u16,
    pub second: u16,
    /// Tokens that selected both.
    pub count: u64,
    /// P(both) / (P(first) P(second)); 1 means independent.
    pub lift: f64,
    /// P(second | first): share of the tokens selecting `first` that also select `second`.
    pub p_second_given_first: f64,
}

/// Top pairs between MoE layer `from_layer` and the next MoE layer `to_layer`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossLayerPairs {
    pub from_layer: u32,
    pub to_layer: u32,
    pub top_pairs: Vec<Pair>,
}

/// Counts pairs densely for small expert counts, sparsely beyond (65536² would not fit).
enum PairCounts {
    Dense { n: usize, counts: Vec<u64> },
    Sparse(HashMap<(u16, u16), u64>),
}

impl PairCounts {
    fn new(n_expert: usize) -> PairCounts {
        if n_expert <= 2048 {
            PairCounts::Dense {
                n: n_expert,
                counts: vec![0; n_expert * n_expert],
            }
        } else {
            PairCounts::Sparse(HashMap::new())
        }
    }

    fn add(&mut self, a: u16, b: u16) {
        match self {
            PairCounts::Dense { n, counts } => counts[a as usize * *n + b as usize] += 1,
            PairCounts::Sparse(map) => *map.entry((a, b)).or_insert(0) += 1,
        }
    }

    /// The `top` pairs by count (ties: smaller ids first), as `(a, b, count)`.
    fn top(self, top: usize) -> Vec<(u16, u16, u64)> {
        let mut all: Vec<(u16, u16, u64)> = match self {
            PairCounts::Dense { n, counts } => counts
                .into_iter()
                .enumerate()
                .filter(|(_, c)| *c > 0)
                .map(|(i, c)| ((i / n) as u16, (i % n) as u16, c))
                .collect(),
            PairCounts::Sparse(map) => map.into_iter().map(|((a, b), c)| (a, b, c)).collect(),
        };
        all.sort_unstable_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        all.truncate(top);
        all
    }
}

/// Tokens selecting each expert at layer position `l`.
fn expert_counts(trace: &Trace, l: usize) -> Vec<u64> {
    let mut counts = vec![0u64; trace.model().n_expert as usize];
    for t in 0..trace.n_tokens() {
        for &e in trace.selection(t, l) {
            counts[e as usize] += 1;
        }
    }
    counts
}

fn pair(a: u16, b: u16, count: u64, ca: u64, cb: u64, tokens: usize) -> Pair {
    let n = tokens as f64;
    Pair {
        first: a,
        second: b,
        count,
        lift: (count as f64 / n) / ((ca as f64 / n) * (cb as f64 / n)),
        p_second_given_first: count as f64 / ca as f64,
    }
}

/// Top unordered pairs (`first < second`) selected together at layer position `l`.
pub fn within_layer(trace: &Trace, l: usize, top: usize) -> Vec<Pair> {
    let mut pairs = PairCounts::new(trace.model().n_expert as usize);
    for t in 0..trace.n_tokens() {
        let sel = trace.selection(t, l);
        for (i, &a) in sel.iter().enumerate() {
            for &b in &sel[i + 1..] {
                pairs.add(a.min(b), a.max(b));
            }
        }
    }
    let counts = expert_counts(trace, l);
    pairs
        .top(top)
        .into_iter()
        .map(|(a, b, c)| {
            pair(
                a,
                b,
                c,
                counts[a as usize],
                counts[b as usize],
                trace.n_tokens(),
            )
        })
        .collect()
}

/// Top pairs (expert at position `l`, expert at position `l + 1`) selected by the same token.
pub fn adjacent_layers(trace: &Trace, l: usize, top: usize) -> CrossLayerPairs {
    let mut pairs = PairCounts::new(trace.model().n_expert as usize);
    for t in 0..trace.n_tokens() {
        for &a in trace.selection(t, l) {
            for &b in trace.selection(t, l + 1) {
                pairs.add(a, b);
            }
        }
    }
    let (from, to) = (expert_counts(trace, l), expert_counts(trace, l + 1));
    let layers = &trace.model().moe_layers;
    CrossLayerPairs {
        from_layer: layers[l],
        to_layer: layers[l + 1],
        top_pairs: pairs
            .top(top)
            .into_iter()
            .map(|(a, b, c)| pair(a, b, c, from[a as usize], to[b as usize], trace.n_tokens()))
            .collect(),
    }
}
