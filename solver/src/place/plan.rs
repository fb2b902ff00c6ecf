//! plan.json: the versioned placement plan that `hypura sim` and `hypura run` apply — inputs'
//! identities, tensor -> tier map, expert placement, cache, pool, prefetch and I/O settings,
//! predicted speed and the solver's bound and gap.

use super::cost::{IoPlan, LayerTime};
use super::units::Tier;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The plan schema version this build reads and writes. Version 2: every tensor has exactly one
/// entry in `tensors`, merged expert tensors whose experts span tiers as [`TensorPlace::Split`].
pub const PLAN_VERSION: u32 = 2;

/// Where one tensor lives: wholly on one tier, or (a merged expert tensor) split by expert id
/// across tiers as the `experts` entry of `layer` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum TensorPlace {
    Gpu,
    Ram,
    Nvme,
    /// Expert slices on several tiers: see the [`ExpertPlacement`] with this `layer`.
    Split {
        layer: u32,
    },
}

impl TensorPlace {
    /// The one tier holding the whole tensor; `None` when it is split.
    pub fn tier(self) -> Option<Tier> {
        match self {
            TensorPlace::Gpu => Some(Tier::Gpu),
            TensorPlace::Ram => Some(Tier::Ram),
            TensorPlace::Nvme => Some(Tier::Nvme),
            TensorPlace::Split { .. } => None,
        }
    }
}

impl From<Tier> for TensorPlace {
    fn from(t: Tier) -> TensorPlace {
        match t {
            Tier::Gpu => TensorPlace::Gpu,
            Tier::Ram => TensorPlace::Ram,
            Tier::Nvme => TensorPlace::Nvme,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    pub inputs: Inputs,
    pub mode: Mode,
    pub solver: SolverReport,
    pub capacities: CapacityReport,
    /// Every tensor of the model by name: its tier, or `{"split": {"layer": L}}` for a merged
    /// expert tensor whose experts span tiers (the ids per tier are in `experts`).
    pub tensors: BTreeMap<String, TensorPlace>,
    /// Per MoE layer: which expert ids sit on which tier.
    pub experts: Vec<ExpertPlacement>,
    pub expert_cache: ExpertCache,
    /// RAM staging buffers for weights read from NVMe.
    pub pool_bytes: u64,
    /// Layers of dense weights read ahead of compute (0: nothing dense is streamed).
    pub prefetch_depth: u32,
    pub io: IoPlan,
    pub prediction: PlanPrediction,
}

/// What the plan was computed from; a runtime refuses a plan whose inputs differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub model: ModelIdentity,
    pub profile_name: String,
    /// FNV-1a 64 of the profile's canonical TOML, hex.
    pub profile_hash: String,
    /// FNV-1a 64 of the trace file's bytes, hex; absent when expert use was assumed uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
    pub ctx: u64,
    pub kv_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    pub name: String,
    /// Bytes of the GGUF file(s); for catalog models, the tensor bytes.
    pub file_bytes: u64,
    /// FNV-1a 64 of the canonical inventory JSON (architecture facts, tensor names, types,
    /// shapes, offsets): what the header says, independent of tensor data.
    pub header_hash: String,
}

/// Inference mode, from where the solution puts things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Nothing on NVMe.
    FullResident,
    /// Only routed experts on NVMe.
    ExpertStreaming,
    /// Only dense FFN weights on NVMe.
    DenseFfnStreaming,
    /// Anything else on NVMe.
    Mixed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::FullResident => "full-resident",
            Mode::ExpertStreaming => "expert-streaming",
            Mode::DenseFfnStreaming => "dense-FFN-streaming",
            Mode::Mixed => "mixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverReport {
    /// `ilp`, or `greedy` when the ILP could not beat the greedy plan within its time limit.
    pub method: String,
    /// `optimal` (within the MIP gap tolerance), `time-limit`, or `heuristic` (greedy only).
    pub status: String,
    /// Optimum of the LP relaxation, seconds per token: no plan can be predicted faster
    /// (absent for greedy-only solves).
    pub lp_bound_s: Option<f64>,
    /// The chosen plan's objective: predicted seconds per decoded token, plus with a prompt
    /// length the predicted prefill seconds of that prompt.
    pub objective_s: f64,
    /// HiGHS's proven lower bound on the ILP optimum (its MIP dual bound), seconds per token.
    pub mip_bound_s: Option<f64>,
    /// (objective - best bound) / objective, the best bound being the larger of the two above
    /// (absent for greedy-only solves).
    pub gap: Option<f64>,
    /// The same objective for the greedy (frequency / size) plan.
    pub greedy_objective_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityReport {
    /// Weight bytes the GPU may hold (absent without a GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_bytes: Option<u64>,
    /// Weight bytes RAM may hold; on unified memory the budget GPU and RAM share.
    pub ram_bytes: u64,
    pub unified: bool,
    pub kv_cache_bytes: u64,
    pub compute_buffer_bytes: u64,
    pub gpu_used_bytes: u64,
    pub ram_used_bytes: u64,
    pub nvme_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertPlacement {
    pub layer: u32,
    pub tensors: Vec<String>,
    pub expert_bytes: u64,
    pub gpu: Vec<u32>,
    pub ram: Vec<u32>,
    pub nvme: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertCache {
    /// Bytes of experts kept in memory while others stream (0 unless experts stream).
    pub bytes: u64,
    /// `static-frequency`: the most used experts of each layer are pinned.
    pub policy: String,
    /// Fraction of expert uses served from memory, from the rates the plan was solved with.
    pub hit_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPrediction {
    pub tok_per_s: f64,
    pub token_s: f64,
    pub layers: Vec<LayerTime>,
    /// Prefill of the `--prompt-len` prompt as one batch; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<PrefillPrediction>,
}

/// Predicted prefill of one prompt processed as a single batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefillPrediction {
    pub prompt_len: u64,
    /// Seconds for the whole prompt.
    pub prefill_s: f64,
    /// Prompt tokens per second.
    pub tok_per_s: f64,
}

/// Why a plan file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
}

impl Plan {
    /// Reads a plan; errors name the file and the field (`prediction.layers[3].total_s`).
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Plan::from_json(&text, &path.display().to_string())
    }

    /// Parses plan JSON; `origin` names the text in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Plan, PlanError> {
        let field_err = |field: &str, message: String| PlanError::Field {
            path: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let probe: serde_json::Value =
            serde_json::from_str(text).map_err(|e| field_err("", e.to_string()))?;
        match probe.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == PLAN_VERSION as u64 => {}
            Some(1) => {
                return Err(field_err(
                    "version",
                    format!("plan version 1 is no longer read (it left merged expert tensors split across tiers out of `tensors`); this hypura reads version {PLAN_VERSION}; re-run `hypura solve`"),
                ))
            }
            Some(v) => {
                return Err(field_err(
                    "version",
                    format!("unsupported plan version {v}; this hypura reads version {PLAN_VERSION}; re-run `hypura solve`"),
                ))
            }
            None => return Err(field_err("version", "missing or not an integer".into())),
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| field_err(&e.path().to_string(), e.inner().to_string()))
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plans serialize");
        s.push('\n');
        s
    }
}

/// FNV-1a 64-bit, as 16 hex digits: a stable fingerprint, not a security hash.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h = Fnv1a::default();
    h.update(bytes);
    h.hex()
}

/// Incremental FNV-1a 64 for large files.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
