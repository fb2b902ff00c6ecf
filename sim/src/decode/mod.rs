//! Decode simulation: token by token and layer by layer, compute time from the solver's cost
//! model and routed-expert misses from a cache policy, read serially after the router.
//!
//! Every layer of a token is priced by [`CostModel::layer_time`], the function the solver's
//! prediction sums, with that token's actual expert uses in place of the expected ones: a hit on
//! an expert the plan puts on the GPU is computed there, any other hit from RAM, and a miss is a
//! read of one expert (at the plan's expert request size and bandwidth) plus its compute on the
//! device that computes streamed weights. Layers whose experts are all resident always hit; only
//! the layers where the plan streams experts go through the cache policy, which holds
//! `cache_bytes` of their experts.

mod report;

pub use report::{DecodeReport, LayerReport};

use crate::cache::{self, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use crate::error::SimError;
use solver::place::cost::{CostModel, LayerLoad};
use solver::place::plan::ExpertPlacement;
use solver::place::{Tier, Units};
use std::collections::BTreeMap;
use traces::{TokenExtras, Trace, TraceBuilder};

/// Which experts are in memory when a token is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodePolicy {
    /// The plan's own cache: its GPU and RAM experts, loaded at start and never evicted (the
    /// solver's static-frequency assumption).
    Static,
    /// A cache policy over the streaming layers' experts, starting empty.
    Cache { policy: Policy, capacity_bytes: u64 },
}

impl DecodePolicy {
    pub fn name(&self) -> &'static str {
        match self {
            DecodePolicy::Static => "static",
            DecodePolicy::Cache { policy, .. } => policy.name(),
        }
    }
}

/// A placement as the simulator needs it: the solver's units and cost model, each unit's tier,
/// and which expert ids of every MoE layer the plan keeps on the GPU and in RAM.
pub struct Placement<'a> {
    pub units: &'a Units,
    pub unit_tiers: &'a [Tier],
    pub experts: &'a [ExpertPlacement],
    pub cost: &'a CostModel,
}

/// One MoE layer of the trace, resolved against the placement.
struct MoeLayer {
    layer: u32,
    expert_bytes: u64,
    expert_flops: f64,
    /// Tier of each expert id in the plan.
    tier: Vec<Tier>,
    streams: bool,
}

/// Simulates decoding every token of `trace` on `placement` with `policy`.
pub fn simulate(
    placement: &Placement<'_>,
    trace: &Trace,
    policy: &DecodePolicy,
) -> Result<DecodeReport, SimError> {
    let layers = resolve_layers(placement, trace)?;
    let hits = expert_hits(&layers, trace, policy)?;
    let base = base_loads(placement)?;
    let cost = placement.cost;
    // Layers without routed experts cost the same every token.
    let fixed: Vec<_> = base
        .iter()
        .filter(|(l, _)| !layers.iter().any(|m| Some(m.layer) == **l))
        .map(|(l, load)| cost.layer_time(*l, load))
        .collect();
    let fixed_compute: f64 = fixed.iter().map(|t| t.gpu_s + t.cpu_s).sum();
    let fixed_total: f64 = fixed.iter().map(|t| t.total_s).sum();
    let fixed_bytes: f64 = base
        .iter()
        .filter(|(l, _)| !layers.iter().any(|m| Some(m.layer) == **l))
        .map(|(_, load)| nvme_bytes(load))
        .sum();
    let k = trace.model().top_k as usize;
    let mut acc = report::Accumulator::new(&layers.iter().map(|m| m.layer).collect::<Vec<_>>());
    for token in 0..trace.n_tokens() {
        let (mut compute, mut total, mut bytes) = (fixed_compute, fixed_total, fixed_bytes);
        for (pos, m) in layers.iter().enumerate() {
            let mut load = base.get(&Some(m.layer)).copied().unwrap_or_default();
            let first = (token * layers.len() + pos) * k;
            let mut layer_hits = 0u64;
            for (i, &e) in trace.selection(token, pos).iter().enumerate() {
                let hit = hits[first + i];
                let tier = match (hit, m.tier[e as usize]) {
                    (true, Tier::Gpu) => Tier::Gpu,
                    (true, _) => Tier::Ram,
                    (false, _) => Tier::Nvme,
                };
                layer_hits += u64::from(hit);
                let work = if cost.on_gpu(tier) {
                    &mut load.gpu
                } else {
                    &mut load.cpu
                };
                work.flops += m.expert_flops;
                work.bytes += m.expert_bytes as f64;
                if tier == Tier::Nvme {
                    load.nvme_expert_bytes += m.expert_bytes as f64;
                }
            }
            let t = cost.layer_time(Some(m.layer), &load);
            compute += t.gpu_s + t.cpu_s;
            total += t.total_s;
            bytes += nvme_bytes(&load);
            acc.layer(pos, layer_hits, k as u64, load.nvme_expert_bytes);
        }
        acc.token(total, compute, bytes);
    }
    Ok(acc.finish(policy.name(), cache_bytes(&layers, policy)))
}

fn nvme_bytes(load: &LayerLoad) -> f64 {
    load.nvme_dense_bytes + load.nvme_expert_bytes + load.nvme_row_bytes
}

/// Bytes of streaming-layer experts the policy keeps in memory.
fn cache_bytes(layers: &[MoeLayer], policy: &DecodePolicy) -> u64 {
    match policy {
        DecodePolicy::Static => layers
            .iter()
            .filter(|m| m.streams)
            .map(|m| m.expert_bytes * m.tier.iter().filter(|t| **t != Tier::Nvme).count() as u64)
            .sum(),
        DecodePolicy::Cache { capacity_bytes, .. } => *capacity_bytes,
    }
}

fn resolve_layers(p: &Placement<'_>, trace: &Trace) -> Result<Vec<MoeLayer>, SimError> {
    let m = trace.model();
    if m.top_k != p.units.top_k {
        return Err(SimError::new(format!(
            "the trace selects top-{} experts but the model routes top-{}; use a trace of this model",
            m.top_k, p.units.top_k
        )));
    }
    let plan_layers: Vec<u32> = p.experts.iter().map(|e| e.layer).collect();
    if m.moe_layers != plan_layers {
        return Err(SimError::new(format!(
            "the trace has MoE layers {:?} but the plan has {:?}; use a trace of this model",
            m.moe_layers, plan_layers
        )));
    }
    p.experts
        .iter()
        .map(|e| {
            let unit = p
                .units
                .experts
                .iter()
                .find(|u| u.layer == e.layer)
                .ok_or_else(|| {
                    SimError::new(format!(
                        "the plan places experts of layer {} but the model has none there",
                        e.layer
                    ))
                })?;
            if unit.n_expert() != m.n_expert {
                return Err(SimError::new(format!(
                    "layer {}: the trace has {} experts, the model {}; use a trace of this model",
                    e.layer,
                    m.n_expert,
                    unit.n_expert()
                )));
            }
            let mut tier = vec![Tier::Nvme; m.n_expert as usize];
            for (t, ids) in [(Tier::Gpu, &e.gpu), (Tier::Ram, &e.ram)] {
                for &id in ids {
                    let slot = tier.get_mut(id as usize).ok_or_else(|| {
                        SimError::new(format!(
                            "plan: layer {}: expert id {id} is out of range (the model has {})",
                            e.layer, m.n_expert
                        ))
                    })?;
                    *slot = t;
                }
            }
            Ok(MoeLayer {
                layer: e.layer,
                expert_bytes: unit.expert_bytes,
                expert_flops: unit.expert_flops,
                streams: tier.contains(&Tier::Nvme),
                tier,
            })
        })
        .collect()
}

/// Per-layer work of everything but routed experts, as the solver's prediction groups it.
fn base_loads(p: &Placement<'_>) -> Result<BTreeMap<Option<u32>, LayerLoad>, SimError> {
    if p.unit_tiers.len() != p.units.units.len() {
        return Err(SimError::new(format!(
            "{} unit tiers for {} units",
            p.unit_tiers.len(),
            p.units.units.len()
        )));
    }
    let mut loads: BTreeMap<Option<u32>, LayerLoad> = BTreeMap::new();
    for (u, &tier) in p.units.units.iter().zip(p.unit_tiers) {
        let load = loads.entry(u.layer).or_default();
        let work = if p.cost.on_gpu(tier) {
            &mut load.gpu
        } else {
            &mut load.cpu
        };
        work.flops += u.flops;
        work.bytes += u.read_bytes;
        if tier == Tier::Nvme && u.row_reads() {
            load.nvme_row_bytes += u.read_bytes;
        } else if tier == Tier::Nvme {
            load.nvme_dense_bytes += u.read_bytes;
        }
    }
    for e in &p.units.experts {
        loads.entry(Some(e.layer)).or_default();
    }
    Ok(loads)
}

/// Whether each expert access of the trace hits, in stored order.
fn expert_hits(
    layers: &[MoeLayer],
    trace: &Trace,
    policy: &DecodePolicy,
) -> Result<Vec<bool>, SimError> {
    let k = trace.model().top_k as usize;
    let resident: Vec<bool> = trace
        .expert_ids()
        .iter()
        .enumerate()
        .map(|(i, &e)| layers[(i / k) % layers.len()].tier[e as usize] != Tier::Nvme)
        .collect();
    let (policy, capacity_bytes) = match policy {
        DecodePolicy::Static => return Ok(resident),
        DecodePolicy::Cache {
            policy,
            capacity_bytes,
        } => (policy, *capacity_bytes),
    };
    let streaming: Vec<usize> = (0..layers.len()).filter(|&l| layers[l].streams).collect();
    if streaming.is_empty() {
        return Ok(resident);
    }
    let sub = select_layers(trace, &streaming)?;
    let sizes: Vec<u64> = streaming.iter().map(|&l| layers[l].expert_bytes).collect();
    // The plan's resident experts of the streaming layers (pinned-lru's hot set).
    let hot: Vec<(usize, u16)> = streaming
        .iter()
        .enumerate()
        .flat_map(|(pos, &l)| {
            layers[l]
                .tier
                .iter()
                .enumerate()
                .filter(|(_, t)| **t != Tier::Nvme)
                .map(move |(e, _)| (pos, e as u16))
        })
        .collect();
    let hot_bytes: u64 = hot.iter().map(|&(pos, _)| sizes[pos]).sum();
    // One cache shared by the streaming layers, like the runtime's pool. Quantisation mixes
    // may give layers different expert sizes: the capacity in experts is then the bytes over
    // the mean size, and never fewer than the hot set when the bytes hold it.
    let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    let mut slots = (capacity_bytes as f64 / mean).floor() as u64;
    if capacity_bytes >= hot_bytes {
        slots = slots.max(hot.len() as u64);
    }
    let policy = match policy {
        Policy::PinnedLru(_) => Policy::PinnedLru(HotSet(hot)),
        p => p.clone(),
    };
    let config = CacheConfig {
        policy,
        partition: Partition::Global,
        capacity: Capacity::Experts(slots),
    };
    let (_, sub_hits) = cache::replay_hits(&sub, &config, &ExpertBytes::per_layer_sizes(sizes)?)?;
    let mut hits = resident;
    let per_token = streaming.len() * k;
    for token in 0..trace.n_tokens() {
        for (pos, &l) in streaming.iter().enumerate() {
            let dst = (token * layers.len() + l) * k;
            let src = token * per_token + pos * k;
            hits[dst..dst + k].copy_from_slice(&sub_hits[src..src + k]);
        }
    }
    Ok(hits)
}

/// The trace restricted to the MoE layers at `positions` (same sequences and tokens).
fn select_layers(trace: &Trace, positions: &[usize]) -> Result<Trace, SimError> {
    let mut model = trace.model().clone();
    model.moe_layers = positions.iter().map(|&p| model.moe_layers[p]).collect();
    let mut b = TraceBuilder::new(model).map_err(SimError::new)?;
    let mut ids = Vec::new();
    for seq in trace.sequences() {
        b.begin_sequence(seq.id).map_err(SimError::new)?;
        for token in seq.tokens {
            ids.clear();
            for &p in positions {
                ids.extend_from_slice(trace.selection(token, p));
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(SimError::new)?;
        }
        b.end_sequence().map_err(SimError::new)?;
    }
    b.finish().map_err(SimError::new)
}

/// The first `n` tokens of `trace` (all when it has fewer), keeping sequence boundaries.
pub fn first_tokens(trace: &Trace, n: usize) -> Result<Trace, SimError> {
    if n >= trace.n_tokens() {
        return Ok(trace.clone());
    }
    let mut b = TraceBuilder::new(trace.model().clone()).map_err(SimError::new)?;
    let all: Vec<usize> = (0..trace.model().n_layers()).collect();
    let mut ids = Vec::new();
    for seq in trace.sequences() {
        let end = seq.tokens.end.min(n);
        if seq.tokens.start >= end {
            break;
        }
        b.begin_sequence(seq.id).map_err(SimError::new)?;
        for token in seq.tokens.start..end {
            ids.clear();
            for &p in &all {
                ids.extend_from_slice(trace.selection(token, p));
            }
            b.push_token(&ids, TokenExtras::default())
                .map_err(SimError::new)?;
        }
        b.end_sequence().map_err(SimError::new)?;
    }
    b.finish().map_err(SimError::new)
}

/// Expert uses per token at each MoE layer, from the trace's selection counts: the rates a plan
/// for this trace is solved with.
pub fn expert_rates(trace: &Trace) -> solver::place::ExpertRates {
    let m = trace.model();
    let mut counts: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (l, &layer) in m.moe_layers.iter().enumerate() {
        let mut c = vec![0u64; m.n_expert as usize];
        for token in 0..trace.n_tokens() {
            for &e in trace.selection(token, l) {
                c[e as usize] += 1;
            }
        }
        counts.insert(layer, c);
    }
    solver::place::ExpertRates::from_counts(counts, trace.n_tokens() as u64)
}
