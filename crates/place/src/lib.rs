//! Placement: which tier (GPU, RAM, NVMe) every tensor lives on, how large the streaming pool
//! and expert cache are, how deep to prefetch, and the predicted decode speed — the [`Plan`].
//!
//! Pipeline: [`units`] groups the inventory into placement units, [`capacity`] sizes the tiers,
//! [`cost`] predicts time, [`greedy`] and [`ilp`] choose tiers, [`polish`] moves what the ILP
//! left streaming into free memory, the `plan` crate's types hold the result and [`explain`]
//! says why.
//!
//! This is the only crate that links HiGHS. It reads no tensor data and runs nothing: the
//! simulator and the runtime apply the plans it writes.

pub mod capacity;
pub mod cost;
pub mod explain;
pub mod greedy;
pub mod ilp;
pub mod polish;
pub mod units;

pub use capacity::{Capacities, Headroom, HeadroomTier, Short, Shortfall};
pub use cost::{CostModel, LayerTime, Prediction};
pub use ilp::IlpOptions;
pub use plan::{Mode, Plan, PlanError, TensorPlace, PLAN_VERSION};
pub use units::{Assignment, ExpertRates, ExpertSplit, RatesError, Tier, Units};

use hw::HwProfile;
use model::inventory::Inventory;
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
    #[error(transparent)]
    Rates(#[from] units::RatesError),
    #[error(transparent)]
    Ilp(#[from] ilp::IlpError),
    #[error("the model has no tensor data to place (0 bytes of weights)")]
    NoWeights,
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

/// Dense prefetch depths the ILP chooses among (layers read ahead of compute; see
/// [`cost::windows`]). Powers of two, so deeper windows nest and never predict slower for the
/// same placement; the first is solved first and wins ties.
pub const PREFETCH_DEPTHS: [u32; 5] = [1, 0, 2, 4, 8];

/// Whether `a` streams any dense (non-expert, non-embedding-row) weights: only then does the
/// prefetch depth matter.
fn streams_dense(units: &Units, a: &Assignment) -> bool {
    units
        .units
        .iter()
        .zip(&a.units)
        .any(|(u, &t)| t == Tier::Nvme && !u.row_reads())
}

/// Solves the placement of `inv` on `hw`.
pub fn solve(inv: &Inventory, hw: &HwProfile, opts: &SolveOptions) -> Result<Solved, PlaceError> {
    let mut units = Units::build(inv, opts.rates.as_ref()).map_err(PlaceError::Rates)?;
    if units.total_bytes() == 0 {
        return Err(PlaceError::NoWeights);
    }
    let h = &opts.headroom;
    units.add_context_reads(&inv.arch, h.ctx, h.kv_type);
    let caps = Capacities::new(hw, &inv.arch, h)?;
    let configs = pool_configs(&units, &caps)?;
    // Greedy (the baseline) always takes the rule-based pool: depth 1, dense may stream (the
    // output head too, unless the baseline keeps it resident).
    let (baseline, greedy_caps) = &configs[0];
    let pinned = units.pinned_bytes()
        + if baseline.globals {
            0
        } else {
            units
                .units
                .iter()
                .filter(|u| u.layer.is_none() && u.streamable)
                .map(|u| u.bytes)
                .sum()
        };
    if pinned > greedy_caps.memory_total() {
        return Err(Shortfall {
            short: Short::Pinned,
            needed: pinned,
            available: greedy_caps.memory_total(),
        }
        .into());
    }
    // Weights stream exactly when they do not all fit (see `pool_configs`).
    let cost = CostModel::new(hw, &units, units.total_bytes() > caps.memory_total());
    let greedy = greedy::place(&units, greedy_caps, baseline.globals).ok_or(Shortfall {
        short: Short::PinnedPacking,
        needed: pinned,
        available: greedy_caps.memory_total(),
    })?;
    let objective =
        |a: &Assignment, depth: u32| request_time_depth(&cost, &units, a, opts.prompt_len, depth);
    let greedy_objective = objective(&greedy, 1);
    let (mut assignment, config, method, status, bounds) = match opts.method {
        Method::Greedy => (greedy.clone(), 0, "greedy", "heuristic", None),
        Method::Ilp => solve_ilp(&units, &configs, &cost, opts, &greedy, &objective)?,
    };
    let (streaming, plan_caps) = &configs[config];
    if method == "ilp" {
        polish::into_free_memory(&units, plan_caps, &mut assignment, &|a| {
            objective(a, streaming.depth)
        });
    }
    let depth = if streams_dense(&units, &assignment) {
        streaming.depth
    } else {
        0
    };
    let prediction = cost.predict_depth(&units, &assignment, depth);
    let t = objective(&assignment, depth);
    let plan = build_plan(
        inv,
        hw,
        opts,
        &units,
        plan_caps,
        &cost,
        &assignment,
        depth,
        &prediction,
        plan::SolverReport {
            method: method.into(),
            status: status.into(),
            lp_bound_s: bounds.map(|b| b.0),
            mip_bound_s: bounds.map(|b| b.1),
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

/// The streaming configurations the ILP chooses among, each with its pool taken out of RAM;
/// the first is the greedy baseline's. Everything fits: no pool. Otherwise top-k buffers for
/// the largest expert layer's misses (MoE), plus for dense streaming at prefetch depth `d`
/// [`ilp::dense_buffers`]`(d)` copies of the largest streamable dense layer; and, for MoE
/// models, experts streaming alone with no dense buffers. Configurations whose pool does not
/// fit are left out.
fn pool_configs(
    units: &Units,
    caps: &Capacities,
) -> Result<Vec<(ilp::Streaming, Capacities)>, Shortfall> {
    if units.total_bytes() <= caps.memory_total() {
        // No pool: nothing may stream (dense weights streamed with nowhere to land would be a
        // plan the runtime cannot run).
        let resident = ilp::Streaming {
            depth: 0,
            dense: false,
            globals: false,
        };
        return Ok(vec![(resident, caps.clone())]);
    }
    let mut dense: BTreeMap<Option<u32>, u64> = BTreeMap::new();
    for u in units
        .units
        .iter()
        .filter(|u| u.streamable && !u.row_reads())
    {
        *dense.entry(u.layer).or_default() += u.bytes;
    }
    let layer_max = dense
        .iter()
        .filter(|(l, _)| l.is_some())
        .map(|(_, &b)| b)
        .max()
        .unwrap_or(0);
    let globals = dense.get(&None).copied().unwrap_or(0);
    let expert_max = units
        .experts
        .iter()
        .map(|e| e.expert_bytes * units.top_k as u64)
        .max()
        .unwrap_or(0);
    let dense_pool = |depth: u32, dense_max: u64| ilp::dense_buffers(depth) * dense_max;
    // The baseline's pool first: its error is the one reported when nothing fits. An output
    // head larger than a layer sizes the buffers; when those do not fit, the baseline keeps
    // the head resident instead (a small model's tied 168 MB head next to 10 MB layers).
    let baseline = match caps.with_pool(dense_pool(1, layer_max.max(globals)) + expert_max) {
        Ok(c) => (ilp::Streaming::default(), c),
        Err(e) if globals > layer_max => {
            let head_resident = ilp::Streaming {
                depth: 1,
                dense: true,
                globals: false,
            };
            match caps.with_pool(dense_pool(1, layer_max) + expert_max) {
                Ok(c) => (head_resident, c),
                Err(_) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let mut out = vec![baseline];
    let mut candidates = Vec::new();
    if !units.experts.is_empty() {
        let experts_only = ilp::Streaming {
            depth: 0,
            dense: false,
            globals: false,
        };
        candidates.push((experts_only, expert_max));
    }
    // An output head larger than a layer would size every buffer: these keep it resident.
    let globals_fit = globals <= layer_max;
    for depth in PREFETCH_DEPTHS {
        if depth > units.n_layer.max(1) || (depth == 1 && globals_fit) {
            continue;
        }
        let s = ilp::Streaming {
            depth,
            dense: true,
            globals: globals_fit,
        };
        candidates.push((s, dense_pool(depth, layer_max) + expert_max));
    }
    for (s, pool) in candidates {
        if s == out[0].0 {
            continue;
        }
        if let Ok(c) = caps.with_pool(pool) {
            out.push((s, c));
        }
    }
    Ok(out)
}

/// What the ILP path chose: placement, configuration index, method, status, (LP bound, MIP
/// bound).
type IlpChoice = (
    Assignment,
    usize,
    &'static str,
    &'static str,
    Option<(f64, f64)>,
);

/// The ILP over every streaming configuration: one is solved only when its LP relaxation could
/// beat the best plan so far by more than the gap tolerance, so the bounds (the smallest over
/// configurations) hold for the whole decision space.
fn solve_ilp(
    units: &Units,
    configs: &[(ilp::Streaming, Capacities)],
    cost: &CostModel,
    opts: &SolveOptions,
    greedy: &Assignment,
    objective: &dyn Fn(&Assignment, u32) -> f64,
) -> Result<IlpChoice, PlaceError> {
    let mut best = (greedy.clone(), 0, "greedy", "time-limit");
    let mut best_t = objective(greedy, 1);
    // HiGHS may refuse a model it finds numerically unsound (extreme but valid profile
    // values); the greedy plan then stands, and the status says why.
    let mut solver_failed = false;
    // Every configuration's LP bound first, then the MIPs best bound first, so that the
    // first good plan prunes the rest.
    let mut bounds = Vec::with_capacity(configs.len());
    for (i, (streaming, caps)) in configs.iter().enumerate() {
        match ilp::lp_bound_with(units, caps, cost, &opts.ilp, opts.prompt_len, *streaming) {
            Ok(lp) => bounds.push((lp, i)),
            // The configuration's pool leaves too little for what must stay resident.
            Err(ilp::IlpError::Infeasible) if i > 0 => {}
            Err(ilp::IlpError::Solver(_)) => solver_failed = true,
            Err(e) => return Err(e.into()),
        }
    }
    // Experts streaming alone has no dense binaries and solves fastest: its plan, when there
    // is one, is the first incumbent.
    let key = |i: usize| !(configs[i].0.dense);
    bounds.sort_by(|a, b| {
        key(b.1)
            .cmp(&key(a.1))
            .then(a.0.total_cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    let lp_min = bounds.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
    let mut mip_min = f64::INFINITY;
    for (lp, i) in bounds {
        let (streaming, caps) = &configs[i];
        if best.2 == "ilp" && lp >= best_t * (1.0 - opts.ilp.mip_rel_gap) {
            mip_min = mip_min.min(lp);
            continue;
        }
        let start = (opts.ilp.warm_start && i == 0).then_some(greedy);
        // Prune what cannot beat the best plan so far (greedy's: by any margin; an ILP plan's:
        // by more than the gap tolerance).
        let cutoff = if best.2 == "ilp" {
            best_t * (1.0 - opts.ilp.mip_rel_gap)
        } else {
            best_t * (1.0 + 1e-9)
        };
        let ilp_opts = IlpOptions {
            cutoff_s: Some(cutoff),
            ..opts.ilp
        };
        let r = ilp::solve_with(
            units,
            caps,
            cost,
            &ilp_opts,
            opts.prompt_len,
            start,
            *streaming,
        );
        match r {
            Ok(s) => {
                mip_min = mip_min.min(s.bound_s);
                let t = objective(&s.assignment, streaming.depth);
                if t < best_t || (best.2 == "greedy" && t <= best_t) {
                    best = (s.assignment, i, "ilp", s.status);
                    best_t = t;
                } else if best.2 == "greedy" {
                    best.3 = s.status;
                }
            }
            Err(ilp::IlpError::NoSolution(_)) => mip_min = mip_min.min(lp),
            // Nothing below the cutoff: that is this configuration's bound.
            Err(ilp::IlpError::Infeasible) => mip_min = mip_min.min(cutoff.max(lp)),
            Err(ilp::IlpError::Solver(_)) => {
                solver_failed = true;
                mip_min = mip_min.min(lp);
            }
        }
    }
    let (a, config, method, mut status) = best;
    if solver_failed && method == "greedy" {
        status = "solver-failed";
    }
    // Without any bound (every configuration's relaxation failed) there is no gap to report.
    let bounds = lp_min.is_finite().then_some((lp_min, mip_min));
    Ok((a, config, method, status, bounds))
}

/// The solver's objective, seconds: per-token decode time, plus with a prompt the prefill of
/// `prompt_len` tokens as one batch (dense prefetch depth 1).
pub fn request_time(cost: &CostModel, units: &Units, a: &Assignment, prompt_len: u64) -> f64 {
    request_time_depth(cost, units, a, prompt_len, 1)
}

/// [`request_time`] with dense reads prefetched `depth` layers ahead.
pub fn request_time_depth(
    cost: &CostModel,
    units: &Units,
    a: &Assignment,
    prompt_len: u64,
    depth: u32,
) -> f64 {
    let decode = cost.predict_depth(units, a, depth).token_s;
    if prompt_len == 0 {
        decode
    } else {
        decode + prefill_time_depth(cost, units, a, prompt_len, depth)
    }
}

/// Predicted prefill time of a `prompt_len`-token prompt processed as one batch, seconds.
pub fn prefill_time(cost: &CostModel, units: &Units, a: &Assignment, prompt_len: u64) -> f64 {
    prefill_time_depth(cost, units, a, prompt_len, 1)
}

/// [`prefill_time`] with dense reads prefetched `depth` layers ahead.
pub fn prefill_time_depth(
    cost: &CostModel,
    units: &Units,
    a: &Assignment,
    prompt_len: u64,
    depth: u32,
) -> f64 {
    cost.predict_batch_depth(units, a, prompt_len, depth)
        .token_s
        * prompt_len.max(1) as f64
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
    prefetch_depth: u32,
    prediction: &Prediction,
    solver: plan::SolverReport,
) -> Plan {
    let mut tensors = BTreeMap::new();
    for (u, &t) in units.units.iter().zip(&a.units) {
        for name in &u.tensors {
            tensors.insert(name.clone(), t.into());
        }
    }
    let mut experts = Vec::new();
    let (mut cache_bytes, mut served, mut uses) = (0u64, 0.0, 0.0);
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
        let whole = [
            (Tier::Gpu, &p.gpu),
            (Tier::Ram, &p.ram),
            (Tier::Nvme, &p.nvme),
        ]
        .into_iter()
        .find(|(_, ids)| ids.len() == n as usize);
        let place = whole.map_or(plan::TensorPlace::Split { layer: e.layer }, |(t, _)| {
            t.into()
        });
        for name in &e.tensors {
            tensors.insert(name.clone(), place);
        }
        served += e.cum[m];
        uses += e.total_rate();
        if m < n as usize {
            cache_bytes += e.expert_bytes * m as u64;
        }
        experts.push(p);
    }
    let nvme_groups = units
        .units
        .iter()
        .zip(&a.units)
        .filter(|(_, &t)| t == Tier::Nvme)
        .map(|(u, _)| u.group)
        .collect();
    let experts_stream = a
        .experts
        .iter()
        .zip(&units.experts)
        .any(|(s, e)| s.gpu + s.ram < e.n_expert());
    let mode = plan::mode_of(&nvme_groups, experts_stream);
    let pool = caps.pool_reserve_bytes;
    let gpu_used = a.bytes_on(units, Tier::Gpu);
    let ram_used = a.bytes_on(units, Tier::Ram);
    Plan {
        version: PLAN_VERSION,
        inputs: plan::Inputs {
            model: plan::ModelIdentity::of(inv),
            profile_name: hw.name.clone(),
            profile_hash: plan::profile_hash(hw),
            profile: Some(hw.clone()),
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
        pool_bytes: pool,
        prefetch_depth,
        io: cost.io.clone(),
        prediction: plan::PlanPrediction {
            tok_per_s: prediction.tok_per_s,
            token_s: prediction.token_s,
            layers: prediction.layers.clone(),
            prefill: (opts.prompt_len > 0).then(|| {
                let prefill_s = prefill_time_depth(cost, units, a, opts.prompt_len, prefetch_depth);
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
