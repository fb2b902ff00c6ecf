//! The routing trace a simulation uses when the user gives none: synthesized for the model's
//! MoE shape from fixed parameters and a fixed seed, so every run without `--trace` replays the
//! same routing.

use crate::SimError;
use place::Units;
use traces::synth::{LayerParams, SynthParams};
use traces::{ModelFacts, Trace};

/// The synthesizer's seed.
pub const SEED: u64 = 1;
/// Tokens per synthesized sequence.
pub const SEQUENCE_TOKENS: usize = 256;
/// Per-layer routing statistics: moderate skew, reuse, cross-layer affinity and drift.
pub const LAYER: LayerParams = LayerParams {
    skew: 0.8,
    reuse: 0.3,
    affinity: 0.5,
    drift: 0.5,
};

/// `tokens` tokens of routing for the MoE layers of `units` (architecture `arch`), in
/// sequences of [`SEQUENCE_TOKENS`].
pub fn synthesize(units: &Units, arch: &str, tokens: usize) -> Result<Trace, SimError> {
    let Some(first) = units.experts.first() else {
        return Err(SimError::NoRoutedExperts {
            arch: arch.to_string(),
        });
    };
    let model = ModelFacts {
        architecture: arch.to_string(),
        moe_layers: units.experts.iter().map(|e| e.layer).collect(),
        n_expert: first.n_expert(),
        top_k: units.top_k,
        n_shared_expert: 0,
    };
    let mut lengths = vec![SEQUENCE_TOKENS; tokens / SEQUENCE_TOKENS];
    if tokens % SEQUENCE_TOKENS > 0 {
        lengths.push(tokens % SEQUENCE_TOKENS);
    }
    let params = SynthParams::uniform(model, lengths, LAYER);
    Ok(traces::synth::synthesize(&params, SEED)?)
}
