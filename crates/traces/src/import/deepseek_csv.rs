//! DeepSeek-V2-Lite routing CSVs: one file per prompt, rows layer-major
//! (`Layer ID,Batch Number,Token,Activated Expert IDs`), position = row index within its layer.

use super::Options;
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::{Location, TraceError};
use crate::model::{ModelFacts, Trace};
use std::path::{Path, PathBuf};

pub const HEADER: [&str; 4] = ["Layer ID", "Batch Number", "Token", "Activated Expert IDs"];

/// What is wrong with a DeepSeek routing CSV (or the directory of them).
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("directory has no *.csv files")]
    NoCsvFiles,
    #[error("header is {found:?}; expected {}", HEADER.join(","))]
    Header { found: Vec<String> },
    #[error("Layer ID {0:?} is not a whole number")]
    LayerId(String),
    #[error("unknown layer {layer}; the model's MoE layers are {moe_layers:?}")]
    UnknownLayer { layer: u32, moe_layers: Vec<u32> },
    #[error("layer {layer} appears again after other layers; rows must be layer-major")]
    LayerAgain { layer: u32 },
    /// The `Activated Expert IDs` field of a row of `layer`.
    #[error("layer {layer}: {problem}")]
    Ids { layer: u32, problem: IdsError },
    #[error("layer {layer}: selection has {count} expert ids but top_k is {top_k}")]
    SelectionSize {
        layer: u32,
        count: usize,
        top_k: usize,
    },
    #[error("layer {layer} has no rows; every MoE layer must be logged")]
    MissingLayer { layer: u32 },
    #[error("layer {layer} has {rows} rows but layer {first_layer} has {first_rows}; every layer must log every token")]
    RowCount {
        layer: u32,
        rows: usize,
        first_layer: u32,
        first_rows: usize,
    },
    #[error("layer {layer} position {position} has token {token:?} but layer {first_layer} has {first_token:?}")]
    TokenDiffers {
        layer: u32,
        position: usize,
        token: String,
        first_layer: u32,
        first_token: String,
    },
    #[error("position {position}: {rule}")]
    Position { position: usize, rule: RuleError },
    #[error("row has {found} fields; expected {expected} (quote token text that contains commas)")]
    FieldCount { found: u64, expected: u64 },
    #[error("invalid UTF-8: {0}")]
    Utf8(csv::Utf8Error),
    /// Any other failure of the CSV reader.
    #[error("{0:?}")]
    Reader(csv::ErrorKind),
}

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
    let rule = |e: RuleError| TraceError::import(Location::file(path), e);
    let mut b = TraceBuilder::new(facts).map_err(rule)?;
    for file in &files {
        read_file(file, &mut b)?;
    }
    b.finish().map_err(rule)
}

/// Imports one CSV held in memory as a one-sequence trace; `path` names the source in errors
/// and its stem is the sequence id, as for a file.
pub fn from_slice(bytes: &[u8], path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let facts = opts.override_facts(deepseek_v2_lite());
    let rule = |e: RuleError| TraceError::import(Location::file(path), e);
    let mut b = TraceBuilder::new(facts).map_err(rule)?;
    read_csv(bytes, path, &mut b)?;
    b.finish().map_err(rule)
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
        return Err(TraceError::import(
            Location::file(path),
            CsvError::NoCsvFiles,
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
        return Err(TraceError::import(
            Location::line(path, 1),
            CsvError::Header {
                found: header.iter().map(String::from).collect(),
            },
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
        let fail = |problem: CsvError| TraceError::import(Location::line(path, line), problem);
        let layer: u32 = record[0]
            .trim()
            .parse()
            .map_err(|_| fail(CsvError::LayerId(record[0].to_string())))?;
        let l = facts.layer_index(layer).ok_or_else(|| {
            fail(CsvError::UnknownLayer {
                layer,
                moe_layers: facts.moe_layers.clone(),
            })
        })?;
        if current != Some(l) {
            if blocks[l].is_some() {
                return Err(fail(CsvError::LayerAgain { layer }));
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
        let ids_error = |problem| fail(CsvError::Ids { layer, problem });
        parse_ids(&record[3], facts.n_expert, &mut block.ids).map_err(ids_error)?;
        let count = block.ids.len() - start;
        if count != k {
            return Err(fail(CsvError::SelectionSize {
                layer,
                count,
                top_k: k,
            }));
        }
        check_selection(&block.ids[start..], facts.n_expert)
            .map_err(|e| ids_error(IdsError::Rule(e)))?;
        block.texts.push(record[2].to_string());
    }
    let mut present = Vec::with_capacity(blocks.len());
    for (l, block) in blocks.into_iter().enumerate() {
        let block = block.ok_or_else(|| {
            TraceError::import(
                Location::file(path),
                CsvError::MissingLayer {
                    layer: facts.moe_layers[l],
                },
            )
        })?;
        present.push(block);
    }
    let n = present[0].texts.len();
    for (l, block) in present.iter().enumerate().skip(1) {
        let at = Location::line(path, block.first_line);
        if block.texts.len() != n {
            return Err(TraceError::import(
                at,
                CsvError::RowCount {
                    layer: facts.moe_layers[l],
                    rows: block.texts.len(),
                    first_layer: facts.moe_layers[0],
                    first_rows: n,
                },
            ));
        }
        if let Some(pos) = (0..n).find(|&t| block.texts[t] != present[0].texts[t]) {
            return Err(TraceError::import(
                at,
                CsvError::TokenDiffers {
                    layer: facts.moe_layers[l],
                    position: pos,
                    token: block.texts[pos].clone(),
                    first_layer: facts.moe_layers[0],
                    first_token: present[0].texts[pos].clone(),
                },
            ));
        }
    }
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rule = |e: RuleError| TraceError::import(Location::file(path), e);
    b.begin_sequence(id).map_err(rule)?;
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
        b.push_token(&token, extras).map_err(|rule| {
            TraceError::import(
                Location::file(path),
                CsvError::Position { position: t, rule },
            )
        })?;
    }
    b.end_sequence().map_err(rule)
}

/// What is wrong with an `Activated Expert IDs` field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdsError {
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
    let at = match e.position() {
        Some(p) => Location::line(path, p.line()),
        None => Location::file(path),
    };
    let problem = match e.into_kind() {
        csv::ErrorKind::Io(io) => return TraceError::io(path, io),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => CsvError::FieldCount {
            found: len,
            expected: expected_len,
        },
        csv::ErrorKind::Utf8 { err, .. } => CsvError::Utf8(err),
        other => CsvError::Reader(other),
    };
    TraceError::import(at, problem)
}
