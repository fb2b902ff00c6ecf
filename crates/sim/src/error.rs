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
}
