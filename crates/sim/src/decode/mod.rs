//! Decode simulation: token by token and layer by layer on the event-driven engine, with compute
//! times from the solver's cost model, routed-expert hits from a cache policy, and reads on a
//! storage device with the profile's bandwidth curve, queue depth and base latency.
//!
//! [`simulate`] resolves the plan against the trace, replays the cache policy over the trace's
//! expert accesses (hits do not depend on timing: prefetched experts land in the plan's staging
//! pool, not the cache), and runs [`engine`]. Every step is priced by the cost model's per-device
//! work pricing ([`CostModel::layer_time`] without its I/O terms): a hit on an expert the plan
//! puts on the GPU is computed there, any other hit from RAM, and a miss on the device that
//! computes streamed weights, after its reads have landed. Layers whose experts are all resident
//! always hit; only the layers where the plan streams experts go through the cache policy, which
//! holds `cache_bytes` of their experts.
//!
//! Where the engine and the solver's analytic prediction coincide: the plan's static cache, no
//! expert prefetch, dense prefetch depth 1 with no dense weights streamed, and a storage curve
//! that is flat (the same GB/s at every block size and queue depth) with reads longer than the
//! base latency. Then every layer costs compute plus its misses' bytes over the bandwidth, which
//! is the solver's `layer_time` with the token's actual expert use (tests/decode.rs checks it).

mod engine;
pub(crate) mod reads;
mod report;
mod residency;
pub(crate) mod steps;

pub use policy::prefetch::{Coactivation, ExpertPrefetch};
pub use report::{DecodeReport, LayerReport};
pub(crate) use residency::Residency;

use crate::dense::DenseReads;
use crate::error::SimError;
use crate::events::StorageDevice;
use hw::{HwProfile, StorageProfile};
use metrics::{RunInfo, Summary, TokenLayerRecord};
use place::cost::CostModel;
use place::{Tier, Units};
use plan::ExpertPlacement;
use policy::cache::{self, CacheConfig, Capacity, ExpertBytes, HotSet, Partition, Policy};
use std::collections::BTreeMap;
use traces::{TokenExtras, Trace, TraceBuilder};

/// Which experts are in memory when a token is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodePolicy {
    /// The plan's own cache: its GPU and RAM experts, loaded at start and never evicted (the
    /// solver's static-frequency assumption).
    Static,
    /// A cache policy over the streaming layers' experts, starting empty: one cache shared by
    /// them (`Partition::Global`, like the runtime's), or one per layer with an equal byte share.
    Cache {
        policy: Policy,
        capacity_bytes: u64,
        partition: Partition,
    },
}

impl DecodePolicy {
    /// The policy's name as metrics write it: `lru`, or `lru/per-layer` when partitioned.
    pub fn name(&self) -> String {
        match self {
            DecodePolicy::Static => "static".into(),
            DecodePolicy::Cache {
                policy,
                partition: Partition::Global,
                ..
            } => policy.name().into(),
            DecodePolicy::Cache {
                policy,
                partition: Partition::PerLayer,
                ..
            } => format!("{}/per-layer", policy.name()),
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
    /// The pool streamed whole tensors share (the plan's `pool_bytes`; the expert cache is
    /// apart): what it
    /// keeps across tokens is not read again. None: every step reads all its streamed tensors.
    pub dense_pool_bytes: Option<u64>,
}

/// What the engine needs of the machine beyond the cost model: the storage device and the
/// host->GPU link.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub storage: StorageProfile,
    /// Pinned host->device copy bandwidth, bytes/s (discrete GPUs only).
    pub h2d_bytes_per_s: Option<f64>,
    /// GPU and CPU share one memory: no copies, but storage DMA takes memory bandwidth.
    pub unified: bool,
}

impl Machine {
    pub fn from_profile(hw: &HwProfile) -> Machine {
        Machine {
            storage: hw.storage.clone(),
            h2d_bytes_per_s: hw.host_link.as_ref().map(|l| l.h2d_gbps * 1e9),
            unified: hw.gpu.as_ref().is_some_and(|g| g.unified_memory),
        }
    }
}

/// How the run is driven.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Steps (layers) ahead that streamed dense weights are read; 0 reads them on demand.
    pub prefetch_depth: u32,
    pub expert_prefetch: ExpertPrefetch,
    /// Requests in flight on the storage device (default: the plan's larger queue depth).
    pub queue_depth: Option<u32>,
    /// Compute RAM- and NVMe-tier weights on a discrete GPU, copying them over the host link
    /// first (what llama.cpp does for large batches), instead of on the CPU.
    pub host_weights_on_gpu: bool,
    /// Return every (token, layer) record in the run's `records`; without it they are
    /// summarised as they are made and dropped, so memory does not grow with tokens × layers.
    pub keep_records: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            prefetch_depth: 1,
            expert_prefetch: ExpertPrefetch::None,
            queue_depth: None,
            host_weights_on_gpu: false,
            keep_records: true,
        }
    }
}

/// A simulated decode: one record per (token, layer) step, globals (`layer` None: embedding row
/// and output head) first in every token; their [`Summary`] (what a reader of the records file
/// computes: `run.model` is the trace's architecture and `run.plan_hash` None, for the caller
/// to fill in), and the report, which takes its numbers from that summary.
#[derive(Debug, Clone)]
pub struct DecodeRun {
    pub report: DecodeReport,
    pub summary: Summary,
    pub records: Vec<TokenLayerRecord>,
}

/// One MoE layer of the trace, resolved against the placement.
pub(crate) struct MoeLayer {
    pub layer: u32,
    pub expert_bytes: u64,
    pub expert_flops: f64,
    /// Largest per-tensor slice: the request size of an expert read without file positions.
    pub slice_bytes: u64,
    /// Where the experts lie in the model's files (see [`reads::experts`]).
    pub slices: Option<Vec<place::units::Slices>>,
    /// The size reads are split into.
    pub request_bytes: u64,
    /// Tier of each expert id in the plan.
    pub tier: Vec<Tier>,
    pub streams: bool,
}

/// Simulates decoding every token of `trace` on `placement` and `machine` with `policy`.
pub fn simulate(
    placement: &Placement<'_>,
    machine: &Machine,
    trace: &Trace,
    policy: &DecodePolicy,
    opts: &Options,
) -> Result<DecodeRun, SimError> {
    replay(placement, trace, policy)?.simulate(placement, machine, trace, opts)
}

/// A decode's expert hits under one policy, replayed once: hits do not depend on timing, so
/// runs that differ only in how they are driven (expert prefetch, dense prefetch depth, queue
/// depth) share them. A sweep replays each (policy, cache bytes, partition) once.
pub struct Replayed {
    policy: DecodePolicy,
    moe: Vec<MoeLayer>,
    hits: Vec<bool>,
}

/// Replays `policy` over the expert accesses of `trace` on `placement`.
pub fn replay(
    placement: &Placement<'_>,
    trace: &Trace,
    policy: &DecodePolicy,
) -> Result<Replayed, SimError> {
    let moe = resolve_layers(placement, trace)?;
    let hits = expert_hits(&moe, trace, policy)?;
    Ok(Replayed {
        policy: policy.clone(),
        moe,
        hits,
    })
}

impl Replayed {
    /// The policy the hits were replayed with.
    pub fn policy(&self) -> &DecodePolicy {
        &self.policy
    }

    /// Routed-expert accesses that hit, over all MoE layers (1 when there are none).
    pub fn hit_rate(&self) -> f64 {
        if self.hits.is_empty() {
            return 1.0;
        }
        self.hits.iter().filter(|&&h| h).count() as f64 / self.hits.len() as f64
    }

    /// [`simulate`] with these hits; `placement` and `trace` must be the ones replayed.
    pub fn simulate(
        &self,
        placement: &Placement<'_>,
        machine: &Machine,
        trace: &Trace,
        opts: &Options,
    ) -> Result<DecodeRun, SimError> {
        check_options(machine, opts)?;
        let residency = decode_residency(&self.moe, trace, &self.policy, opts)?;
        simulate_with_hits(
            placement,
            machine,
            trace,
            &self.policy,
            opts,
            &self.moe,
            &self.hits,
            residency,
            0,
        )
    }
}

/// Options the machine cannot run.
pub(crate) fn check_options(machine: &Machine, opts: &Options) -> Result<(), SimError> {
    if opts.host_weights_on_gpu && machine.h2d_bytes_per_s.is_none() && !machine.unified {
        return Err(SimError::NoHostLink);
    }
    Ok(())
}

/// [`simulate`] with the hits already known (parallel to the trace's expert ids): the decode
/// after a prefill of `prefill_passes` batches, whose cache state the hits carry (and, for
/// co-activation prefetch under a cache policy, `residency`, positioned after the prefill).
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate_with_hits(
    placement: &Placement<'_>,
    machine: &Machine,
    trace: &Trace,
    policy: &DecodePolicy,
    opts: &Options,
    moe: &[MoeLayer],
    hits: &[bool],
    residency: Option<Residency>,
    prefill_passes: usize,
) -> Result<DecodeRun, SimError> {
    let layers = steps::build(placement, machine, opts, moe, 1)?;
    let dense = DenseReads::of_run(
        placement,
        opts.prefetch_depth,
        prefill_passes,
        trace.n_tokens(),
    )?;
    let storage = storage_device(placement, machine, opts)?;
    let inputs = engine::Inputs {
        placement,
        machine,
        opts,
        policy,
        moe,
        layers: &layers,
        dense: dense.as_ref(),
        trace,
        hits,
    };
    let out = engine::run(&inputs, storage, residency);
    let run = RunInfo {
        source: "sim".to_string(),
        model: trace.model().architecture.clone(),
        plan_hash: None,
        policy: policy.name(),
        cache_bytes: cache_bytes(moe, policy),
    };
    let summary = out.summary.finish(run);
    debug_assert_eq!(summary.bytes_read, out.bytes_read);
    let moe_layers: Vec<u32> = moe.iter().map(|m| m.layer).collect();
    let report = DecodeReport::from_summary(&summary, &moe_layers, out.prefetch_wasted_bytes, opts);
    Ok(DecodeRun {
        report,
        summary,
        records: out.records,
    })
}

/// The storage device the run reads from: the profile's curve and latency floor, at the
/// options' queue depth (default: the plan's larger one).
pub(crate) fn storage_device(
    placement: &Placement<'_>,
    machine: &Machine,
    opts: &Options,
) -> Result<StorageDevice, SimError> {
    let queue_depth = queue_depth(placement, opts);
    let latency_ns = (machine.storage.read_4k_qd1_latency_s * 1e9).round() as u64;
    StorageDevice::new(&machine.storage, queue_depth, latency_ns, &[])
}

/// `opts` with every option that cannot change `placement`'s decode set to one value, so that
/// runs with equal effective options give equal reports (but for the options they echo): the
/// dense prefetch depth when no whole tensor streams (it only times dense reads), and queue
/// depth and expert prefetch too when nothing at all is read from storage.
pub fn effective_options(placement: &Placement<'_>, opts: &Options) -> Options {
    let p = placement;
    // Routed experts are not units: a unit on NVMe is a streamed whole tensor.
    let dense = p.unit_tiers.contains(&Tier::Nvme);
    // As `resolve_layers` reads a plan: an expert id on neither the GPU nor RAM streams.
    let experts = p.experts.iter().any(|e| {
        let n = p
            .units
            .experts
            .iter()
            .find(|u| u.layer == e.layer)
            .map_or(0, |u| u.n_expert() as usize);
        e.gpu.len() + e.ram.len() < n
    });
    let mut out = opts.clone();
    if !dense {
        out.prefetch_depth = 0;
        if !experts {
            out.queue_depth = Some(1);
            out.expert_prefetch = ExpertPrefetch::None;
        }
    }
    out
}

/// Storage requests in flight: the options', else the plan's larger queue depth.
pub fn queue_depth(placement: &Placement<'_>, opts: &Options) -> u32 {
    let io = &placement.cost.io;
    opts.queue_depth
        .unwrap_or(io.queue_depth.max(io.expert_queue_depth))
}

/// Bytes of streaming-layer experts the policy keeps in memory.
pub(crate) fn cache_bytes(layers: &[MoeLayer], policy: &DecodePolicy) -> u64 {
    match policy {
        DecodePolicy::Static => layers
            .iter()
            .filter(|m| m.streams)
            .map(|m| m.expert_bytes * m.tier.iter().filter(|t| **t != Tier::Nvme).count() as u64)
            .sum(),
        DecodePolicy::Cache { capacity_bytes, .. } => *capacity_bytes,
    }
}

pub(crate) fn resolve_layers(p: &Placement<'_>, trace: &Trace) -> Result<Vec<MoeLayer>, SimError> {
    let m = trace.model();
    if m.top_k != p.units.top_k {
        return Err(SimError::TopK {
            trace: m.top_k,
            model: p.units.top_k,
        });
    }
    let plan_layers: Vec<u32> = p.experts.iter().map(|e| e.layer).collect();
    let request_bytes = hw::direct::request_size(p.cost.io.dense_block_bytes);
    if m.moe_layers != plan_layers {
        return Err(SimError::MoeLayers {
            trace: m.moe_layers.clone(),
            plan: plan_layers,
        });
    }
    p.experts
        .iter()
        .map(|e| {
            let unit = p
                .units
                .experts
                .iter()
                .find(|u| u.layer == e.layer)
                .ok_or(SimError::NoExpertsAt { layer: e.layer })?;
            if unit.n_expert() != m.n_expert {
                return Err(SimError::ExpertCount {
                    layer: e.layer,
                    trace: m.n_expert,
                    model: unit.n_expert(),
                });
            }
            let mut tier = vec![Tier::Nvme; m.n_expert as usize];
            for (t, ids) in [(Tier::Gpu, &e.gpu), (Tier::Ram, &e.ram)] {
                for &id in ids {
                    let slot = tier
                        .get_mut(id as usize)
                        .ok_or(SimError::ExpertOutOfRange {
                            layer: e.layer,
                            id,
                            n_expert: m.n_expert,
                        })?;
                    *slot = t;
                }
            }
            // A merged expert tensor lives on one device: with any expert off the GPU the
            // runtime keeps it in host memory, the plan's GPU experts with it.
            if tier.iter().any(|&t| t != Tier::Gpu) {
                for t in tier.iter_mut().filter(|t| **t == Tier::Gpu) {
                    *t = Tier::Ram;
                }
            }
            Ok(MoeLayer {
                layer: e.layer,
                expert_bytes: unit.expert_bytes,
                expert_flops: unit.expert_flops,
                slice_bytes: unit.slice_bytes,
                slices: unit.slices.clone(),
                request_bytes,
                streams: tier.contains(&Tier::Nvme),
                tier,
            })
        })
        .collect()
}

/// The cache a policy keeps over the experts of the streaming layers: one cache shared by them,
/// like the runtime's pool.
pub(crate) struct StreamingCache {
    /// MoE positions of the layers that stream experts.
    pub streaming: Vec<usize>,
    /// Expert size of each streaming layer.
    pub sizes: Vec<u64>,
    /// Capacity in experts (slots of one expert of one streaming layer).
    pub slots: u64,
    /// The policy, pinned-lru's hot set filled with the plan's resident experts of the
    /// streaming layers, as `(position among the streaming layers, expert id)`.
    pub policy: Policy,
}

impl StreamingCache {
    /// None when no layer streams experts (every access then hits).
    pub(crate) fn new(
        layers: &[MoeLayer],
        policy: &Policy,
        capacity_bytes: u64,
    ) -> Option<StreamingCache> {
        let streaming: Vec<usize> = (0..layers.len()).filter(|&l| layers[l].streams).collect();
        if streaming.is_empty() {
            return None;
        }
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
        // Quantisation mixes may give layers different expert sizes: the capacity in experts
        // is then the bytes over the mean size, and never fewer than the hot set when the
        // bytes hold it.
        let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
        let mut slots = (capacity_bytes as f64 / mean).floor() as u64;
        if capacity_bytes >= hot_bytes {
            slots = slots.max(hot.len() as u64);
        }
        let policy = match policy {
            Policy::PinnedLru(_) => Policy::PinnedLru(HotSet(hot)),
            p => p.clone(),
        };
        Some(StreamingCache {
            streaming,
            sizes,
            slots,
            policy,
        })
    }

    /// Per-layer partitions give every streaming layer `capacity_bytes / layers`: refuses a
    /// pinned hot set that does not fit in some layer's share, naming the layer and the bytes
    /// that would do.
    pub(crate) fn check_per_layer(
        &self,
        layers: &[MoeLayer],
        capacity_bytes: u64,
    ) -> Result<(), SimError> {
        let Policy::PinnedLru(HotSet(hot)) = &self.policy else {
            return Ok(());
        };
        let share = capacity_bytes / self.streaming.len() as u64;
        let mut need = 0u64;
        let mut worst = None;
        for (pos, &l) in self.streaming.iter().enumerate() {
            let pinned = hot.iter().filter(|h| h.0 == pos).count() as u64;
            let bytes = pinned * self.sizes[pos];
            need = need.max(bytes);
            if bytes > share && worst.is_none() {
                worst = Some((layers[l].layer, pinned, share / self.sizes[pos]));
            }
        }
        match worst {
            None => Ok(()),
            Some((layer, pinned, holds)) => Err(SimError::PinnedShare {
                layer,
                pinned,
                share,
                holds,
                need: need * self.streaming.len() as u64,
            }),
        }
    }
}

/// Whether each expert access of the trace hits, in stored order.
fn expert_hits(
    layers: &[MoeLayer],
    trace: &Trace,
    policy: &DecodePolicy,
) -> Result<Vec<bool>, SimError> {
    let k = trace.model().top_k as usize;
    let mut resident = Vec::with_capacity(trace.n_expert_ids());
    // Token by token, layer by layer (no ids when the trace has no MoE layers).
    for token in trace.expert_ids().chunks_exact((k * layers.len()).max(1)) {
        for (layer, selection) in layers.iter().zip(token.chunks_exact(k)) {
            resident.extend(
                selection
                    .iter()
                    .map(|&e| layer.tier[e as usize] != Tier::Nvme),
            );
        }
    }
    let Some((streaming, config, bytes)) = decode_cache(layers, policy)? else {
        return Ok(resident);
    };
    let sub = select_layers(trace, &streaming)?;
    let (_, sub_hits) = cache::replay_hits(&sub, &config, &bytes)?;
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

/// The cache a decode-only run replays: the MoE positions whose experts stream, its
/// configuration and expert sizes; None when nothing is cached (static policy, nothing streams).
fn decode_cache(
    layers: &[MoeLayer],
    policy: &DecodePolicy,
) -> Result<Option<(Vec<usize>, CacheConfig, ExpertBytes)>, SimError> {
    let (policy, capacity_bytes, partition) = match policy {
        DecodePolicy::Static => return Ok(None),
        DecodePolicy::Cache {
            policy,
            capacity_bytes,
            partition,
        } => (policy, *capacity_bytes, *partition),
    };
    let Some(c) = StreamingCache::new(layers, policy, capacity_bytes) else {
        return Ok(None);
    };
    if partition == Partition::PerLayer {
        c.check_per_layer(layers, capacity_bytes)?;
    }
    let capacity = match partition {
        Partition::Global => Capacity::Experts(c.slots),
        Partition::PerLayer => Capacity::Bytes(capacity_bytes),
    };
    let config = CacheConfig {
        policy: c.policy,
        partition,
        capacity,
    };
    let bytes = ExpertBytes::per_layer_sizes(c.sizes)?;
    Ok(Some((c.streaming, config, bytes)))
}

/// For co-activation prefetch under a cache policy, the decode-only run's cache contents as
/// it goes (see [`Residency`]); None otherwise.
fn decode_residency(
    layers: &[MoeLayer],
    trace: &Trace,
    policy: &DecodePolicy,
    opts: &Options,
) -> Result<Option<Residency>, SimError> {
    if opts.expert_prefetch != ExpertPrefetch::Coactivation {
        return Ok(None);
    }
    let Some((streaming, config, bytes)) = decode_cache(layers, policy)? else {
        return Ok(None);
    };
    let n_expert = trace.model().n_expert as usize;
    let mut r = Residency::new(layers.len());
    let placed = streaming.iter().enumerate().map(|(pos, &l)| (l, pos, 0));
    Ok(r.add(streaming.len(), n_expert, &config, &bytes, placed)
        .map(|_| r))
}

/// The trace restricted to the MoE layers at `positions` (same sequences and tokens).
fn select_layers(trace: &Trace, positions: &[usize]) -> Result<Trace, SimError> {
    let mut model = trace.model().clone();
    model.moe_layers = positions.iter().map(|&p| model.moe_layers[p]).collect();
    let mut b = TraceBuilder::new(model)?;
    let mut ids = Vec::new();
    for seq in trace.sequences() {
        b.begin_sequence(seq.id)?;
        for token in seq.tokens {
            ids.clear();
            for &p in positions {
                ids.extend_from_slice(trace.selection(token, p));
            }
            b.push_token(&ids, TokenExtras::default())?;
        }
        b.end_sequence()?;
    }
    Ok(b.finish()?)
}

/// The first `n` tokens of `trace` (all when it has fewer), keeping sequence boundaries.
pub fn first_tokens(trace: &Trace, n: usize) -> Result<Trace, SimError> {
    if n >= trace.n_tokens() {
        return Ok(trace.clone());
    }
    token_range(trace, 0..n)
}

/// Tokens `range` of `trace` in stored order (clipped to its tokens), keeping sequence
/// boundaries: a sequence cut by the range keeps its id.
pub fn token_range(trace: &Trace, range: std::ops::Range<usize>) -> Result<Trace, SimError> {
    if trace.model().moe_layers.is_empty() {
        // A dense model's stand-in trace: tokens, no routing to cut.
        let end = range.end.min(trace.n_tokens());
        let n = end.saturating_sub(range.start);
        return Ok(Trace::without_routing(
            trace.model().architecture.clone(),
            n,
        ));
    }
    let mut b = TraceBuilder::new(trace.model().clone())?;
    let all: Vec<usize> = (0..trace.model().n_layers()).collect();
    let mut ids = Vec::new();
    for seq in trace.sequences() {
        let start = seq.tokens.start.max(range.start);
        let end = seq.tokens.end.min(range.end);
        if start >= end {
            continue;
        }
        b.begin_sequence(seq.id)?;
        for token in start..end {
            ids.clear();
            for &p in &all {
                ids.extend_from_slice(trace.selection(token, p));
            }
            b.push_token(&ids, TokenExtras::default())?;
        }
        b.end_sequence()?;
    }
    Ok(b.finish()?)
}

/// Expert uses per token at each MoE layer, from the trace's selection counts: the rates a plan
/// for this trace is solved with.
pub fn expert_rates(trace: &Trace) -> place::ExpertRates {
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
    place::ExpertRates::from_counts(counts, trace.n_tokens() as u64)
}
