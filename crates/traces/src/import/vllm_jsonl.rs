//! vLLM route logs: one JSON object per line,
//! `{"type":"route","req_id":..,"token_idx":..,"layer":..,"topk_ids":[..],"topk_weights":[..]}`.
//! Lines of other types are skipped; requests become sequences in order of first appearance.

use super::{ImportError, Options};
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::{json_message, Location, TraceError};
use crate::model::{ModelFacts, Trace};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// What is wrong with a vLLM route log (at a line, unless the log as a whole).
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// `byte` counts from 1 within the line.
    #[error("not UTF-8 text (byte {byte} of the line)")]
    NotUtf8 { byte: usize },
    /// The line is not a JSON object of the expected fields (serde_json's message).
    #[error("{}", json_message(.0))]
    Json(serde_json::Error),
    #[error("route line has no \"{0}\"")]
    MissingField(&'static str),
    /// The layer is not in [`Options::moe_layers`].
    #[error("unknown layer {layer}; the MoE layers given are {given:?}")]
    UnknownLayer { layer: u32, given: Vec<u32> },
    #[error("topk_ids has {ids} ids but top_k is {top_k}")]
    TopK { ids: usize, top_k: u32 },
    #[error("topk_weights has {weights} entries for {ids} ids")]
    WeightCount { weights: usize, ids: usize },
    #[error("no \"route\" lines: the trace would be empty")]
    NoRoutes,
    #[error("request {req:?}: token_idx {token_idx} follows token {previous}; token {missing} has no routes")]
    TokenGap {
        req: String,
        token_idx: u64,
        previous: i64,
        missing: usize,
    },
    #[error("request {req:?} token {token} layer {layer} logged twice (also line {other_line})")]
    LayerTwice {
        req: String,
        token: usize,
        layer: u32,
        other_line: u64,
    },
    #[error("request {req:?} token {token} has no route for layer {layer}")]
    NoRoute {
        req: String,
        token: usize,
        layer: u32,
    },
    #[error("request {req:?} token {token}: some layers have topk_weights and some do not")]
    MixedWeights { req: String, token: usize },
    #[error("request {req:?} token {token}: {rule}")]
    Token {
        req: String,
        token: usize,
        rule: RuleError,
    },
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    req_id: Option<serde_json::Value>,
    #[serde(default)]
    token_idx: Option<u64>,
    #[serde(default)]
    layer: Option<u32>,
    #[serde(default)]
    topk_ids: Option<Vec<u64>>,
    #[serde(default)]
    topk_weights: Option<Vec<f32>>,
}

/// One route record, kept until the whole log is read.
struct Route {
    token: u64,
    layer: u32,
    ids: Vec<u16>,
    weights: Option<Vec<f32>>,
    line: u64,
}

pub fn import(path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    opts.required_n_expert(path, "vLLM route")?;
    let file = infile::open(path).map_err(|e| TraceError::io(path, e))?;
    parse(std::io::BufReader::new(file), path, opts)
}

/// Imports a route log held in memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    parse(bytes, path, opts)
}

fn parse(r: impl BufRead, path: &Path, opts: &Options) -> Result<Trace, TraceError> {
    let n_expert = opts.required_n_expert(path, "vLLM route")?;
    let mut order: Vec<String> = Vec::new();
    let mut requests: HashMap<String, Vec<Route>> = HashMap::new();
    let mut top_k = opts.top_k;
    for (i, raw) in r.split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let mut raw = raw.map_err(|e| TraceError::io(path, e))?;
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        // Decoded per line, so that bytes which are not UTF-8 are reported at their line.
        let text = String::from_utf8(raw).map_err(|e| {
            let byte = e.utf8_error().valid_up_to() + 1;
            TraceError::import(Location::line(path, line_no), JsonlError::NotUtf8 { byte })
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let fail =
            |problem: ImportError| TraceError::import(Location::line(path, line_no), problem);
        let line: Line =
            serde_json::from_str(&text).map_err(|e| fail(JsonlError::Json(e).into()))?;
        if line.kind != "route" {
            continue;
        }
        let missing = |field| fail(JsonlError::MissingField(field).into());
        let req = match line.req_id.ok_or_else(|| missing("req_id"))? {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let token = line.token_idx.ok_or_else(|| missing("token_idx"))?;
        let layer = line.layer.ok_or_else(|| missing("layer"))?;
        let raw = line.topk_ids.ok_or_else(|| missing("topk_ids"))?;
        if let Some(layers) = &opts.moe_layers {
            if !layers.contains(&layer) {
                return Err(fail(
                    JsonlError::UnknownLayer {
                        layer,
                        given: layers.clone(),
                    }
                    .into(),
                ));
            }
        }
        let k = *top_k.get_or_insert(raw.len() as u32);
        if raw.len() != k as usize {
            return Err(fail(
                JsonlError::TopK {
                    ids: raw.len(),
                    top_k: k,
                }
                .into(),
            ));
        }
        let ids = raw
            .iter()
            .map(|&id| expert_id(id, n_expert))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.into()))?;
        check_selection(&ids, n_expert).map_err(|e| fail(e.into()))?;
        if let Some(w) = &line.topk_weights {
            if w.len() != ids.len() {
                return Err(fail(
                    JsonlError::WeightCount {
                        weights: w.len(),
                        ids: ids.len(),
                    }
                    .into(),
                ));
            }
        }
        let routes = requests.entry(req.clone()).or_insert_with(|| {
            order.push(req);
            Vec::new()
        });
        routes.push(Route {
            token,
            layer,
            ids,
            weights: line.topk_weights,
            line: line_no,
        });
    }
    let Some(top_k) = top_k else {
        return Err(TraceError::import(
            Location::file(path),
            JsonlError::NoRoutes,
        ));
    };
    let moe_layers = match &opts.moe_layers {
        Some(l) => l.clone(),
        None => {
            let mut seen: Vec<u32> = requests.values().flatten().map(|r| r.layer).collect();
            seen.sort_unstable();
            seen.dedup();
            seen
        }
    };
    let facts = opts.override_facts(ModelFacts {
        architecture: "unknown".into(),
        moe_layers,
        n_expert,
        top_k,
        n_shared_expert: 0,
    });
    let rule = |e: RuleError| TraceError::import(Location::file(path), e);
    let mut b = TraceBuilder::new(facts).map_err(rule)?;
    for req in order {
        let mut routes = requests
            .remove(&req)
            .expect("every ordered request has routes");
        routes.sort_by_key(|r| (r.token, r.layer, r.line));
        add_request(&mut b, path, &req, &routes)?;
    }
    b.finish().map_err(rule)
}

/// Adds one request's routes (sorted by token, layer) as a sequence of tokens `0..n`.
fn add_request(
    b: &mut TraceBuilder,
    path: &Path,
    req: &str,
    routes: &[Route],
) -> Result<(), TraceError> {
    let n_layers = b.model().n_layers();
    let layers = b.model().moe_layers.clone();
    let rule = |e: RuleError| TraceError::import(Location::file(path), e);
    b.begin_sequence(req).map_err(rule)?;
    let (mut ids, mut weights) = (Vec::new(), Vec::new());
    for (t, token) in routes.chunk_by(|a, b| a.token == b.token).enumerate() {
        let first = &token[0];
        let at = |r: &Route, problem: JsonlError| {
            TraceError::import(Location::line(path, r.line), problem)
        };
        if first.token != t as u64 {
            return Err(at(
                first,
                JsonlError::TokenGap {
                    req: req.to_string(),
                    token_idx: first.token,
                    previous: t as i64 - 1,
                    missing: t,
                },
            ));
        }
        for pair in token.windows(2) {
            if pair[0].layer == pair[1].layer {
                let (a, b2) = (&pair[0], &pair[1]);
                return Err(at(
                    b2,
                    JsonlError::LayerTwice {
                        req: req.to_string(),
                        token: t,
                        layer: a.layer,
                        other_line: a.line,
                    },
                ));
            }
        }
        if token.len() != n_layers {
            let missing = layers
                .iter()
                .find(|l| !token.iter().any(|r| r.layer == **l))
                .copied()
                .unwrap_or(0);
            return Err(at(
                first,
                JsonlError::NoRoute {
                    req: req.to_string(),
                    token: t,
                    layer: missing,
                },
            ));
        }
        ids.clear();
        weights.clear();
        for r in token {
            ids.extend_from_slice(&r.ids);
            weights.extend_from_slice(r.weights.as_deref().unwrap_or(&[]));
        }
        let has_weights = token.iter().all(|r| r.weights.is_some());
        if !has_weights && token.iter().any(|r| r.weights.is_some()) {
            return Err(at(
                first,
                JsonlError::MixedWeights {
                    req: req.to_string(),
                    token: t,
                },
            ));
        }
        let extras = TokenExtras {
            weights: has_weights.then_some(weights.as_slice()),
            ..Default::default()
        };
        b.push_token(&ids, extras).map_err(|rule| {
            at(
                first,
                JsonlError::Token {
                    req: req.to_string(),
                    token: t,
                    rule,
                },
            )
        })?;
    }
    b.end_sequence().map_err(rule)
}
