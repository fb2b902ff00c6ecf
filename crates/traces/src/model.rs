//! The canonical in-memory trace: model facts plus flat, token-major arrays of expert ids.

use serde::{Deserialize, Serialize};

/// Routing facts of the model that produced a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFacts {
    /// llama.cpp / GGUF architecture name, e.g. `deepseek2`, `mixtral`, `qwen3moe`.
    pub architecture: String,
    /// Transformer block indices of the MoE layers, strictly increasing. Selections of a token
    /// are stored in this order.
    pub moe_layers: Vec<u32>,
    /// Routed experts per MoE layer (shared experts not included).
    pub n_expert: u32,
    /// Experts the router selects per token and layer.
    pub top_k: u32,
    /// Always-active shared experts per MoE layer; never logged in selections.
    #[serde(default)]
    pub n_shared_expert: u32,
}

/// Largest routed-expert count the formats store (ids are u16).
pub const MAX_EXPERTS: u32 = 1 << 16;

/// Transformer blocks a model may have: llama.cpp's `LLAMA_MAX_LAYERS`, so block indices are
/// below 512.
pub const MAX_BLOCKS: u32 = 512;

/// Model facts that contradict themselves or the formats' limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("n_expert is {0}; it must be in 1..={MAX_EXPERTS}")]
    ExpertCount(u32),
    #[error("top_k is {top_k}; it must be in 1..=n_expert ({n_expert})")]
    TopK { top_k: u32, n_expert: u32 },
    #[error("moe_layers is empty; list the block index of every MoE layer")]
    NoLayers,
    #[error("moe_layers must be strictly increasing, but {0} is followed by {1}")]
    NotIncreasing(u32, u32),
    #[error(
        "moe_layers holds block index {0}; llama.cpp models have at most {MAX_BLOCKS} blocks \
         (indices 0..={last})",
        last = MAX_BLOCKS - 1
    )]
    BlockIndex(u32),
}

impl ModelFacts {
    /// Checks the facts are self-consistent; the message says what to fix.
    pub fn check(&self) -> Result<(), FactsError> {
        if self.n_expert == 0 || self.n_expert > MAX_EXPERTS {
            return Err(FactsError::ExpertCount(self.n_expert));
        }
        if self.top_k == 0 || self.top_k > self.n_expert {
            return Err(FactsError::TopK {
                top_k: self.top_k,
                n_expert: self.n_expert,
            });
        }
        if self.moe_layers.is_empty() {
            return Err(FactsError::NoLayers);
        }
        if let Some(w) = self.moe_layers.windows(2).find(|w| w[0] >= w[1]) {
            return Err(FactsError::NotIncreasing(w[0], w[1]));
        }
        if let Some(&b) = self.moe_layers.iter().find(|&&b| b >= MAX_BLOCKS) {
            return Err(FactsError::BlockIndex(b));
        }
        Ok(())
    }

    pub fn n_layers(&self) -> usize {
        self.moe_layers.len()
    }

    /// Position of block index `layer` in `moe_layers`.
    pub fn layer_index(&self, layer: u32) -> Option<usize> {
        self.moe_layers.binary_search(&layer).ok()
    }

    /// Expert ids stored per token: one selection of `top_k` ids per MoE layer.
    pub fn ids_per_token(&self) -> usize {
        self.n_layers() * self.top_k as usize
    }
}

/// Whether a token was processed as part of the prompt (prefill) or generated (decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prefill,
    Decode,
}

/// A validated trace. Construct with [`crate::TraceBuilder`], [`crate::load`] or an importer.
///
/// Storage is flat so that 100 M expert ids cost about 200 MB: `experts` holds, token after
/// token, one selection of `top_k` ids per MoE layer (in `moe_layers` order); sequence `s` owns
/// tokens `seq_starts[s]..seq_starts[s + 1]`. Optional per-token data is either present for
/// every token or absent for all.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub(crate) model: ModelFacts,
    pub(crate) seq_ids: Vec<String>,
    pub(crate) seq_starts: Vec<usize>,
    pub(crate) experts: Vec<u16>,
    pub(crate) weights: Option<Vec<f32>>,
    pub(crate) phases: Option<Vec<Phase>>,
    pub(crate) timestamps_ns: Option<Vec<u64>>,
    pub(crate) texts: Option<Vec<String>>,
}

/// One sequence (prompt or request) of a trace.
#[derive(Debug, Clone)]
pub struct SequenceView<'a> {
    pub id: &'a str,
    /// Global token indices of this sequence.
    pub tokens: std::ops::Range<usize>,
}

impl Trace {
    /// `n_tokens` tokens of a model without routed experts: one sequence, no expert ids. What
    /// the simulator decodes for a dense model; not a file (its facts fail [`ModelFacts::check`],
    /// so no writer or reader accepts it).
    pub fn without_routing(architecture: impl Into<String>, n_tokens: usize) -> Trace {
        Trace {
            model: ModelFacts {
                architecture: architecture.into(),
                moe_layers: Vec::new(),
                n_expert: 0,
                top_k: 0,
                n_shared_expert: 0,
            },
            seq_ids: vec!["dense".to_string()],
            seq_starts: vec![0, n_tokens],
            experts: Vec::new(),
            weights: None,
            phases: None,
            timestamps_ns: None,
            texts: None,
        }
    }

    pub fn model(&self) -> &ModelFacts {
        &self.model
    }

    pub fn n_sequences(&self) -> usize {
        self.seq_ids.len()
    }

    pub fn n_tokens(&self) -> usize {
        self.seq_starts.last().copied().unwrap_or(0)
    }

    /// Router decisions: one per token and MoE layer.
    pub fn n_selections(&self) -> usize {
        self.n_tokens() * self.model.n_layers()
    }

    /// Expert ids in total (`n_selections * top_k`).
    pub fn n_expert_ids(&self) -> usize {
        self.experts.len()
    }

    pub fn sequence(&self, s: usize) -> SequenceView<'_> {
        SequenceView {
            id: &self.seq_ids[s],
            tokens: self.seq_starts[s]..self.seq_starts[s + 1],
        }
    }

    pub fn sequences(&self) -> impl Iterator<Item = SequenceView<'_>> + '_ {
        (0..self.n_sequences()).map(|s| self.sequence(s))
    }

    /// The `top_k` expert ids token `token` selected at MoE layer position `layer_idx`.
    pub fn selection(&self, token: usize, layer_idx: usize) -> &[u16] {
        let k = self.model.top_k as usize;
        let start = (token * self.model.n_layers() + layer_idx) * k;
        &self.experts[start..start + k]
    }

    /// Gate weights parallel to [`Trace::selection`], when the trace has them.
    pub fn selection_weights(&self, token: usize, layer_idx: usize) -> Option<&[f32]> {
        let k = self.model.top_k as usize;
        let start = (token * self.model.n_layers() + layer_idx) * k;
        self.weights.as_ref().map(|w| &w[start..start + k])
    }

    /// All expert ids, token-major, then layer, then router order.
    pub fn expert_ids(&self) -> &[u16] {
        &self.experts
    }

    pub fn has_weights(&self) -> bool {
        self.weights.is_some()
    }

    pub fn phase(&self, token: usize) -> Option<Phase> {
        self.phases.as_ref().map(|p| p[token])
    }

    pub fn timestamp_ns(&self, token: usize) -> Option<u64> {
        self.timestamps_ns.as_ref().map(|t| t[token])
    }

    pub fn text(&self, token: usize) -> Option<&str> {
        self.texts.as_ref().map(|t| t[token].as_str())
    }
}
