//! DeepSeek-V2-Lite routing CSVs: one file per prompt, rows layer-major
//! (`Layer ID,Batch Number,Token,Activated Expert IDs`), position = row index within its layer.

use super::{at_line, Options};
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::TraceError;
use crate::model::{ModelFacts, Trace};
use std::path::{Path, PathBuf};

pub const HEADER: [&str; 4] = ["Layer ID", "Batch Number", "Token", "Activated Expert IDs"];

/// DeepSeek-V2-Lite: 27 blocks, block 0 dense, blocks 1..=26 MoE with 64 routed experts,
/// top-6, and 2 always-active shared experts that the CSVs do not log.
pub fn deepseek_v2_lite() -> ModelFacts {
    ModelFacts {
        architecture: "deepseek2".into(),
        moe_layers: (1..=26).collect(),
        n_expert: 64,
        top_k: 6,
        n_shared_expert: 2,
    }
}

/// Imports a directory of `*.csv` (sorted by name, one sequence each, id = file stem) or one file.
pub fn import(path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let files = csv_files(path)?;
    let facts = opts.override_facts(deepseek_v2_lite());
    let mut b = TraceBuilder::new(facts).map_err(|e| TraceError::invalid(path.display(), e))?;
    for file in &files {
        read_file(file, &mut b)?;
    }
    b.finish()
        .map_err(|e| TraceError::invalid(path.display(), e))
}

/// Imports one CSV held in memory as a one-sequence trace; `path` names the source in errors
/// and its stem is the sequence id, as for a file.
pub fn from_slice(bytes: &[u8], path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let facts = opts.override_facts(deepseek_v2_lite());
    let mut b = TraceBuilder::new(facts).map_err(|e| TraceError::invalid(path.display(), e))?;
    read_csv(bytes, path, &mut b)?;
    b.finish()
        .map_err(|e| TraceError::invalid(path.display(), e))
}

fn csv_files(path: &Path) -> Result<Vec<PathBuf>, TraceError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| TraceError::io(path, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let p = entry.map_err(|e| TraceError::io(path, e))?.path();
        if p.extension().is_some_and(|e| e == "csv") {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(TraceError::invalid(
            path.display(),
            "directory has no *.csv files",
        ));
    }
    files.sort();
    Ok(files)
}

/// One layer's block of rows: ids of every position, and the token texts.
struct LayerBlock {
    ids: Vec<u16>,
    texts: Vec<String>,
    first_line: u64,
}

/// Reads one CSV as one sequence.
pub fn read_file(path: &Path, b: &mut TraceBuilder) -> Result<(), TraceError> {
    let file = infile::open(path).map_err(|e| TraceError::io(path, e))?;
    read_csv(file, path, b)
}

/// Reads the CSV `r` (named `path` in errors) as one sequence.
fn read_csv(r: impl std::io::Read, path: &Path, b: &mut TraceBuilder) -> Result<(), TraceError> {
    let facts = b.model().clone();
    let k = facts.top_k as usize;
    let mut rdr = csv::ReaderBuilder::new().from_reader(r);
    let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(TraceError::invalid(
            at_line(path, 1),
            format!(
                "header is {:?}; expected {}",
                header.iter().collect::<Vec<_>>(),
                HEADER.join(",")
            ),
        ));
    }
    let mut blocks: Vec<Option<LayerBlock>> = (0..facts.n_layers()).map(|_| None).collect();
    let mut current: Option<usize> = None;
    let mut record = csv::StringRecord::new();
    while rdr
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let at = || at_line(path, line);
        let layer: u32 = record[0].trim().parse().map_err(|_| {
            TraceError::invalid(
                at(),
                format!("Layer ID {:?} is not a whole number", &record[0]),
            )
        })?;
        let l = facts.layer_index(layer).ok_or_else(|| {
            TraceError::invalid(
                at(),
                format!(
                    "unknown layer {layer}; the model's MoE layers are {:?}",
                    facts.moe_layers
                ),
            )
        })?;
        if current != Some(l) {
            if blocks[l].is_some() {
                return Err(TraceError::invalid(
                    at(),
                    format!(
                        "layer {layer} appears again after other layers; rows must be layer-major"
                    ),
                ));
            }
            blocks[l] = Some(LayerBlock {
                ids: Vec::new(),
                texts: Vec::new(),
                first_line: line,
            });
            current = Some(l);
        }
        let block = blocks[l].as_mut().expect("block was just created");
        let start = block.ids.len();
        parse_ids(&record[3], facts.n_expert, &mut block.ids)
            .map_err(|e| TraceError::invalid(at(), format!("layer {layer}: {e}")))?;
        let count = block.ids.len() - start;
        if count != k {
            return Err(TraceError::invalid(
                at(),
                format!("layer {layer}: selection has {count} expert ids but top_k is {k}"),
            ));
        }
        check_selection(&block.ids[start..], facts.n_expert)
            .map_err(|e| TraceError::invalid(at(), format!("layer {layer}: {e}")))?;
        block.texts.push(record[2].to_string());
    }
    let mut present = Vec::with_capacity(blocks.len());
    for (l, block) in blocks.into_iter().enumerate() {
        let block = block.ok_or_else(|| {
            TraceError::invalid(
                path.display(),
                format!(
                    "layer {} has no rows; every MoE layer must be logged",
                    facts.moe_layers[l]
                ),
            )
        })?;
        present.push(block);
    }
    let n = present[0].texts.len();
    for (l, block) in present.iter().enumerate().skip(1) {
        if block.texts.len() != n {
            return Err(TraceError::invalid(
                at_line(path, block.first_line),
                format!(
                    "layer {} has {} rows but layer {} has {n}; every layer must log every token",
                    facts.moe_layers[l],
                    block.texts.len(),
                    facts.moe_layers[0]
                ),
            ));
        }
        if let Some(pos) = (0..n).find(|&t| block.texts[t] != present[0].texts[t]) {
            return Err(TraceError::invalid(
                at_line(path, block.first_line),
                format!(
                    "layer {} position {pos} has token {:?} but layer {} has {:?}",
                    facts.moe_layers[l],
                    block.texts[pos],
                    facts.moe_layers[0],
                    present[0].texts[pos]
                ),
            ));
        }
    }
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    b.begin_sequence(id)
        .map_err(|e| TraceError::invalid(path.display(), e))?;
    let mut token = Vec::with_capacity(facts.ids_per_token());
    for t in 0..n {
        token.clear();
        for block in &present {
            token.extend_from_slice(&block.ids[t * k..(t + 1) * k]);
        }
        let extras = TokenExtras {
            text: Some(present[0].texts[t].clone()),
            ..Default::default()
        };
        b.push_token(&token, extras)
            .map_err(|e| TraceError::invalid(path.display(), format!("position {t}: {e}")))?;
    }
    b.end_sequence()
        .map_err(|e| TraceError::invalid(path.display(), e))
}

/// What is wrong with an `Activated Expert IDs` field.
#[derive(Debug, thiserror::Error)]
enum IdsError {
    #[error("Activated Expert IDs {0:?} is not a bracketed list like \"[8, 26, 56]\"")]
    NotAList(String),
    #[error("expert id {0:?} is not a whole number")]
    NotANumber(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// Parses `[8, 26, 56]` into ids.
fn parse_ids(field: &str, n_expert: u32, out: &mut Vec<u16>) -> Result<(), IdsError> {
    let inner = field
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| IdsError::NotAList(field.to_string()))?;
    for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let id: u64 = part
            .trim()
            .parse()
            .map_err(|_| IdsError::NotANumber(part.trim().to_string()))?;
        out.push(expert_id(id, n_expert)?);
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> TraceError {
    let line = e.position().map(|p| p.line());
    let at = line.map_or_else(|| path.display().to_string(), |l| at_line(path, l));
    match e.into_kind() {
        csv::ErrorKind::Io(io) => TraceError::io(path, io),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            TraceError::invalid(at, format!("row has {len} fields; expected {expected_len} (quote token text that contains commas)"))
        }
        csv::ErrorKind::Utf8 { err, .. } => TraceError::invalid(at, format!("invalid UTF-8: {err}")),
        other => TraceError::invalid(at, format!("{other:?}")),
    }
}
