//! vLLM routed-experts arrays: per request an array shaped `[gen_len][num_moe_layers][top_k]`.
//! The file holds one such array, a list of them, or an object mapping request id to one.

use super::Options;
use crate::builder::{check_selection, expert_id, TokenExtras, TraceBuilder};
use crate::error::TraceError;
use crate::model::{ModelFacts, Trace};
use serde_json::Value;
use std::path::Path;

pub fn import(path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    opts.required_n_expert(path, "vLLM routed-experts")?;
    let bytes = infile::read(path).map_err(|e| TraceError::io(path, e))?;
    from_slice(&bytes, path, opts)
}

/// Imports routed-experts JSON held in memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let n_expert = opts.required_n_expert(path, "vLLM routed-experts")?;
    let root: Value = serde_json::from_slice(bytes).map_err(|e| TraceError::json(path, e))?;
    let fail = |msg: String| TraceError::invalid(path.display(), msg);
    let requests: Vec<(String, &Value)> = match &root {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) if depth(&root) == 3 => vec![("0".to_string(), &root)],
        Value::Array(items) if depth(&root) == 4 => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => return Err(fail("expected [gen_len][num_moe_layers][top_k] numbers, a list of such arrays, or an object of them by request id".into())),
    };
    let (num_layers, k) = shape(requests.first().map(|r| r.1))
        .ok_or_else(|| fail("no request has a token: the trace would be empty".into()))?;
    let moe_layers = opts
        .moe_layers
        .clone()
        .unwrap_or_else(|| (0..num_layers as u32).collect());
    let facts = opts.override_facts(ModelFacts {
        architecture: "unknown".into(),
        moe_layers,
        n_expert,
        top_k: k as u32,
        n_shared_expert: 0,
    });
    if facts.n_layers() != num_layers {
        return Err(fail(format!(
            "--layers names {} layers but the arrays have {num_layers}",
            facts.n_layers()
        )));
    }
    let mut b = TraceBuilder::new(facts).map_err(|e| fail(e.to_string()))?;
    let mut ids = Vec::with_capacity(num_layers * k);
    for (req, tokens) in requests {
        let tokens = tokens
            .as_array()
            .ok_or_else(|| fail(format!("request {req:?} is not an array of tokens")))?;
        b.begin_sequence(req.clone())
            .map_err(|e| fail(e.to_string()))?;
        for (t, layers) in tokens.iter().enumerate() {
            let here = |msg: String| fail(format!("request {req:?} [{t}]: {msg}"));
            let layers = layers
                .as_array()
                .ok_or_else(|| here("not an array of layers".into()))?;
            if layers.len() != num_layers {
                return Err(here(format!(
                    "{} layers; the first token has {num_layers}",
                    layers.len()
                )));
            }
            ids.clear();
            for (l, sel) in layers.iter().enumerate() {
                let here = |msg: String| fail(format!("request {req:?} [{t}][{l}]: {msg}"));
                let sel = sel
                    .as_array()
                    .ok_or_else(|| here("not an array of expert ids".into()))?;
                if sel.len() != k {
                    return Err(here(format!(
                        "selection has {} expert ids but top_k is {k}",
                        sel.len()
                    )));
                }
                let start = ids.len();
                for v in sel {
                    let id = v
                        .as_u64()
                        .ok_or_else(|| here(format!("expert id {v} is not a whole number")))?;
                    ids.push(expert_id(id, n_expert).map_err(|e| here(e.to_string()))?);
                }
                check_selection(&ids[start..], n_expert).map_err(|e| here(e.to_string()))?;
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(|e| here(e.to_string()))?;
        }
        b.end_sequence()
            .map_err(|e| fail(format!("request {req:?}: {e}")))?;
    }
    b.finish().map_err(|e| fail(e.to_string()))
}

/// Nesting depth of arrays along the first elements (a number has depth 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.first().map_or(0, depth),
        _ => 0,
    }
}

/// `(num_moe_layers, top_k)` from a request's first token.
fn shape(tokens: Option<&Value>) -> Option<(usize, usize)> {
    let layers = tokens?.as_array()?.first()?.as_array()?;
    Some((layers.len(), layers.first()?.as_array()?.len()))
}
