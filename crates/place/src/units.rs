//! Placement units: what the solver moves between tiers, built from an [`Inventory`] — one unit
//! per layer group (attention, norms, router, dense FFN, shared experts), the globals (embedding,
//! output head), and per MoE layer a frequency-sorted list of routed experts.

use model::inventory::Inventory;
use model::role::{Group, Role};
pub use plan::Tier;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A non-expert placement unit: tensors of one group in one layer (or one global group).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// `blk.3.attention`, `token_embd`, `output`, ...
    pub name: String,
    pub layer: Option<u32>,
    pub group: Group,
    /// Resident size.
    pub bytes: u64,
    /// Bytes read per decoded token (one row for an untied token embedding).
    pub read_bytes: f64,
    /// FLOPs per decoded token (2 per weight element read).
    pub flops: f64,
    /// Largest tensor, the typical request size when streamed.
    pub largest_tensor: u64,
    /// False for units the runtime must keep in memory: norms and routers (tiny, read every
    /// token) and an untied token embedding (of which a token reads one row).
    pub streamable: bool,
    pub tensors: Vec<String>,
    /// Where each tensor lies in the model's files (same order as `tensors`); None when the
    /// inventory has no file positions (catalog models).
    pub spans: Option<Vec<Span>>,
}

/// A byte range of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub bytes: u64,
    /// Length of the file it is in.
    pub file_bytes: u64,
}

impl Span {
    /// Bytes the device transfers for each request a direct read of this range is split into
    /// (requests of at most `request` bytes, widened to whole pages).
    pub fn device_reads(&self, request: u64) -> impl Iterator<Item = u64> + '_ {
        let file = self.file_bytes;
        hw::direct::split(self.offset, self.bytes as usize, request)
            .into_iter()
            .map(move |r| r.device_bytes(Some(file)))
    }
}

impl Unit {
    /// Reads only a row per token (an untied token embedding), not the whole unit.
    pub fn row_reads(&self) -> bool {
        self.group == Group::Embedding && self.read_bytes < self.bytes as f64
    }

    /// Computes the logits: the output head, or a token embedding tied to it (read whole).
    pub fn is_head(&self) -> bool {
        self.group == Group::Output || (self.group == Group::Embedding && !self.row_reads())
    }
}

/// The routed experts of one MoE layer. Experts of a layer have equal size, so a placement is
/// fully described by how many of the most popular go to each tier ([`ExpertSplit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertLayer {
    pub layer: u32,
    /// Bytes of one expert (gate + up + down slices).
    pub expert_bytes: u64,
    /// FLOPs of one use of one expert.
    pub expert_flops: f64,
    /// Largest per-tensor slice of one expert: the size of one read request when streamed.
    pub slice_bytes: u64,
    /// Expected uses per token of each expert id; sums to top-k.
    pub rates: Vec<f64>,
    /// Expert ids by descending rate (ties by id): the order in which experts are pinned.
    pub order: Vec<u32>,
    /// Prefix sums of rates in `order`: `cum[n]` = uses per token served by the n most popular.
    pub cum: Vec<f64>,
    pub tensors: Vec<String>,
    /// Where each of `tensors` lies in the model's files, with its expert stride; None when
    /// the inventory has no file positions (catalog models).
    pub slices: Option<Vec<Slices>>,
}

/// A merged expert tensor in a model file: expert `e`'s slice is `stride` bytes at
/// `offset + e * stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slices {
    pub offset: u64,
    pub stride: u64,
    pub file_bytes: u64,
}

impl Slices {
    /// The range of experts `first..first + count`, which the runtime reads as one.
    pub fn run(&self, first: u32, count: u32) -> Span {
        Span {
            offset: self.offset + u64::from(first) * self.stride,
            bytes: u64::from(count) * self.stride,
            file_bytes: self.file_bytes,
        }
    }
}

impl ExpertLayer {
    pub fn n_expert(&self) -> u32 {
        self.order.len() as u32
    }

    /// Uses per token of all experts (= top-k).
    pub fn total_rate(&self) -> f64 {
        *self.cum.last().unwrap_or(&0.0)
    }
}

/// Every unit of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Units {
    pub units: Vec<Unit>,
    pub experts: Vec<ExpertLayer>,
    pub n_layer: u32,
    pub top_k: u32,
}

/// Expected uses per token of each expert, per MoE layer (block index -> one rate per expert id).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpertRates {
    pub layers: BTreeMap<u32, Vec<f64>>,
}

impl ExpertRates {
    /// Rates from selection counts over `tokens` tokens.
    pub fn from_counts(counts: BTreeMap<u32, Vec<u64>>, tokens: u64) -> ExpertRates {
        let t = tokens.max(1) as f64;
        ExpertRates {
            layers: counts
                .into_iter()
                .map(|(l, c)| (l, c.iter().map(|&x| x as f64 / t).collect()))
                .collect(),
        }
    }
}

/// Expert rates (from a trace) that do not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatesError {
    #[error("the trace has {trace} experts at layer {layer}, the model has {model}")]
    ExpertCount {
        layer: u32,
        trace: usize,
        model: u32,
    },
    #[error("the trace routes layer {layer}, which has no experts in the model")]
    NoExperts { layer: u32 },
    #[error(
        "the trace does not route MoE layer {layer} of the model; it must cover every MoE layer"
    )]
    MissingLayer { layer: u32 },
}

/// An MoE layer's expert tensors while they are collected: names, the largest per-expert
/// stride, FLOPs per expert, and where the slices lie.
type ExpertAcc = (Vec<String>, u64, f64, Option<Vec<Slices>>);

impl Units {
    /// Builds the units; expert rates come from `rates`, which must cover every MoE layer, or
    /// are uniform (top_k / n_expert each) without it. Errors when `rates` disagrees with the
    /// model.
    pub fn build(inv: &Inventory, rates: Option<&ExpertRates>) -> Result<Units, RatesError> {
        let arch = &inv.arch;
        let tied = !inv.tensors.iter().any(|t| t.role == Role::Output);
        let mut groups: BTreeMap<(Option<u32>, Group), Unit> = BTreeMap::new();
        let mut experts: BTreeMap<u32, ExpertAcc> = BTreeMap::new();
        let n_expert = arch.n_expert;
        let file_bytes = match &inv.source {
            model::inventory::Source::File { file_bytes, .. } => Some(file_bytes.as_slice()),
            model::inventory::Source::Catalog { .. } => None,
        };
        // Where a tensor lies: known only for file inventories.
        let span = |t: &model::inventory::TensorEntry| -> Option<Span> {
            Some(Span {
                offset: t.offset?,
                bytes: t.bytes,
                file_bytes: *file_bytes?.get(t.file as usize)?,
            })
        };
        for t in &inv.tensors {
            let group = t.group();
            if let (Group::Experts, Some(stride), Some(layer)) = (group, t.expert_stride, t.layer) {
                let e = experts
                    .entry(layer)
                    .or_insert_with(|| (Vec::new(), 0, 0.0, Some(Vec::new())));
                e.0.push(t.name.clone());
                e.1 = e.1.max(stride);
                e.2 += 2.0 * t.elements() as f64 / n_expert as f64;
                let slices = span(t).map(|s| Slices {
                    offset: s.offset,
                    stride,
                    file_bytes: s.file_bytes,
                });
                e.3 = e.3.take().zip(slices).map(|(mut v, s)| {
                    v.push(s);
                    v
                });
                continue;
            }
            let (read, flops) = if t.role == Role::TokenEmbd && !tied {
                let rows = t.dims.get(1).copied().unwrap_or(1).max(1);
                ((t.bytes / rows) as f64, 0.0)
            } else {
                (t.bytes as f64, 2.0 * t.elements() as f64)
            };
            let u = groups.entry((t.layer, group)).or_insert_with(|| Unit {
                name: match t.layer {
                    Some(l) => format!("blk.{l}.{}", group.name()),
                    None => group.name().to_string(),
                },
                layer: t.layer,
                group,
                bytes: 0,
                read_bytes: 0.0,
                flops: 0.0,
                largest_tensor: 0,
                // An untied token embedding stays in memory: llama.cpp reads one row of it per
                // token, but the runtime streams whole tensors, so on NVMe it would be read
                // whole every token.
                streamable: !matches!(group, Group::Norm | Group::Router)
                    && (t.role != Role::TokenEmbd || tied),
                tensors: Vec::new(),
                spans: Some(Vec::new()),
            });
            u.bytes += t.bytes;
            u.read_bytes += read;
            u.flops += flops;
            u.largest_tensor = u.largest_tensor.max(t.bytes);
            u.tensors.push(t.name.clone());
            u.spans = u.spans.take().zip(span(t)).map(|(mut v, s)| {
                v.push(s);
                v
            });
        }
        // Globals first, then layers in order; BTreeMap order puts None before Some.
        let units: Vec<Unit> = groups.into_values().collect();
        let k = arch.n_expert_used as f64;
        let mut layers = Vec::new();
        for (layer, (tensors, slice, flops, slices)) in experts {
            let expert_bytes = inv.expert_bytes(layer).unwrap_or(0);
            let rates = match rates.and_then(|r| r.layers.get(&layer)) {
                Some(r) if r.len() != n_expert as usize => {
                    return Err(RatesError::ExpertCount {
                        layer,
                        trace: r.len(),
                        model: n_expert,
                    })
                }
                Some(r) => r.clone(),
                None if rates.is_some() => return Err(RatesError::MissingLayer { layer }),
                None => vec![k / n_expert as f64; n_expert as usize],
            };
            let (order, cum) = sort_by_use(&rates);
            layers.push(ExpertLayer {
                layer,
                expert_bytes,
                expert_flops: flops,
                slice_bytes: slice,
                rates,
                order,
                cum,
                tensors,
                slices,
            });
        }
        if let Some(r) = rates {
            if let Some(l) = r
                .layers
                .keys()
                .find(|l| !layers.iter().any(|x| x.layer == **l))
            {
                return Err(RatesError::NoExperts { layer: *l });
            }
        }
        Ok(Units {
            units,
            experts: layers,
            n_layer: arch.n_layer,
            top_k: arch.n_expert_used,
        })
    }

    /// Bytes of every unit and expert.
    pub fn total_bytes(&self) -> u64 {
        self.units.iter().map(|u| u.bytes).sum::<u64>()
            + self
                .experts
                .iter()
                .map(|e| e.expert_bytes * e.n_expert() as u64)
                .sum::<u64>()
    }

    /// Bytes that must stay in memory whatever happens.
    pub fn pinned_bytes(&self) -> u64 {
        self.units
            .iter()
            .filter(|u| !u.streamable)
            .map(|u| u.bytes)
            .sum()
    }
}

/// How many of a layer's most popular experts sit on the GPU and in RAM; the rest are on NVMe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpertSplit {
    pub gpu: u32,
    pub ram: u32,
}

/// A placement: a tier per unit (same order as [`Units::units`]) and a split per MoE layer
/// (same order as [`Units::experts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub units: Vec<Tier>,
    pub experts: Vec<ExpertSplit>,
}

impl Assignment {
    /// Everything on one tier (experts included).
    pub fn all_on(units: &Units, tier: Tier) -> Assignment {
        let split = |e: &ExpertLayer| match tier {
            Tier::Gpu => ExpertSplit {
                gpu: e.n_expert(),
                ram: 0,
            },
            Tier::Ram => ExpertSplit {
                gpu: 0,
                ram: e.n_expert(),
            },
            Tier::Nvme => ExpertSplit::default(),
        };
        Assignment {
            units: vec![tier; units.units.len()],
            experts: units.experts.iter().map(split).collect(),
        }
    }

    /// Weight bytes on `tier`.
    pub fn bytes_on(&self, units: &Units, tier: Tier) -> u64 {
        let u: u64 = units
            .units
            .iter()
            .zip(&self.units)
            .filter(|(_, t)| **t == tier)
            .map(|(u, _)| u.bytes)
            .sum();
        let e: u64 = units
            .experts
            .iter()
            .zip(&self.experts)
            .map(|(e, s)| {
                let n = match tier {
                    Tier::Gpu => s.gpu,
                    Tier::Ram => s.ram,
                    Tier::Nvme => e.n_expert() - s.gpu - s.ram,
                };
                e.expert_bytes * n as u64
            })
            .sum();
        u + e
    }
}

impl Units {
    /// Adds what attention reads and computes over a full context of `ctx` tokens: the layer's
    /// KV cache (read once per token) and 2 FLOPs per query head per cached key/value element.
    pub fn add_context_reads(
        &mut self,
        arch: &model::arch::ArchInfo,
        ctx: u64,
        kv_type: gguf::ggml_type::GgmlType,
    ) {
        for u in self
            .units
            .iter_mut()
            .filter(|u| u.group == Group::Attention)
        {
            let Some(l) = u.layer else { continue };
            let kv = super::capacity::kv_layer_bytes_per_token(arch, l, kv_type);
            let n_head = arch.n_head.at(l).max(1);
            let dk = arch.head_dim_k.unwrap_or(arch.n_embd / n_head);
            let dv = arch.head_dim_v.unwrap_or(dk);
            // In f64: header values are untrusted and must not wrap.
            u.read_bytes += kv as f64 * ctx as f64;
            u.flops += 2.0 * ctx as f64 * n_head as f64 * (dk as f64 + dv as f64);
        }
    }
}

/// Expert ids from most to least used (ties by id), and the prefix sums of their rates
/// (`cum[n]` = uses per token served by the `n` most used experts).
pub(crate) fn sort_by_use(rates: &[f64]) -> (Vec<u32>, Vec<f64>) {
    let mut order: Vec<u32> = (0..rates.len() as u32).collect();
    order.sort_by(|&a, &b| {
        rates[b as usize]
            .total_cmp(&rates[a as usize])
            .then(a.cmp(&b))
    });
    let mut cum = Vec::with_capacity(rates.len() + 1);
    cum.push(0.0);
    for &e in &order {
        cum.push(cum.last().copied().unwrap_or(0.0) + rates[e as usize]);
    }
    (order, cum)
}
