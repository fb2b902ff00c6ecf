//! Why records could not be read or written. Each message names the file and, inside it, the
//! record, line or row.

use parquet::errors::ParquetError;
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
        problem: RecordProblem,
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
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: WriteError },
    #[error("cannot read {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not records of this schema; `at` says where (line and column, or row and
    /// column).
    #[error("{}: {at}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        at: ReadError,
    },
    /// A record read from a file breaks a rule.
    #[error("{}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        reason: Box<MetricsError>,
    },
}

/// The rule a record breaks.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RecordProblem {
    /// A time field (`field`, in seconds) is negative, NaN or infinite.
    #[error("{field} is {value}; times are finite and non-negative seconds")]
    BadTime { field: &'static str, value: f64 },
    #[error("expert_hits {hits} exceeds expert_accesses {accesses}")]
    HitsOverAccesses { hits: u32, accesses: u32 },
    #[error("prefetch_hits {prefetch_hits} exceeds expert_hits {hits}")]
    PrefetchOverHits { prefetch_hits: u32, hits: u32 },
}

/// Why writing a records file failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// The Parquet schema has a column the writer does not know (a bug in this crate).
    #[error("schema column {0:?} has no writer (SCHEMA and COLUMNS disagree)")]
    NoColumnWriter(String),
}

/// Where and why a records file could not be read: the line and column, or the row and column.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A `.json` file that is not an array of records. (Not a `#[source]`: its own message
    /// repeats the position this one gives.)
    #[error("line {} column {}: {}; expected a JSON array of records", .0.line(), .0.column(), without_position(.0))]
    JsonArray(serde_json::Error),
    /// A JSON Lines line that cannot be read.
    #[error("line {line}: {source}")]
    LineIo { line: usize, source: std::io::Error },
    /// A JSON Lines line that is not a record.
    #[error("line {line} column {}: {source}", .source.column())]
    JsonLine {
        line: usize,
        source: serde_json::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// The Parquet file says it holds another records schema.
    #[error(
        "records schema {found:?}, but this hypura reads {:?}",
        crate::SCHEMA_ID
    )]
    Schema { found: String },
    #[error("no column {name:?}; a records file has the columns {}", crate::parquet_io::COLUMNS.join(", "))]
    MissingColumn { name: &'static str },
    #[error("row {row}: {source}")]
    Row { row: usize, source: ParquetError },
    /// A value of the wrong type or out of range; `value` is as Parquet read it.
    #[error("row {row}, column {column}: {value} is not {want}")]
    BadValue {
        row: usize,
        column: String,
        value: String,
        want: Want,
    },
}

/// What a Parquet value should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Want {
    #[error("in range")]
    InRange,
    #[error("an integer")]
    Integer,
    #[error("an integer in 0..={0}")]
    IntegerUpTo(u64),
    #[error("a floating-point number")]
    Float,
}

/// serde_json's message without its " at line L column C" (the callers say where, in the file).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
