//! Streaming reader for the JSON form: validates while parsing, so every error carries the
//! line and column where serde_json stood when the rule broke.

use super::{FORMAT_NAME, VERSION};
use crate::builder::{check_selection, expert_id, TokenExtras, TraceBuilder};
use crate::error::TraceError;
use crate::model::{ModelFacts, Phase, Trace};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::Path;

/// Reads and validates a JSON trace file.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let bytes = infile::read(path).map_err(|e| TraceError::io(path, e))?;
    from_slice(&bytes, path)
}

/// Parses a JSON trace from memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Trace, TraceError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let trace = TraceSeed
        .deserialize(&mut de)
        .map_err(|e| TraceError::json(path, e))?;
    de.end().map_err(|e| TraceError::json(path, e))?;
    Ok(trace)
}

fn err<E: de::Error>(msg: impl fmt::Display) -> E {
    E::custom(msg)
}

struct TraceSeed;

impl<'de> DeserializeSeed<'de> for TraceSeed {
    type Value = Trace;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Trace, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TraceSeed {
    type Value = Trace;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a hypura trace object with \"format\", \"version\", \"model\" and \"sequences\"",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Trace, A::Error> {
        let mut version = None;
        let mut builder: Option<TraceBuilder> = None;
        let mut saw_sequences = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let name: String = map.next_value()?;
                    if name != FORMAT_NAME {
                        return Err(err(format!("\"format\" is {name:?}; expected {FORMAT_NAME:?}")));
                    }
                }
                "version" => {
                    let v: u64 = map.next_value()?;
                    if v != VERSION {
                        return Err(err(format!(
                            "unsupported trace version {v}; this build reads version {VERSION} \
                             (convert the file with the hypura that wrote it)"
                        )));
                    }
                    version = Some(v);
                }
                "model" => {
                    let facts: ModelFacts = map.next_value()?;
                    builder = Some(TraceBuilder::new(facts).map_err(|e| err(format!("model: {e}")))?);
                }
                "sequences" => {
                    let (Some(_), Some(b)) = (version, builder.as_mut()) else {
                        return Err(err("\"version\" and \"model\" must come before \"sequences\""));
                    };
                    map.next_value_seed(SequencesSeed { b })?;
                    saw_sequences = true;
                }
                other => {
                    return Err(err(format!(
                        "unknown key {other:?}; a trace has \"format\", \"version\", \"model\", \"sequences\""
                    )))
                }
            }
        }
        if version.is_none() {
            return Err(err("missing \"version\" (this build reads version 1)"));
        }
        let Some(b) = builder else {
            return Err(err("missing \"model\""));
        };
        if !saw_sequences {
            return Err(err(
                "missing \"sequences\"; a trace needs at least one token",
            ));
        }
        b.finish().map_err(err)
    }
}

struct SequencesSeed<'a> {
    b: &'a mut TraceBuilder,
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
            .next_element_seed(SequenceSeed { b: &mut *self.b })?
            .is_some()
        {}
        Ok(())
    }
}

struct SequenceSeed<'a> {
    b: &'a mut TraceBuilder,
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
        let n = self.b.n_tokens();
        self.b.begin_sequence(String::new()).map_err(err)?;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => {
                    let id: String = map.next_value()?;
                    self.b.set_sequence_id(id);
                }
                "tokens" => map.next_value_seed(TokensSeed { b: &mut *self.b })?,
                other => {
                    return Err(err(format!(
                        "unknown key {other:?} in a sequence; expected \"id\", \"tokens\""
                    )))
                }
            }
        }
        if self.b.n_tokens() == n {
            return Err(err("sequence has no tokens"));
        }
        self.b.end_sequence().map_err(err)
    }
}

struct TokensSeed<'a> {
    b: &'a mut TraceBuilder,
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
        let (mut has_experts, mut has_weights) = (false, false);
        let mut extras = TokenExtras::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "experts" => {
                    map.next_value_seed(LayersSeed { m: self.b.model(), ids: &mut *self.ids, weights: None })?;
                    has_experts = true;
                }
                "weights" => {
                    let mut unused = Vec::new();
                    let seed = LayersSeed { m: self.b.model(), ids: &mut unused, weights: Some(&mut *self.weights) };
                    map.next_value_seed(seed)?;
                    has_weights = true;
                }
                "phase" => extras.phase = Some(map.next_value::<Phase>()?),
                "t_ns" => extras.timestamp_ns = Some(map.next_value::<u64>()?),
                "text" => extras.text = Some(map.next_value::<String>()?),
                other => {
                    return Err(err(format!(
                        "unknown key {other:?} in a token; expected \"experts\", \"weights\", \"phase\", \"t_ns\", \"text\""
                    )))
                }
            }
        }
        if !has_experts {
            return Err(err("token has no \"experts\""));
        }
        if has_weights {
            extras.weights = Some(self.weights.as_slice());
        }
        self.b.push_token(self.ids, extras).map_err(err)
    }
}

/// Reads `[[ids of layer 0], [ids of layer 1], ...]` (or the same shape of weights),
/// checking the layer count, top_k, id range and duplicates as it goes.
struct LayersSeed<'a> {
    m: &'a ModelFacts,
    ids: &'a mut Vec<u16>,
    weights: Option<&'a mut Vec<f32>>,
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
                    return Err(err(format!(
                        "token has more than {n_layers} layer selections; the model declares {n_layers} MoE layers"
                    )));
                }
                return Ok(());
            }
            let layer = self.m.moe_layers[l];
            let seed = SelectionSeed {
                m: self.m,
                layer,
                ids: &mut *self.ids,
                weights: self.weights.as_deref_mut(),
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Err(err(format!(
                    "token has {l} layer selections; the model declares {n_layers} MoE layers"
                )));
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
        let (layer, top_k) = (self.layer, self.m.top_k);
        let mut count = 0usize;
        let too_many = || {
            err(format!(
                "layer {layer}: selection has more than top_k ({top_k}) entries"
            ))
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
                    let id = expert_id(id, self.m.n_expert)
                        .map_err(|e| err(format!("layer {layer}: {e}")))?;
                    self.ids.push(id);
                    count += 1;
                }
                check_selection(&self.ids[start..], self.m.n_expert)
                    .map_err(|e| err(format!("layer {layer}: {e}")))?;
            }
        }
        if count != k {
            return Err(err(format!(
                "layer {layer}: selection has {count} entries but top_k is {top_k}"
            )));
        }
        Ok(())
    }
}
