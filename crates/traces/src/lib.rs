//! Expert-routing traces: the canonical model, its JSON and binary forms, importers and statistics.
//!
//! A [`Trace`] is the model's routing facts ([`ModelFacts`]: architecture, MoE layer ids, routed
//! expert count, top-k, shared experts) followed by sequences of tokens; every token carries, for
//! every MoE layer, the `top_k` expert ids in router order, and optionally gate weights, a phase
//! (prefill/decode), a timestamp and its text.
//!
//! Two on-disk forms hold exactly the same information (see `crates/traces/FORMAT.md`):
//! - JSON (`*.json`, version 1): readable by people and by Python's `json` module;
//! - binary (`*.htrace`, version 1): little-endian, magic `HYPTRACE`, ids in one flat array.
//!
//! [`load`] detects the form from the file's first bytes; [`save`] picks it from the extension.
//! Every load validates the trace and reports errors with `file:line:column` (JSON) or
//! `file: byte N` (binary). Importers for recorded traces of other tools live in [`import`];
//! [`stats`] computes the locality statistics that placement and caching depend on;
//! [`synth`] generates traces for any model shape and fits its parameters to a real trace.

pub mod binary;
mod builder;
mod error;
pub mod import;
pub mod json;
mod model;
pub mod stats;
pub mod synth;

pub use builder::{RuleError, TokenExtras, TraceBuilder};
pub use error::{Location, Place, TraceError};
pub use model::{FactsError, ModelFacts, Phase, SequenceView, Trace, MAX_BLOCKS, MAX_EXPERTS};

use std::path::Path;

/// Which on-disk form a trace file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Json,
    Binary,
}

impl Form {
    /// The form named by a path's extension: `.json` or `.htrace`.
    pub fn from_extension(path: &Path) -> Result<Form, TraceError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Ok(Form::Json),
            Some("htrace") => Ok(Form::Binary),
            _ => Err(TraceError::UnknownExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads and validates a trace in either form (detected from the magic bytes, not the name).
pub fn load(path: &Path) -> Result<Trace, TraceError> {
    if binary::has_magic(path)? {
        binary::read(path)
    } else {
        json::read(path)
    }
}

/// Writes a trace in the form named by `path`'s extension; never overwrites unless `force`, and
/// replaces a file only once the new one is complete.
pub fn save(trace: &Trace, path: &Path, force: bool) -> Result<(), TraceError> {
    let form = Form::from_extension(path)?;
    let written = outfile::write_atomic(path, force, |w| match form {
        Form::Json => json::write_to(trace, w),
        Form::Binary => binary::write_to(trace, w),
    });
    written.map_err(|e| match e {
        outfile::OutfileError::Io { path, source } => TraceError::Io { path, source },
        outfile::OutfileError::Exists(_) => TraceError::Exists {
            path: path.to_path_buf(),
        },
        outfile::OutfileError::IsDir(_) => TraceError::IsDir {
            path: path.to_path_buf(),
        },
        outfile::OutfileError::NotRegular(_) => TraceError::NotRegular {
            path: path.to_path_buf(),
        },
    })
}
