//! Synthetic traces for any model shape (`hypura trace synth`) and fitting their parameters to a
//! real trace (`hypura trace fit`).
//!
//! The generative model, per MoE layer `l` and sequence `r`:
//! - popularity: expert of rank `i` (a seeded random permutation per layer) has base weight
//!   `(i + 1)^-skew` (Zipf; `skew = 0` is uniform);
//! - drift: each sequence scales every weight by `exp(drift * g)`, `g ~ N(0, 1)` drawn per
//!   sequence, layer and expert, so prompts favour different experts;
//! - temporal reuse: each expert the previous token selected at this layer is kept with
//!   probability `reuse`;
//! - inter-layer affinity: each token belongs to one of `clusters` latent clusters (drawn per
//!   token from the sequence's cluster weights, which drift by `exp(cluster_drift * g)`); every
//!   other slot is, with probability `affinity`, one of the cluster's `profile_size` preferred
//!   experts at this layer, and otherwise drawn from the sequence's popularity weights. The shared
//!   cluster is what makes an expert at layer l predict the experts at layer l + 1.
//!
//! Ids within a selection are distinct; everything follows from the seed.

mod fit;
mod generate;
mod rng;

pub use fit::{fit, moments, FitReport, LayerMoments, WINDOW};
pub use generate::synthesize;

use crate::builder::RuleError;
use crate::model::{FactsError, ModelFacts};
use serde::{Deserialize, Serialize};

/// Parameters of one MoE layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerParams {
    /// Zipf exponent of expert popularity (0 = uniform).
    pub skew: f64,
    /// Probability of keeping each of the previous token's experts.
    pub reuse: f64,
    /// Probability that a fresh slot comes from the token's cluster profile.
    pub affinity: f64,
    /// Standard deviation of the per-sequence log-weight perturbation.
    pub drift: f64,
}

/// Everything `synthesize` needs; `hypura trace fit` writes this as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthParams {
    pub model: ModelFacts,
    /// Tokens of each sequence to generate.
    pub sequence_lengths: Vec<usize>,
    /// Latent token clusters that tie the layers' choices together.
    pub clusters: u32,
    /// Preferred experts per cluster and layer.
    pub profile_size: u32,
    /// Standard deviation of the per-sequence log-weight perturbation of the clusters.
    pub cluster_drift: f64,
    /// One entry per MoE layer, in `model.moe_layers` order.
    pub layers: Vec<LayerParams>,
}

/// Most expert ids a synthesized trace may hold (2 GiB of `u16`): checked before anything is
/// drawn, so an absurd length is refused instead of exhausting memory.
pub const MAX_SYNTH_IDS: u64 = 1 << 30;

/// Most entries of the generator's per-layer tables (popularity weights: MoE layers × n_expert;
/// cluster profiles: MoE layers × clusters × profile_size), 128 MiB of `f64` at most.
pub const MAX_TABLE_ENTRIES: u64 = 1 << 24;

/// Synthesizer parameters that cannot be drawn from: each names the field to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    #[error("model: {0}")]
    Model(#[from] FactsError),
    #[error("layers has {layers} entries; the model has {moe_layers} MoE layers")]
    LayerCount { layers: usize, moe_layers: usize },
    #[error("sequence_lengths must list at least one sequence, each with at least one token")]
    NoTokens,
    #[error(
        "sequence_lengths add up to {tokens} tokens of {ids_per_token} expert ids each; a \
         synthesized trace holds at most {MAX_SYNTH_IDS} ids ({most} tokens of this shape)",
        most = MAX_SYNTH_IDS / (*ids_per_token).max(1)
    )]
    TooManyIds { tokens: u64, ids_per_token: u64 },
    #[error("clusters is {0}; it must be in 1..=65536")]
    Clusters(u32),
    #[error("profile_size is {size}; it must be in 1..=n_expert ({n_expert})")]
    ProfileSize { size: u32, n_expert: u32 },
    #[error(
        "{layers} MoE layers × {n_expert} experts is {} popularity weights; at most \
         {MAX_TABLE_ENTRIES}",
        *layers * u64::from(*n_expert)
    )]
    Weights { layers: u64, n_expert: u32 },
    #[error(
        "{layers} MoE layers × {clusters} clusters × profile_size {size} is {} profile entries; \
         at most {MAX_TABLE_ENTRIES} (lower top_k, the clusters or the layers)",
        *layers * u64::from(*clusters) * u64::from(*size)
    )]
    Profiles {
        layers: u64,
        clusters: u32,
        size: u32,
    },
    #[error("cluster_drift is {0}; it must be in 0..=10")]
    ClusterDrift(f64),
    #[error("layers[{layer}].{field} is {value}; it must be {range}")]
    Layer {
        layer: usize,
        field: &'static str,
        value: f64,
        range: &'static str,
    },
    /// The generator broke a trace rule (a bug in the generator, never in the parameters).
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl SynthParams {
    /// Tokens over all sequences; refused when the trace would exceed [`MAX_SYNTH_IDS`].
    pub fn total_tokens(&self) -> Result<usize, ParamsError> {
        let ids_per_token = self.model.ids_per_token() as u64;
        let mut tokens = 0u64;
        for &len in &self.sequence_lengths {
            tokens = tokens.saturating_add(len as u64);
        }
        if tokens.saturating_mul(ids_per_token) > MAX_SYNTH_IDS {
            return Err(ParamsError::TooManyIds {
                tokens,
                ids_per_token,
            });
        }
        Ok(tokens as usize)
    }

    /// The same parameters for every layer.
    pub fn uniform(
        model: ModelFacts,
        sequence_lengths: Vec<usize>,
        layer: LayerParams,
    ) -> SynthParams {
        let layers = vec![layer; model.n_layers()];
        let (clusters, profile_size) = (model.n_expert, model.top_k);
        SynthParams {
            model,
            sequence_lengths,
            clusters,
            profile_size,
            cluster_drift: 0.0,
            layers,
        }
    }

    /// Checks shapes and ranges; the error names the field to fix.
    pub fn check(&self) -> Result<(), ParamsError> {
        self.model.check()?;
        if self.layers.len() != self.model.n_layers() {
            return Err(ParamsError::LayerCount {
                layers: self.layers.len(),
                moe_layers: self.model.n_layers(),
            });
        }
        if self.sequence_lengths.is_empty() || self.sequence_lengths.contains(&0) {
            return Err(ParamsError::NoTokens);
        }
        self.total_tokens()?;
        if self.clusters == 0 || self.clusters > 1 << 16 {
            return Err(ParamsError::Clusters(self.clusters));
        }
        if self.profile_size == 0 || self.profile_size > self.model.n_expert {
            return Err(ParamsError::ProfileSize {
                size: self.profile_size,
                n_expert: self.model.n_expert,
            });
        }
        let layers = self.model.n_layers() as u64;
        if layers * u64::from(self.model.n_expert) > MAX_TABLE_ENTRIES {
            return Err(ParamsError::Weights {
                layers,
                n_expert: self.model.n_expert,
            });
        }
        if layers * u64::from(self.clusters) * u64::from(self.profile_size) > MAX_TABLE_ENTRIES {
            return Err(ParamsError::Profiles {
                layers,
                clusters: self.clusters,
                size: self.profile_size,
            });
        }
        if !(self.cluster_drift.is_finite() && (0.0..=10.0).contains(&self.cluster_drift)) {
            return Err(ParamsError::ClusterDrift(self.cluster_drift));
        }
        for (layer, l) in self.layers.iter().enumerate() {
            let bad = |field, value, range| ParamsError::Layer {
                layer,
                field,
                value,
                range,
            };
            if !(l.skew.is_finite() && l.skew >= 0.0) {
                return Err(bad("skew", l.skew, "a number >= 0"));
            }
            if !(0.0..=1.0).contains(&l.reuse) {
                return Err(bad("reuse", l.reuse, "in 0..=1"));
            }
            if !(0.0..=1.0).contains(&l.affinity) {
                return Err(bad("affinity", l.affinity, "in 0..=1"));
            }
            if !(l.drift.is_finite() && (0.0..=10.0).contains(&l.drift)) {
                return Err(bad("drift", l.drift, "in 0..=10"));
            }
        }
        Ok(())
    }
}
