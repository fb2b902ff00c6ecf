//! Building a [`Trace`] token by token, with every validation rule of the format in one place.

use crate::model::{FactsError, ModelFacts, Phase, Trace};

/// A rule of the trace format that a sequence, token or selection breaks. Messages say what is
/// wrong; the caller adds where (file and line, byte offset, JSON path).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error("expert id {id} >= n_expert ({n_expert})")]
    IdRange { id: u64, n_expert: u32 },
    #[error("expert id {0} appears twice in one selection")]
    IdTwice(u16),
    #[error("layer {layer}: {rule}")]
    AtLayer { layer: u32, rule: Box<RuleError> },
    #[error(
        "token has {ids} expert ids; expected top_k ({top_k}) for each of the {layers} MoE layers"
    )]
    IdCount {
        ids: usize,
        top_k: u32,
        layers: usize,
    },
    #[error("token has {weights} gate weights for {ids} expert ids")]
    WeightCount { weights: usize, ids: usize },
    #[error("gate weight {0} is not a finite number")]
    Weight(f32),
    #[error("token lacks {0} that earlier tokens have; give every token {0} or none")]
    Lacks(&'static str),
    #[error("token has {0} that earlier tokens lack; give every token {0} or none")]
    Extra(&'static str),
    #[error("sequence {0:?} has no tokens")]
    EmptySequence(String),
    #[error("trace is empty: it has no sequences (a trace needs at least one token)")]
    Empty,
    /// The builder's calls came in an order no reader makes (a bug in the caller).
    #[error("internal: {0}")]
    Order(&'static str),
}

impl From<RuleError> for String {
    fn from(e: RuleError) -> String {
        e.to_string()
    }
}

/// Optional per-token data; a trace has each kind for every token or for none.
#[derive(Debug, Clone, Default)]
pub struct TokenExtras<'a> {
    /// Gate weights, parallel to the token's expert ids.
    pub weights: Option<&'a [f32]>,
    pub phase: Option<Phase>,
    pub timestamp_ns: Option<u64>,
    pub text: Option<String>,
}

/// Accumulates sequences and tokens; every push is validated, so [`TraceBuilder::finish`]
/// returns a trace that satisfies every rule in `FORMAT.md`. Errors are plain messages: the
/// caller adds the location (file and line, byte offset, JSON path).
#[derive(Debug)]
pub struct TraceBuilder {
    trace: Trace,
    sequence_open: bool,
}

/// Checks one selection: ids below `n_expert` and no id twice. The length is checked by callers.
pub fn check_selection(ids: &[u16], n_expert: u32) -> Result<(), RuleError> {
    for (i, &id) in ids.iter().enumerate() {
        if u32::from(id) >= n_expert {
            return Err(RuleError::IdRange {
                id: id.into(),
                n_expert,
            });
        }
        if ids[..i].contains(&id) {
            return Err(RuleError::IdTwice(id));
        }
    }
    Ok(())
}

/// Converts an id read from a source file, rejecting values no trace can hold.
pub fn expert_id(id: u64, n_expert: u32) -> Result<u16, RuleError> {
    if id >= u64::from(n_expert) {
        return Err(RuleError::IdRange { id, n_expert });
    }
    Ok(id as u16)
}

impl TraceBuilder {
    pub fn new(model: ModelFacts) -> Result<TraceBuilder, RuleError> {
        model.check()?;
        Ok(TraceBuilder {
            trace: Trace {
                model,
                seq_ids: Vec::new(),
                seq_starts: vec![0],
                experts: Vec::new(),
                weights: None,
                phases: None,
                timestamps_ns: None,
                texts: None,
            },
            sequence_open: false,
        })
    }

    pub fn model(&self) -> &ModelFacts {
        &self.trace.model
    }

    /// Reserves room for `tokens` more tokens' expert ids.
    pub fn reserve_tokens(&mut self, tokens: usize) {
        self.trace
            .experts
            .reserve(tokens.saturating_mul(self.trace.model.ids_per_token()));
    }

    pub fn n_tokens(&self) -> usize {
        self.trace.experts.len() / self.trace.model.ids_per_token()
    }

    /// Starts a new sequence; the previous one must have been ended.
    pub fn begin_sequence(&mut self, id: impl Into<String>) -> Result<(), RuleError> {
        if self.sequence_open {
            return Err(RuleError::Order(
                "sequence begun before the previous one ended",
            ));
        }
        self.sequence_open = true;
        self.trace.seq_ids.push(id.into());
        Ok(())
    }

    pub fn set_sequence_id(&mut self, id: impl Into<String>) {
        if let Some(last) = self.trace.seq_ids.last_mut() {
            *last = id.into();
        }
    }

    /// Ends the current sequence; a sequence without tokens is an error.
    pub fn end_sequence(&mut self) -> Result<(), RuleError> {
        let tokens = self.n_tokens();
        let start = *self
            .trace
            .seq_starts
            .last()
            .expect("seq_starts starts with 0");
        let id = self.trace.seq_ids.last().map(String::as_str).unwrap_or("");
        if !self.sequence_open {
            return Err(RuleError::Order("sequence ended that was never begun"));
        }
        if tokens == start {
            return Err(RuleError::EmptySequence(id.to_string()));
        }
        self.sequence_open = false;
        self.trace.seq_starts.push(tokens);
        Ok(())
    }

    /// Appends one token: `ids` holds `top_k` ids for each MoE layer, in `moe_layers` order.
    pub fn push_token(&mut self, ids: &[u16], extras: TokenExtras<'_>) -> Result<(), RuleError> {
        let m = &self.trace.model;
        let k = m.top_k as usize;
        if !self.sequence_open {
            return Err(RuleError::Order("token pushed outside a sequence"));
        }
        if ids.len() != m.ids_per_token() {
            return Err(RuleError::IdCount {
                ids: ids.len(),
                top_k: m.top_k,
                layers: m.n_layers(),
            });
        }
        for (l, sel) in ids.chunks_exact(k).enumerate() {
            check_selection(sel, m.n_expert).map_err(|e| RuleError::AtLayer {
                layer: m.moe_layers[l],
                rule: Box::new(e),
            })?;
        }
        if let Some(w) = extras.weights {
            if w.len() != ids.len() {
                return Err(RuleError::WeightCount {
                    weights: w.len(),
                    ids: ids.len(),
                });
            }
            if let Some(&bad) = w.iter().find(|x| !x.is_finite()) {
                return Err(RuleError::Weight(bad));
            }
        }
        let first = self.n_tokens() == 0;
        let t = &mut self.trace;
        present(
            first,
            &mut t.weights,
            extras.weights.is_some(),
            "gate weights",
        )?;
        present(first, &mut t.phases, extras.phase.is_some(), "a phase")?;
        present(
            first,
            &mut t.timestamps_ns,
            extras.timestamp_ns.is_some(),
            "a timestamp",
        )?;
        present(first, &mut t.texts, extras.text.is_some(), "a text")?;
        t.experts.extend_from_slice(ids);
        if let (Some(all), Some(w)) = (t.weights.as_mut(), extras.weights) {
            all.extend_from_slice(w);
        }
        if let (Some(all), Some(p)) = (t.phases.as_mut(), extras.phase) {
            all.push(p);
        }
        if let (Some(all), Some(ts)) = (t.timestamps_ns.as_mut(), extras.timestamp_ns) {
            all.push(ts);
        }
        if let (Some(all), Some(text)) = (t.texts.as_mut(), extras.text) {
            all.push(text);
        }
        Ok(())
    }

    /// The finished trace; an empty trace or an unended sequence is an error.
    pub fn finish(self) -> Result<Trace, RuleError> {
        if self.sequence_open {
            return Err(RuleError::Order("trace finished inside a sequence"));
        }
        if self.trace.seq_ids.is_empty() {
            return Err(RuleError::Empty);
        }
        Ok(self.trace)
    }
}

/// Enforces all-or-none presence of one optional per-token field.
fn present<T>(
    first: bool,
    slot: &mut Option<Vec<T>>,
    has: bool,
    what: &'static str,
) -> Result<(), RuleError> {
    if first {
        if has {
            *slot = Some(Vec::new());
        }
        return Ok(());
    }
    match (slot.is_some(), has) {
        (true, false) => Err(RuleError::Lacks(what)),
        (false, true) => Err(RuleError::Extra(what)),
        _ => Ok(()),
    }
}
