//! LRU expert-cache hit rates: one cache of (layer, expert) slots shared by all layers, fed the
//! trace's selections in order (token by token, layer by layer, sequences back to back).

use crate::model::Trace;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LruPoint {
    /// Cache size in experts (slots of one expert of one layer).
    pub capacity: usize,
    /// `capacity` as a fraction of all routed experts (n_layers * n_expert).
    pub capacity_fraction: f64,
    pub hit_rate: f64,
}

/// Capacities at `fractions` of all routed experts (at least one slot each).
pub fn at_fractions(trace: &Trace, fractions: &[f64]) -> Vec<LruPoint> {
    let all = trace.model().n_layers() * trace.model().n_expert as usize;
    fractions
        .iter()
        .map(|f| hit_rate(trace, ((all as f64 * f).round() as usize).clamp(1, all)))
        .collect()
}

const NONE: u32 = u32::MAX;

/// Exact LRU over an intrusive doubly linked list indexed by slot, so each access is O(1).
pub fn hit_rate(trace: &Trace, capacity: usize) -> LruPoint {
    let m = trace.model();
    let (n_expert, k) = (m.n_expert as usize, m.top_k as usize);
    let slots = m.n_layers() * n_expert;
    let per_token = m.ids_per_token();
    let (mut prev, mut next) = (vec![NONE; slots], vec![NONE; slots]);
    let mut cached = vec![false; slots];
    let (mut head, mut tail) = (NONE, NONE); // head = most recent
    let (mut len, mut hits) = (0usize, 0u64);
    for (i, &e) in trace.expert_ids().iter().enumerate() {
        let s = ((i % per_token) / k * n_expert + e as usize) as u32;
        let su = s as usize;
        if cached[su] {
            hits += 1;
            if head == s {
                continue;
            }
            // Unlink s (it is not the head, so it has a predecessor).
            let (p, n) = (prev[su], next[su]);
            next[p as usize] = n;
            if n == NONE {
                tail = p;
            } else {
                prev[n as usize] = p;
            }
        } else {
            if len == capacity {
                let victim = tail;
                tail = prev[victim as usize];
                if tail == NONE {
                    head = NONE;
                } else {
                    next[tail as usize] = NONE;
                }
                cached[victim as usize] = false;
                len -= 1;
            }
            cached[su] = true;
            len += 1;
        }
        prev[su] = NONE;
        next[su] = head;
        if head != NONE {
            prev[head as usize] = s;
        }
        head = s;
        if tail == NONE {
            tail = s;
        }
    }
    let accesses = trace.n_expert_ids().max(1) as f64;
    LruPoint {
        capacity,
        capacity_fraction: capacity as f64 / slots as f64,
        hit_rate: hits as f64 / accesses,
    }
}
