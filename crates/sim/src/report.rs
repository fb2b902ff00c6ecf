//! What `hypura sim --json` prints: one simulated request, its Belady bound, and what it was run
//! on, under a schema id that changes when a field changes meaning.

use crate::decode::DecodeReport;
use crate::prefill::PrefillReport;
use serde::Serialize;

/// The schema id every report carries; bump the number when a field changes meaning or goes away.
pub const SIM_SCHEMA: &str = "hypura.sim/1";

/// One simulation: decode (after a prefill when there is a prompt) and the offline-optimal
/// cache's result with the same bytes, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// [`SIM_SCHEMA`].
    pub schema: &'static str,
    /// The version of hypura that simulated.
    pub hypura_version: &'static str,
    /// The model, as named (a GGUF path or a catalog name).
    pub model: String,
    /// The hardware profile's name.
    pub profile: String,
    /// The decode speed the plan's solver predicted.
    pub solver_tok_per_s: f64,
    /// The decode.
    pub summary: DecodeReport,
    /// The same decode with Belady's cache (absent when the policy is Belady, or the model has
    /// no routed experts).
    pub belady: Option<DecodeReport>,
    /// The prompt's prefill, with a prompt only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill: Option<PrefillReport>,
    /// Belady's prefill: present with a prompt, null when there is no bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub belady_prefill: Option<Option<PrefillReport>>,
}

impl SimReport {
    /// A report stamped with this build's schema and version.
    pub fn new(
        model: String,
        profile: String,
        solver_tok_per_s: f64,
        summary: DecodeReport,
        belady: Option<DecodeReport>,
        prefill: Option<(PrefillReport, Option<PrefillReport>)>,
    ) -> SimReport {
        let (prefill, belady_prefill) = match prefill {
            Some((p, b)) => (Some(p), Some(b)),
            None => (None, None),
        };
        SimReport {
            schema: SIM_SCHEMA,
            hypura_version: env!("CARGO_PKG_VERSION"),
            model,
            profile,
            solver_tok_per_s,
            summary,
            belady,
            prefill,
            belady_prefill,
        }
    }
}
