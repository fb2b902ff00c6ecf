//! Streaming reader for the JSON form: validates while parsing, so every error carries the
//! line and column where serde_json stood when the rule broke.

use super::{FORMAT_NAME, VERSION};
use crate::builder::{check_selection, expert_id, RuleError, TokenExtras, TraceBuilder};
use crate::error::{json_message, Location, TraceError};
use crate::model::{ModelFacts, Phase, Trace};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::path::Path;

/// What is wrong with a JSON trace; [`TraceError::Json`] says where.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON, or a value of the wrong type (serde_json's message, without its position).
    #[error("{}", json_message(.0))]
    Syntax(serde_json::Error),
    #[error("\"format\" is {name:?}; expected {FORMAT_NAME:?}")]
    Format { name: String },
    #[error("unsupported trace version {version}; this build reads version {VERSION} (convert the file with the hypura that wrote it)")]
    Version { version: u64 },
    #[error("model: {0}")]
    Model(RuleError),
    #[error("\"version\" and \"model\" must come before \"sequences\"")]
    SequencesFirst,
    #[error("unknown key {0:?}; a trace has \"format\", \"version\", \"model\", \"sequences\"")]
    UnknownTraceKey(String),
    #[error("unknown key {0:?} in a sequence; expected \"id\", \"tokens\"")]
    UnknownSequenceKey(String),
    #[error("unknown key {0:?} in a token; expected \"experts\", \"weights\", \"phase\", \"t_ns\", \"text\"")]
    UnknownTokenKey(String),
    #[error("missing \"version\" (this build reads version {VERSION})")]
    MissingVersion,
    #[error("missing \"model\"")]
    MissingModel,
    #[error("missing \"sequences\"; a trace needs at least one token")]
    MissingSequences,
    #[error("sequence has no tokens")]
    EmptySequence,
    #[error("token has no \"experts\"")]
    NoExperts,
    #[error(
        "token has more than {layers} layer selections; the model declares {layers} MoE layers"
    )]
    TooManySelections { layers: usize },
    #[error("token has {found} layer selections; the model declares {layers} MoE layers")]
    TooFewSelections { found: usize, layers: usize },
    #[error("layer {layer}: selection has more than top_k ({top_k}) entries")]
    SelectionTooLong { layer: u32, top_k: u32 },
    #[error("layer {layer}: selection has {count} entries but top_k is {top_k}")]
    SelectionSize {
        layer: u32,
        count: usize,
        top_k: u32,
    },
    /// A rule of the trace format (expert ids, token contents, sequences).
    #[error(transparent)]
    Rule(RuleError),
}

/// Reads and validates a JSON trace file.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let bytes = infile::read(path).map_err(|e| TraceError::io(path, e))?;
    from_slice(&bytes, path)
}

/// Parses a JSON trace from memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Trace, TraceError> {
    let slot = Slot::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let error = |e: serde_json::Error| TraceError::Json {
        at: Location::json(path, &e),
        // serde_json keeps only a message; the typed problem waits in the slot.
        problem: slot.take().unwrap_or(JsonError::Syntax(e)),
    };
    let trace = TraceSeed { slot: &slot }
        .deserialize(&mut de)
        .map_err(error)?;
    de.end().map_err(error)?;
    Ok(trace)
}

/// Holds the typed problem a visitor found while serde_json carries its message and position
/// out.
type Slot = Cell<Option<JsonError>>;

/// The serde error for `problem`, which is kept in `slot` for [`from_slice`].
fn fail<E: de::Error>(slot: &Slot, problem: JsonError) -> E {
    let e = E::custom(&problem);
    slot.set(Some(problem));
    e
}

struct TraceSeed<'s> {
    slot: &'s Slot,
}

impl<'de> DeserializeSeed<'de> for TraceSeed<'_> {
    type Value = Trace;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Trace, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TraceSeed<'_> {
    type Value = Trace;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a hypura trace object with \"format\", \"version\", \"model\" and \"sequences\"",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Trace, A::Error> {
        let slot = self.slot;
        let mut version = None;
        let mut builder: Option<TraceBuilder> = None;
        let mut saw_sequences = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let name: String = map.next_value()?;
                    if name != FORMAT_NAME {
                        return Err(fail(slot, JsonError::Format { name }));
                    }
                }
                "version" => {
                    let v: u64 = map.next_value()?;
                    if v != VERSION {
                        return Err(fail(slot, JsonError::Version { version: v }));
                    }
                    version = Some(v);
                }
                "model" => {
                    let facts: ModelFacts = map.next_value()?;
                    builder = Some(
                        TraceBuilder::new(facts).map_err(|e| fail(slot, JsonError::Model(e)))?,
                    );
                }
                "sequences" => {
                    let (Some(_), Some(b)) = (version, builder.as_mut()) else {
                        return Err(fail(slot, JsonError::SequencesFirst));
                    };
                    map.next_value_seed(SequencesSeed { b, slot })?;
                    saw_sequences = true;
                }
                _ => return Err(fail(slot, JsonError::UnknownTraceKey(key))),
            }
        }
        if version.is_none() {
            return Err(fail(slot, JsonError::MissingVersion));
        }
        let Some(b) = builder else {
            return Err(fail(slot, JsonError::MissingModel));
        };
        if !saw_sequences {
            return Err(fail(slot, JsonError::MissingSequences));
        }
        b.finish().map_err(|e| fail(slot, JsonError::Rule(e)))
    }
}

struct SequencesSeed<'a> {
    b: &'a mut TraceBuilder,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for SequencesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SequencesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of sequences")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(SequenceSeed {
                b: &mut *self.b,
                slot: self.slot,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct SequenceSeed<'a> {
    b: &'a mut TraceBuilder,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for SequenceSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SequenceSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence object with \"id\" and \"tokens\"")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let slot = self.slot;
        let rule = |e| fail(slot, JsonError::Rule(e));
        let n = self.b.n_tokens();
        self.b.begin_sequence(String::new()).map_err(rule)?;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => {
                    let id: String = map.next_value()?;
                    self.b.set_sequence_id(id);
                }
                "tokens" => map.next_value_seed(TokensSeed {
                    b: &mut *self.b,
                    slot,
                })?,
                _ => return Err(fail(slot, JsonError::UnknownSequenceKey(key))),
            }
        }
        if self.b.n_tokens() == n {
            return Err(fail(slot, JsonError::EmptySequence));
        }
        self.b.end_sequence().map_err(rule)
    }
}

struct TokensSeed<'a> {
    b: &'a mut TraceBuilder,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for TokensSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TokensSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of tokens")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut ids = Vec::with_capacity(self.b.model().ids_per_token());
        let mut weights = Vec::new();
        loop {
            ids.clear();
            weights.clear();
            let seed = TokenSeed {
                b: &mut *self.b,
                ids: &mut ids,
                weights: &mut weights,
                slot: self.slot,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
        }
    }
}

struct TokenSeed<'a> {
    b: &'a mut TraceBuilder,
    ids: &'a mut Vec<u16>,
    weights: &'a mut Vec<f32>,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for TokenSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TokenSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a token object with \"experts\"")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let slot = self.slot;
        let (mut has_experts, mut has_weights) = (false, false);
        let mut extras = TokenExtras::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "experts" => {
                    map.next_value_seed(LayersSeed {
                        m: self.b.model(),
                        ids: &mut *self.ids,
                        weights: None,
                        slot,
                    })?;
                    has_experts = true;
                }
                "weights" => {
                    let mut unused = Vec::new();
                    let seed = LayersSeed {
                        m: self.b.model(),
                        ids: &mut unused,
                        weights: Some(&mut *self.weights),
                        slot,
                    };
                    map.next_value_seed(seed)?;
                    has_weights = true;
                }
                "phase" => extras.phase = Some(map.next_value::<Phase>()?),
                "t_ns" => extras.timestamp_ns = Some(map.next_value::<u64>()?),
                "text" => extras.text = Some(map.next_value::<String>()?),
                _ => return Err(fail(slot, JsonError::UnknownTokenKey(key))),
            }
        }
        if !has_experts {
            return Err(fail(slot, JsonError::NoExperts));
        }
        if has_weights {
            extras.weights = Some(self.weights.as_slice());
        }
        self.b
            .push_token(self.ids, extras)
            .map_err(|e| fail(slot, JsonError::Rule(e)))
    }
}

/// Reads `[[ids of layer 0], [ids of layer 1], ...]` (or the same shape of weights),
/// checking the layer count, top_k, id range and duplicates as it goes.
struct LayersSeed<'a> {
    m: &'a ModelFacts,
    ids: &'a mut Vec<u16>,
    weights: Option<&'a mut Vec<f32>>,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for LayersSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LayersSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an array with one selection per MoE layer ({} layers)",
            self.m.n_layers()
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let n_layers = self.m.n_layers();
        let mut l = 0;
        loop {
            if l == n_layers {
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(fail(
                        self.slot,
                        JsonError::TooManySelections { layers: n_layers },
                    ));
                }
                return Ok(());
            }
            let layer = self.m.moe_layers[l];
            let seed = SelectionSeed {
                m: self.m,
                layer,
                ids: &mut *self.ids,
                weights: self.weights.as_deref_mut(),
                slot: self.slot,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Err(fail(
                    self.slot,
                    JsonError::TooFewSelections {
                        found: l,
                        layers: n_layers,
                    },
                ));
            }
            l += 1;
        }
    }
}

struct SelectionSeed<'a> {
    m: &'a ModelFacts,
    layer: u32,
    ids: &'a mut Vec<u16>,
    weights: Option<&'a mut Vec<f32>>,
    slot: &'a Slot,
}

impl<'de> DeserializeSeed<'de> for SelectionSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SelectionSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an array of top_k ({}) numbers for layer {}",
            self.m.top_k, self.layer
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let k = self.m.top_k as usize;
        let (layer, top_k, slot) = (self.layer, self.m.top_k, self.slot);
        let mut count = 0usize;
        let too_many = || fail(slot, JsonError::SelectionTooLong { layer, top_k });
        let at_layer = |rule| {
            fail(
                slot,
                JsonError::Rule(RuleError::AtLayer {
                    layer,
                    rule: Box::new(rule),
                }),
            )
        };
        match self.weights {
            Some(ws) => {
                while let Some(x) = seq.next_element::<f32>()? {
                    if count == k {
                        return Err(too_many());
                    }
                    ws.push(x);
                    count += 1;
                }
            }
            None => {
                let start = self.ids.len();
                while let Some(id) = seq.next_element::<u64>()? {
                    if count == k {
                        return Err(too_many());
                    }
                    let id = expert_id(id, self.m.n_expert).map_err(at_layer)?;
                    self.ids.push(id);
                    count += 1;
                }
                check_selection(&self.ids[start..], self.m.n_expert).map_err(at_layer)?;
            }
        }
        if count != k {
            return Err(fail(
                slot,
                JsonError::SelectionSize {
                    layer,
                    count,
                    top_k,
                },
            ));
        }
        Ok(())
    }
}
