//! What one generation did, as `hypura run --json` prints it: a typed, versioned record instead of
//! loose JSON, so scripts and `validate` read the same fields the CLI writes.

use crate::context::Generation;
use crate::io_pool::IoStats;
use crate::stream::{IoOptions, StreamStats};
use serde::Serialize;

/// The schema id every report carries; bump the number when a field changes meaning or goes away.
pub const RUN_SCHEMA: &str = "hypura.run/1";

/// One `hypura run`: what was generated, how fast, and (for a plan) what streaming did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// [`RUN_SCHEMA`].
    pub schema: &'static str,
    /// The version of hypura that ran.
    pub hypura_version: &'static str,
    /// The GGUF file, as given.
    pub model: String,
    /// The plan's mode (`full-resident`, `expert-streaming`, ...) or `plain`.
    pub mode: String,
    pub prompt_tokens: Vec<i32>,
    pub tokens: Vec<i32>,
    pub text: String,
    pub prompt_s: f64,
    pub decode_s: f64,
    pub decode_tok_per_s: f64,
    /// Bytes the kernel read from storage over the decode steps (Linux; absent elsewhere).
    pub decode_read_bytes: Option<u64>,
    #[serde(flatten)]
    pub detail: RunDetail,
}

/// What differs between plain llama.cpp and a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunDetail {
    Plain {
        peak_rss_bytes: Option<u64>,
    },
    Planned {
        /// Peak RSS up to the end of loading (llama.cpp's loader has transients).
        peak_rss_load_bytes: Option<u64>,
        /// Peak RSS during generation (absent where the peak cannot be reset).
        peak_rss_decode_bytes: Option<u64>,
        // Boxed: the plain variant is a few bytes (serialized the same).
        stream: Box<StreamReport>,
        experts: Box<ExpertReport>,
    },
}

/// Streamed tensors: how many, through what pool, and what the reads did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    pub tensors: usize,
    pub bytes: u64,
    pub pool_bytes: u64,
    pub fills: u64,
    pub hits: u64,
    pub evictions: u64,
    pub bytes_read: u64,
    pub io_wait_s: f64,
    pub peak_resident_bytes: u64,
    /// Recycled pages held at the end (attached or free; see `runtime::recycle`).
    pub recycled_bytes: u64,
    /// Seconds spent moving recycled pages (outside `io_wait_s`).
    pub recycle_s: f64,
    pub prefetches: u64,
    pub queue_depth: u32,
    pub request_bytes: u64,
    pub prefetch_depth: u32,
    pub requests: u64,
    pub max_in_flight: u32,
    pub storage_busy_s: f64,
    pub storage_request_s: f64,
}

impl StreamReport {
    pub fn new(
        tensors: usize,
        bytes: u64,
        pool_bytes: u64,
        stats: &StreamStats,
        io: &IoOptions,
        io_stats: &IoStats,
    ) -> StreamReport {
        StreamReport {
            tensors,
            bytes,
            pool_bytes,
            fills: stats.fills,
            hits: stats.hits,
            evictions: stats.evictions,
            bytes_read: stats.bytes_read,
            io_wait_s: stats.io_wait_s,
            peak_resident_bytes: stats.peak_resident_bytes,
            recycled_bytes: stats.recycled_bytes,
            recycle_s: stats.recycle_s,
            prefetches: stats.prefetches,
            queue_depth: io.queue_depth,
            request_bytes: io.request_bytes,
            prefetch_depth: io.prefetch_depth,
            requests: io_stats.requests,
            max_in_flight: io_stats.max_in_flight,
            storage_busy_s: io_stats.busy_s,
            storage_request_s: io_stats.request_s,
        }
    }
}

/// Routed experts: uses, hits, slices read and expert prefetch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpertReport {
    /// `per-expert` or `whole`.
    pub streaming: &'static str,
    pub accesses: u64,
    pub hits: u64,
    pub fills: u64,
    /// `none`, `coactivation` or `oracle`.
    pub prefetch: &'static str,
    pub prefetched: u64,
    pub prefetch_hits: u64,
    /// Tokens whose routing was intercepted (recorded or replayed); absent otherwise.
    pub routed_tokens: Option<usize>,
}

impl RunReport {
    /// The report of generation `g`; `text` is its tokens' text.
    pub fn new(
        model: String,
        mode: &str,
        g: &Generation,
        text: String,
        detail: RunDetail,
    ) -> RunReport {
        RunReport {
            schema: RUN_SCHEMA,
            hypura_version: env!("CARGO_PKG_VERSION"),
            model,
            mode: mode.to_string(),
            prompt_tokens: g.prompt_tokens.clone(),
            tokens: g.tokens.clone(),
            text,
            prompt_s: g.prompt_s,
            decode_s: g.decode_s(),
            decode_tok_per_s: g.decode_tok_per_s(),
            decode_read_bytes: g.decode_read_bytes,
            detail,
        }
    }
}
