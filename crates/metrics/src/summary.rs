//! The run summary (tok/s, latency percentiles, hit rates, bytes, time split, storage
//! utilisation), computed from per-(token, layer) records and nothing else.

use super::record::TokenLayerRecord;
use serde::{Deserialize, Serialize};

/// What produced the records, carried into the summary so a summary names its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `"sim"` for a prediction, `"run"` for a measurement.
    pub source: String,
    /// Model name as the plan records it.
    pub model: String,
    /// Hash of the plan the run used, when there was a plan file.
    pub plan_hash: Option<String>,
    /// Expert-cache policy name (`static`, `lru`, `lfru`, ...).
    pub policy: String,
    /// Bytes of expert cache the policy had.
    pub cache_bytes: u64,
}

/// Per-token latency: the span from a token's first step start to its last step end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Nearest-rank percentiles: the smallest latency at or above that fraction of tokens.
    pub p50_s: f64,
    pub p99_s: f64,
    pub mean_s: f64,
    pub max_s: f64,
}

/// Routed-expert hits and reads of one transformer layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerHits {
    pub layer: u32,
    pub expert_accesses: u64,
    pub expert_hits: u64,
    /// Of the hits, those a prefetch brought in.
    pub prefetch_hits: u64,
    /// Bytes the layer's steps read from storage.
    pub bytes_read: u64,
    /// `expert_hits / expert_accesses`; absent for a layer without routed-expert accesses.
    pub hit_rate: Option<f64>,
}

/// Where the steps' wall time went, summed over all records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeSplit {
    pub compute_s: f64,
    pub io_wait_s: f64,
    pub link_s: f64,
    /// Sum of every step's wall time; the three parts above are shares of it.
    pub wall_s: f64,
}

/// Everything a report shows about a run, derived from its records by [`Summary::from_records`].
///
/// Ratios with a zero denominator are absent (`None`, `null` in JSON), never NaN or infinity:
/// no tokens gives no rates or latencies, no routed-expert accesses (a dense model, or the
/// resident-only layers) gives no hit rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run: RunInfo,
    /// Distinct token indices (a prefill batch sharing one index counts once).
    pub tokens: u64,
    pub records: u64,
    /// From the earliest step start to the latest step end.
    pub elapsed_s: f64,
    /// `tokens / elapsed_s`.
    pub tok_per_s: Option<f64>,
    pub latency: Option<Latency>,
    pub expert_accesses: u64,
    pub expert_hits: u64,
    pub prefetch_hits: u64,
    /// Hits over accesses of all layers; absent without routed-expert accesses.
    pub hit_rate: Option<f64>,
    /// One entry per transformer layer that has records, in layer order.
    pub per_layer: Vec<LayerHits>,
    pub bytes_read: u64,
    pub bytes_read_per_token: Option<f64>,
    pub bytes_linked: u64,
    pub time: TimeSplit,
    /// Storage busy seconds over `elapsed_s` (steps of one run do not overlap in time, so the
    /// busy times add up without double counting).
    pub storage_utilisation: Option<f64>,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Nearest-rank percentile of an ascending, non-empty slice: the value at rank `ceil(q * n)`.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// The summary of `records` (any order) from the run `run` describes.
    pub fn from_records(run: RunInfo, records: &[TokenLayerRecord]) -> Summary {
        let mut b = SummaryBuilder::new();
        records.iter().for_each(|r| b.push(r));
        b.finish(run)
    }
}

/// A [`Summary`] computed record by record, so a long run need not keep its records: memory
/// grows with tokens (one span each) and layers, not with records.
#[derive(Debug, Clone)]
pub struct SummaryBuilder {
    /// (token, first start, last end). Runs write records token by token, so a token's span is
    /// updated in place while its records follow each other; any other order is merged after
    /// sorting.
    spans: Vec<(u32, f64, f64)>,
    /// Sorted by layer; `next` guesses the entry of the next record (layers in order).
    layers: Vec<LayerHits>,
    next: usize,
    time: TimeSplit,
    first: f64,
    last: f64,
    records: u64,
    accesses: u64,
    hits: u64,
    prefetch_hits: u64,
    bytes_read: u64,
    bytes_linked: u64,
    busy: f64,
}

impl Default for SummaryBuilder {
    fn default() -> SummaryBuilder {
        SummaryBuilder::new()
    }
}

impl SummaryBuilder {
    pub fn new() -> SummaryBuilder {
        SummaryBuilder {
            spans: Vec::new(),
            layers: Vec::new(),
            next: 0,
            time: TimeSplit {
                compute_s: 0.0,
                io_wait_s: 0.0,
                link_s: 0.0,
                wall_s: 0.0,
            },
            first: f64::INFINITY,
            last: f64::NEG_INFINITY,
            records: 0,
            accesses: 0,
            hits: 0,
            prefetch_hits: 0,
            bytes_read: 0,
            bytes_linked: 0,
            busy: 0.0,
        }
    }

    /// Adds one record.
    pub fn push(&mut self, r: &TokenLayerRecord) {
        let end = r.start_s + r.wall_s;
        match self.spans.last_mut() {
            Some(span) if span.0 == r.token => {
                span.1 = span.1.min(r.start_s);
                span.2 = span.2.max(end);
            }
            _ => self.spans.push((r.token, r.start_s, end)),
        }
        self.first = self.first.min(r.start_s);
        self.last = self.last.max(end);
        if let Some(l) = r.layer {
            let i = match self.layers.get(self.next) {
                Some(e) if e.layer == l => self.next,
                _ => layer_entry(&mut self.layers, l),
            };
            self.next = i + 1;
            let e = &mut self.layers[i];
            e.expert_accesses += u64::from(r.expert_accesses);
            e.expert_hits += u64::from(r.expert_hits);
            e.prefetch_hits += u64::from(r.prefetch_hits);
            e.bytes_read += r.bytes_read;
        }
        self.records += 1;
        self.accesses += u64::from(r.expert_accesses);
        self.hits += u64::from(r.expert_hits);
        self.prefetch_hits += u64::from(r.prefetch_hits);
        self.bytes_read += r.bytes_read;
        self.bytes_linked += r.bytes_linked;
        self.busy += r.storage_busy_s;
        self.time.compute_s += r.compute_s;
        self.time.io_wait_s += r.io_wait_s;
        self.time.link_s += r.link_s;
        self.time.wall_s += r.wall_s;
    }

    /// The summary of every record pushed, from the run `run` describes.
    pub fn finish(self, run: RunInfo) -> Summary {
        let elapsed_s = if self.records == 0 {
            0.0
        } else {
            self.last - self.first
        };
        let spans = merge_spans(self.spans);
        let mut lat: Vec<f64> = spans.iter().map(|&(_, s, e)| e - s).collect();
        lat.sort_by(f64::total_cmp);
        let tokens = spans.len() as u64;
        let latency = (!lat.is_empty()).then(|| Latency {
            p50_s: nearest_rank(&lat, 0.50),
            p99_s: nearest_rank(&lat, 0.99),
            mean_s: lat.iter().sum::<f64>() / lat.len() as f64,
            max_s: lat[lat.len() - 1],
        });
        let mut layers = self.layers;
        for l in &mut layers {
            l.hit_rate = ratio(l.expert_hits as f64, l.expert_accesses as f64);
        }
        let (hits, accesses, bytes_read) = (self.hits, self.accesses, self.bytes_read);
        Summary {
            run,
            tokens,
            records: self.records,
            elapsed_s,
            tok_per_s: ratio(tokens as f64, elapsed_s),
            latency,
            expert_accesses: accesses,
            expert_hits: hits,
            prefetch_hits: self.prefetch_hits,
            hit_rate: ratio(hits as f64, accesses as f64),
            per_layer: layers,
            bytes_read,
            bytes_read_per_token: ratio(bytes_read as f64, tokens as f64),
            bytes_linked: self.bytes_linked,
            time: self.time,
            storage_utilisation: ratio(self.busy, elapsed_s),
        }
    }
}

/// Index of `layer`'s entry in `layers` (sorted by layer), inserting an empty one if missing.
fn layer_entry(layers: &mut Vec<LayerHits>, layer: u32) -> usize {
    layers
        .binary_search_by_key(&layer, |e| e.layer)
        .unwrap_or_else(|i| {
            let empty = LayerHits {
                layer,
                expert_accesses: 0,
                expert_hits: 0,
                prefetch_hits: 0,
                bytes_read: 0,
                hit_rate: None,
            };
            layers.insert(i, empty);
            i
        })
}

/// Token spans sorted by token, one per token (the earliest start and the latest end of its
/// pieces).
fn merge_spans(mut spans: Vec<(u32, f64, f64)>) -> Vec<(u32, f64, f64)> {
    if spans.windows(2).all(|w| w[0].0 < w[1].0) {
        return spans;
    }
    spans.sort_by_key(|s| s.0);
    let mut out: Vec<(u32, f64, f64)> = Vec::with_capacity(spans.len());
    for (t, s, e) in spans {
        match out.last_mut() {
            Some(span) if span.0 == t => {
                span.1 = span.1.min(s);
                span.2 = span.2.max(e);
            }
            _ => out.push((t, s, e)),
        }
    }
    out
}
