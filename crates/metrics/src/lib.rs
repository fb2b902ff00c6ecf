//! The metrics schema shared by the simulator and the runtime: per-(token, layer) records, the
//! summary computed from them, and record files (Parquet, JSON, JSON Lines).
//!
//! It measures nothing itself: `sim` and `runtime` fill the records, so a prediction and a
//! measurement compare row by row.

mod error;
mod files;
mod parquet_io;
mod record;
mod summary;

pub use error::{MetricsError, ReadError, RecordProblem, Want, WriteError};
pub use files::{read_records, validate, write_records, RecordsFormat, SCHEMA_ID};
pub use record::TokenLayerRecord;
pub use summary::{Latency, LayerHits, RunInfo, Summary, SummaryBuilder, TimeSplit};
