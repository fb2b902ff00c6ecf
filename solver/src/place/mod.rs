//! Placement: which tier (GPU, RAM, NVMe) every tensor lives on, how large the streaming pool
//! and expert cache are, how deep to prefetch, and the predicted decode speed — the [`Plan`].
//!
//! Pipeline: [`units`] groups the inventory into placement units, [`capacity`] sizes the tiers,
//! [`cost`] predicts time, [`greedy`] and [`ilp`] choose tiers, [`plan`] writes the result and
//! [`explain`] says why.

pub mod capacity;
pub mod cost;
pub mod explain;
pub mod greedy;
pub mod ilp;
pub mod plan;
pub mod units;

pub use capacity::{Capacities, Headroom, Shortfall};
pub use cost::{CostModel, LayerTime, Prediction};
pub use ilp::IlpOptions;
pub use plan::{Mode, Plan, PlanError, PLAN_VERSION};
pub use units::{Assignment, ExpertRates, ExpertSplit, Tier, Units};

use crate::hw::HwProfile;
use crate::inventory::{Inventory, Source};
use crate::role::Group;
use std::collections::BTreeMap;

/// Which solver chooses tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The ILP, falling back to greedy only if greedy predicts faster (time limit hit).
    Ilp,
    /// The frequency / size greedy baseline alone.
    Greedy,
}

/// Everything `solve` needs besides the model and the machine.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    pub headroom: Headroom,
    /// Expert uses per token from a trace; uniform when absent.
    pub rates: Option<ExpertRates>,
    pub trace_hash: Option<String>,
    pub method: Method,
    pub ilp: IlpOptions,
    /// Prompt tokens per request: when non-zero the objective is the request time, prefill of
    /// this prompt as one batch plus one decode step; zero minimises decode time alone.
    pub prompt_len: u64,
}

impl Default for SolveOptions {
    fn default() -> SolveOptions {
        SolveOptions {
            headroom: Headroom::default(),
            rates: None,
            trace_hash: None,
            method: Method::Ilp,
            ilp: IlpOptions::default(),
            prompt_len: 0,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("infeasible: {0}")]
    Infeasible(#[from] Shortfall),
    #[error("{0}")]
    Rates(String),
    #[error(transparent)]
    Ilp(#[from] ilp::IlpError),
}

/// A solved placement with what produced it (for `--explain` and for the simulator).
#[derive(Debug, Clone)]
pub struct Solved {
    pub plan: Plan,
    pub units: Units,
    pub caps: Capacities,
    pub cost: CostModel,
    pub assignment: Assignment,
    pub greedy: Assignment,
}

/// Dense layers whose weights stream are read this many layers ahead of compute.
const DENSE_PREFETCH_DEPTH: u32 = 1;

/// RAM the streaming pool may need: buffers for the prefetched and the computing layer of the
/// largest streamable dense layer, plus one layer's worth of expert misses (top-k experts).
fn pool_reserve(units: &Units) -> u64 {
    let mut dense: BTreeMap<u32, u64> = BTreeMap::new();
    for u in units.units.iter().filter(|u| u.streamable) {
        if let Some(l) = u.layer {
            *dense.entry(l).or_default() += u.bytes;
        }
    }
    let dense_max = dense.values().copied().max().unwrap_or(0);
    let expert_max = units
        .experts
        .iter()
        .map(|e| e.expert_bytes * units.top_k as u64)
        .max()
        .unwrap_or(0);
    (DENSE_PREFETCH_DEPTH as u64 + 1) * dense_max + expert_max
}

/// Solves the placement of `inv` on `hw`.
pub fn solve(inv: &Inventory, hw: &HwProfile, opts: &SolveOptions) -> Result<Solved, PlaceError> {
    let mut units = Units::build(inv, opts.rates.as_ref()).map_err(PlaceError::Rates)?;
    let h = &opts.headroom;
    units.add_context_reads(&inv.arch, h.ctx, h.kv_type);
    let base = Capacities::new(hw, &inv.arch, h)?;
    let caps = if units.total_bytes() <= base.memory_total() {
        base
    } else {
        base.with_pool(pool_reserve(&units))?
    };
    let pinned = units.pinned_bytes();
    if pinned > caps.memory_total() {
        return Err(Shortfall {
            what: "norms and routers (always resident)".into(),
            needed: pinned,
            available: caps.memory_total(),
            hint: "this machine has too little memory for this model".into(),
        }
        .into());
    }
    let cost = CostModel::new(hw, &units);
    let greedy = greedy::place(&units, &caps).ok_or_else(|| Shortfall {
        what: "norms and routers (always resident)".into(),
        needed: pinned,
        available: caps.memory_total(),
        hint: "they do not pack into the free memory".into(),
    })?;
    let objective = |a: &Assignment| request_time(&cost, &units, a, opts.prompt_len);
    let greedy_objective = objective(&greedy);
    let (assignment, method, status, bounds) = match opts.method {
        Method::Greedy => (greedy.clone(), "greedy", "heuristic", None),
        Method::Ilp => {
            let lp = ilp::lp_bound(&units, &caps, &cost, &opts.ilp, opts.prompt_len)?;
            let start = opts.ilp.warm_start.then_some(&greedy);
            match ilp::solve(&units, &caps, &cost, &opts.ilp, opts.prompt_len, start) {
                Ok(s) if objective(&s.assignment) <= greedy_objective => {
                    (s.assignment, "ilp", s.status, Some((lp, s.bound_s)))
                }
                Ok(s) => (greedy.clone(), "greedy", s.status, Some((lp, s.bound_s))),
                Err(ilp::IlpError::NoSolution(_)) => {
                    (greedy.clone(), "greedy", "time-limit", Some((lp, lp)))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let prediction = cost.predict(&units, &assignment);
    let t = objective(&assignment);
    let plan = build_plan(
        inv,
        hw,
        opts,
        &units,
        &caps,
        &cost,
        &assignment,
        &prediction,
        plan::SolverReport {
            method: method.into(),
            status: status.into(),
            lp_bound_s: bounds.map(|b| b.0.min(t)),
            mip_bound_s: bounds.map(|b| b.1.min(t)),
            objective_s: t,
            gap: bounds.map(|(lp, mip)| ((t - lp.max(mip)) / t).max(0.0)),
            greedy_objective_s: greedy_objective,
        },
    );
    Ok(Solved {
        plan,
        units,
        caps,
        cost,
        assignment,
        greedy,
    })
}

/// The solver's objective, seconds: per-token decode time, plus with a prompt the prefill of
/// `prompt_len` tokens as one batch.
pub fn request_time(cost: &CostModel, units: &Units, a: &Assignment, prompt_len: u64) -> f64 {
    let decode = cost.predict(units, a).token_s;
    if prompt_len == 0 {
        decode
    } else {
        decode + prefill_time(cost, units, a, prompt_len)
    }
}

/// Predicted prefill time of a `prompt_len`-token prompt processed as one batch, seconds.
pub fn prefill_time(cost: &CostModel, units: &Units, a: &Assignment, prompt_len: u64) -> f64 {
    cost.predict_batch(units, a, prompt_len).token_s * prompt_len.max(1) as f64
}

/// The model's identity for plan inputs.
pub fn model_identity(inv: &Inventory) -> plan::ModelIdentity {
    let (name, file_bytes) = match &inv.source {
        Source::File { paths, file_bytes } => (
            paths
                .first()
                .and_then(|p| p.file_name())
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            file_bytes.iter().sum(),
        ),
        Source::Catalog { name, .. } => (name.clone(), inv.total_bytes()),
    };
    // Paths are where the file is, not what it is: hash the rest.
    let canonical = serde_json::json!({ "arch": inv.arch, "tensors": inv.tensors });
    plan::ModelIdentity {
        name,
        file_bytes,
        header_hash: plan::fnv1a_hex(canonical.to_string().as_bytes()),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_plan(
    inv: &Inventory,
    hw: &HwProfile,
    opts: &SolveOptions,
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    a: &Assignment,
    prediction: &Prediction,
    solver: plan::SolverReport,
) -> Plan {
    let mut tensors = BTreeMap::new();
    for (u, &t) in units.units.iter().zip(&a.units) {
        for name in &u.tensors {
            tensors.insert(name.clone(), t);
        }
    }
    let mut experts = Vec::new();
    let (mut cache_bytes, mut served, mut uses) = (0u64, 0.0, 0.0);
    let mut expert_pool = 0u64;
    for (e, s) in units.experts.iter().zip(&a.experts) {
        let n = e.n_expert();
        let (g, m) = (s.gpu as usize, (s.gpu + s.ram) as usize);
        let sorted = |r: std::ops::Range<usize>| {
            let mut ids = e.order[r].to_vec();
            ids.sort_unstable();
            ids
        };
        let p = plan::ExpertPlacement {
            layer: e.layer,
            tensors: e.tensors.clone(),
            expert_bytes: e.expert_bytes,
            gpu: sorted(0..g),
            ram: sorted(g..m),
            nvme: sorted(m..n as usize),
        };
        for (tier, ids) in [
            (Tier::Gpu, &p.gpu),
            (Tier::Ram, &p.ram),
            (Tier::Nvme, &p.nvme),
        ] {
            if ids.len() == n as usize {
                for name in &e.tensors {
                    tensors.insert(name.clone(), tier);
                }
            }
        }
        served += e.cum[m];
        uses += e.total_rate();
        if m < n as usize {
            cache_bytes += e.expert_bytes * m as u64;
            expert_pool = expert_pool.max(e.expert_bytes * units.top_k as u64);
        }
        experts.push(p);
    }
    let mut dense_nvme: BTreeMap<u32, u64> = BTreeMap::new();
    let mut nvme_groups = std::collections::BTreeSet::new();
    for (u, &t) in units.units.iter().zip(&a.units) {
        // A streamed token embedding is one row read per token: it does not change the mode.
        if t == Tier::Nvme && u.group != Group::Embedding {
            nvme_groups.insert(u.group);
        }
        // Dense prefetch and its pool are for whole layers; the embedding is read a row at a time.
        if t == Tier::Nvme && u.group != Group::Embedding {
            *dense_nvme.entry(u.layer.unwrap_or(0)).or_default() += u.bytes;
        }
    }
    let experts_stream = a
        .experts
        .iter()
        .zip(&units.experts)
        .any(|(s, e)| s.gpu + s.ram < e.n_expert());
    let mode = match (nvme_groups.is_empty(), experts_stream) {
        (true, false) => Mode::FullResident,
        (true, true) => Mode::ExpertStreaming,
        (false, false) if nvme_groups.iter().all(|g| *g == Group::DenseFfn) => {
            Mode::DenseFfnStreaming
        }
        _ => Mode::Mixed,
    };
    let prefetch_depth = if dense_nvme.is_empty() {
        0
    } else {
        DENSE_PREFETCH_DEPTH
    };
    let dense_pool = (prefetch_depth as u64 + 1) * dense_nvme.values().copied().max().unwrap_or(0);
    let dense_pool = if dense_nvme.is_empty() { 0 } else { dense_pool };
    let gpu_used = a.bytes_on(units, Tier::Gpu);
    let ram_used = a.bytes_on(units, Tier::Ram);
    Plan {
        version: PLAN_VERSION,
        inputs: plan::Inputs {
            model: model_identity(inv),
            profile_name: hw.name.clone(),
            profile_hash: plan::fnv1a_hex(hw.to_toml().as_bytes()),
            trace_hash: opts.trace_hash.clone(),
            ctx: opts.headroom.ctx,
            kv_type: opts.headroom.kv_type.name().to_string(),
        },
        mode,
        solver,
        capacities: plan::CapacityReport {
            gpu_bytes: caps.gpu,
            ram_bytes: caps.ram,
            unified: caps.unified,
            kv_cache_bytes: caps.kv_cache_bytes,
            compute_buffer_bytes: caps.compute_buffer_bytes,
            gpu_used_bytes: gpu_used,
            ram_used_bytes: ram_used,
            nvme_bytes: a.bytes_on(units, Tier::Nvme),
        },
        tensors,
        experts,
        expert_cache: plan::ExpertCache {
            bytes: cache_bytes,
            policy: "static-frequency".into(),
            hit_rate: if uses > 0.0 { served / uses } else { 1.0 },
        },
        pool_bytes: dense_pool + expert_pool,
        prefetch_depth,
        io: cost.io.clone(),
        prediction: plan::PlanPrediction {
            tok_per_s: prediction.tok_per_s,
            token_s: prediction.token_s,
            layers: prediction.layers.clone(),
            prefill: (opts.prompt_len > 0).then(|| {
                let prefill_s = prefill_time(cost, units, a, opts.prompt_len);
                plan::PrefillPrediction {
                    prompt_len: opts.prompt_len,
                    prefill_s,
                    tok_per_s: if prefill_s > 0.0 {
                        opts.prompt_len as f64 / prefill_s
                    } else {
                        f64::INFINITY
                    },
                }
            }),
        },
    }
}
