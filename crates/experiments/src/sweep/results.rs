//! A sweep's results directory: Parquet files of rows (`part-*.parquet`), one row per
//! configuration, which polars, pyarrow or pandas read as one table (`pl.read_parquet("dir/
//! *.parquet")`, `pq.read_table("dir")`).
//!
//! Files are written whole and atomically (a temporary name, then a rename), and never
//! overwritten: a rerun, another shard or another machine adds files with names of their own
//! (shard, process id, time, sequence). Opening a directory reads the `config_id` column of
//! every file in it, so a rerun skips what is there.

use super::{Config, Identity, Outcome, Row, SCHEMA};
use crate::table::{write_table, Column, TableError};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a results directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot create the results directory {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot list {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a sweep results file ({why}); move it out of the results directory")]
    Foreign { path: PathBuf, why: String },
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(transparent)]
    Write(#[from] TableError),
}

/// An open results directory.
pub struct ResultsDir {
    dir: PathBuf,
    /// Ids of the rows in it when opened, and of those written since.
    done: HashSet<String>,
    /// Part of every file name this process writes: shard, process, start time.
    stem: String,
    seq: u32,
}

impl ResultsDir {
    /// Opens `dir` (created when missing) and reads the ids of the rows it holds; `shard` goes
    /// into the names of the files written.
    pub fn open(dir: &Path, shard: super::Shard) -> Result<ResultsDir, ResultsError> {
        if dir.exists() && !dir.is_dir() {
            return Err(ResultsError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| ResultsError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut done = HashSet::new();
        for path in files(dir)? {
            done.extend(read_ids(&path)?);
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ok(ResultsDir {
            dir: dir.to_path_buf(),
            done,
            stem: format!(
                "part-{}of{}-{}-{millis}",
                shard.index,
                shard.count,
                std::process::id()
            ),
            seq: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Ids of the configurations with a row in the directory.
    pub fn done_ids(&self) -> HashSet<String> {
        self.done.clone()
    }

    /// Writes `rows` of a sweep of `identity` as a new file; returns its path.
    pub fn write(&mut self, identity: &Identity, rows: &[Row]) -> Result<PathBuf, ResultsError> {
        self.seq += 1;
        let path = self
            .dir
            .join(format!("{}-{:05}.parquet", self.stem, self.seq));
        write_table(&path, "sweep", SCHEMA, &columns(identity, rows), false)?;
        self.done.extend(rows.iter().map(|r| r.config_id.clone()));
        Ok(path)
    }
}

/// The directory's Parquet files (names not starting with a dot: those are partial writes).
fn files(dir: &Path) -> Result<Vec<PathBuf>, ResultsError> {
    let list = |source| ResultsError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let path = entry.map_err(list)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        if !name.starts_with('.') && name.ends_with(".parquet") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The `config_id` column of a results file.
fn read_ids(path: &Path) -> Result<Vec<String>, ResultsError> {
    let foreign = |why: String| ResultsError::Foreign {
        path: path.to_path_buf(),
        why,
    };
    let read = |source| ResultsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| read(e.into()))?;
    let reader = SerializedFileReader::new(file).map_err(read)?;
    let meta = reader.metadata().file_metadata();
    let schema = meta
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "hypura.schema"))
        .and_then(|kv| kv.value.clone());
    if schema.as_deref() != Some(SCHEMA) {
        return Err(foreign(format!(
            "its hypura.schema is {}, not {SCHEMA}",
            schema.map_or("missing".into(), |s| format!("{s:?}"))
        )));
    }
    let mut ids = Vec::new();
    for (i, row) in reader.get_row_iter(None).map_err(read)?.enumerate() {
        let row = row.map_err(read)?;
        let id = row
            .get_column_iter()
            .find(|(name, _)| name.as_str() == "config_id")
            .map(|(_, f)| f.clone());
        match id {
            Some(Field::Str(s)) => ids.push(s),
            other => {
                return Err(foreign(format!(
                    "row {i} has no config_id text ({other:?})"
                )))
            }
        }
    }
    Ok(ids)
}

/// The rows as columns: identity, inputs, plan, outcome (README's sweep section documents
/// each column).
fn columns(id: &Identity, rows: &[Row]) -> Vec<(&'static str, Column)> {
    let same = |v: &str| Column::Text(vec![v.to_string(); rows.len()]);
    let same_count = |v: u64| Column::Count(vec![Some(v); rows.len()]);
    let text = |f: &dyn Fn(&Row) -> String| Column::Text(rows.iter().map(f).collect());
    let opt_text =
        |f: &dyn Fn(&Row) -> Option<String>| Column::OptText(rows.iter().map(f).collect());
    let count = |f: &dyn Fn(&Row) -> Option<u64>| Column::Count(rows.iter().map(f).collect());
    let real = |f: &dyn Fn(&Row) -> Option<f64>| Column::Real(rows.iter().map(f).collect());
    let out = |f: fn(&Outcome) -> f64| {
        Column::Real(
            rows.iter()
                .map(|r| r.outcome.as_ref().ok().map(f))
                .collect(),
        )
    };
    let cfg = |r: &Row| -> Config { r.config };
    vec![
        ("config_id", text(&|r| r.config_id.clone())),
        ("config", text(&|r| r.config.label())),
        ("ram_bytes", count(&|r| cfg(r).ram_bytes)),
        ("gpu_bytes", count(&|r| cfg(r).gpu_bytes)),
        ("policy", text(&|r| cfg(r).policy.name().to_string())),
        (
            "partition",
            opt_text(&|r| {
                cfg(r)
                    .partition
                    .map(|p| super::grid::partition_name(p).to_string())
            }),
        ),
        ("cache_bytes", count(&|r| r.cache_bytes)),
        (
            "expert_prefetch",
            text(&|r| cfg(r).prefetch.name().to_string()),
        ),
        (
            "prefetch_depth",
            count(&|r| r.prefetch_depth.map(u64::from)),
        ),
        ("queue_depth", count(&|r| r.queue_depth.map(u64::from))),
        ("plan_mode", opt_text(&|r| r.plan_mode.clone())),
        ("plan_tok_per_s", real(&|r| r.plan_tok_per_s)),
        ("error", opt_text(&|r| r.outcome.as_ref().err().cloned())),
        ("tok_per_s", out(|o| o.tok_per_s)),
        ("token_s_p50", out(|o| o.token_s_p50)),
        ("token_s_p99", out(|o| o.token_s_p99)),
        ("hit_rate", out(|o| o.hit_rate)),
        ("belady_hit_rate", out(|o| o.belady_hit_rate)),
        ("prefetch_hit_rate", out(|o| o.prefetch_hit_rate)),
        ("bytes_read_per_token", out(|o| o.bytes_read_per_token)),
        (
            "prefetch_wasted_bytes_per_token",
            out(|o| o.prefetch_wasted_bytes_per_token),
        ),
        ("compute_s_per_token", out(|o| o.compute_s_per_token)),
        ("io_wait_s_per_token", out(|o| o.io_wait_s_per_token)),
        ("link_s_per_token", out(|o| o.link_s_per_token)),
        ("storage_utilisation", out(|o| o.storage_utilisation)),
        (
            "expert_accesses",
            count(&|r| r.outcome.as_ref().ok().map(|o| o.expert_accesses)),
        ),
        ("sim_seconds", real(&|r| Some(r.sim_seconds))),
        ("hypura_version", same(&id.hypura_version)),
        ("model", same(&id.model.name)),
        ("model_file_bytes", same_count(id.model.file_bytes)),
        ("model_header_hash", same(&id.model.header_hash)),
        ("profile", same(&id.profile_name)),
        ("profile_hash", same(&id.profile_hash)),
        ("trace", same(&id.trace_name)),
        ("trace_hash", same(&id.trace_hash)),
        ("tokens", same_count(id.tokens)),
    ]
}
