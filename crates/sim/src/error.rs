//! The simulator's error type: every message says what was wrong and what to change.

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The expert cache could not be set up.
    #[error(transparent)]
    Cache(#[from] policy::PolicyError),
    /// The trace does not fit the plan's model (layers, expert count, top-k), or a trace derived
    /// from it could not be built.
    #[error("{0}")]
    Trace(String),
    /// The plan, the machine or the options contradict themselves or each other.
    #[error("{0}")]
    Config(String),
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
