//! One row of the metrics schema: what happened in one layer of one decoded token.

use serde::{Deserialize, Serialize};

/// What one (token, layer) step cost, as predicted by `hypura sim` or measured by `hypura run`.
///
/// The simulator and the runtime write the same rows, so a prediction and a measurement compare
/// row by row; every summary (tok/s, percentiles, hit rates, time split) is computed from rows
/// like these ([`super::Summary::from_records`]), never kept on the side. Files of them are
/// written by [`super::write_records`]: Parquet columns and JSON keys are these field names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenLayerRecord {
    /// Index of the token in the run (prompt tokens of a prefill batch share one index).
    pub token: u32,
    /// Transformer layer; `None` for work outside the layers (embedding rows, output head).
    pub layer: Option<u32>,
    /// Seconds from the start of the run to the start of this step.
    pub start_s: f64,
    /// Seconds from the start of this step until its output was ready.
    pub wall_s: f64,
    /// Seconds spent computing (GPU and CPU parts of the step).
    pub compute_s: f64,
    /// Seconds compute waited for storage reads that were not ready.
    pub io_wait_s: f64,
    /// Seconds waiting for host-to-GPU copies of RAM-tier weights.
    pub link_s: f64,
    /// Bytes read from storage for this step: its demand reads, and the prefetches settled at it
    /// (those it used and those it dropped unused).
    pub bytes_read: u64,
    /// Bytes copied host-to-GPU for this step.
    pub bytes_linked: u64,
    /// Routed-expert selections served from memory (0 for layers without routed experts).
    pub expert_hits: u32,
    /// Routed-expert selections in this step (top-k for a decoded token; for a prefill batch
    /// the distinct experts its tokens select, each needed once; 0 without routed experts).
    pub expert_accesses: u32,
    /// Of the hits, those that were in memory (or on their way) only because a prefetch read
    /// them.
    pub prefetch_hits: u32,
    /// Seconds the storage device was busy during this step (for utilisation).
    pub storage_busy_s: f64,
}

impl TokenLayerRecord {
    /// A step of `token` at `layer` that has taken no time and done nothing yet: what the
    /// simulator fills in as a step runs and a reader fills in column by column.
    pub fn empty(token: u32, layer: Option<u32>) -> TokenLayerRecord {
        TokenLayerRecord {
            token,
            layer,
            start_s: 0.0,
            wall_s: 0.0,
            compute_s: 0.0,
            io_wait_s: 0.0,
            link_s: 0.0,
            bytes_read: 0,
            bytes_linked: 0,
            expert_hits: 0,
            expert_accesses: 0,
            prefetch_hits: 0,
            storage_busy_s: 0.0,
        }
    }
}
