//! The one error type of the crate: an I/O failure or invalid content, always with a location.

use std::fmt::Display;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `at` is `file`, `file:line`, `file:line:column` or `file: byte N`.
    #[error("{at}: {msg}")]
    Invalid { at: String, msg: String },
}

impl TraceError {
    pub fn invalid(at: impl Display, msg: impl Display) -> TraceError {
        TraceError::Invalid {
            at: at.to_string(),
            msg: msg.to_string(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> TraceError {
        TraceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Maps a serde_json error to `file:line:column: message`.
    pub(crate) fn json(path: &Path, e: serde_json::Error) -> TraceError {
        if e.is_io() {
            return TraceError::invalid(path.display(), e);
        }
        let at = format!("{}:{}:{}", path.display(), e.line(), e.column());
        TraceError::Invalid {
            at,
            msg: json_message(&e),
        }
    }
}

/// A serde_json error's message without its " at line L column C" suffix.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}
