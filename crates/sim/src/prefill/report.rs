//! The prefill summary, computed from the timeline's per-step records: time to first token,
//! prompt tokens per second, bytes read, the time split and every batch's hit rate.

use super::timeline::Outcome;
use serde::Serialize;

/// One prefill batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    /// Index of the batch (the token index of its records).
    pub batch: u32,
    pub tokens: usize,
    /// Distinct experts the batch needed, summed over MoE layers.
    pub expert_accesses: u64,
    /// Of those, the ones in memory when the batch reached the layer.
    pub expert_hits: u64,
    /// `expert_hits / expert_accesses` (1 without routed-expert accesses).
    pub hit_rate: f64,
    pub bytes_read: u64,
    pub wall_s: f64,
}

/// What a prefill simulation measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefillReport {
    pub prompt_tokens: usize,
    /// Tokens per batch (the last batch may be shorter).
    pub batch_tokens: usize,
    pub batches: usize,
    /// Seconds from the start of prefill until its last batch is done: the first token's logits
    /// are ready (time to first token).
    pub ttft_s: f64,
    /// Prompt tokens over `ttft_s`.
    pub tok_per_s: f64,
    /// Bytes read from storage during prefill (experts, streamed dense weights, embedding rows).
    pub bytes_read: u64,
    pub compute_s: f64,
    pub io_wait_s: f64,
    pub link_s: f64,
    /// Distinct experts hit over distinct experts needed, over every batch and MoE layer.
    pub hit_rate: f64,
    /// Fraction of prefill with at least one storage request in service.
    pub storage_utilisation: f64,
    pub per_batch: Vec<BatchReport>,
}

pub(super) fn summarize(out: &Outcome, tokens: &[usize], batch_tokens: usize) -> PrefillReport {
    let mut per_batch: Vec<BatchReport> = tokens
        .iter()
        .enumerate()
        .map(|(b, &n)| BatchReport {
            batch: b as u32,
            tokens: n,
            expert_accesses: 0,
            expert_hits: 0,
            hit_rate: 1.0,
            bytes_read: 0,
            wall_s: 0.0,
        })
        .collect();
    let (mut compute_s, mut io_wait_s, mut link_s) = (0.0, 0.0, 0.0);
    for r in &out.records {
        let b = &mut per_batch[r.token as usize];
        b.expert_accesses += u64::from(r.expert_accesses);
        b.expert_hits += u64::from(r.expert_hits);
        b.bytes_read += r.bytes_read;
        b.wall_s += r.wall_s;
        compute_s += r.compute_s;
        io_wait_s += r.io_wait_s;
        link_s += r.link_s;
    }
    let ratio = |hits: u64, accesses: u64| {
        if accesses > 0 {
            hits as f64 / accesses as f64
        } else {
            1.0
        }
    };
    for b in &mut per_batch {
        b.hit_rate = ratio(b.expert_hits, b.expert_accesses);
    }
    let hits = per_batch.iter().map(|b| b.expert_hits).sum();
    let accesses = per_batch.iter().map(|b| b.expert_accesses).sum();
    let ttft_s = out.end_ns as f64 * 1e-9;
    let prompt_tokens: usize = tokens.iter().sum();
    PrefillReport {
        prompt_tokens,
        batch_tokens,
        batches: tokens.len(),
        ttft_s,
        tok_per_s: if ttft_s > 0.0 {
            prompt_tokens as f64 / ttft_s
        } else {
            0.0
        },
        bytes_read: out.bytes_read,
        compute_s,
        io_wait_s,
        link_s,
        hit_rate: ratio(hits, accesses),
        storage_utilisation: if ttft_s > 0.0 {
            out.busy_ns as f64 * 1e-9 / ttft_s
        } else {
            0.0
        },
        per_batch,
    }
}
