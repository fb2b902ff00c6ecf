//! Records as Parquet, through the `parquet` crate's low-level column writers (no Arrow).
//!
//! Columns are named after [`TokenLayerRecord`]'s fields: counts are unsigned integers
//! (`UINT_32`/`UINT_64` over INT32/INT64), times are doubles, `layer` is the one nullable
//! column. Reading goes by column name, so a file rewritten by another tool (pandas, polars,
//! pyarrow; columns reordered, signed integers, Snappy or no compression) still reads.

use super::files::SCHEMA_ID;
use super::record::TokenLayerRecord;
use crate::{ReadError, Want, WriteError};
use parquet::basic::Compression;
use parquet::data_type::{DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::sync::Arc;

const SCHEMA: &str = "message token_layer_record {
    required int32 token (INTEGER(32, false));
    optional int32 layer (INTEGER(32, false));
    required double start_s;
    required double wall_s;
    required double compute_s;
    required double io_wait_s;
    required double link_s;
    required int64 bytes_read (INTEGER(64, false));
    required int64 bytes_linked (INTEGER(64, false));
    required int32 expert_hits (INTEGER(32, false));
    required int32 expert_accesses (INTEGER(32, false));
    required int32 prefetch_hits (INTEGER(32, false));
    required double storage_busy_s;
}";

/// Column names in schema order.
pub(crate) const COLUMNS: [&str; 13] = [
    "token",
    "layer",
    "start_s",
    "wall_s",
    "compute_s",
    "io_wait_s",
    "link_s",
    "bytes_read",
    "bytes_linked",
    "expert_hits",
    "expert_accesses",
    "prefetch_hits",
    "storage_busy_s",
];

/// Rows per row group: bounds the writer's buffered pages on long runs.
const ROW_GROUP: usize = 1 << 20;

pub(super) fn write(file: File, records: &[TokenLayerRecord]) -> Result<(), WriteError> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "hypura.schema".to_string(),
            SCHEMA_ID.to_string(),
        )]))
        .build();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props))?;
    for group in records.chunks(ROW_GROUP) {
        let mut rg = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut col) = rg.next_column()? {
            // Unsigned values go into the signed physical columns bit for bit (Parquet's UINT
            // logical types are defined that way).
            let u32s = |f: fn(&TokenLayerRecord) -> u32| -> Vec<i32> {
                group.iter().map(|r| f(r) as i32).collect()
            };
            let u64s = |f: fn(&TokenLayerRecord) -> u64| -> Vec<i64> {
                group.iter().map(|r| f(r) as i64).collect()
            };
            let f64s =
                |f: fn(&TokenLayerRecord) -> f64| -> Vec<f64> { group.iter().map(f).collect() };
            let w = &mut col;
            match COLUMNS[index] {
                "token" => ints(w, &u32s(|r| r.token))?,
                "layer" => {
                    let present: Vec<i32> = group
                        .iter()
                        .filter_map(|r| r.layer.map(|l| l as i32))
                        .collect();
                    let def: Vec<i16> =
                        group.iter().map(|r| i16::from(r.layer.is_some())).collect();
                    w.typed::<Int32Type>()
                        .write_batch(&present, Some(&def), None)?;
                }
                "start_s" => doubles(w, &f64s(|r| r.start_s))?,
                "wall_s" => doubles(w, &f64s(|r| r.wall_s))?,
                "compute_s" => doubles(w, &f64s(|r| r.compute_s))?,
                "io_wait_s" => doubles(w, &f64s(|r| r.io_wait_s))?,
                "link_s" => doubles(w, &f64s(|r| r.link_s))?,
                "bytes_read" => longs(w, &u64s(|r| r.bytes_read))?,
                "bytes_linked" => longs(w, &u64s(|r| r.bytes_linked))?,
                "expert_hits" => ints(w, &u32s(|r| r.expert_hits))?,
                "expert_accesses" => ints(w, &u32s(|r| r.expert_accesses))?,
                "prefetch_hits" => ints(w, &u32s(|r| r.prefetch_hits))?,
                "storage_busy_s" => doubles(w, &f64s(|r| r.storage_busy_s))?,
                other => return Err(WriteError::NoColumnWriter(other.to_string())),
            }
            col.close()?;
            index += 1;
        }
        rg.close()?;
    }
    writer.close()?;
    Ok(())
}

type ColWriter<'a> = parquet::file::writer::SerializedColumnWriter<'a>;

fn ints(w: &mut ColWriter<'_>, v: &[i32]) -> Result<(), WriteError> {
    w.typed::<Int32Type>().write_batch(v, None, None)?;
    Ok(())
}

fn longs(w: &mut ColWriter<'_>, v: &[i64]) -> Result<(), WriteError> {
    w.typed::<Int64Type>().write_batch(v, None, None)?;
    Ok(())
}

fn doubles(w: &mut ColWriter<'_>, v: &[f64]) -> Result<(), WriteError> {
    w.typed::<DoubleType>().write_batch(v, None, None)?;
    Ok(())
}

pub(super) fn read(file: File) -> Result<Vec<TokenLayerRecord>, ReadError> {
    let reader = SerializedFileReader::new(file)?;
    let meta = reader.metadata().file_metadata();
    if let Some(kv) = meta.key_value_metadata() {
        if let Some(id) = kv.iter().find(|kv| kv.key == "hypura.schema") {
            let id = id.value.as_deref().unwrap_or("");
            if id != SCHEMA_ID {
                return Err(ReadError::Schema {
                    found: id.to_string(),
                });
            }
        }
    }
    let fields = meta.schema_descr().root_schema().get_fields();
    for name in COLUMNS {
        if !fields.iter().any(|f| f.name() == name) {
            return Err(ReadError::MissingColumn { name });
        }
    }
    let mut out = Vec::with_capacity(meta.num_rows().max(0) as usize);
    for (i, row) in reader.get_row_iter(None)?.enumerate() {
        let row = row.map_err(|source| ReadError::Row { row: i, source })?;
        let mut r = TokenLayerRecord::empty(0, None);
        for (name, field) in row.get_column_iter() {
            let bad = |want: Want| ReadError::BadValue {
                row: i,
                column: name.clone(),
                value: format!("{field:?}"),
                want,
            };
            let int = |max: u64| -> Result<u64, ReadError> {
                let v = match *field {
                    Field::Byte(v) => i64::from(v),
                    Field::Short(v) => i64::from(v),
                    Field::Int(v) => i64::from(v),
                    Field::Long(v) => v,
                    Field::UByte(v) => i64::from(v),
                    Field::UShort(v) => i64::from(v),
                    Field::UInt(v) => i64::from(v),
                    Field::ULong(v) => {
                        return (v <= max).then_some(v).ok_or_else(|| bad(Want::InRange))
                    }
                    _ => return Err(bad(Want::Integer)),
                };
                u64::try_from(v)
                    .ok()
                    .filter(|&v| v <= max)
                    .ok_or_else(|| bad(Want::IntegerUpTo(max)))
            };
            let float = || match *field {
                Field::Double(v) => Ok(v),
                Field::Float(v) => Ok(f64::from(v)),
                _ => Err(bad(Want::Float)),
            };
            let u32max = u64::from(u32::MAX);
            match name.as_str() {
                "token" => r.token = int(u32max)? as u32,
                "layer" => {
                    r.layer = match field {
                        Field::Null => None,
                        _ => Some(int(u32max)? as u32),
                    }
                }
                "start_s" => r.start_s = float()?,
                "wall_s" => r.wall_s = float()?,
                "compute_s" => r.compute_s = float()?,
                "io_wait_s" => r.io_wait_s = float()?,
                "link_s" => r.link_s = float()?,
                "bytes_read" => r.bytes_read = int(u64::MAX)?,
                "bytes_linked" => r.bytes_linked = int(u64::MAX)?,
                "expert_hits" => r.expert_hits = int(u32max)? as u32,
                "expert_accesses" => r.expert_accesses = int(u32max)? as u32,
                "prefetch_hits" => r.prefetch_hits = int(u32max)? as u32,
                "storage_busy_s" => r.storage_busy_s = float()?,
                _ => {}
            }
        }
        out.push(r);
    }
    Ok(out)
}
