//! The inspect view of an inventory: totals by group, role and layer, expert strides, and what
//! a decoded token touches — one serializable struct that tables and `--json` both print.

use crate::arch::ArchInfo;
use crate::inventory::{Inventory, Source, TokenBytes};
use crate::role::{Group, Role};
use gguf::ggml_type::GgmlType;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub source: Source,
    pub arch: ArchInfo,
    pub tensor_count: u64,
    pub total_bytes: u64,
    pub groups: Vec<GroupRow>,
    pub roles: Vec<RoleRow>,
    pub layers: Vec<LayerRow>,
    pub per_token: TokenBytes,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub group: Group,
    pub count: u64,
    pub bytes: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleRow {
    pub role: Role,
    pub group: Group,
    pub types: Vec<GgmlType>,
    pub count: u64,
    pub bytes: u64,
    pub share: f64,
    /// Bytes of one expert's slice of this role's tensor (the same in every layer when the
    /// types agree; the largest otherwise).
    pub expert_stride: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    /// `None` for the global tensors (embeddings, output head).
    pub layer: Option<u32>,
    pub count: u64,
    pub bytes: u64,
    pub share: f64,
    /// Bytes of all routed experts in the layer.
    pub expert_bytes: u64,
    /// Bytes of one routed expert (gate + up + down slices).
    pub expert_stride: Option<u64>,
}

fn share(bytes: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        bytes as f64 / total as f64
    }
}

impl Summary {
    pub fn of(inv: &Inventory) -> Summary {
        let total = inv.total_bytes();
        let groups = inv
            .by_group()
            .into_iter()
            .map(|(group, t)| GroupRow {
                group,
                count: t.count,
                bytes: t.bytes,
                share: share(t.bytes, total),
            })
            .collect();
        let roles = inv
            .by_role()
            .into_iter()
            .map(|(role, t)| {
                let of_role = || inv.tensors.iter().filter(move |e| e.role == role);
                let types: BTreeSet<GgmlType> = of_role().map(|e| e.ggml_type).collect();
                RoleRow {
                    role,
                    group: role.group(),
                    types: types.into_iter().collect(),
                    count: t.count,
                    bytes: t.bytes,
                    share: share(t.bytes, total),
                    expert_stride: of_role().filter_map(|e| e.expert_stride).max(),
                }
            })
            .collect();
        let layers = inv
            .by_layer()
            .into_iter()
            .map(|(layer, t)| {
                let expert_bytes = inv
                    .tensors
                    .iter()
                    .filter(|e| e.layer == layer && e.group() == Group::Experts)
                    .map(|e| e.bytes)
                    .sum();
                LayerRow {
                    layer,
                    count: t.count,
                    bytes: t.bytes,
                    share: share(t.bytes, total),
                    expert_bytes,
                    expert_stride: layer.and_then(|l| inv.expert_bytes(l)),
                }
            })
            .collect();
        Summary {
            source: inv.source.clone(),
            arch: inv.arch.clone(),
            tensor_count: inv.tensors.len() as u64,
            total_bytes: total,
            groups,
            roles,
            layers,
            per_token: inv.bytes_per_token(),
        }
    }
}
