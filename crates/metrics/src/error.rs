//! Why a record file could not be read or written.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetricsError(pub String);

impl MetricsError {
    pub(crate) fn new(msg: impl Into<String>) -> MetricsError {
        MetricsError(msg.into())
    }
}
