//! The routing-independent part of every (token, layer) step: each layer's work before and after
//! routing on each device, and the storage requests of its streamed dense weights and embedding
//! rows, from the plan's tiers.

use super::{reads, Machine, MoeLayer, Options, Placement};
use crate::error::SimError;
use model::Group;
use place::cost::{batch_work, CostModel, LayerLoad, Work};
use place::Tier;

/// Work of one phase of a step on each device, and the host-memory bytes that must cross the
/// host->GPU link before it (only when host weights are computed on a discrete GPU).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Phase {
    pub gpu: Work,
    pub cpu: Work,
    pub link_bytes: f64,
}

impl Phase {
    pub(crate) fn add(&mut self, other: &Phase) {
        self.gpu.add(other.gpu);
        self.cpu.add(other.cpu);
        self.link_bytes += other.link_bytes;
    }
}

/// One layer (or the globals, `layer` None) as every token runs it.
#[derive(Debug, Clone)]
pub(crate) struct LayerSteps {
    pub layer: Option<u32>,
    /// Attention, norms and router: what runs before the routed experts are known.
    pub pre: Phase,
    /// Everything else but routed experts (dense FFN, shared experts, output head, ...).
    pub post: Phase,
    /// Requests (bytes transferred) of this layer's streamed dense weights.
    pub dense_reads: Vec<u64>,
    /// Requests of the embedding rows read per token (after sampling: on demand).
    pub row_reads: Vec<u64>,
    /// Position of the layer's routed experts in the trace, if it has any.
    pub moe: Option<usize>,
    /// Some of the layer's weights (its units or routed experts) are computed by the CPU.
    pub cpu_weights: bool,
}

/// Where the work of weights on `tier` runs, as the cost model decides, unless host weights are
/// sent over the link to a discrete GPU.
pub(crate) fn place_work(
    cost: &CostModel,
    machine: &Machine,
    opts: &Options,
    tier: Tier,
    w: Work,
) -> Phase {
    let mut p = Phase::default();
    if linked(cost, machine, opts, tier) {
        p.link_bytes = w.bytes;
    }
    if on_cpu(cost, machine, opts, tier) {
        p.cpu = w;
    } else {
        p.gpu = w;
    }
    p
}

/// Whether weights on `tier` cross the host link to be computed by a discrete GPU.
fn linked(cost: &CostModel, machine: &Machine, opts: &Options, tier: Tier) -> bool {
    opts.host_weights_on_gpu && cost.gpu.is_some() && !machine.unified && tier != Tier::Gpu
}

/// Whether the CPU computes weights on `tier`.
pub(crate) fn on_cpu(cost: &CostModel, machine: &Machine, opts: &Options, tier: Tier) -> bool {
    !(linked(cost, machine, opts, tier) || cost.on_gpu(tier))
}

/// The step list of one forward pass over `tokens` tokens (1 for a decode step, a prefill
/// batch's size otherwise): globals first, then every transformer layer in order. Work is the
/// solver's [`batch_work`]; streamed dense weights are read once, embedding rows once per token.
pub(crate) fn build(
    p: &Placement<'_>,
    machine: &Machine,
    opts: &Options,
    moe: &[MoeLayer],
    tokens: u64,
) -> Result<Vec<LayerSteps>, SimError> {
    let request = hw::direct::request_size(p.cost.io.dense_block_bytes);
    if p.unit_tiers.len() != p.units.units.len() {
        return Err(SimError::UnitTiers {
            tiers: p.unit_tiers.len(),
            units: p.units.units.len(),
        });
    }
    let mut layers: Vec<LayerSteps> = std::iter::once(None)
        .chain((0..p.units.n_layer).map(Some))
        .map(|layer| LayerSteps {
            layer,
            pre: Phase::default(),
            post: Phase::default(),
            dense_reads: Vec::new(),
            row_reads: Vec::new(),
            moe: moe.iter().position(|m| Some(m.layer) == layer),
            cpu_weights: false,
        })
        .collect();
    for m in moe {
        if m.layer >= p.units.n_layer {
            return Err(SimError::LayerBeyond {
                layer: m.layer,
                n_layer: p.units.n_layer,
            });
        }
    }
    for (u, &tier) in p.units.units.iter().zip(p.unit_tiers) {
        let idx = match u.layer {
            None => 0,
            Some(l) if l < p.units.n_layer => l as usize + 1,
            Some(l) => {
                return Err(SimError::UnitBeyond {
                    unit: u.name.clone(),
                    layer: l,
                    n_layer: p.units.n_layer,
                })
            }
        };
        let step = &mut layers[idx];
        step.cpu_weights |= on_cpu(p.cost, machine, opts, tier);
        let w = batch_work(u, tokens);
        let work = place_work(p.cost, machine, opts, tier, w);
        match u.group {
            Group::Attention | Group::Norm | Group::Router => step.pre.add(&work),
            _ => step.post.add(&work),
        }
        if tier == Tier::Nvme {
            // As the runtime reads them (see `reads`): a streamed unit's tensors once per
            // step, embedding rows once per token.
            if u.row_reads() {
                for _ in 0..tokens.max(1) {
                    reads::rows(u, &mut step.row_reads);
                }
            } else {
                reads::unit(u, request, &mut step.dense_reads);
            }
        }
    }
    for m in moe {
        let step = &mut layers[m.layer as usize + 1];
        step.cpu_weights |= m.tier.iter().any(|&t| on_cpu(p.cost, machine, opts, t));
    }
    Ok(layers)
}

/// Seconds of compute of `gpu` and `cpu` work, priced by the solver's cost model;
/// `cpu_weights`: the CPU computes some of the layer's weights (a fixed cost in a GPU plan).
pub(crate) fn compute_s(
    cost: &CostModel,
    layer: Option<u32>,
    gpu: Work,
    cpu: Work,
    cpu_weights: bool,
) -> f64 {
    let t = cost.layer_time(
        layer,
        &LayerLoad {
            gpu,
            cpu,
            cpu_weights,
            ..LayerLoad::default()
        },
    );
    t.gpu_s + t.cpu_s
}

/// Whether a phase has CPU work (its share of the layer's fixed cost for CPU weights is then
/// paid by the phase).
pub(crate) fn has_cpu_work(p: &Phase) -> bool {
    p.cpu.bytes > 0.0 || p.cpu.flops > 0.0
}

/// Seconds the phase would take if only memory traffic counted (for bus sharing).
pub(crate) fn memory_s(cost: &CostModel, gpu: Work, cpu: Work) -> f64 {
    cost.gpu.map_or(0.0, |g| gpu.bytes / g.bytes_per_s) + cpu.bytes / cost.cpu.bytes_per_s
}
