//! Record files: the format picked from the extension, validation, and safe replacement of an
//! existing file; JSON and JSON Lines here, Parquet in `parquet_io`.
//!
//! Formats, by extension (case-insensitive):
//! - `.parquet`: one row per record, columns named and ordered as [`TokenLayerRecord`]'s fields
//!   (unsigned integer and double columns, `layer` nullable), Snappy-compressed, with the
//!   key-value metadata `hypura.schema` = [`SCHEMA_ID`].
//! - `.json`: a JSON array of record objects, one object per line.
//! - `.jsonl` or `.ndjson`: JSON Lines, one record object per line.
//!
//! A file is written next to its target under a temporary name and renamed over it at the end,
//! so a failed write never leaves half a file under the user's name; an existing target is
//! replaced only when the caller passes `overwrite` (the CLI's `--force`).

use super::parquet_io;
use super::record::TokenLayerRecord;
use crate::{MetricsError, ReadError, RecordProblem, WriteError};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// Names the column layout in Parquet metadata, for readers that check what they were given.
pub const SCHEMA_ID: &str = "hypura.token_layer_record/1";

/// A records file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFormat {
    Parquet,
    /// A JSON array.
    Json,
    /// JSON Lines.
    JsonLines,
}

impl RecordsFormat {
    /// The format `path`'s extension names.
    pub fn from_path(path: &Path) -> Result<RecordsFormat, MetricsError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("parquet") => Ok(RecordsFormat::Parquet),
            Some("json") => Ok(RecordsFormat::Json),
            Some("jsonl" | "ndjson") => Ok(RecordsFormat::JsonLines),
            other => Err(MetricsError::UnknownFormat {
                path: path.to_path_buf(),
                found: other.map_or("no extension".to_string(), |e| format!("extension .{e}")),
            }),
        }
    }
}

/// Writes `records` to `path` in the format its extension names. An existing file is an error
/// unless `overwrite`; records with a negative or non-finite time, or more hits than accesses,
/// are refused (naming the record) rather than written.
pub fn write_records(
    path: &Path,
    records: &[TokenLayerRecord],
    overwrite: bool,
) -> Result<(), MetricsError> {
    let format = RecordsFormat::from_path(path)?;
    validate(records).map_err(|e| MetricsError::NotWritten {
        path: path.to_path_buf(),
        reason: Box::new(e),
    })?;
    let (partial, file) = outfile::Partial::create(path, overwrite)?;
    match format {
        RecordsFormat::Parquet => parquet_io::write(file, records),
        RecordsFormat::Json => write_json(file, records, true),
        RecordsFormat::JsonLines => write_json(file, records, false),
    }
    .map_err(|source| MetricsError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(partial.commit()?)
}

/// Reads the records in `path` (format from its extension) and checks each one as
/// [`write_records`] does; errors name the file and the line or row.
pub fn read_records(path: &Path) -> Result<Vec<TokenLayerRecord>, MetricsError> {
    let format = RecordsFormat::from_path(path)?;
    let file = infile::open(path).map_err(|source| MetricsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let records = match format {
        RecordsFormat::Parquet => parquet_io::read(file),
        RecordsFormat::Json => read_json_array(file),
        RecordsFormat::JsonLines => read_json_lines(file),
    }
    .map_err(|at| MetricsError::Read {
        path: path.to_path_buf(),
        at,
    })?;
    validate(&records).map_err(|e| MetricsError::Invalid {
        path: path.to_path_buf(),
        reason: Box::new(e),
    })?;
    Ok(records)
}

fn write_json(file: File, records: &[TokenLayerRecord], array: bool) -> Result<(), WriteError> {
    let mut w = BufWriter::new(file);
    if array {
        w.write_all(b"[")?;
    }
    for (i, r) in records.iter().enumerate() {
        if array {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        }
        serde_json::to_writer(&mut w, r)?;
        if !array {
            w.write_all(b"\n")?;
        }
    }
    if array {
        w.write_all(b"\n]\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn read_json_array(file: File) -> Result<Vec<TokenLayerRecord>, ReadError> {
    serde_json::from_reader(BufReader::new(file)).map_err(ReadError::JsonArray)
}

fn read_json_lines(file: File) -> Result<Vec<TokenLayerRecord>, ReadError> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ReadError::LineIo {
            line: i + 1,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let r = serde_json::from_str(&line).map_err(|source| ReadError::JsonLine {
            line: i + 1,
            source,
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Checks what every record must satisfy; the error names the record (0-based, in file order).
pub fn validate(records: &[TokenLayerRecord]) -> Result<(), MetricsError> {
    for (i, r) in records.iter().enumerate() {
        let bad = |problem: RecordProblem| MetricsError::Record {
            record: i,
            token: r.token,
            layer: r.layer,
            problem,
        };
        let times = [
            ("start_s", r.start_s),
            ("wall_s", r.wall_s),
            ("compute_s", r.compute_s),
            ("io_wait_s", r.io_wait_s),
            ("link_s", r.link_s),
            ("storage_busy_s", r.storage_busy_s),
        ];
        if let Some(&(field, value)) = times.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(bad(RecordProblem::BadTime { field, value }));
        }
        if r.expert_hits > r.expert_accesses {
            return Err(bad(RecordProblem::HitsOverAccesses {
                hits: r.expert_hits,
                accesses: r.expert_accesses,
            }));
        }
        if r.prefetch_hits > r.expert_hits {
            return Err(bad(RecordProblem::PrefetchOverHits {
                prefetch_hits: r.prefetch_hits,
                hits: r.expert_hits,
            }));
        }
    }
    Ok(())
}
