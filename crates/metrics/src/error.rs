//! Why records could not be read or written. Each message names the file and, inside it, the
//! record, line or row.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file name does not say which format to use.
    #[error("{}: {found} is not a records format; name the file *.parquet, *.json (a JSON array) or *.jsonl (JSON Lines)", path.display())]
    UnknownFormat { path: PathBuf, found: String },
    /// A record breaks a rule every record keeps (times finite and non-negative, hits within
    /// accesses); `record` is its 0-based position.
    #[error("record {record} (token {token}, layer {}): {problem}", layer.map_or("none".to_string(), |l| l.to_string()))]
    Record {
        record: usize,
        token: u32,
        layer: Option<u32>,
        problem: String,
    },
    /// Invalid records are refused, not written.
    #[error("{}: not written: {reason}", path.display())]
    NotWritten {
        path: PathBuf,
        reason: Box<MetricsError>,
    },
    /// The output already exists or is a directory.
    #[error(transparent)]
    Refused(#[from] outfile::OutfileError),
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("cannot read {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not records of this schema; `at` says where (line and column, or row and
    /// column).
    #[error("{}: {at}", path.display())]
    Read { path: PathBuf, at: String },
    /// A record read from a file breaks a rule.
    #[error("{}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        reason: Box<MetricsError>,
    },
}
