//! The report's tables as Parquet: one row per point (`points.parquet`) and one per (point,
//! layer) with both sides' seconds (`layers.parquet`), for pandas, polars or pyarrow.
//!
//! Written through the `parquet` crate's low-level column API (as `metrics` writes records):
//! doubles are nullable where a side may have no value, counts are unsigned 64-bit, names are
//! UTF-8 strings.

use crate::report::ValidateReport;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;

/// One column's values.
pub enum Column {
    Text(Vec<String>),
    /// `None`: null.
    OptText(Vec<Option<String>>),
    /// Unsigned counts (`None`: null).
    Count(Vec<Option<u64>>),
    /// `None`: null.
    Real(Vec<Option<f64>>),
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    File(#[from] outfile::OutfileError),
}

/// Writes `columns` (all the same length) to `path` atomically, replacing it.
pub fn write(path: &Path, name: &str, columns: &[(&str, Column)]) -> Result<(), TableError> {
    write_table(path, name, crate::report::SCHEMA, columns, true)
}

/// Writes `columns` to `path` atomically with `schema_id` as the file's `hypura.schema`;
/// an existing `path` is replaced only with `overwrite`.
pub fn write_table(
    path: &Path,
    name: &str,
    schema_id: &str,
    columns: &[(&str, Column)],
    overwrite: bool,
) -> Result<(), TableError> {
    let fields: Vec<String> = columns
        .iter()
        .map(|(n, c)| match c {
            Column::Text(_) => format!("required binary {n} (UTF8);"),
            Column::OptText(_) => format!("optional binary {n} (UTF8);"),
            Column::Count(_) => format!("optional int64 {n} (INTEGER(64, false));"),
            Column::Real(_) => format!("optional double {n};"),
        })
        .collect();
    let schema = format!("message {name} {{ {} }}", fields.join(" "));
    let err = |source| TableError::Write {
        path: path.to_path_buf(),
        source,
    };
    let bytes = (|| -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let schema = Arc::new(parse_message_type(&schema)?);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "hypura.schema".to_string(),
                schema_id.to_string(),
            )]))
            .build();
        let mut out = Vec::new();
        let mut writer = SerializedFileWriter::new(&mut out, schema, Arc::new(props))?;
        let mut rg = writer.next_row_group()?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column()? {
            match &columns[i].1 {
                Column::Text(v) => {
                    let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                    col.typed::<ByteArrayType>().write_batch(&v, None, None)?;
                }
                Column::OptText(v) => {
                    let (vals, def) = nullable_text(v);
                    col.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&def), None)?;
                }
                Column::Count(v) => {
                    let (vals, def) = nullable(v, |x| x as i64);
                    col.typed::<Int64Type>()
                        .write_batch(&vals, Some(&def), None)?;
                }
                Column::Real(v) => {
                    let (vals, def) = nullable(v, |x| x);
                    col.typed::<DoubleType>()
                        .write_batch(&vals, Some(&def), None)?;
                }
            }
            col.close()?;
            i += 1;
        }
        rg.close()?;
        writer.close()?;
        Ok(out)
    })()
    .map_err(err)?;
    outfile::write_bytes(path, overwrite, &bytes)?;
    Ok(())
}

/// Present values and the definition levels (1 present, 0 null).
fn nullable<T: Copy, U>(v: &[Option<T>], f: impl Fn(T) -> U) -> (Vec<U>, Vec<i16>) {
    let vals = v.iter().flatten().map(|&x| f(x)).collect();
    let def = v.iter().map(|x| i16::from(x.is_some())).collect();
    (vals, def)
}

fn nullable_text(v: &[Option<String>]) -> (Vec<ByteArray>, Vec<i16>) {
    let vals = v
        .iter()
        .flatten()
        .map(|s| ByteArray::from(s.as_str()))
        .collect();
    let def = v.iter().map(|x| i16::from(x.is_some())).collect();
    (vals, def)
}

/// The per-point table.
pub fn points(r: &ValidateReport) -> Vec<(&'static str, Column)> {
    let p = &r.points;
    let text =
        |f: fn(&crate::report::PointReport) -> String| Column::Text(p.iter().map(f).collect());
    let count = |f: fn(&crate::report::PointReport) -> Option<u64>| {
        Column::Count(p.iter().map(f).collect())
    };
    let real =
        |f: fn(&crate::report::PointReport) -> Option<f64>| Column::Real(p.iter().map(f).collect());
    vec![
        ("point", text(|p| p.label.clone())),
        ("ram_bytes", count(|p| p.ram_bytes)),
        ("gpu_bytes", count(|p| p.gpu_bytes)),
        ("policy", text(|p| p.policy.to_string())),
        ("prefetch", text(|p| p.prefetch.to_string())),
        ("queue_depth", count(|p| Some(u64::from(p.queue_depth)))),
        ("plan_mode", text(|p| p.plan_mode.clone())),
        ("plan_tok_per_s", real(|p| Some(p.plan_tok_per_s))),
        ("expert_cache_bytes", count(|p| Some(p.expert_cache_bytes))),
        ("sim_decode_tok_per_s", real(|p| p.sim.decode_tok_per_s)),
        ("run_decode_tok_per_s", real(|p| p.run.decode_tok_per_s)),
        ("err_decode_tok_per_s", real(|p| p.errors.decode_tok_per_s)),
        ("sim_prefill_tok_per_s", real(|p| p.sim.prefill_tok_per_s)),
        ("run_prefill_tok_per_s", real(|p| p.run.prefill_tok_per_s)),
        (
            "err_prefill_tok_per_s",
            real(|p| p.errors.prefill_tok_per_s),
        ),
        ("sim_decode_hits", count(|p| Some(p.sim.decode_hits))),
        ("run_decode_hits", count(|p| Some(p.run.decode_hits))),
        ("sim_decode_uses", count(|p| Some(p.sim.decode_uses))),
        ("run_decode_uses", count(|p| Some(p.run.decode_uses))),
        ("sim_prefill_hits", count(|p| Some(p.sim.prefill_hits))),
        ("run_prefill_hits", count(|p| Some(p.run.prefill_hits))),
        (
            "sim_decode_bytes_read",
            count(|p| Some(p.sim.decode_bytes_read)),
        ),
        (
            "run_decode_bytes_read",
            count(|p| Some(p.run.decode_bytes_read)),
        ),
        ("err_bytes_per_token", real(|p| p.errors.bytes_per_token)),
        ("sim_io_wait_share", real(|p| p.sim.io_wait_share)),
        ("run_io_wait_share", real(|p| p.run.io_wait_share)),
        ("sim_storage_gbps", real(|p| p.sim.storage_gbps)),
        ("run_storage_gbps", real(|p| p.run.storage_gbps)),
        (
            "run_wall_decode_tok_per_s",
            real(|p| Some(p.run_facts.decode_tok_per_s)),
        ),
    ]
}

/// The per-(point, layer) table: both sides' mean seconds per timed token.
pub fn layers(r: &ValidateReport) -> Vec<(&'static str, Column)> {
    let (mut point, mut layer, mut sim, mut run) = (vec![], vec![], vec![], vec![]);
    for p in &r.points {
        let mut keys: Vec<Option<u32>> = p
            .sim
            .layers
            .iter()
            .chain(&p.run.layers)
            .map(|l| l.layer)
            .collect();
        keys.sort();
        keys.dedup();
        let find = |ls: &[crate::measures::LayerTime], k| {
            ls.iter().find(|l| l.layer == k).map(|l| l.seconds)
        };
        for k in keys {
            point.push(p.label.clone());
            layer.push(k.map(u64::from));
            sim.push(find(&p.sim.layers, k));
            run.push(find(&p.run.layers, k));
        }
    }
    vec![
        ("point", Column::Text(point)),
        ("layer", Column::Count(layer)),
        ("sim_s", Column::Real(sim)),
        ("run_s", Column::Real(run)),
    ]
}
