//! Why a cache could not be set up. Each message says what was wrong and what would work.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown cache policy {name:?}; use one of {}", crate::cache::Policy::NAMES.join(", "))]
    UnknownPolicy { name: String },
    #[error(
        "expert size of MoE layer position {layer} is 0 bytes; give the size of one routed expert"
    )]
    ZeroExpertSize { layer: usize },
    #[error("trace has {ids} expert ids; replay handles at most {max} (split the trace)")]
    TraceTooLong { ids: usize, max: u32 },
    #[error(
        "{given} expert sizes given for a trace with {layers} MoE layers; give one per MoE layer"
    )]
    SizeCount { given: usize, layers: usize },
    #[error(
        "a global cache sized in bytes needs one expert size for all layers, but layer position \
         {layer} has {size} bytes and position 0 has {first}; use per-layer partitioning or a \
         capacity in experts"
    )]
    MixedExpertSizes { layer: usize, size: u64, first: u64 },
    #[error(
        "hot set names expert {expert} of MoE layer position {layer}, but the trace has {layers} \
         MoE layers of {experts} experts"
    )]
    HotSetOutOfRange {
        expert: u16,
        layer: usize,
        layers: usize,
        experts: usize,
    },
    #[error(
        "hot set pins more experts than partition {partition} holds ({holds} experts); pin fewer \
         or give a larger capacity"
    )]
    HotSetTooLarge { partition: usize, holds: u32 },
    #[error("belady needs the future accesses and cannot run online; choose lru, lfu, lfru, arc or pinned-lru")]
    OfflineOnly,
}
