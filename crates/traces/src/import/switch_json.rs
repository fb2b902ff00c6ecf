//! switch-base-8 router traces (`router-trace.v2.json`: `selections[token][layer] = [ids]`),
//! split into prompts by `capture-metadata.json` when it sits beside the trace.

use super::{ImportError, LayersIn, Options};
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::{Location, TraceError};
use crate::model::{ModelFacts, Trace, MAX_BLOCKS};
use serde::Deserialize;
use std::path::Path;

pub const TRACE_FILE: &str = "router-trace.v2.json";
pub const METADATA_FILE: &str = "capture-metadata.json";

/// What is wrong with a router trace or its capture metadata.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwitchError {
    #[error("router trace version is {version}; this importer reads version 2")]
    Version { version: u64 },
    #[error(
        "sparse_encoder_block_indices lists {blocks} blocks but the trace has {layers} layers"
    )]
    BlockCount { blocks: usize, layers: u32 },
    #[error("\"layers\" is {layers}; a model has at most {MAX_BLOCKS} blocks")]
    TooManyLayers { layers: u32 },
    #[error("\"tokens\" is {tokens} but \"selections\" has {selections} entries")]
    TokenCount { tokens: u64, selections: usize },
    #[error("selections[{token}] has {layers} layers; expected {expected}")]
    TokenLayers {
        token: usize,
        layers: usize,
        expected: usize,
    },
    #[error("selections[{token}][{layer}]: selection has {count} expert ids but topK is {top_k}")]
    SelectionSize {
        token: usize,
        layer: usize,
        count: usize,
        top_k: usize,
    },
    #[error("selections[{token}][{layer}]: {rule}")]
    Selection {
        token: usize,
        layer: usize,
        rule: RuleError,
    },
    #[error("selections[{token}]: {rule}")]
    Token { token: usize, rule: RuleError },
    #[error("prompt_spans[{index}] ({start}..{end}) does not continue at token {next} within {tokens} tokens")]
    Span {
        index: usize,
        start: u64,
        end: u64,
        next: u64,
        tokens: u64,
    },
    #[error("prompt_spans cover {covered} of {tokens} tokens")]
    SpansCover { covered: u64, tokens: u64 },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouterTrace {
    version: u64,
    experts_per_layer: u32,
    layers: u32,
    top_k: u32,
    tokens: u64,
    selections: Vec<Vec<Vec<u64>>>,
}

#[derive(Deserialize)]
struct CaptureMetadata {
    sparse_encoder_block_indices: Vec<u32>,
    prompt_spans: Vec<PromptSpan>,
}

#[derive(Deserialize)]
struct PromptSpan {
    id: String,
    token_start: u64,
    token_end_exclusive: u64,
}

/// Imports a directory holding `router-trace.v2.json`, or that file itself.
pub fn import(path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let (trace_path, meta_path) = if path.is_dir() {
        (path.join(TRACE_FILE), path.join(METADATA_FILE))
    } else {
        (
            path.to_path_buf(),
            path.parent().unwrap_or(Path::new(".")).join(METADATA_FILE),
        )
    };
    let read = |p: &Path| infile::read(p).map_err(|e| TraceError::io(p, e));
    let trace = read(&trace_path)?;
    let meta = if meta_path.is_file() {
        Some(read(&meta_path)?)
    } else {
        None
    };
    from_slices(
        &trace,
        &trace_path,
        meta.as_deref().map(|m| (m, meta_path.as_path())),
        opts,
    )
}

/// Imports a router trace held in memory, with the bytes of its `capture-metadata.json` when
/// there is one; the paths only name the sources in errors.
pub fn from_slices(
    trace: &[u8],
    trace_path: &Path,
    meta: Option<(&[u8], &Path)>,
    opts: &Options,
) -> Result<Trace, TraceError> {
    let rt: RouterTrace = parse_json(trace, trace_path)?;
    let fail = |problem: ImportError| TraceError::import(Location::file(trace_path), problem);
    if rt.version != 2 {
        return Err(fail(
            SwitchError::Version {
                version: rt.version,
            }
            .into(),
        ));
    }
    let (meta, meta_path): (Option<CaptureMetadata>, &Path) = match meta {
        Some((bytes, p)) => (Some(parse_json(bytes, p)?), p),
        None => (None, Path::new(METADATA_FILE)),
    };
    let moe_layers = match &meta {
        Some(m) if m.sparse_encoder_block_indices.len() != rt.layers as usize => {
            return Err(TraceError::import(
                Location::file(meta_path),
                SwitchError::BlockCount {
                    blocks: m.sparse_encoder_block_indices.len(),
                    layers: rt.layers,
                },
            ))
        }
        Some(m) => m.sparse_encoder_block_indices.clone(),
        // Checked before the ids are collected: a count from a tiny file could ask for GBs.
        None if rt.layers > MAX_BLOCKS => {
            return Err(fail(
                SwitchError::TooManyLayers { layers: rt.layers }.into(),
            ))
        }
        None => (0..rt.layers).collect(),
    };
    let facts = opts.override_facts(ModelFacts {
        architecture: "switch_transformers".into(),
        moe_layers,
        n_expert: rt.experts_per_layer,
        top_k: rt.top_k,
        n_shared_expert: 0,
    });
    if facts.n_layers() != rt.layers as usize {
        return Err(fail(ImportError::LayerCount {
            given: facts.n_layers(),
            found: rt.layers as usize,
            found_in: LayersIn::Trace,
        }));
    }
    if rt.selections.len() as u64 != rt.tokens {
        return Err(fail(
            SwitchError::TokenCount {
                tokens: rt.tokens,
                selections: rt.selections.len(),
            }
            .into(),
        ));
    }
    let spans = spans(meta.as_ref(), rt.tokens, meta_path)?;
    let rule = |e: RuleError| fail(e.into());
    let mut b = TraceBuilder::new(facts).map_err(rule)?;
    let (k, n_expert, n_layers) = (
        b.model().top_k as usize,
        b.model().n_expert,
        b.model().n_layers(),
    );
    let mut ids = Vec::with_capacity(b.model().ids_per_token());
    for (id, range) in spans {
        b.begin_sequence(id).map_err(rule)?;
        for t in range {
            ids.clear();
            let layers = &rt.selections[t];
            if layers.len() != n_layers {
                return Err(fail(
                    SwitchError::TokenLayers {
                        token: t,
                        layers: layers.len(),
                        expected: n_layers,
                    }
                    .into(),
                ));
            }
            for (l, sel) in layers.iter().enumerate() {
                let here = |rule: RuleError| {
                    fail(
                        SwitchError::Selection {
                            token: t,
                            layer: l,
                            rule,
                        }
                        .into(),
                    )
                };
                if sel.len() != k {
                    return Err(fail(
                        SwitchError::SelectionSize {
                            token: t,
                            layer: l,
                            count: sel.len(),
                            top_k: k,
                        }
                        .into(),
                    ));
                }
                let start = ids.len();
                for &id in sel {
                    ids.push(expert_id(id, n_expert).map_err(here)?);
                }
                check_selection(&ids[start..], n_expert).map_err(here)?;
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(|rule| fail(SwitchError::Token { token: t, rule }.into()))?;
        }
        b.end_sequence().map_err(rule)?;
    }
    b.finish().map_err(rule)
}

/// Prompt spans from the metadata (which must tile the tokens in order), else one sequence.
fn spans(
    meta: Option<&CaptureMetadata>,
    tokens: u64,
    meta_path: &Path,
) -> Result<Vec<(String, std::ops::Range<usize>)>, TraceError> {
    let Some(meta) = meta else {
        return Ok(vec![("all".to_string(), 0..tokens as usize)]);
    };
    let mut next = 0u64;
    let mut out = Vec::with_capacity(meta.prompt_spans.len());
    for (i, s) in meta.prompt_spans.iter().enumerate() {
        if s.token_start != next
            || s.token_end_exclusive <= s.token_start
            || s.token_end_exclusive > tokens
        {
            return Err(TraceError::import(
                Location::file(meta_path),
                SwitchError::Span {
                    index: i,
                    start: s.token_start,
                    end: s.token_end_exclusive,
                    next,
                    tokens,
                },
            ));
        }
        next = s.token_end_exclusive;
        out.push((
            s.id.clone(),
            s.token_start as usize..s.token_end_exclusive as usize,
        ));
    }
    if next != tokens {
        return Err(TraceError::import(
            Location::file(meta_path),
            SwitchError::SpansCover {
                covered: next,
                tokens,
            },
        ));
    }
    Ok(out)
}

/// The document as `T`, after a check that all of it is JSON: serde_json skips the fields a type
/// ignores without checking their strings, so bytes that are not UTF-8 there would pass. The
/// files are small (a router capture and its metadata), so the whole-document parse costs
/// nothing that matters; its error has the line and column.
fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], path: &Path) -> Result<T, TraceError> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| TraceError::json_syntax(path, e))?;
    serde_json::from_slice(bytes).map_err(|e| TraceError::json_syntax(path, e))
}
