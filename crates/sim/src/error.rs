//! The simulator's error type: every message says what was wrong and what to change.

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The expert cache could not be set up.
    #[error(transparent)]
    Cache(#[from] policy::PolicyError),
    /// A trace derived from the input (a token range, a prefill's access replay) broke a rule
    /// of the trace format.
    #[error(transparent)]
    Trace(#[from] traces::RuleError),
    /// The default trace for the model could not be synthesized.
    #[error(transparent)]
    DefaultTrace(#[from] traces::synth::ParamsError),
    #[error("{arch}: the model has no routed experts; the decode simulation needs an MoE model")]
    NoRoutedExperts { arch: String },
    #[error("the trace selects top-{trace} experts but the model routes top-{model}; use a trace of this model")]
    TopK { trace: u32, model: u32 },
    #[error(
        "the trace has MoE layers {trace:?} but the plan has {plan:?}; use a trace of this model"
    )]
    MoeLayers { trace: Vec<u32>, plan: Vec<u32> },
    #[error("layer {layer}: the trace has {trace} experts, the model {model}; use a trace of this model")]
    ExpertCount { layer: u32, trace: u32, model: u32 },
    #[error(
        "a prompt of {prompt} tokens needs a trace of more tokens (the prompt is its first \
         {prompt} and decode runs the ones after), but the trace has {trace_tokens}; give a \
         prompt length of at most {most}",
        most = .trace_tokens.saturating_sub(1)
    )]
    PromptTooLong { prompt: usize, trace_tokens: usize },
    #[error("the prompt length is 0; give at least 1 prompt token")]
    EmptyPrompt,
    #[error("the prefill batch is 0 tokens; give at least 1")]
    EmptyBatch,
    #[error("{layers} streaming MoE layers of {n_expert} experts are {slots} cache slots; the prefill replay handles at most 65536")]
    PrefillSlots {
        layers: usize,
        n_expert: usize,
        slots: usize,
    },
    #[error("host weights on the GPU need a host link (the profile's [host_link] h2d_gbps)")]
    NoHostLink,
    #[error("the plan places experts of layer {layer} but the model has none there")]
    NoExpertsAt { layer: u32 },
    #[error("field `experts` (layer {layer}): expert id {id} is out of range (the model has {n_expert})")]
    ExpertOutOfRange { layer: u32, id: u32, n_expert: u32 },
    #[error(
        "pinned-lru per layer: MoE layer {layer} pins its {pinned} resident experts, but its \
         share of the cache ({share} bytes) holds {holds}; give a cache of at least {need} bytes \
         or use the global partition"
    )]
    PinnedShare {
        layer: u32,
        pinned: u64,
        share: u64,
        holds: u64,
        need: u64,
    },
    #[error(
        "the streaming pool of {pool} bytes cannot hold a streamed tensor of {need} bytes beside \
         the ones its node needs"
    )]
    DensePool { need: u64, pool: u64 },
    #[error("{tiers} unit tiers for {units} units")]
    UnitTiers { tiers: usize, units: usize },
    #[error("MoE layer {layer} is beyond the model's {n_layer} layers")]
    LayerBeyond { layer: u32, n_layer: u32 },
    #[error("unit {unit} is in layer {layer}, beyond the model's {n_layer} layers")]
    UnitBeyond {
        unit: String,
        layer: u32,
        n_layer: u32,
    },
    #[error("storage queue depth is 0; give at least 1 request in flight")]
    QueueDepthZero,
    #[error("storage read bandwidth for {bytes}-byte requests at queue depth {queue_depth} is {gbps} GB/s; the profile's read curve must give a positive, finite bandwidth")]
    ReadBandwidth {
        bytes: u64,
        queue_depth: u32,
        gbps: f64,
    },
    /// The plan is for another model or machine, or its placement is inconsistent.
    #[error(transparent)]
    Plan(#[from] plan::CheckError),
    /// The plan's `inputs.kv_type` names no ggml type.
    #[error("field `inputs.kv_type`: unknown type {kv_type:?}")]
    KvType { kv_type: String },
    /// The trace's expert use does not fit the model.
    #[error(transparent)]
    Rates(#[from] place::RatesError),
    /// The plan puts one placement unit's tensors on different tiers, which the simulator (it
    /// prices whole units) cannot represent.
    #[error("field `tensors`: unit {unit} is on one tier in the simulator, but the plan puts {first} on {} and {tensor} on {}", .first_tier.name(), .tier.name())]
    UnitSplit {
        unit: String,
        first: String,
        first_tier: plan::Tier,
        tensor: String,
        tier: plan::Tier,
    },
    /// A placement unit none of whose tensors has a single tier.
    #[error("field `tensors`: no tier for unit {unit}")]
    UnitUnplaced { unit: String },
}
