//! Applying a solved plan to a real model file: the identity check (a plan only runs on the
//! model it was solved for) and each tensor's tier.

use crate::error::Result;
use crate::model::ModelParams;
use model::Inventory;
use plan::Tier;
use plan::{PlacementError, Plan, TensorPlace};
use std::collections::{BTreeMap, HashMap};

/// Where each tensor of the model goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Tier of every tensor, by name.
    pub tiers: BTreeMap<String, Tier>,
    /// Bytes that streamed tensors may hold in memory at once: the plan's pool plus its expert
    /// cache.
    pub pool_bytes: u64,
    /// The plan's expert cache: bytes (part of `pool_bytes`) and policy name.
    pub expert_cache_bytes: u64,
    pub expert_policy: String,
    /// Per block index, the experts of split (streamed) tensors the plan keeps in memory
    /// (RAM or GPU tier): preloaded and never evicted when experts stream one by one.
    pub resident_experts: HashMap<u32, Vec<u32>>,
}

impl Placement {
    pub fn names_on(&self, tier: Tier) -> Vec<String> {
        self.tiers
            .iter()
            .filter(|(_, &t)| t == tier)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether a run lets llama.cpp repack weights for its CPU kernels (its default): only when
    /// nothing streams. Resident weights are anonymous memory under O_DIRECT either way and a
    /// repacked tensor replaces its plain copy, so repacking costs no memory. But a streamed
    /// tensor is never repacked, and llama.cpp cannot be told to leave just those tensors alone
    /// (an override to its CPU buffer type still repacks), so a run that streams repacks nothing:
    /// then plain llama.cpp with repacking off computes every tensor with the same kernels.
    pub fn repacks(&self) -> bool {
        self.tiers.values().all(|&t| t != Tier::Nvme)
    }

    /// Resident tensors a run forces to llama.cpp's CPU buffer type: the RAM tier where a GPU
    /// backend exists (else llama.cpp would put them on the GPU). Without one, llama.cpp's own
    /// choice is host memory already, repacked where plain llama.cpp repacks, so its kernels and
    /// tokens are plain llama.cpp's.
    pub fn host_names(&self) -> Vec<String> {
        if crate::model::gpu_offload() {
            self.names_on(Tier::Ram)
        } else {
            Vec::new()
        }
    }
}

/// Each tensor's tier. A merged expert tensor split across tiers (`{"split": {"layer": L}}` in
/// the plan) is on the NVMe tier when any of its experts is on NVMe (streamed; per expert, its
/// memory-tier experts are listed in `resident_experts`), else kept in RAM when any is in RAM.
pub fn placement(plan: &Plan, inv: &Inventory) -> Result<Placement> {
    plan.check(inv)?;
    let layer_entry = |layer: u32| {
        plan.experts
            .iter()
            .find(|e| e.layer == layer)
            .ok_or(PlacementError::MissingLayer { layer })
    };
    let split_tier = |layer: u32| -> Result<Tier> {
        let e = layer_entry(layer)?;
        Ok(if !e.nvme.is_empty() {
            Tier::Nvme
        } else if !e.ram.is_empty() {
            Tier::Ram
        } else {
            Tier::Gpu
        })
    };
    let mut tiers = BTreeMap::new();
    let mut resident_experts = HashMap::new();
    for t in &inv.tensors {
        let place = plan
            .tensors
            .get(&t.name)
            .copied()
            .ok_or_else(|| PlacementError::Unplaced {
                tensor: t.name.clone(),
            })?;
        let tier = match place {
            TensorPlace::Split { layer } => {
                let tier = split_tier(layer)?;
                if tier == Tier::Nvme {
                    let e = layer_entry(layer)?;
                    resident_experts.insert(layer, [&e.gpu[..], &e.ram[..]].concat());
                }
                tier
            }
            whole => whole.tier().expect("only split places have no single tier"),
        };
        tiers.insert(t.name.clone(), tier);
    }
    Ok(Placement {
        tiers,
        pool_bytes: plan.pool_bytes.saturating_add(plan.expert_cache.bytes),
        expert_cache_bytes: plan.expert_cache.bytes,
        expert_policy: plan.expert_cache.policy.clone(),
        resident_experts,
    })
}

/// Model parameters for plain llama.cpp (its mmap loader, nothing streamed) that compute each
/// tensor where, and with the kernels with which, a run of `plan` does, after checking that the
/// plan is for `inv`'s model: the run's [`Placement::host_names`] and its streamed (NVMe-tier)
/// tensors in the CPU buffer type, where a run computes them, and repacking as the run does
/// ([`Placement::repacks`]).
pub fn reference_params(plan: &Plan, inv: &Inventory) -> Result<ModelParams> {
    let placement = placement(plan, inv)?;
    let mut names = placement.host_names();
    names.extend(placement.names_on(Tier::Nvme));
    Ok(ModelParams {
        use_extra_bufts: placement.repacks(),
        host: name_patterns(&names),
        ..ModelParams::llama_defaults()
    })
}

pub use plan::name_patterns;
