//! vLLM routed-experts arrays: per request an array shaped `[gen_len][num_moe_layers][top_k]`.
//! The file holds one such array, a list of them, or an object mapping request id to one.

use super::{ImportError, LayersIn, Options};
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::{Location, TraceError};
use crate::model::{ModelFacts, Trace};
use serde_json::Value;
use std::path::Path;

/// What is wrong with a routed-experts file.
#[derive(Debug, thiserror::Error)]
pub enum RoutedError {
    #[error("expected [gen_len][num_moe_layers][top_k] numbers, a list of such arrays, or an object of them by request id")]
    Shape,
    #[error("no request has a token: the trace would be empty")]
    NoTokens,
    #[error("request {req:?} is not an array of tokens")]
    NotTokens { req: String },
    /// Token `token` of request `req`.
    #[error("request {req:?} [{token}]: {problem}")]
    Token {
        req: String,
        token: usize,
        problem: EntryError,
    },
    /// The selection of the `layer`-th MoE layer in token `token` of request `req`.
    #[error("request {req:?} [{token}][{layer}]: {problem}")]
    Selection {
        req: String,
        token: usize,
        layer: usize,
        problem: EntryError,
    },
    #[error("request {req:?}: {rule}")]
    Request { req: String, rule: RuleError },
}

/// What is wrong with one token or selection of a request.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("not an array of layers")]
    NotLayers,
    #[error("{layers} layers; the first token has {first}")]
    LayerCount { layers: usize, first: usize },
    #[error("not an array of expert ids")]
    NotIds,
    #[error("selection has {count} expert ids but top_k is {top_k}")]
    SelectionSize { count: usize, top_k: usize },
    #[error("expert id {0} is not a whole number")]
    NotWhole(Value),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

pub fn import(path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    opts.required_n_expert(path, "vLLM routed-experts")?;
    let bytes = infile::read(path).map_err(|e| TraceError::io(path, e))?;
    from_slice(&bytes, path, opts)
}

/// Imports routed-experts JSON held in memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let n_expert = opts.required_n_expert(path, "vLLM routed-experts")?;
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| TraceError::json_syntax(path, e))?;
    let fail = |problem: ImportError| TraceError::import(Location::file(path), problem);
    let requests: Vec<(String, &Value)> = match &root {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(_) if depth(&root) == 3 => vec![("0".to_string(), &root)],
        Value::Array(items) if depth(&root) == 4 => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return Err(fail(RoutedError::Shape.into())),
    };
    let (num_layers, k) =
        shape(requests.first().map(|r| r.1)).ok_or_else(|| fail(RoutedError::NoTokens.into()))?;
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
        return Err(fail(ImportError::LayerCount {
            given: facts.n_layers(),
            found: num_layers,
            found_in: LayersIn::Arrays,
        }));
    }
    let rule = |e: RuleError| fail(e.into());
    let mut b = TraceBuilder::new(facts).map_err(rule)?;
    let mut ids = Vec::with_capacity(num_layers * k);
    for (req, tokens) in requests {
        let tokens = tokens
            .as_array()
            .ok_or_else(|| fail(RoutedError::NotTokens { req: req.clone() }.into()))?;
        b.begin_sequence(req.clone()).map_err(rule)?;
        for (t, layers) in tokens.iter().enumerate() {
            let here = |problem: EntryError| {
                fail(
                    RoutedError::Token {
                        req: req.clone(),
                        token: t,
                        problem,
                    }
                    .into(),
                )
            };
            let layers = layers
                .as_array()
                .ok_or_else(|| here(EntryError::NotLayers))?;
            if layers.len() != num_layers {
                return Err(here(EntryError::LayerCount {
                    layers: layers.len(),
                    first: num_layers,
                }));
            }
            ids.clear();
            for (l, sel) in layers.iter().enumerate() {
                let here = |problem: EntryError| {
                    fail(
                        RoutedError::Selection {
                            req: req.clone(),
                            token: t,
                            layer: l,
                            problem,
                        }
                        .into(),
                    )
                };
                let sel = sel.as_array().ok_or_else(|| here(EntryError::NotIds))?;
                if sel.len() != k {
                    return Err(here(EntryError::SelectionSize {
                        count: sel.len(),
                        top_k: k,
                    }));
                }
                let start = ids.len();
                for v in sel {
                    let id = v
                        .as_u64()
                        .ok_or_else(|| here(EntryError::NotWhole(v.clone())))?;
                    ids.push(expert_id(id, n_expert).map_err(|e| here(e.into()))?);
                }
                check_selection(&ids[start..], n_expert).map_err(|e| here(e.into()))?;
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(|e| here(e.into()))?;
        }
        b.end_sequence().map_err(|rule| {
            fail(
                RoutedError::Request {
                    req: req.clone(),
                    rule,
                }
                .into(),
            )
        })?;
    }
    b.finish().map_err(rule)
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
