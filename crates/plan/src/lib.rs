//! plan.json: the versioned placement plan that `hypura sim` and `hypura run` apply — the
//! identities of the model and profile it was solved for, tensor -> tier map, expert placement,
//! cache, pool, prefetch and I/O settings, predicted speed and the solver's bound and gap — and
//! the one check that a plan applies to a model and a machine ([`Plan::check`],
//! [`Plan::check_profile`]).
//!
//! It holds the plan's types only; solving one is the `place` crate's job, applying it the
//! simulator's and the runtime's.

mod check;

pub use check::{mode_of, PlacementError, TierBytes};

use hw::HwProfile;
use model::{Inventory, Source};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The plan schema version this build writes. Version 2: every tensor has exactly one entry in
/// `tensors`, merged expert tensors whose experts span tiers as [`TensorPlace::Split`]. Version
/// 3 adds what applying a plan elsewhere needs: the model file's path (`inputs.model.path`,
/// absolute, and `given`, as it was named) and the profile itself (`inputs.profile`). Version 2
/// plans are still read (without those fields).
pub const PLAN_VERSION: u32 = 3;

/// The oldest plan version this build reads.
pub const OLDEST_PLAN_VERSION: u32 = 2;

/// Where a unit's weights live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Gpu,
    Ram,
    Nvme,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Gpu, Tier::Ram, Tier::Nvme];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Gpu => "gpu",
            Tier::Ram => "ram",
            Tier::Nvme => "nvme",
        }
    }
}

/// How streamed weights are read: request sizes, queue depths and the bandwidth they achieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoPlan {
    /// Requests in flight for dense prefetch (the read curve's best depth at that size).
    pub queue_depth: u32,
    /// Reader threads: one blocking read per request in flight, at most the CPU count.
    pub threads: u32,
    pub dense_block_bytes: u64,
    pub dense_gbps: f64,
    pub expert_block_bytes: u64,
    /// Expert misses of one layer are read together: gate/up/down slices of the top-k experts.
    pub expert_queue_depth: u32,
    pub expert_gbps: f64,
    /// Token-embedding rows read from NVMe: one small read per token, queue depth 1.
    pub row_bytes: u64,
    pub row_gbps: f64,
}

/// Predicted time of one layer per decoded token (`layer` None: embedding and output head).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTime {
    pub layer: Option<u32>,
    pub gpu_s: f64,
    pub cpu_s: f64,
    pub io_dense_s: f64,
    /// Serial NVMe reads: expert misses and embedding rows.
    pub io_expert_s: f64,
    pub total_s: f64,
}

impl LayerTime {
    /// What limits this layer: `gpu`, `cpu`, `nvme-dense` or `nvme-experts`.
    pub fn bound(&self) -> &'static str {
        let compute = self.gpu_s + self.cpu_s;
        if self.io_expert_s > compute.max(self.io_dense_s) {
            "nvme-experts"
        } else if self.io_dense_s > compute {
            "nvme-dense"
        } else if self.gpu_s >= self.cpu_s {
            "gpu"
        } else {
            "cpu"
        }
    }
}

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
    /// The profile itself, so that the plan can be simulated without it (absent in version 2
    /// plans). Its hash must be `profile_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<HwProfile>,
    /// FNV-1a 64 of the trace file's bytes, hex; absent when expert use was assumed uniform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
    pub ctx: u64,
    pub kv_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    /// The file's name (a catalog model's name).
    pub name: String,
    /// The file's absolute path when the plan was solved (absent for catalog models and in
    /// version 2 plans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The path as it was given to `hypura solve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Bytes of the GGUF file(s); for catalog models, the tensor bytes.
    pub file_bytes: u64,
    /// FNV-1a 64 of the canonical inventory JSON (architecture facts, tensor names, types,
    /// shapes, offsets): what the header says, independent of tensor data.
    pub header_hash: String,
}

impl ModelIdentity {
    /// The identity of `inv` as plan inputs record it.
    pub fn of(inv: &Inventory) -> ModelIdentity {
        let (name, file_bytes, first) = match &inv.source {
            Source::File { paths, file_bytes } => (
                paths
                    .first()
                    .and_then(|p| p.file_name())
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                file_bytes.iter().sum(),
                paths.first(),
            ),
            Source::Catalog { name, .. } => (name.clone(), inv.total_bytes(), None),
        };
        // Paths are where the file is, not what it is: hash the rest.
        let canonical = serde_json::json!({ "arch": inv.arch, "tensors": inv.tensors });
        ModelIdentity {
            name,
            path: first
                .and_then(|p| std::path::absolute(p).ok())
                .map(|p| p.display().to_string()),
            given: first.map(|p| p.display().to_string()),
            file_bytes,
            header_hash: fnv1a_hex(canonical.to_string().as_bytes()),
        }
    }
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

/// Why a plan does not apply to a model or a machine: the one check `hypura sim` and `hypura run`
/// both make (the header hash and size of the model, the profile's hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the plan was solved for {planned} (header hash {planned_hash}), not {actual} (header hash {actual_hash})")]
    Header {
        planned: String,
        planned_hash: String,
        actual: String,
        actual_hash: String,
    },
    #[error("the plan was solved for {planned} of {planned_bytes} bytes, not {actual} of {actual_bytes} bytes")]
    Size {
        planned: String,
        planned_bytes: u64,
        actual: String,
        actual_bytes: u64,
    },
    #[error("the plan was solved for profile {planned:?} ({planned_hash}), not {actual:?} ({actual_hash})")]
    Profile {
        planned: String,
        planned_hash: String,
        actual: String,
        actual_hash: String,
    },
}

/// Why a plan cannot be applied to a model: it was solved for another one, or its placement
/// contradicts itself or the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    #[error(transparent)]
    Placement(#[from] PlacementError),
}

impl Plan {
    /// The one check `hypura sim` and `hypura run` make before applying a plan to `inv`: the
    /// model is the one it was solved for ([`Plan::check_model`]) and the placement is
    /// consistent ([`Plan::check_placement`]). Returns the weight bytes on each tier.
    pub fn check(&self, inv: &Inventory) -> Result<TierBytes, CheckError> {
        self.check_model(inv)?;
        Ok(self.check_placement(inv)?)
    }

    /// Refuses a model other than the one the plan was solved for: its header (architecture,
    /// tensor names, types, shapes, offsets) and its size must be the same.
    pub fn check_model(&self, inv: &Inventory) -> Result<(), Mismatch> {
        let want = &self.inputs.model;
        let have = ModelIdentity::of(inv);
        if want.header_hash != have.header_hash {
            return Err(Mismatch::Header {
                planned: want.name.clone(),
                planned_hash: want.header_hash.clone(),
                actual: have.name,
                actual_hash: have.header_hash,
            });
        }
        if want.file_bytes != have.file_bytes {
            return Err(Mismatch::Size {
                planned: want.name.clone(),
                planned_bytes: want.file_bytes,
                actual: have.name,
                actual_bytes: have.file_bytes,
            });
        }
        Ok(())
    }

    /// Refuses a machine profile other than the one the plan was solved for.
    pub fn check_profile(&self, hw: &HwProfile) -> Result<(), Mismatch> {
        let hash = profile_hash(hw);
        if hash != self.inputs.profile_hash {
            return Err(Mismatch::Profile {
                planned: self.inputs.profile_name.clone(),
                planned_hash: self.inputs.profile_hash.clone(),
                actual: hw.name.clone(),
                actual_hash: hash,
            });
        }
        Ok(())
    }
}

impl Plan {
    /// The model file the plan names: at the absolute path it was solved with, else by name
    /// next to the plan file at `plan_path`, else in the current directory; `None` when it is
    /// in none of them (or the plan names none).
    pub fn model_file(&self, plan_path: &Path) -> Option<PathBuf> {
        let name = &self.inputs.model.name;
        if name.is_empty() {
            return None;
        }
        let solved_with = self.inputs.model.path.as_ref().map(PathBuf::from);
        let beside = plan_path.parent().unwrap_or(Path::new(".")).join(name);
        solved_with
            .into_iter()
            .chain([beside, PathBuf::from(name)])
            .find(|p| p.is_file())
    }
}

/// The identity of a machine profile in plan inputs: FNV-1a 64 of its canonical TOML.
pub fn profile_hash(hw: &HwProfile) -> String {
    fnv1a_hex(hw.to_toml().as_bytes())
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
    /// A plan of a version this build does not read (an older or newer hypura wrote it).
    #[error("{path}: field `version`: {}", version_text(*.version))]
    Version { path: String, version: u64 },
}

fn version_text(version: u64) -> String {
    match version {
        1 => format!(
            "plan version 1 is no longer read (it left merged expert tensors split across tiers \
             out of `tensors`); this hypura reads version {PLAN_VERSION}"
        ),
        v => format!(
            "unsupported plan version {v}; this hypura reads versions \
             {OLDEST_PLAN_VERSION}..={PLAN_VERSION}"
        ),
    }
}

impl Plan {
    /// Reads a plan; errors name the file and the field (`prediction.layers[3].total_s`).
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = infile::read_to_string(path).map_err(|source| PlanError::Io {
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
            Some(v) if (OLDEST_PLAN_VERSION as u64..=PLAN_VERSION as u64).contains(&v) => {}
            Some(version) => {
                return Err(PlanError::Version {
                    path: origin.to_string(),
                    version,
                })
            }
            None => return Err(field_err("version", "missing or not an integer".into())),
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let plan: Plan = serde_path_to_error::deserialize(de)
            .map_err(|e| field_err(&e.path().to_string(), e.inner().to_string()))?;
        if let Some(hw) = &plan.inputs.profile {
            hw.validate()
                .map_err(|(key, message)| field_err(&format!("inputs.profile.{key}"), message))?;
            if profile_hash(hw) != plan.inputs.profile_hash {
                return Err(field_err(
                    "inputs.profile",
                    "is not the profile `inputs.profile_hash` names (edited after solving?)".into(),
                ));
            }
        }
        Ok(plan)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plans serialize");
        s.push('\n');
        s
    }
}

pub use seeded::{fnv1a_hex, Fnv1a};

/// Anchored regexes matching exactly `names`, compact: `blk.N.<rest>` names sharing `<rest>` become
/// one pattern with the layer numbers as alternatives (llama.cpp compiles every pattern for every
/// tensor it creates).
pub fn name_patterns(names: &[String]) -> Vec<String> {
    let mut by_rest: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut others = Vec::new();
    for n in names {
        match n.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((layer, rest))
                if !layer.is_empty() && layer.bytes().all(|b| b.is_ascii_digit()) =>
            {
                by_rest.entry(rest).or_default().push(layer)
            }
            _ => others.push(format!("^{}$", escape(n))),
        }
    }
    let mut out: Vec<String> = by_rest
        .into_iter()
        .map(|(rest, layers)| format!("^blk\\.({})\\.{}$", layers.join("|"), escape(rest)))
        .collect();
    out.extend(others);
    out
}

/// Escapes everything but ASCII letters, digits and `_` for an ECMAScript regex.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Arguments that make stock llama.cpp place a plan's tensors as the plan does, where it can,
/// and what it cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaArgs {
    /// `-ngl 999` (every layer offloaded) with `-ot REGEX=CPU` for each group of host-memory
    /// tensors; `-ngl 0` without a GPU.
    pub args: Vec<String>,
    /// What the plan does that these arguments do not, one sentence each.
    pub cannot: Vec<String>,
}

impl Plan {
    /// llama.cpp's `-ngl`/`-ot` for this plan: GPU-tier tensors on the GPU, the rest in host
    /// memory. NVMe-tier tensors and merged expert tensors split across tiers have no llama.cpp
    /// equivalent: they go to host memory and [`LlamaArgs::cannot`] says so.
    pub fn llama_args(&self) -> LlamaArgs {
        let mut host = Vec::new();
        let (mut nvme, mut split) = (0usize, 0usize);
        for (name, place) in &self.tensors {
            match place {
                TensorPlace::Gpu => {}
                TensorPlace::Ram => host.push(name.clone()),
                TensorPlace::Nvme => {
                    nvme += 1;
                    host.push(name.clone());
                }
                TensorPlace::Split { .. } => {
                    split += 1;
                    host.push(name.clone());
                }
            }
        }
        let mut cannot = Vec::new();
        if nvme > 0 {
            cannot.push(format!(
                "{nvme} tensors the plan streams from NVMe stay in host memory: llama.cpp cannot \
                 read them on demand (with its default mmap the OS pages them in and out)"
            ));
        }
        if split > 0 {
            cannot.push(format!(
                "{split} merged expert tensors have their experts on several tiers: llama.cpp \
                 places whole tensors, these in host memory"
            ));
        }
        if self.capacities.gpu_bytes.is_none() {
            return LlamaArgs {
                args: vec!["-ngl".into(), "0".into()],
                cannot,
            };
        }
        let mut args = vec!["-ngl".to_string(), "999".to_string()];
        for p in name_patterns(&host) {
            args.push("-ot".into());
            args.push(format!("{p}=CPU"));
        }
        LlamaArgs { args, cannot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns_group_layers_and_escape_dots() {
        let names: Vec<String> = [
            "blk.0.ffn_up.weight",
            "blk.12.ffn_up.weight",
            "blk.3.ffn_down.weight",
            "output.weight",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            name_patterns(&names),
            vec![
                r"^blk\.(3)\.ffn_down\.weight$".to_string(),
                r"^blk\.(0|12)\.ffn_up\.weight$".to_string(),
                r"^output\.weight$".to_string(),
            ]
        );
    }

    /// Tensor names of a small model, odd characters included.
    fn universe() -> Vec<String> {
        let mut names = vec![
            "token_embd.weight".to_string(),
            "output.weight".to_string(),
            "output_norm.weight".to_string(),
            "odd-name+(1).w".to_string(),
            "blk.x.ffn_up.weight".to_string(),
        ];
        for l in [0, 1, 2, 10, 11, 12, 21] {
            for t in [
                "attn_q.weight",
                "ffn_up.weight",
                "ffn_up_exps.weight",
                "ffn_down.weight",
            ] {
                names.push(format!("blk.{l}.{t}"));
            }
        }
        names
    }

    proptest! {
        /// The patterns, read by an independent regex engine (searched in the name, as
        /// llama.cpp does), match exactly the chosen names among all the model's.
        #[test]
        fn patterns_match_exactly_the_chosen_names(chosen in proptest::collection::vec(any::<bool>(), 33)) {
            let all = universe();
            let picked: Vec<String> = all
                .iter()
                .zip(&chosen)
                .filter(|(_, &c)| c)
                .map(|(n, _)| n.clone())
                .collect();
            let res: Vec<regex::Regex> = name_patterns(&picked)
                .iter()
                .map(|p| regex::Regex::new(p).unwrap())
                .collect();
            for n in &all {
                prop_assert_eq!(res.iter().any(|r| r.is_match(n)), picked.contains(n), "{}", n);
            }
        }
    }
}
