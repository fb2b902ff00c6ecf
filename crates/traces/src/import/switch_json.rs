//! switch-base-8 router traces (`router-trace.v2.json`: `selections[token][layer] = [ids]`),
//! split into prompts by `capture-metadata.json` when it sits beside the trace.

use super::Options;
use crate::builder::{check_selection, expert_id, TokenExtras, TraceBuilder};
use crate::error::TraceError;
use crate::model::{ModelFacts, Trace, MAX_BLOCKS};
use serde::Deserialize;
use std::path::Path;

pub const TRACE_FILE: &str = "router-trace.v2.json";
pub const METADATA_FILE: &str = "capture-metadata.json";

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
    let fail = |msg: String| TraceError::invalid(trace_path.display(), msg);
    if rt.version != 2 {
        return Err(fail(format!(
            "router trace version is {}; this importer reads version 2",
            rt.version
        )));
    }
    let (meta, meta_path): (Option<CaptureMetadata>, &Path) = match meta {
        Some((bytes, p)) => (Some(parse_json(bytes, p)?), p),
        None => (None, Path::new(METADATA_FILE)),
    };
    let moe_layers = match &meta {
        Some(m) if m.sparse_encoder_block_indices.len() != rt.layers as usize => {
            return Err(TraceError::invalid(
                meta_path.display(),
                format!(
                    "sparse_encoder_block_indices lists {} blocks but the trace has {} layers",
                    m.sparse_encoder_block_indices.len(),
                    rt.layers
                ),
            ))
        }
        Some(m) => m.sparse_encoder_block_indices.clone(),
        // Checked before the ids are collected: a count from a tiny file could ask for GBs.
        None if rt.layers > MAX_BLOCKS => {
            return Err(fail(format!(
                "\"layers\" is {}; a model has at most {MAX_BLOCKS} blocks",
                rt.layers
            )))
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
        return Err(fail(format!(
            "--layers names {} layers but the trace has {}",
            facts.n_layers(),
            rt.layers
        )));
    }
    if rt.selections.len() as u64 != rt.tokens {
        return Err(fail(format!(
            "\"tokens\" is {} but \"selections\" has {} entries",
            rt.tokens,
            rt.selections.len()
        )));
    }
    let spans = spans(meta.as_ref(), rt.tokens, meta_path)?;
    let mut b = TraceBuilder::new(facts).map_err(|e| fail(e.to_string()))?;
    let (k, n_expert, n_layers) = (
        b.model().top_k as usize,
        b.model().n_expert,
        b.model().n_layers(),
    );
    let mut ids = Vec::with_capacity(b.model().ids_per_token());
    for (id, range) in spans {
        b.begin_sequence(id).map_err(|e| fail(e.to_string()))?;
        for t in range {
            ids.clear();
            let layers = &rt.selections[t];
            if layers.len() != n_layers {
                return Err(fail(format!(
                    "selections[{t}] has {} layers; expected {n_layers}",
                    layers.len()
                )));
            }
            for (l, sel) in layers.iter().enumerate() {
                let here = |e: String| fail(format!("selections[{t}][{l}]: {e}"));
                if sel.len() != k {
                    return Err(here(format!(
                        "selection has {} expert ids but topK is {k}",
                        sel.len()
                    )));
                }
                let start = ids.len();
                for &id in sel {
                    ids.push(expert_id(id, n_expert).map_err(|e| here(e.to_string()))?);
                }
                check_selection(&ids[start..], n_expert).map_err(|e| here(e.to_string()))?;
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(|e| fail(format!("selections[{t}]: {e}")))?;
        }
        b.end_sequence().map_err(|e| fail(e.to_string()))?;
    }
    b.finish().map_err(|e| fail(e.to_string()))
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
            return Err(TraceError::invalid(
                meta_path.display(),
                format!("prompt_spans[{i}] ({}..{}) does not continue at token {next} within {tokens} tokens", s.token_start, s.token_end_exclusive),
            ));
        }
        next = s.token_end_exclusive;
        out.push((
            s.id.clone(),
            s.token_start as usize..s.token_end_exclusive as usize,
        ));
    }
    if next != tokens {
        return Err(TraceError::invalid(
            meta_path.display(),
            format!("prompt_spans cover {next} of {tokens} tokens"),
        ));
    }
    Ok(out)
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], path: &Path) -> Result<T, TraceError> {
    serde_json::from_slice(bytes).map_err(|e| TraceError::json(path, e))
}
