//! Errors about a model's description: its metadata ([`MetadataError`]), a catalog spec
//! ([`SpecError`]), the quantization recipe ([`RecipeError`]), and reading a GGUF's inventory
//! ([`InventoryError`]). Each names the key, field or tensor that is wrong.

use crate::llama_limits::{MAX_EXPERTS, MAX_LAYERS};
use gguf::{GgmlType, Value, ValueType};
use std::path::PathBuf;

/// What is wrong with a model's architecture metadata; `key` is the full GGUF key
/// (`llama.block_count`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetadataError {
    #[error("missing string key general.architecture")]
    MissingArchitecture,
    #[error("missing key {key}")]
    Missing { key: String },
    #[error("key {key} should be a non-negative integer, found {found:?}")]
    NotUnsigned { key: String, found: ValueType },
    #[error("key {key} should be an integer or integer array, found {found:?}")]
    NotPerLayer { key: String, found: ValueType },
    /// A count that must fit in 32 bits does not.
    #[error("key {key} is too large: {value}")]
    TooLarge { key: String, value: u64 },
    #[error("{used_key} ({used}) is larger than {count_key} ({count})")]
    MoreUsedThanExperts {
        used_key: String,
        used: u32,
        count_key: String,
        count: u32,
    },
    /// `block_count` outside llama.cpp's 1..=[`MAX_LAYERS`].
    #[error("key {key} is {value}; llama.cpp needs 1..={MAX_LAYERS} blocks")]
    LayerCount { key: String, value: u32 },
    #[error("key {key} is {value}, more than the {n_layer} blocks")]
    NextnLayers {
        key: String,
        value: u64,
        n_layer: u32,
    },
    /// A norm epsilon that is not a finite number >= 0 (as f32).
    #[error("key {key} is {value:?}; llama.cpp needs a finite number >= 0")]
    BadEpsilon { key: String, value: Value },
    #[error("key {key} is {value}; llama.cpp supports at most {MAX_EXPERTS} experts")]
    TooManyExperts { key: String, value: u32 },
    #[error("key {count_key} is {count} but {used_key} is 0 or missing; an MoE model routes at least one expert")]
    NoExpertUsed {
        count_key: String,
        count: u32,
        used_key: String,
    },
    #[error("key {used_key} is {used} but the model has no experts ({count_key} is 0 or missing)")]
    UsedWithoutExperts {
        used_key: String,
        used: u32,
        count_key: String,
    },
    #[error(
        "keys {groups_key} ({groups}) and {used_key} ({used}) do not fit {experts} experts: \
         llama.cpp needs fewer groups than experts, experts divisible by groups, and 1..groups used"
    )]
    ExpertGroups {
        groups_key: String,
        groups: u64,
        used_key: String,
        used: u64,
        experts: u64,
    },
    /// Two tokens of `tokenizer.ggml.tokens` have the same text (llama.cpp asserts they don't).
    #[error("key {key}: token {index} ({text:?}) repeats an earlier token's text; llama.cpp needs every token text once")]
    DuplicateToken {
        key: &'static str,
        index: usize,
        text: String,
    },
    #[error("key {key} has {count} tokens; llama.cpp reads at most 2^32")]
    TooManyTokens { key: &'static str, count: usize },
}

/// Why a catalog or synthesizer [`crate::catalog::ArchSpec`] cannot be laid out; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown architecture {arch:?}; known: {}", crate::catalog::shapes::KNOWN_ARCHS.join(", "))]
    UnknownArch { arch: String },
    #[error("{arch} spec: {field} must be positive")]
    NotPositive { arch: String, field: &'static str },
    /// A value written as GGUF uint32 metadata does not fit it.
    #[error("{arch} spec: {field} ({value}) does not fit GGUF's uint32")]
    NotU32 {
        arch: String,
        field: &'static str,
        value: u64,
    },
    #[error("{arch} spec: n_layer ({n_layer}) exceeds llama.cpp's {MAX_LAYERS} blocks")]
    TooManyLayers { arch: String, n_layer: u32 },
    #[error("{arch} spec: n_expert ({n_expert}) exceeds llama.cpp's {MAX_EXPERTS} experts")]
    TooManyExperts { arch: String, n_expert: u32 },
    #[error("{arch} spec: n_expert_used ({used}) exceeds n_expert ({n_expert})")]
    MoreUsedThanExperts {
        arch: String,
        used: u32,
        n_expert: u32,
    },
    #[error("{arch} spec: n_leading_dense ({leading}) exceeds n_layer ({n_layer})")]
    LeadingDenseExceedsLayers {
        arch: String,
        leading: u32,
        n_layer: u32,
    },
    /// MLA's rotary part must leave some of the head for the non-rotary part.
    #[error("deepseek2 spec: rope_dim ({rope_dim}) must be below head_dim ({head_dim})")]
    RopeDimTooLarge { rope_dim: u64, head_dim: u64 },
}

/// A tensor the quantization recipe cannot type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("tensor {tensor}: row length {row} is not a multiple of {block} ({ty}), and llama.cpp has no fallback type for it")]
    NoFallback {
        tensor: String,
        row: u64,
        block: u64,
        ty: GgmlType,
    },
}

/// Why [`crate::Inventory::from_gguf`] failed: the file(s) cannot be read as GGUF, or the
/// metadata does not describe a model llama.cpp can load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    #[error("{}: {source}", .path.display())]
    Metadata {
        /// The file whose metadata is wrong (the first part of a split set).
        path: PathBuf,
        source: MetadataError,
    },
}
