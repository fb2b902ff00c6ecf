//! The model inventory: every tensor with its role, layer, type, size, file position and expert
//! stride, plus the architecture facts — the one description of a model every stage uses.

use crate::arch::ArchInfo;
use crate::error::InventoryError;
use crate::role::{Group, Role};
use gguf::ggml_type::GgmlType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One tensor of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub role: Role,
    /// `N` for `blk.N.*` tensors; `None` for embeddings, output head and other globals.
    pub layer: Option<u32>,
    #[serde(rename = "type")]
    pub ggml_type: GgmlType,
    /// ggml `ne`: dims[0] is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub bytes: u64,
    /// Which split file holds it (0 for single-file models and catalog models).
    pub file: u32,
    /// Absolute byte offset of the tensor data in that file (`None` for catalog models).
    pub offset: Option<u64>,
    /// Bytes of one expert's slice, for merged expert tensors (`*_exps`): bytes / n_expert.
    pub expert_stride: Option<u64>,
}

impl TensorEntry {
    /// Builds an entry, classifying the name and computing size and expert stride.
    /// Returns `None` when dims[0] is not a whole number of the type's blocks or the size overflows.
    pub fn new(
        name: &str,
        ggml_type: GgmlType,
        dims: Vec<u64>,
        n_expert: u32,
    ) -> Option<TensorEntry> {
        let parsed = crate::role::parse_name(name);
        let bytes = ggml_type.tensor_bytes(&dims)?;
        let expert_stride = (parsed.role.group() == Group::Experts
            && n_expert > 0
            && dims.last() == Some(&(n_expert as u64)))
        .then(|| bytes / n_expert as u64);
        Some(TensorEntry {
            name: name.to_string(),
            role: parsed.role,
            layer: parsed.layer,
            ggml_type,
            dims,
            bytes,
            file: 0,
            offset: None,
            expert_stride,
        })
    }

    pub fn group(&self) -> Group {
        self.role.group()
    }

    /// Elements in the tensor.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Where an inventory came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Read from GGUF file(s): all split parts in order, with their sizes.
    File {
        paths: Vec<PathBuf>,
        file_bytes: Vec<u64>,
    },
    /// Built from the catalog: hyperparameters + quantization recipe.
    Catalog { name: String, reference: String },
}

/// A model: where it came from, its architecture facts and all its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub source: Source,
    pub arch: ArchInfo,
    pub tensors: Vec<TensorEntry>,
}

/// Bytes and tensor count of one slice of the inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub bytes: u64,
    pub count: u64,
}

impl Tally {
    fn add(&mut self, t: &TensorEntry) {
        self.bytes += t.bytes;
        self.count += 1;
    }
}

impl Inventory {
    /// Bytes of all tensor data.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Totals per role, in role order.
    pub fn by_role(&self) -> BTreeMap<Role, Tally> {
        let mut m = BTreeMap::new();
        for t in &self.tensors {
            m.entry(t.role).or_insert_with(Tally::default).add(t);
        }
        m
    }

    /// Totals per placement group.
    pub fn by_group(&self) -> BTreeMap<Group, Tally> {
        let mut m = BTreeMap::new();
        for t in &self.tensors {
            m.entry(t.group()).or_insert_with(Tally::default).add(t);
        }
        m
    }

    /// Totals per layer (`None` = global tensors).
    pub fn by_layer(&self) -> BTreeMap<Option<u32>, Tally> {
        let mut m = BTreeMap::new();
        for t in &self.tensors {
            m.entry(t.layer).or_insert_with(Tally::default).add(t);
        }
        m
    }

    /// Bytes of one routed expert in `layer` (gate + up + down slices together), if it has experts.
    pub fn expert_bytes(&self, layer: u32) -> Option<u64> {
        let s: u64 = self
            .tensors
            .iter()
            .filter(|t| t.layer == Some(layer))
            .filter_map(|t| t.expert_stride)
            .sum();
        (s > 0).then_some(s)
    }

    /// What one decoded token reads: every non-expert byte, plus top_k / n_expert of the routed
    /// expert bytes (uniform routing). The token embedding table is read one row per token, unless
    /// it doubles as the output head (tied embeddings), which reads all of it.
    pub fn bytes_per_token(&self) -> TokenBytes {
        let mut tb = TokenBytes::default();
        let (k, e) = (self.arch.n_expert_used as f64, self.arch.n_expert as f64);
        // Without an output head the embedding table is tied to it and read whole every token.
        let tied = !self.tensors.iter().any(|t| t.role == Role::Output);
        for t in &self.tensors {
            match t.group() {
                Group::Experts if e > 0.0 => {
                    tb.expert_total += t.bytes;
                    tb.expert_touched += t.bytes as f64 * k / e;
                }
                Group::Embedding if t.role == Role::TokenEmbd && !tied => {
                    let rows = t.dims.get(1).copied().unwrap_or(1).max(1);
                    tb.dense += t.bytes / rows;
                }
                _ => tb.dense += t.bytes,
            }
        }
        tb
    }
}

/// Bytes a decoded token touches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenBytes {
    /// Non-expert weights read every token (one embedding row, not the table).
    pub dense: u64,
    /// All routed-expert bytes.
    pub expert_total: u64,
    /// Routed-expert bytes a token reads on average: expert_total x top_k / n_expert.
    pub expert_touched: f64,
}

impl TokenBytes {
    pub fn total(&self) -> f64 {
        self.dense as f64 + self.expert_touched
    }
}

impl Inventory {
    /// Reads a GGUF model's inventory from its header(s); split sets are found from any part.
    pub fn from_gguf(path: &std::path::Path) -> Result<Inventory, InventoryError> {
        let model = gguf::open_model(path)?;
        let first = &model.parts[0];
        let mut arch = ArchInfo::from_metadata(&first.metadata).map_err(|source| {
            InventoryError::Metadata {
                path: first.path.clone(),
                source,
            }
        })?;
        let mut tensors = Vec::new();
        for (file, h) in model.parts.iter().enumerate() {
            for t in &h.tensors {
                // The header reader has already checked that the size is computable.
                let mut e = TensorEntry::new(&t.name, t.ggml_type, t.dims.clone(), arch.n_expert)
                    .expect("tensor size was validated by the header reader");
                e.file = file as u32;
                e.offset = Some(h.absolute_offset(t));
                tensors.push(e);
            }
        }
        arch.complete_from_tensors(&tensors);
        let source = Source::File {
            paths: model.parts.iter().map(|h| h.path.clone()).collect(),
            file_bytes: model.parts.iter().map(|h| h.file_bytes).collect(),
        };
        Ok(Inventory {
            source,
            arch,
            tensors,
        })
    }
}
