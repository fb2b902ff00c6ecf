//! What validate compares, computed the same way from either side's (token, layer) records.
//!
//! Both the simulator and the runtime index records alike: one index per prefill batch (its
//! prompt tokens share it), then one per decoded token. From the records alone, so neither side
//! gets a formula of its own:
//! - decode tok/s: the decoded tokens after `warmup` over the span from the first of them to
//!   the end of the last (globals and layers alike);
//! - prefill tok/s: prompt tokens over the span of the prefill rows;
//! - hits, uses and bytes: every decoded token (counts do not warm up; timing does) and, apart,
//!   the prefill rows;
//! - I/O-wait share: seconds compute waited for storage over the timed span;
//! - storage rate: bytes the timed tokens read over the seconds storage was busy with any read
//!   during them (what the device delivered, apart from how well compute overlapped it);
//! - per layer: mean seconds per timed token, `None` for work outside the layers.

use metrics::TokenLayerRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// How the records are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Prefill batches: rows with a token index below this are prompt work.
    pub prefill_batches: u32,
    /// Prompt tokens in those batches.
    pub prompt_tokens: u32,
    /// Decoded tokens left out of the timing at the start.
    pub warmup: u32,
}

/// One side's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measures {
    /// Decoded tokens in the records.
    pub decode_tokens: u32,
    /// Of them, the timed ones (after warm-up).
    pub timed_tokens: u32,
    pub decode_tok_per_s: Option<f64>,
    pub prefill_tok_per_s: Option<f64>,
    pub decode_hits: u64,
    pub decode_uses: u64,
    pub prefill_hits: u64,
    pub prefill_uses: u64,
    pub decode_bytes_read: u64,
    pub prefill_bytes_read: u64,
    /// Seconds compute waited for storage per timed second.
    pub io_wait_share: Option<f64>,
    /// Bytes read per second of storage busy time over the timed tokens (GB/s = 1e9 B/s).
    pub storage_gbps: Option<f64>,
    /// Mean seconds per timed token of each layer, in layer order; `layer` None (first) is
    /// the work outside the layers.
    pub layers: Vec<LayerTime>,
}

/// Mean seconds per timed token of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerTime {
    pub layer: Option<u32>,
    pub seconds: f64,
}

impl Measures {
    pub fn hit_rate(&self) -> Option<f64> {
        (self.decode_uses > 0).then(|| self.decode_hits as f64 / self.decode_uses as f64)
    }

    pub fn bytes_per_token(&self) -> Option<f64> {
        (self.decode_tokens > 0).then(|| self.decode_bytes_read as f64 / self.decode_tokens as f64)
    }

    pub fn from_records(records: &[TokenLayerRecord], split: Split) -> Measures {
        let first_decode = split.prefill_batches;
        let first_timed = first_decode.saturating_add(split.warmup);
        let mut m = Measures {
            decode_tokens: 0,
            timed_tokens: 0,
            decode_tok_per_s: None,
            prefill_tok_per_s: None,
            decode_hits: 0,
            decode_uses: 0,
            prefill_hits: 0,
            prefill_uses: 0,
            decode_bytes_read: 0,
            prefill_bytes_read: 0,
            io_wait_share: None,
            storage_gbps: None,
            layers: Vec::new(),
        };
        let mut layer_s: BTreeMap<Option<u32>, f64> = BTreeMap::new();
        let mut decode_tokens = std::collections::BTreeSet::new();
        let mut timed_tokens = std::collections::BTreeSet::new();
        let (mut prefill, mut timed) = (Span::default(), Span::default());
        let mut io_wait = 0.0;
        let (mut timed_bytes, mut busy) = (0u64, 0.0);
        for r in records {
            if r.token < first_decode {
                prefill.add(r);
                m.prefill_hits += u64::from(r.expert_hits);
                m.prefill_uses += u64::from(r.expert_accesses);
                m.prefill_bytes_read += r.bytes_read;
                continue;
            }
            decode_tokens.insert(r.token);
            m.decode_hits += u64::from(r.expert_hits);
            m.decode_uses += u64::from(r.expert_accesses);
            m.decode_bytes_read += r.bytes_read;
            if r.token >= first_timed {
                timed_tokens.insert(r.token);
                timed.add(r);
                io_wait += r.io_wait_s;
                timed_bytes += r.bytes_read;
                busy += r.storage_busy_s;
                *layer_s.entry(r.layer).or_insert(0.0) += r.wall_s;
            }
        }
        m.decode_tokens = decode_tokens.len() as u32;
        m.timed_tokens = timed_tokens.len() as u32;
        if let Some(s) = timed.seconds() {
            m.decode_tok_per_s = Some(f64::from(m.timed_tokens) / s);
            m.io_wait_share = Some(io_wait / s);
        }
        if busy > 0.0 {
            m.storage_gbps = Some(timed_bytes as f64 / busy / 1e9);
        }
        if m.timed_tokens > 0 {
            let n = f64::from(m.timed_tokens);
            m.layers = layer_s
                .into_iter()
                .map(|(layer, s)| LayerTime {
                    layer,
                    seconds: s / n,
                })
                .collect();
        }
        if split.prompt_tokens > 0 {
            m.prefill_tok_per_s = prefill
                .seconds()
                .map(|s| f64::from(split.prompt_tokens) / s);
        }
        m
    }
}

/// From the earliest start to the latest end of some rows.
#[derive(Debug, Default, Clone, Copy)]
struct Span {
    start: Option<f64>,
    end: f64,
}

impl Span {
    fn add(&mut self, r: &TokenLayerRecord) {
        self.start = Some(self.start.map_or(r.start_s, |s| s.min(r.start_s)));
        self.end = self.end.max(r.start_s + r.wall_s);
    }

    fn seconds(&self) -> Option<f64> {
        let s = self.end - self.start?;
        (s > 0.0).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(token: u32, layer: Option<u32>, start: f64, wall: f64) -> TokenLayerRecord {
        TokenLayerRecord {
            start_s: start,
            wall_s: wall,
            expert_accesses: 2,
            expert_hits: 1,
            bytes_read: 100,
            io_wait_s: wall / 2.0,
            storage_busy_s: wall / 4.0,
            ..TokenLayerRecord::empty(token, layer)
        }
    }

    #[test]
    fn splits_prefill_warmup_and_timed_tokens() {
        // Batch 0 (4 prompt tokens) takes 2 s; tokens 1..=3 take 1 s each, one layer + globals.
        let rs = vec![
            row(0, Some(0), 0.0, 2.0),
            row(1, None, 2.0, 0.5),
            row(1, Some(0), 2.5, 0.5),
            row(2, None, 3.0, 0.5),
            row(2, Some(0), 3.5, 0.5),
            row(3, None, 4.0, 0.25),
            row(3, Some(0), 4.25, 0.75),
        ];
        let m = Measures::from_records(
            &rs,
            Split {
                prefill_batches: 1,
                prompt_tokens: 4,
                warmup: 1,
            },
        );
        assert_eq!((m.decode_tokens, m.timed_tokens), (3, 2));
        assert_eq!(m.decode_tok_per_s, Some(1.0));
        assert_eq!(m.prefill_tok_per_s, Some(2.0));
        assert_eq!((m.decode_uses, m.decode_hits), (12, 6));
        assert_eq!((m.prefill_uses, m.prefill_hits), (2, 1));
        assert_eq!(m.decode_bytes_read, 600);
        assert_eq!(m.bytes_per_token(), Some(200.0));
        assert_eq!(m.io_wait_share, Some(0.5));
        // 400 bytes over a quarter of the timed rows' 2 s of wall time.
        assert_eq!(m.storage_gbps, Some(400.0 / 0.5 / 1e9));
        assert_eq!(
            m.layers,
            vec![
                LayerTime {
                    layer: None,
                    seconds: 0.375
                },
                LayerTime {
                    layer: Some(0),
                    seconds: 0.625
                }
            ]
        );
    }

    #[test]
    fn no_timed_tokens_gives_no_speed() {
        let rs = vec![row(0, Some(0), 0.0, 1.0), row(1, Some(0), 1.0, 1.0)];
        let m = Measures::from_records(
            &rs,
            Split {
                prefill_batches: 1,
                prompt_tokens: 1,
                warmup: 5,
            },
        );
        assert_eq!(m.decode_tokens, 1);
        assert_eq!(m.decode_tok_per_s, None);
        assert_eq!(m.io_wait_share, None);
        assert_eq!(m.storage_gbps, None);
    }
}
