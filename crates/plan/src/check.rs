//! The semantic check of a plan against its model: every tensor placed once, expert ids in
//! range and on exactly one tier, the tensors and the expert lists telling the same story, the
//! stated capacities and mode true of the placement. Parsing only checks types; this is what
//! lets `sim` and `run` trust what they apply.

use crate::{ExpertPlacement, Mode, Plan, TensorPlace, Tier};
use model::role::Group;
use model::{Inventory, TensorEntry};
use std::collections::{BTreeMap, BTreeSet};

/// What is wrong with a plan's placement of its model. Each names the plan.json field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("field `tensors`: {tensor:?} is not a tensor of the model")]
    UnknownTensor { tensor: String },
    #[error("field `tensors`: the model's tensor {tensor:?} is not placed")]
    Unplaced { tensor: String },
    #[error("field `tensors.{tensor}`: split, but it is not a merged expert tensor")]
    SplitDense { tensor: String },
    #[error(
        "field `tensors.{tensor}`: split by layer {planned}, but the tensor is in layer {actual}"
    )]
    SplitLayer {
        tensor: String,
        planned: u32,
        actual: u32,
    },
    #[error("field `tensors.{tensor}`: on {tier}, but `experts` puts some of layer {layer}'s experts elsewhere; a tensor whose experts span tiers is {{\"split\": {{\"layer\": {layer}}}}}", tier = .tier.name())]
    WholeTensorDisagrees {
        tensor: String,
        tier: Tier,
        layer: u32,
    },
    #[error("field `experts`: layer {layer} has no routed experts in the model")]
    NotMoeLayer { layer: u32 },
    #[error("field `experts`: layer {layer} appears more than once")]
    DuplicateLayer { layer: u32 },
    #[error("field `experts`: MoE layer {layer} has no entry")]
    MissingLayer { layer: u32 },
    #[error(
        "field `experts` (layer {layer}): expert {id} is beyond the model's {n_expert} experts"
    )]
    ExpertOutOfRange { layer: u32, id: u32, n_expert: u32 },
    #[error("field `experts` (layer {layer}): expert {id} is listed more than once")]
    ExpertTwice { layer: u32, id: u32 },
    #[error("field `experts` (layer {layer}): expert {id} is on no tier")]
    ExpertMissing { layer: u32, id: u32 },
    #[error("field `experts` (layer {layer}): `tensors` lists {planned:?}, the layer's expert tensors are {actual:?}")]
    ExpertTensors {
        layer: u32,
        planned: Vec<String>,
        actual: Vec<String>,
    },
    #[error("field `experts` (layer {layer}): `expert_bytes` is {planned}, the model's experts are {actual} bytes")]
    ExpertBytes {
        layer: u32,
        planned: u64,
        actual: u64,
    },
    #[error("field `capacities`: the plan puts {bytes} bytes on the GPU but was solved without one (no `gpu_bytes`)")]
    NoGpu { bytes: u64 },
    #[error("field `capacities`: the placement puts {used} bytes of weights on {what}, over its {capacity} bytes")]
    OverCapacity {
        what: &'static str,
        used: u64,
        capacity: u64,
    },
    #[error("field `mode`: {stated:?}, but the placement is {actual:?}; set it to {actual:?}", stated = .stated.name(), actual = .actual.name())]
    Mode { stated: Mode, actual: Mode },
}

/// Weight bytes a placement puts on each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierBytes {
    pub gpu: u64,
    pub ram: u64,
    pub nvme: u64,
}

impl TierBytes {
    fn add(&mut self, tier: Tier, bytes: u64) {
        let slot = match tier {
            Tier::Gpu => &mut self.gpu,
            Tier::Ram => &mut self.ram,
            Tier::Nvme => &mut self.nvme,
        };
        *slot = slot.saturating_add(bytes);
    }
}

/// The tier of each expert id of one layer, from its `experts` entry.
fn expert_tiers(e: &ExpertPlacement, n_expert: u32) -> Result<Vec<Tier>, PlacementError> {
    let layer = e.layer;
    let mut tier: Vec<Option<Tier>> = vec![None; n_expert as usize];
    for (t, ids) in [
        (Tier::Gpu, &e.gpu),
        (Tier::Ram, &e.ram),
        (Tier::Nvme, &e.nvme),
    ] {
        for &id in ids {
            let slot = tier
                .get_mut(id as usize)
                .ok_or(PlacementError::ExpertOutOfRange {
                    layer,
                    id,
                    n_expert,
                })?;
            if slot.replace(t).is_some() {
                return Err(PlacementError::ExpertTwice { layer, id });
            }
        }
    }
    tier.iter()
        .enumerate()
        .map(|(id, t)| {
            t.ok_or(PlacementError::ExpertMissing {
                layer,
                id: id as u32,
            })
        })
        .collect()
}

/// The merged expert tensors of each MoE layer (those with an expert stride).
fn merged_by_layer(inv: &Inventory) -> BTreeMap<u32, Vec<&TensorEntry>> {
    let mut out: BTreeMap<u32, Vec<&TensorEntry>> = BTreeMap::new();
    for t in &inv.tensors {
        if let (Some(_), Some(l)) = (t.expert_stride, t.layer) {
            out.entry(l).or_default().push(t);
        }
    }
    out
}

/// The mode a placement is in, from where it puts what: NVMe holding nothing, only routed
/// experts, only dense FFN weights, or anything else. A streamed token embedding (one row read
/// per token) does not change it.
pub fn mode_of(nvme_groups: &BTreeSet<Group>, experts_stream: bool) -> Mode {
    let groups: BTreeSet<Group> = nvme_groups
        .iter()
        .copied()
        .filter(|&g| g != Group::Embedding)
        .collect();
    match (groups.is_empty(), experts_stream) {
        (true, false) => Mode::FullResident,
        (true, true) => Mode::ExpertStreaming,
        (false, false) if groups.iter().all(|g| *g == Group::DenseFfn) => Mode::DenseFfnStreaming,
        _ => Mode::Mixed,
    }
}

impl Plan {
    /// Checks that the plan places `inv` consistently (see the module doc) and returns the
    /// weight bytes it puts on each tier.
    pub fn check_placement(&self, inv: &Inventory) -> Result<TierBytes, PlacementError> {
        let by_name: BTreeMap<&str, &TensorEntry> =
            inv.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        if let Some(name) = self
            .tensors
            .keys()
            .find(|n| !by_name.contains_key(n.as_str()))
        {
            return Err(PlacementError::UnknownTensor {
                tensor: name.clone(),
            });
        }
        let merged = merged_by_layer(inv);
        let n_expert = inv.arch.n_expert;
        let mut experts: BTreeMap<u32, Vec<Tier>> = BTreeMap::new();
        for e in &self.experts {
            let Some(tensors) = merged.get(&e.layer) else {
                return Err(PlacementError::NotMoeLayer { layer: e.layer });
            };
            if experts.contains_key(&e.layer) {
                return Err(PlacementError::DuplicateLayer { layer: e.layer });
            }
            let planned: BTreeSet<&str> = e.tensors.iter().map(String::as_str).collect();
            let actual: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            if planned != actual || planned.len() != e.tensors.len() {
                return Err(PlacementError::ExpertTensors {
                    layer: e.layer,
                    planned: e.tensors.clone(),
                    actual: actual.into_iter().map(String::from).collect(),
                });
            }
            let bytes = inv.expert_bytes(e.layer).unwrap_or(0);
            if e.expert_bytes != bytes {
                return Err(PlacementError::ExpertBytes {
                    layer: e.layer,
                    planned: e.expert_bytes,
                    actual: bytes,
                });
            }
            experts.insert(e.layer, expert_tiers(e, n_expert)?);
        }
        if let Some(&layer) = merged.keys().find(|l| !experts.contains_key(l)) {
            return Err(PlacementError::MissingLayer { layer });
        }
        let mut used = TierBytes::default();
        let mut nvme_groups = BTreeSet::new();
        let mut experts_stream = false;
        for t in &inv.tensors {
            let place = *self
                .tensors
                .get(&t.name)
                .ok_or_else(|| PlacementError::Unplaced {
                    tensor: t.name.clone(),
                })?;
            let (Some(stride), Some(layer)) = (t.expert_stride, t.layer) else {
                let tier = place.tier().ok_or_else(|| PlacementError::SplitDense {
                    tensor: t.name.clone(),
                })?;
                used.add(tier, t.bytes);
                if tier == Tier::Nvme {
                    nvme_groups.insert(t.group());
                }
                continue;
            };
            let tiers = &experts[&layer];
            match place {
                TensorPlace::Split { layer: planned } if planned != layer => {
                    return Err(PlacementError::SplitLayer {
                        tensor: t.name.clone(),
                        planned,
                        actual: layer,
                    })
                }
                TensorPlace::Split { .. } => {}
                whole => {
                    let tier = whole.tier().unwrap_or(Tier::Nvme);
                    if tiers.iter().any(|&x| x != tier) {
                        return Err(PlacementError::WholeTensorDisagrees {
                            tensor: t.name.clone(),
                            tier,
                            layer,
                        });
                    }
                }
            }
            for &tier in tiers {
                used.add(tier, stride);
            }
            // Bytes beyond the expert slices (none in the GGUFs seen) follow the NVMe rule.
            let rest = t
                .bytes
                .saturating_sub(stride.saturating_mul(tiers.len() as u64));
            if rest > 0 {
                used.add(*tiers.iter().max().unwrap_or(&Tier::Nvme), rest);
            }
            experts_stream |= tiers.contains(&Tier::Nvme);
        }
        self.check_capacities(&used)?;
        let actual = mode_of(&nvme_groups, experts_stream);
        if actual != self.mode {
            return Err(PlacementError::Mode {
                stated: self.mode,
                actual,
            });
        }
        Ok(used)
    }

    /// The placement's weights fit the capacities the plan states.
    fn check_capacities(&self, used: &TierBytes) -> Result<(), PlacementError> {
        let c = &self.capacities;
        match c.gpu_bytes {
            None if used.gpu > 0 => return Err(PlacementError::NoGpu { bytes: used.gpu }),
            Some(capacity) if used.gpu > capacity => {
                return Err(PlacementError::OverCapacity {
                    what: "the GPU",
                    used: used.gpu,
                    capacity,
                })
            }
            _ => {}
        }
        let (what, memory) = if c.unified {
            (
                "unified memory (GPU and RAM)",
                used.gpu.saturating_add(used.ram),
            )
        } else {
            ("RAM", used.ram)
        };
        if memory > c.ram_bytes {
            return Err(PlacementError::OverCapacity {
                what,
                used: memory,
                capacity: c.ram_bytes,
            });
        }
        Ok(())
    }
}
