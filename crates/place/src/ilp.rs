//! The placement ILP (HiGHS through good_lp): minimise the cost model's per-token time over tier
//! choices. Structure keeps it small: a layer's experts are equal-sized and sorted by use, so
//! their placement is two integers per layer (how many of the most used go to the GPU, how many
//! to GPU or RAM), and the uses those serve — the concave prefix-sum curve of the sorted rates —
//! enter through its few linear pieces (tied rates merge into one piece).
//!
//! Units inside: time in milliseconds and sizes in MB, so coefficients stay moderate and HiGHS's
//! feasibility tolerance (1e-6 of a row's units) on a capacity row is about a byte.

use super::capacity::Capacities;
use super::cost::{CostModel, Device};
use super::units::{Assignment, ExpertLayer, ExpertSplit, Tier, Units};
use good_lp::solvers::highs::highs;
use good_lp::{
    variable, Constraint, Expression, IntoAffineExpression, ProblemVariables, SolverModel,
    Variable, VariableDefinition,
};
use highs::{HighsModelStatus, HighsSolutionStatus, HighsStatus};
use std::collections::BTreeMap;

const MS: f64 = 1e3;
const MB: f64 = 1e-6;
/// HiGHS accepts a capacity row violated by up to its feasibility tolerance (about a byte in
/// MB rows), but a placement must fit to the byte. A solve whose placement overshoots is
/// repeated with the capacities lowered by the overshoot plus this, at most [`CAP_RETRIES`]
/// times.
const CAP_MARGIN_BYTES: f64 = 16.0;
const CAP_RETRIES: u32 = 4;

/// Limits for one ILP solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IlpOptions {
    /// Wall-clock limit for HiGHS, seconds.
    pub time_limit_s: f64,
    /// Relative MIP gap at which HiGHS may stop.
    pub mip_rel_gap: f64,
    /// Start HiGHS from the greedy placement (its first incumbent). Off by default: when the
    /// greedy plan is already within `mip_rel_gap` of the LP bound, HiGHS accepts it and stops,
    /// so the plan is no better than greedy (seen on DeepSeek-V3 on the M1 Max: 0.21% worse).
    pub warm_start: bool,
    /// Only placements predicted faster than this (seconds) are of interest: HiGHS prunes
    /// everything at or above it and reports the model infeasible when nothing is below.
    pub cutoff_s: Option<f64>,
}

impl Default for IlpOptions {
    fn default() -> IlpOptions {
        IlpOptions {
            time_limit_s: 10.0,
            mip_rel_gap: 5e-3,
            warm_start: false,
            cutoff_s: None,
        }
    }
}

/// How weights may stream in one solve: the dense prefetch depth (windows of `depth` layers
/// overlap their dense reads with compute), whether dense weights may stream at all, and
/// whether the global ones (output head) may, whose buffer can exceed a layer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streaming {
    pub depth: u32,
    pub dense: bool,
    pub globals: bool,
}

impl Default for Streaming {
    fn default() -> Streaming {
        Streaming {
            depth: 1,
            dense: true,
            globals: true,
        }
    }
}

/// What the ILP returned.
#[derive(Debug, Clone, PartialEq)]
pub struct IlpSolution {
    pub assignment: Assignment,
    /// The solver's objective, seconds per token.
    pub objective_s: f64,
    /// HiGHS's proven lower bound on the optimum (its MIP dual bound), seconds per token.
    pub bound_s: f64,
    /// `optimal` (within the requested gap) or `time-limit`.
    pub status: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum IlpError {
    #[error("no feasible placement (the units that must stay in memory do not fit)")]
    Infeasible,
    #[error("the ILP found no feasible placement within its {0} s time limit")]
    NoSolution(f64),
    #[error("HiGHS failed: {0}")]
    Solver(#[source] SolverError),
}

/// How the solver failed, other than finding no feasible placement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolverError {
    /// good_lp could not hand the model to HiGHS.
    #[error(transparent)]
    Build(#[from] good_lp::ResolutionError),
    /// HiGHS returned an error status from its solve call.
    #[error("{0:?}")]
    Solve(HighsStatus),
    /// HiGHS stopped with a model status that is neither a solution, a limit nor infeasibility.
    #[error("{0:?}")]
    Status(HighsModelStatus),
    /// Re-solving with the capacities lowered did not bring the placement under them.
    #[error("the placement still exceeds a capacity after {retries} re-solves with it lowered by up to {margin} bytes")]
    CapacityOvershoot { retries: u32, margin: f64 },
}

/// Per-layer linear expressions of device work and NVMe reads.
#[derive(Default)]
struct LinLoad {
    gpu_flops: Expression,
    gpu_bytes: Expression,
    cpu_flops: Expression,
    cpu_bytes: Expression,
    /// CPU FLOPs beyond one use of each weight read (`Work::reuse_flops`).
    cpu_reuse: Expression,
    nvme_dense: Expression,
    nvme_expert: Expression,
    nvme_row: Expression,
}

impl LinLoad {
    fn add(&mut self, on_gpu: bool, flops: f64, bytes: f64, v: impl Into<Expression> + Clone) {
        let (f, b) = if on_gpu {
            (&mut self.gpu_flops, &mut self.gpu_bytes)
        } else {
            (&mut self.cpu_flops, &mut self.cpu_bytes)
        };
        *f += flops * v.clone().into();
        *b += bytes * v.into();
    }

    /// Adds FLOPs and bytes that follow different expressions (batched experts: compute
    /// follows uses, reads follow touches), and the FLOPs that reuse weights.
    fn add_split(&mut self, on_gpu: bool, flops: Expression, bytes: Expression, reuse: Expression) {
        if on_gpu {
            self.gpu_flops += flops;
            self.gpu_bytes += bytes;
        } else {
            self.cpu_flops += flops;
            self.cpu_bytes += bytes;
            self.cpu_reuse += reuse;
        }
    }
}

/// Problem variables that remember their HiGHS column (columns are added in creation order).
struct Vars {
    inner: ProblemVariables,
    n: usize,
}

/// A variable and its column index.
#[derive(Clone, Copy)]
struct Col {
    var: Variable,
    idx: usize,
}

impl Vars {
    fn add(&mut self, d: VariableDefinition) -> Col {
        self.n += 1;
        Col {
            var: self.inner.add(d),
            idx: self.n - 1,
        }
    }
}

struct Model {
    vars: Vars,
    objective: Expression,
    constraints: Vec<Constraint>,
    /// Per unit: the column of each allowed tier.
    x: Vec<Vec<(Tier, usize)>>,
    /// Per expert layer: columns of (experts on GPU, experts on GPU or RAM).
    counts: Vec<(Option<usize>, usize)>,
}

fn tiers_for(streamable: bool, has_gpu: bool) -> Vec<Tier> {
    Tier::ALL
        .into_iter()
        .filter(|&t| has_gpu || t != Tier::Gpu)
        .filter(|&t| streamable || t != Tier::Nvme)
        .collect()
}

/// Linear pieces of a layer's concave use curve `cum`: (start n, value at n, slope), with runs
/// of equal rates merged.
fn pieces(e: &ExpertLayer) -> Vec<(f64, f64, f64)> {
    let mut out: Vec<(f64, f64, f64)> = Vec::new();
    for (n, &id) in e.order.iter().enumerate() {
        let slope = e.rates[id as usize];
        match out.last() {
            Some(&(_, _, s)) if (s - slope).abs() <= 1e-12 * s.abs().max(1.0) => {}
            _ => out.push((n as f64, e.cum[n], slope)),
        }
    }
    out
}

/// The model; with `prompt_len > 0` the objective adds the prefill of that prompt as one batch
/// (weights read once, compute for every token, experts read if any token routes to them).
fn build(
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    relax: bool,
    prompt_len: u64,
    streaming: Streaming,
    margin_bytes: f64,
) -> Model {
    let depth = streaming.depth;
    let has_gpu = cost.gpu.is_some() && caps.gpu.is_some();
    let mut vars = Vars {
        inner: ProblemVariables::new(),
        n: 0,
    };
    let mut constraints = Vec::new();
    let mut loads: BTreeMap<Option<u32>, LinLoad> = BTreeMap::new();
    // Loads of the prefill batch, built alongside the decode loads.
    let mut prefill: BTreeMap<Option<u32>, LinLoad> = BTreeMap::new();
    let batch = prompt_len.max(1) as f64;
    let (mut gpu_used, mut ram_used) = (Expression::default(), Expression::default());
    let mut x = Vec::with_capacity(units.units.len());
    // Per layer with a fixed cost for CPU weights in a GPU plan: 1 when some are placed there.
    let host_cost = has_gpu && cost.host_layer_overhead_s > 0.0;
    let mut host: BTreeMap<Option<u32>, Variable> = BTreeMap::new();
    let mut host_of = |vars: &mut Vars, layer: Option<u32>| {
        *host.entry(layer).or_insert_with(|| {
            vars.add(if relax {
                variable().min(0).max(1)
            } else {
                variable().binary()
            })
            .var
        })
    };
    // Per MoE layer: (experts, experts on GPU or RAM, experts on GPU), for symmetry breaking.
    let mut expert_keys: BTreeMap<u32, (f64, Variable, Option<Variable>)> = BTreeMap::new();
    for u in &units.units {
        let load = loads.entry(u.layer).or_default();
        let mut choice = Expression::default();
        let mut row = Vec::new();
        let dense_ok = streaming.dense && (u.layer.is_some() || streaming.globals);
        let streamable = u.streamable && (dense_ok || u.row_reads());
        for t in tiers_for(streamable, has_gpu) {
            let c = vars.add(if relax {
                variable().min(0).max(1)
            } else {
                variable().binary()
            });
            let v = c.var;
            choice += v;
            load.add(cost.on_gpu(t), u.flops, u.read_bytes, v);
            if prompt_len > 0 {
                let pl = prefill.entry(u.layer).or_default();
                let w = super::cost::batch_work(u, prompt_len);
                pl.add_split(cost.on_gpu(t), w.flops * v, w.bytes * v, w.reuse_flops * v);
                let bytes = w.bytes;
                match t {
                    Tier::Nvme if u.row_reads() => pl.nvme_row += bytes * v,
                    Tier::Nvme => pl.nvme_dense += bytes * v,
                    _ => {}
                }
            }
            match t {
                Tier::Gpu => gpu_used += (u.bytes as f64 * MB) * v,
                Tier::Ram => ram_used += (u.bytes as f64 * MB) * v,
                Tier::Nvme if u.row_reads() => load.nvme_row += u.read_bytes * v,
                Tier::Nvme => load.nvme_dense += u.read_bytes * v,
            }
            if host_cost && !cost.on_gpu(t) {
                let y = host_of(&mut vars, u.layer);
                constraints.push((v - y).leq(0.0));
            }
            row.push((t, c.idx));
        }
        constraints.push(choice.eq(1.0));
        x.push(row);
    }
    let mut counts = Vec::with_capacity(units.experts.len());
    let intensity = max_intensity(units);
    for e in &units.experts {
        let n = e.n_expert() as f64;
        let k = e.total_rate();
        let count = |vars: &mut Vars| {
            let v = variable().min(0).max(n);
            vars.add(if relax { v } else { v.integer() })
        };
        // The use curve's upper envelope is exact at the optimum only when the solver has no
        // reason to count fewer uses than it gives. Otherwise the curve is pinned: filled piece
        // by piece in order (one binary between pieces, none for uniform use). For prefill the
        // counts become one-hot choices, which evaluate the touch curve too.
        let pinned = prompt_len == 0 && !uses_monotone(cost, e, has_gpu, intensity);
        let exact = prompt_len > 0;
        let touch = super::cost::touch_curve(e, prompt_len);
        let m_col = count(&mut vars);
        let m = m_col.var;
        let phi_m = vars.add(variable().min(0).max(k)).var;
        let curve = pieces(e);
        for &(start, value, slope) in &curve {
            constraints.push((phi_m - slope * m).leq(value - slope * start));
        }
        let psi_m = exact.then(|| one_hot(&mut vars, &mut constraints, relax, e, &touch, m, phi_m));
        if pinned {
            pin_curve(&mut vars, &mut constraints, relax, e, &curve, m, phi_m);
        }
        let eb = e.expert_bytes as f64;
        let load = loads.entry(Some(e.layer)).or_default();
        let phi_m_expr = Expression::from(phi_m);
        // Uses served by the NVMe tier: k - phi_m.
        let nvme_uses = k - Expression::from(phi_m);
        load.add(
            cost.on_gpu(Tier::Nvme),
            e.expert_flops,
            eb,
            nvme_uses.clone(),
        );
        load.nvme_expert += eb * nvme_uses;
        let g = if has_gpu {
            // A merged expert tensor lives on one device (llama.cpp cannot split a tensor, and
            // the runtime keeps one with experts off the GPU in host memory): the layer's
            // experts are on the GPU all (g = 1) or none, and then the GPU serves every use.
            let g_col = vars.add(if relax {
                variable().min(0).max(1)
            } else {
                variable().binary()
            });
            let g = g_col.var;
            let phi_g = k * g;
            constraints.push((n * g - m).leq(0.0));
            constraints.push((phi_g.clone() - phi_m).leq(0.0));
            load.add(true, e.expert_flops, eb, phi_g.clone());
            load.add(false, e.expert_flops, eb, phi_m - phi_g.clone());
            gpu_used += (eb * MB * n) * g;
            ram_used += (eb * MB) * (m - n * g);
            if host_cost {
                // The CPU computes the RAM experts, and the NVMe ones unless the GPU does.
                let y = host_of(&mut vars, Some(e.layer));
                let on_cpu = if cost.on_gpu(Tier::Nvme) {
                    m - n * g
                } else {
                    n - n * g
                };
                constraints.push((on_cpu - n * y).leq(0.0));
            }
            // Touched per batch when all are on the GPU: every touch.
            let all = touch.last().copied().unwrap_or(0.0);
            let psi_g = exact.then(|| all * g);
            Some((g_col.idx, g, phi_g, psi_g))
        } else {
            load.add(false, e.expert_flops, eb, phi_m);
            ram_used += (eb * MB) * m;
            None
        };
        if let (true, Some(psi_m)) = (prompt_len > 0, psi_m) {
            // Experts read per prefill batch: the touch curve's prefix sums at the same counts.
            let all = touch.last().copied().unwrap_or(0.0);
            let pl = prefill.entry(Some(e.layer)).or_default();
            // A tier's batch work from its uses per token and experts touched per batch, as
            // `cost::expert_batch_work`: FLOPs, bytes, FLOPs reusing a touched expert.
            let ef = e.expert_flops;
            let mut add = |on_gpu: bool, uses: Expression, touched: Expression| {
                let flops = (batch * ef) * uses;
                let reuse = flops.clone() - ef * touched.clone();
                pl.add_split(on_gpu, flops, eb * touched, reuse);
            };
            let nvme_touch = all - psi_m.clone();
            add(
                cost.on_gpu(Tier::Nvme),
                k - phi_m_expr.clone(),
                nvme_touch.clone(),
            );
            match &g {
                Some((_, _, phi_g, Some(psi_g))) => {
                    add(true, phi_g.clone(), psi_g.clone());
                    add(false, phi_m_expr - phi_g.clone(), psi_m - psi_g.clone());
                }
                _ => add(false, phi_m_expr, psi_m),
            }
            pl.nvme_expert += eb * nvme_touch;
        }
        expert_keys.insert(e.layer, (n, m, g.as_ref().map(|&(_, v, _, _)| v)));
        let g = g.map(|(idx, _, _, _)| idx);
        counts.push((g, m_col.idx));
    }
    if depth <= 1 {
        break_layer_symmetry(units, &expert_keys, &mut constraints);
    }
    let cap_mb = |bytes: u64| (bytes as f64 - margin_bytes).max(0.0) * MB;
    if has_gpu {
        constraints.push(gpu_used.clone().leq(cap_mb(caps.gpu.unwrap_or(0))));
    }
    let ram_cap = cap_mb(caps.ram);
    if caps.unified {
        constraints.push((gpu_used + ram_used).leq(ram_cap));
    } else {
        constraints.push(ram_used.leq(ram_cap));
    }
    let mut objective = Expression::default();
    let dense_ms = MS / (cost.io.dense_gbps * 1e9);
    for pass in [loads, prefill] {
        let keys: Vec<Option<u32>> = pass.keys().copied().collect();
        let loads: Vec<LinLoad> = pass.into_values().collect();
        let mut compute_of = Vec::with_capacity(loads.len());
        let mut dense_of = Vec::with_capacity(loads.len());
        for (&layer, load) in keys.iter().zip(loads) {
            let (mut compute, dense) = layer_terms(
                &mut vars,
                &mut constraints,
                cost,
                has_gpu,
                (layer, load),
                &mut objective,
            );
            if let Some(&y) = host.get(&layer) {
                compute += (MS * cost.host_layer_overhead_s) * y;
            }
            compute_of.push(compute);
            dense_of.push(dense);
        }
        for w in super::cost::windows(&keys, depth) {
            let compute: Expression = w.clone().map(|i| compute_of[i].clone()).sum();
            let dense: Expression = w.map(|i| dense_of[i].clone()).sum();
            if depth == 0 {
                objective += compute + dense_ms * dense;
            } else {
                let t = vars.add(variable().min(0)).var;
                constraints.push(compute.leq(t));
                constraints.push((dense_ms * dense).leq(t));
                objective += t;
            }
        }
    }
    Model {
        vars,
        objective,
        constraints,
        x,
        counts,
    }
}

/// Makes `count` (0..=n experts in memory, or on the GPU) a one-hot choice: `phi` becomes
/// exactly the use curve at `count`; returns the touch curve at `count`.
fn one_hot(
    vars: &mut Vars,
    cons: &mut Vec<Constraint>,
    relax: bool,
    e: &ExpertLayer,
    touch: &[f64],
    count: Variable,
    phi: Variable,
) -> Expression {
    let (mut one, mut at, mut uses, mut touched) = (
        Expression::default(),
        Expression::default(),
        Expression::default(),
        Expression::default(),
    );
    for (j, (&c, &t)) in e.cum.iter().zip(touch).enumerate() {
        let z = vars
            .add(if relax {
                variable().min(0).max(1)
            } else {
                variable().binary()
            })
            .var;
        one += z;
        at += j as f64 * z;
        uses += c * z;
        touched += t * z;
    }
    cons.push(one.eq(1.0));
    cons.push((count - at).eq(0.0));
    cons.push((phi - uses).eq(0.0));
    touched
}

/// Makes `phi` exactly the use curve at `count` (not only below it): the curve's pieces fill
/// in order, piece j+1 only once piece j is full (a binary between consecutive pieces), and
/// `count` and `phi` are the filled lengths and the uses they serve.
fn pin_curve(
    vars: &mut Vars,
    cons: &mut Vec<Constraint>,
    relax: bool,
    e: &ExpertLayer,
    curve: &[(f64, f64, f64)],
    count: Variable,
    phi: Variable,
) {
    let n = e.n_expert() as f64;
    let (mut filled, mut uses) = (Expression::default(), Expression::default());
    let mut previous: Option<(Variable, f64)> = None;
    for (j, &(start, _, slope)) in curve.iter().enumerate() {
        let end = curve.get(j + 1).map_or(n, |p| p.0);
        let len = end - start;
        let fill = vars.add(variable().min(0).max(len)).var;
        if let Some((before, before_len)) = previous {
            // `full` is 1 only when the piece before is full; only then may this one fill.
            let full = vars
                .add(if relax {
                    variable().min(0).max(1)
                } else {
                    variable().binary()
                })
                .var;
            cons.push((before_len * full - before).leq(0.0));
            cons.push((fill - len * full).leq(0.0));
        }
        filled += fill;
        uses += slope * fill;
        previous = Some((fill, len));
    }
    cons.push((count - filled).eq(0.0));
    cons.push((phi - uses).eq(0.0));
}

/// Whether serving one more use of `e`'s experts from a faster tier (GPU before RAM, memory
/// before NVMe) never predicts slower in a decode step. A device's roofline grows by at most
/// the larger of a use's FLOP and byte times and shrinks by at least the smaller; by exactly
/// the byte time when no work in the model (`max_intensity`: FLOPs per byte read) could make
/// the device FLOP-bound. So it holds when the faster tier's largest addition is no more than
/// the slower tier's smallest saving. It fails, for one, on a GPU whose bandwidth is low next
/// to the FLOPs of a CPU that some work keeps FLOP-bound.
fn uses_monotone(cost: &CostModel, e: &ExpertLayer, has_gpu: bool, max_intensity: f64) -> bool {
    let (f, b) = (e.expert_flops, e.expert_bytes as f64);
    let device = |t: Tier| match (cost.on_gpu(t), cost.gpu) {
        (true, Some(g)) => g,
        _ => cost.cpu,
    };
    let memory_bound = |d: Device| max_intensity <= d.flops_per_s / d.bytes_per_s;
    let most = |d: Device| (f / d.flops_per_s).max(b / d.bytes_per_s);
    let least = |d: Device| {
        if memory_bound(d) {
            b / d.bytes_per_s
        } else {
            (f / d.flops_per_s).min(b / d.bytes_per_s)
        }
    };
    let (ram, nvme) = (device(Tier::Ram), device(Tier::Nvme));
    let read = b / (cost.io.expert_gbps * 1e9);
    let memory_first = ram == nvme || most(ram) <= read + least(nvme);
    let gpu_first = !has_gpu || {
        let gpu = device(Tier::Gpu);
        gpu == ram || most(gpu) <= least(ram)
    };
    memory_first && gpu_first
}

/// The most FLOPs per byte read of any unit or expert in a decode step.
fn max_intensity(units: &Units) -> f64 {
    let dense = units
        .units
        .iter()
        .filter(|u| u.read_bytes > 0.0)
        .map(|u| u.flops / u.read_bytes);
    let experts = units
        .experts
        .iter()
        .filter(|e| e.expert_bytes > 0)
        .map(|e| e.expert_flops / e.expert_bytes as f64);
    dense.chain(experts).fold(0.0, f64::max)
}

/// A layer's compute time (GPU then CPU rooflines) and its dense NVMe bytes; its serial reads
/// (expert misses, embedding rows) go straight into `objective`.
fn layer_terms(
    vars: &mut Vars,
    constraints: &mut Vec<Constraint>,
    cost: &CostModel,
    has_gpu: bool,
    (layer, load): (Option<u32>, LinLoad),
    objective: &mut Expression,
) -> (Expression, Expression) {
    let roofline = |vars: &mut Vars,
                    cons: &mut Vec<Constraint>,
                    d: Device,
                    flops: Expression,
                    bytes: Expression| {
        let y = vars.add(variable().min(0)).var;
        cons.push(((MS / d.flops_per_s) * flops).leq(y));
        cons.push(((MS / d.bytes_per_s) * bytes).leq(y));
        y
    };
    let mut compute = Expression::default();
    if let (true, Some(gpu)) = (has_gpu, cost.gpu) {
        compute += roofline(vars, constraints, gpu, load.gpu_flops, load.gpu_bytes);
    }
    let cpu = cost.cpu;
    let y = roofline(
        vars,
        constraints,
        cpu,
        load.cpu_flops,
        load.cpu_bytes.clone(),
    );
    // Reused weights' compute follows the CPU's weight stream (`Device::cpu_time`).
    let stream_then_reuse =
        (MS / cpu.bytes_per_s) * load.cpu_bytes + (MS / cpu.flops_per_s) * load.cpu_reuse;
    constraints.push(stream_then_reuse.leq(y));
    compute += y;
    compute += MS * cost.overhead_s(layer);
    *objective += (MS / (cost.io.expert_gbps * 1e9)) * load.nvme_expert;
    *objective += (MS / (cost.io.row_gbps * 1e9)) * load.nvme_row;
    (compute, load.nvme_dense)
}

/// Interchangeable MoE layers (same units, sizes, work and expert use curve) can be permuted
/// without changing the objective when every layer is priced on its own (prefetch depth 0 or
/// 1), so only placements whose key (experts in memory, experts on the GPU; lexicographic)
/// does not increase along each class are kept. This removes the B&B's search over which of
/// 32 equal Mixtral layers gets one expert more (Mixtral on the M1 Max: MIP 4x faster). The
/// same ordering over dense layers' unit tiers found better plans but solved 3x slower, so
/// dense layers are left alone.
fn break_layer_symmetry(
    units: &Units,
    expert_keys: &BTreeMap<u32, (f64, Variable, Option<Variable>)>,
    constraints: &mut Vec<Constraint>,
) {
    let mut classes: BTreeMap<Vec<u64>, Vec<u32>> = BTreeMap::new();
    for &l in expert_keys.keys() {
        let mut sig = Vec::new();
        for u in units.units.iter().filter(|u| u.layer == Some(l)) {
            sig.extend([
                u.group as u64,
                u.bytes,
                u.read_bytes.to_bits(),
                u.flops.to_bits(),
                u64::from(u.streamable),
            ]);
        }
        if let Some(e) = units.experts.iter().find(|e| e.layer == l) {
            sig.extend([u64::MAX, e.expert_bytes, e.expert_flops.to_bits()]);
            sig.extend(e.cum.iter().map(|c| c.to_bits()));
        }
        classes.entry(sig).or_default().push(l);
    }
    let key = |l: u32| -> Option<Expression> {
        let &(n, m, g) = expert_keys.get(&l)?;
        Some((n + 1.0) * m + g.map_or_else(Expression::default, Expression::from))
    };
    for layers in classes.values() {
        for pair in layers.windows(2) {
            if let (Some(a), Some(b)) = (key(pair[0]), key(pair[1])) {
                constraints.push(a.geq(b));
            }
        }
    }
}

/// Layer buffers the pool needs for dense prefetch at `depth`: one (read, then compute) for 0,
/// else the window being computed and the one being read.
pub fn dense_buffers(depth: u32) -> u64 {
    if depth == 0 {
        1
    } else {
        2 * depth as u64
    }
}

/// A solved model: column values, objective and proven bound (seconds per token).
struct Run {
    cols: Vec<f64>,
    objective_s: f64,
    bound_s: f64,
    optimal: bool,
}

/// The integer columns of a known placement, for HiGHS to complete (it fixes them and solves
/// the LP) into a first incumbent.
fn start_columns(model: &Model, a: &Assignment) -> Vec<(usize, f64)> {
    let mut out = Vec::new();
    for (row, &tier) in model.x.iter().zip(&a.units) {
        out.extend(
            row.iter()
                .map(|&(t, c)| (c, if t == tier { 1.0 } else { 0.0 })),
        );
    }
    for (&(g, m), s) in model.counts.iter().zip(&a.experts) {
        out.push((m, (s.gpu + s.ram) as f64));
        if let Some(g) = g {
            // The layer's experts on the GPU, all or none.
            out.push((g, if s.gpu > 0 { 1.0 } else { 0.0 }));
        }
    }
    out
}

/// Hands HiGHS a partial primal solution; a rejected start only costs the warm start.
fn set_start(m: &mut highs::Model, start: &[(usize, f64)]) {
    let Ok(n) = highs_sys::HighsInt::try_from(start.len()) else {
        return;
    };
    let index: Vec<highs_sys::HighsInt> = start
        .iter()
        .filter_map(|&(c, _)| highs_sys::HighsInt::try_from(c).ok())
        .collect();
    let value: Vec<f64> = start.iter().map(|&(_, v)| v).collect();
    if index.len() != value.len() {
        return;
    }
    // SAFETY: `m` is a live HiGHS instance; both arrays hold `n` entries and outlive the call,
    // which copies them.
    unsafe {
        highs_sys::Highs_setSparseSolution(m.as_mut_ptr(), n, index.as_ptr(), value.as_ptr());
    }
}

fn run(
    model: Model,
    opts: &IlpOptions,
    mip: bool,
    start: &[(usize, f64)],
) -> Result<Run, IlpError> {
    // good_lp hands HiGHS only the linear part of the objective, but HiGHS's relative gap must
    // see the whole of it: the constant rides on a variable fixed at 1.
    let mut vars = model.vars;
    let offset = model.objective.constant();
    let one = vars.add(variable().min(1).max(1)).var;
    let objective = model.objective - offset + offset * one;
    let mut problem = vars.inner.minimise(objective).using(highs);
    for c in model.constraints {
        problem.add_constraint(c);
    }
    let mut m = problem
        .try_into_inner()
        .map_err(|e| IlpError::Solver(e.into()))?;
    m.set_option("time_limit", opts.time_limit_s);
    m.set_option("mip_rel_gap", opts.mip_rel_gap);
    // One thread: plans must be deterministic.
    m.set_option("threads", 1);
    if !start.is_empty() {
        set_start(&mut m, start);
    }
    if let (true, Some(cutoff)) = (mip, opts.cutoff_s) {
        m.set_option("objective_bound", cutoff * MS);
    }
    let solved = m
        .try_solve()
        .map_err(|e| IlpError::Solver(SolverError::Solve(e)))?;
    let optimal = match solved.status() {
        HighsModelStatus::Optimal => true,
        HighsModelStatus::ReachedTimeLimit | HighsModelStatus::ReachedIterationLimit => false,
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            return Err(IlpError::Infeasible)
        }
        other => return Err(IlpError::Solver(SolverError::Status(other))),
    };
    if solved.primal_solution_status() != HighsSolutionStatus::Feasible {
        return Err(IlpError::NoSolution(opts.time_limit_s));
    }
    let objective = solved.objective_value();
    let bound = if mip {
        solved
            .double_info_value(c"mip_dual_bound")
            .unwrap_or(f64::NEG_INFINITY)
    } else {
        objective
    };
    Ok(Run {
        cols: solved.get_solution().columns().to_vec(),
        objective_s: objective / MS,
        bound_s: bound / MS,
        optimal,
    })
}

/// Optimum of the LP relaxation, seconds per token: a lower bound on every placement's
/// predicted time under the cost model (dense prefetch depth 1).
pub fn lp_bound(
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    opts: &IlpOptions,
    prompt_len: u64,
) -> Result<f64, IlpError> {
    lp_bound_with(units, caps, cost, opts, prompt_len, Streaming::default())
}

/// [`lp_bound`] for one streaming configuration.
pub fn lp_bound_with(
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    opts: &IlpOptions,
    prompt_len: u64,
    streaming: Streaming,
) -> Result<f64, IlpError> {
    let model = build(units, caps, cost, true, prompt_len, streaming, 0.0);
    let r = run(model, opts, false, &[])?;
    if !r.optimal {
        return Err(IlpError::NoSolution(opts.time_limit_s));
    }
    Ok(r.objective_s)
}

/// Solves the ILP (dense prefetch depth 1) and decodes the placement.
pub fn solve(
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    opts: &IlpOptions,
    prompt_len: u64,
    start: Option<&Assignment>,
) -> Result<IlpSolution, IlpError> {
    solve_with(
        units,
        caps,
        cost,
        opts,
        prompt_len,
        start,
        Streaming::default(),
    )
}

/// [`solve`] for one streaming configuration (`caps` must already hold its pool).
pub fn solve_with(
    units: &Units,
    caps: &Capacities,
    cost: &CostModel,
    opts: &IlpOptions,
    prompt_len: u64,
    start: Option<&Assignment>,
    streaming: Streaming,
) -> Result<IlpSolution, IlpError> {
    let mut margin = 0.0;
    for _ in 0..=CAP_RETRIES {
        let model = build(units, caps, cost, false, prompt_len, streaming, margin);
        let (x, counts) = (model.x.clone(), model.counts.clone());
        let start = start.map_or_else(Vec::new, |a| start_columns(&model, a));
        let r = run(model, opts, true, &start)?;
        let solution = decode(units, &x, &counts, &r);
        match overshoot(units, caps, &solution.assignment) {
            0 => return Ok(solution),
            over => margin += over as f64 + CAP_MARGIN_BYTES,
        }
    }
    Err(IlpError::Solver(SolverError::CapacityOvershoot {
        retries: CAP_RETRIES,
        margin,
    }))
}

/// Reads the placement out of a solved model's columns.
fn decode(
    units: &Units,
    x: &[Vec<(Tier, usize)>],
    counts: &[(Option<usize>, usize)],
    r: &Run,
) -> IlpSolution {
    let tiers = x
        .iter()
        .map(|row| {
            row.iter()
                .max_by(|a, b| r.cols[a.1].total_cmp(&r.cols[b.1]))
                .map_or(Tier::Nvme, |&(t, _)| t)
        })
        .collect();
    let experts = counts
        .iter()
        .zip(&units.experts)
        .map(|(&(g, m), e)| {
            let m = (r.cols[m].round().max(0.0) as u32).min(e.n_expert());
            // All of the layer's experts on the GPU, or none.
            let g = g.map_or(0, |g| if r.cols[g] > 0.5 { m } else { 0 });
            ExpertSplit { gpu: g, ram: m - g }
        })
        .collect();
    IlpSolution {
        assignment: Assignment {
            units: tiers,
            experts,
        },
        objective_s: r.objective_s,
        bound_s: r.bound_s,
        status: if r.optimal { "optimal" } else { "time-limit" },
    }
}

/// Bytes by which `a` exceeds the tighter of its capacities; 0 when it fits.
fn overshoot(units: &Units, caps: &Capacities, a: &Assignment) -> u64 {
    let gpu = a.bytes_on(units, Tier::Gpu);
    let ram = a.bytes_on(units, Tier::Ram);
    let memory = if caps.unified { gpu + ram } else { ram };
    let gpu_over = gpu.saturating_sub(caps.gpu.unwrap_or(0));
    gpu_over.max(memory.saturating_sub(caps.ram))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rates: Vec<f64>) -> ExpertLayer {
        let (order, cum) = crate::units::sort_by_use(&rates);
        ExpertLayer {
            layer: 0,
            expert_bytes: 1,
            expert_flops: 1.0,
            slice_bytes: 1,
            rates,
            order,
            cum,
            tensors: vec![],
            slices: None,
        }
    }

    #[test]
    fn tied_rates_merge_into_one_piece() {
        assert_eq!(pieces(&layer(vec![0.25; 8])), vec![(0.0, 0.0, 0.25)]);
        let p = pieces(&layer(vec![0.1, 0.5, 0.5, 0.1, 0.8]));
        assert_eq!(p, vec![(0.0, 0.0, 0.8), (1.0, 0.8, 0.5), (3.0, 1.8, 0.1)]);
    }

    #[test]
    fn pieces_envelope_the_prefix_sums() {
        let e = layer(vec![0.3, 0.05, 0.9, 0.2, 0.2, 0.35]);
        let p = pieces(&e);
        for n in 0..=e.rates.len() {
            let env = p
                .iter()
                .map(|&(s, v, k)| v + k * (n as f64 - s))
                .fold(f64::INFINITY, f64::min);
            assert!(
                (env - e.cum[n]).abs() < 1e-12,
                "n={n}: {env} vs {}",
                e.cum[n]
            );
        }
    }
}
