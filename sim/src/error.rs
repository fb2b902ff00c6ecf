//! The simulator's error type: every message says what was wrong and what to change.

/// A configuration the simulator cannot run; the text names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimError(pub String);

impl SimError {
    pub(crate) fn new(msg: impl Into<String>) -> SimError {
        SimError(msg.into())
    }
}
