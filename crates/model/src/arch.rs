//! Architecture facts (layers, widths, heads, experts) read from GGUF metadata or given by the catalog.

use crate::error::MetadataError;
use crate::inventory::TensorEntry;
use crate::role::Group;
use gguf::{Metadata, Value};
use serde::{Deserialize, Serialize};

/// A hyperparameter that is either the same for every layer or given per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerLayer {
    Uniform(u64),
    Layers(Vec<u64>),
}

impl PerLayer {
    /// The value for `layer` (the last one for layers past a short array).
    pub fn at(&self, layer: u32) -> u64 {
        match self {
            PerLayer::Uniform(v) => *v,
            PerLayer::Layers(v) => v.get(layer as usize).or(v.last()).copied().unwrap_or(0),
        }
    }

    /// The largest value over all layers.
    pub fn max(&self) -> u64 {
        match self {
            PerLayer::Uniform(v) => *v,
            PerLayer::Layers(v) => v.iter().copied().max().unwrap_or(0),
        }
    }

    fn from_value(v: &Value) -> Option<PerLayer> {
        if let Some(x) = v.as_u64() {
            return Some(PerLayer::Uniform(x));
        }
        let vals = v.as_array()?.to_u64s()?;
        Some(match vals.first() {
            Some(&first) if vals.iter().all(|&x| x == first) => PerLayer::Uniform(first),
            _ => PerLayer::Layers(vals),
        })
    }
}

impl Default for PerLayer {
    fn default() -> Self {
        PerLayer::Uniform(0)
    }
}

/// What a model is, independent of how its tensors are stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchInfo {
    /// `general.architecture` (`llama`, `qwen3moe`, `deepseek2`, `gemma3`, ...).
    pub arch: String,
    /// `general.name` when present.
    pub name: Option<String>,
    pub n_layer: u32,
    pub n_embd: u64,
    /// Dense FFN width (`feed_forward_length`), per layer when the file gives an array.
    pub n_ff: PerLayer,
    pub n_head: PerLayer,
    pub n_head_kv: PerLayer,
    /// Per-head key / value widths (`attention.key_length` / `value_length`), when given.
    pub head_dim_k: Option<u64>,
    pub head_dim_v: Option<u64>,
    /// Training context length.
    pub n_ctx_train: u64,
    pub n_vocab: Option<u64>,
    /// Routed experts per MoE layer (0 for dense models).
    pub n_expert: u32,
    /// Experts each token uses (top-k).
    pub n_expert_used: u32,
    /// Width of one routed expert's FFN.
    pub expert_ff: Option<u64>,
    /// Leading layers with a dense FFN instead of experts.
    pub n_leading_dense: u32,
    /// Shared (always-active) experts per MoE layer.
    pub n_shared_expert: u32,
    /// Layers that have routed experts, ascending (derived from the tensors).
    pub moe_layers: Vec<u32>,
    /// MLA ranks (DeepSeek-V2/V3), when present.
    pub kv_lora_rank: Option<u64>,
    pub q_lora_rank: Option<u64>,
    /// `general.file_type` (llama.cpp's ftype: 15 = Q4_K_M, 17 = Q5_K_M, ...).
    pub file_type: Option<u32>,
}

impl ArchInfo {
    pub fn is_moe(&self) -> bool {
        self.n_expert > 0
    }

    /// Reads the facts from metadata. Errors name the missing or ill-typed key.
    pub fn from_metadata(md: &Metadata) -> Result<ArchInfo, MetadataError> {
        let arch = md
            .get_str("general.architecture")
            .ok_or(MetadataError::MissingArchitecture)?
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let opt_u64 = |k: &str| -> Result<Option<u64>, MetadataError> {
            match md.get(&key(k)) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| MetadataError::NotUnsigned {
                        key: key(k),
                        found: v.value_type(),
                    }),
            }
        };
        let per_layer =
            |k: &str| -> Result<Option<PerLayer>, MetadataError> {
                match md.get(&key(k)) {
                    None => Ok(None),
                    Some(v) => PerLayer::from_value(v).map(Some).ok_or_else(|| {
                        MetadataError::NotPerLayer {
                            key: key(k),
                            found: v.value_type(),
                        }
                    }),
                }
            };
        let small = |k: &str, v: Option<u64>| -> Result<u32, MetadataError> {
            let value = v.unwrap_or(0);
            u32::try_from(value).map_err(|_| MetadataError::TooLarge { key: key(k), value })
        };
        let n_layer = opt_u64("block_count")?.ok_or_else(|| MetadataError::Missing {
            key: key("block_count"),
        })?;
        let info = ArchInfo {
            name: md.get_str("general.name").map(str::to_string),
            n_layer: small("block_count", Some(n_layer))?,
            n_embd: opt_u64("embedding_length")?.unwrap_or(0),
            n_ff: per_layer("feed_forward_length")?.unwrap_or_default(),
            n_head: per_layer("attention.head_count")?.unwrap_or_default(),
            n_head_kv: match per_layer("attention.head_count_kv")? {
                Some(v) => v,
                None => per_layer("attention.head_count")?.unwrap_or_default(),
            },
            head_dim_k: opt_u64("attention.key_length")?,
            head_dim_v: opt_u64("attention.value_length")?,
            n_ctx_train: opt_u64("context_length")?.unwrap_or(0),
            n_vocab: opt_u64("vocab_size")?.or_else(|| {
                md.get("tokenizer.ggml.tokens")
                    .and_then(Value::as_array)
                    .map(|a| a.len() as u64)
            }),
            n_expert: small("expert_count", opt_u64("expert_count")?)?,
            n_expert_used: small("expert_used_count", opt_u64("expert_used_count")?)?,
            expert_ff: opt_u64("expert_feed_forward_length")?,
            n_leading_dense: small(
                "leading_dense_block_count",
                opt_u64("leading_dense_block_count")?,
            )?,
            n_shared_expert: small("expert_shared_count", opt_u64("expert_shared_count")?)?,
            moe_layers: Vec::new(),
            kv_lora_rank: opt_u64("attention.kv_lora_rank")?,
            q_lora_rank: opt_u64("attention.q_lora_rank")?,
            file_type: md
                .get_u64("general.file_type")
                .and_then(|v| u32::try_from(v).ok()),
            arch: arch.clone(),
        };
        if info.n_expert_used > info.n_expert {
            return Err(MetadataError::MoreUsedThanExperts {
                used_key: key("expert_used_count"),
                used: info.n_expert_used,
                count_key: key("expert_count"),
                count: info.n_expert,
            });
        }
        crate::llama_limits::check(md, &info)?;
        Ok(info)
    }

    /// Fills the facts that only the tensors tell: MoE layers, leading dense layers when the
    /// metadata is silent, expert width and shared experts when missing, vocabulary size.
    pub fn complete_from_tensors(&mut self, tensors: &[TensorEntry]) {
        let mut moe: Vec<u32> = tensors
            .iter()
            .filter(|t| t.group() == Group::Experts)
            .filter_map(|t| t.layer)
            .collect();
        moe.sort_unstable();
        moe.dedup();
        if self.n_leading_dense == 0 {
            if let Some(&first) = moe.first() {
                self.n_leading_dense = first;
            }
        }
        if self.expert_ff.is_none() {
            self.expert_ff = tensors
                .iter()
                .find(|t| t.role == crate::role::Role::FfnUpExps && t.dims.len() == 3)
                .map(|t| t.dims[1]);
        }
        if self.n_shared_expert == 0 && tensors.iter().any(|t| t.group() == Group::SharedExperts) {
            self.n_shared_expert = 1;
        }
        if self.n_vocab.is_none() {
            self.n_vocab = tensors
                .iter()
                .find(|t| t.role == crate::role::Role::TokenEmbd)
                .and_then(|t| t.dims.get(1).copied());
        }
        self.moe_layers = moe;
    }
}
