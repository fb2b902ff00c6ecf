//! The roofline cost model: predicted decode time per layer and per token for a placement, from
//! device rates, storage bandwidth at the issued read size, and expert access rates. The ILP
//! linearises exactly these formulas and the simulator reuses them; [`CostModel::predict`] is
//! the reference every plan's numbers come from.
//!
//! Per layer: each device runs its share as `max(FLOPs / peak, bytes / bandwidth)`, at the
//! bandwidth its decode kernels achieve; the GPU and CPU shares run one after the other, plus a
//! fixed overhead per weight tensor (launches, small ops, synchronisation); routed experts missing
//! from memory are only known after the router runs, so their reads add to the layer's time. Dense
//! weights streamed from NVMe overlap compute as the prefetch depth `d` allows: the layers are cut
//! into consecutive windows of `d` and a window takes `max(its compute, its dense reads)` (the next
//! window is read while this one computes, in `2d` layer buffers); `d = 0` reads each layer before
//! computing it (`compute + io`, one buffer). `d = 1` is [`CostModel::layer_time`].

use super::units::{Assignment, ExpertLayer, Unit, Units};
use hw::{HwProfile, StorageProfile};
use plan::Tier;
pub use plan::{IoPlan, LayerTime};
use serde::{Deserialize, Serialize};

/// One compute device's roofline: its peak FLOP rate and the bandwidth its decode kernels
/// achieve (the profile's `decode_gbps`, else the memory's spec).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub flops_per_s: f64,
    pub bytes_per_s: f64,
}

impl Device {
    /// A roofline: compute and memory traffic overlap, the slower bounds.
    pub fn time(&self, w: Work) -> f64 {
        (w.flops / self.flops_per_s).max(w.bytes / self.bytes_per_s)
    }

    /// A CPU's time: one use of each weight computes while the weights stream in (what a
    /// decode step measures), but further uses in a batch follow the stream (the cores are
    /// busy with the matmuls then, and no memory traffic hides them). [`Device::time`] when
    /// nothing is reused.
    pub fn cpu_time(&self, w: Work) -> f64 {
        let reuse = w.reuse_flops / self.flops_per_s;
        self.time(w).max(w.bytes / self.bytes_per_s + reuse)
    }
}

/// FLOPs and bytes one device does for a layer in a forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Work {
    pub flops: f64,
    pub bytes: f64,
    /// The part of `flops` beyond one use of each weight read: the batch's other tokens on
    /// the same weights (0 for a decode step).
    pub reuse_flops: f64,
}

impl Work {
    pub fn add(&mut self, w: Work) {
        self.flops += w.flops;
        self.bytes += w.bytes;
        self.reuse_flops += w.reuse_flops;
    }
}

/// Picks request sizes from the model (median dense tensor, largest expert slice) and the
/// queue depth with the best bandwidth on the read curve.
pub fn io_plan(storage: &StorageProfile, cpu_cores: u32, units: &Units) -> IoPlan {
    let mut sizes: Vec<u64> = units
        .units
        .iter()
        .filter(|u| u.streamable && u.layer.is_some())
        .map(|u| u.largest_tensor)
        .collect();
    sizes.sort_unstable();
    let dense_block = sizes
        .get(sizes.len() / 2)
        .copied()
        .unwrap_or(1 << 20)
        .max(4096);
    let expert_block = units
        .experts
        .iter()
        .map(|e| e.slice_bytes)
        .max()
        .unwrap_or(1 << 20)
        .max(4096);
    let depths = {
        let mut d: Vec<u32> = storage.read_curve.iter().map(|p| p.queue_depth).collect();
        d.sort_unstable();
        d.dedup();
        if d.is_empty() {
            d.push(1);
        }
        d
    };
    let best = |block: u64, max_qd: u32| -> (u32, f64) {
        depths
            .iter()
            .filter(|&&q| q <= max_qd.max(depths[0]))
            .map(|&q| (q, storage.streamed_gbps(block, q)))
            .fold((depths[0], 0.0), |acc, x| if x.1 > acc.1 { x } else { acc })
    };
    let (qd, dense_gbps) = best(dense_block, u32::MAX);
    let (eqd, expert_gbps) = best(expert_block, 3 * units.top_k.max(1));
    let row_bytes = units
        .units
        .iter()
        .find(|u| u.row_reads())
        .map_or(4096, |u| u.read_bytes as u64)
        .max(1);
    IoPlan {
        queue_depth: qd,
        threads: qd.min(cpu_cores.max(1)),
        dense_block_bytes: dense_block,
        dense_gbps,
        expert_block_bytes: expert_block,
        expert_queue_depth: eqd,
        expert_gbps,
        row_bytes,
        row_gbps: storage.streamed_gbps(row_bytes, 1),
    }
}

/// The machine as the cost model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    pub gpu: Option<Device>,
    pub cpu: Device,
    /// Streamed weights are computed by the GPU (unified memory) rather than the CPU.
    pub stream_on_gpu: bool,
    pub io: IoPlan,
    /// Fixed seconds each weight tensor of a forward pass costs: the profile's
    /// `tensor_overhead_s` of the backend that runs the graph, the GPU where there is one. It
    /// does not depend on where weights are placed.
    #[serde(default)]
    pub tensor_overhead_s: f64,
    /// The same in a prompt batch of more than one token (the profile's
    /// `batch_tensor_overhead_s` of that backend, else `tensor_overhead_s`):
    /// [`CostModel::batch`] puts it in place of the decode one.
    #[serde(default)]
    pub batch_tensor_overhead_s: Option<f64>,
    /// Fixed seconds of a layer some of whose weights the CPU computes in a GPU plan: the
    /// profile's `gpu.host_layer_overhead_s` (0 without a GPU).
    #[serde(default)]
    pub host_layer_overhead_s: f64,
    /// Weight tensors of each layer (index: layer) that the fixed cost counts.
    #[serde(default)]
    pub layer_tensors: Vec<u32>,
    /// The same for the globals (embedding, output norm and head).
    #[serde(default)]
    pub global_tensors: u32,
}

/// Weight tensors per layer (index: layer) and of the globals: every tensor of the layer's
/// units and of its routed experts.
fn tensor_counts(units: &Units) -> (Vec<u32>, u32) {
    let n_layer = units
        .units
        .iter()
        .filter_map(|u| u.layer)
        .chain(units.experts.iter().map(|e| e.layer))
        .max()
        .map_or(0, |l| l as usize + 1);
    let mut layers = vec![0u32; n_layer];
    let mut globals = 0u32;
    for u in &units.units {
        let n = u.tensors.len() as u32;
        match u.layer {
            Some(l) => layers[l as usize] += n,
            None => globals += n,
        }
    }
    for e in &units.experts {
        layers[e.layer as usize] += e.tensors.len() as u32;
    }
    (layers, globals)
}

/// A layer's work per decoded token, by device and by NVMe read kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerLoad {
    pub gpu: Work,
    pub cpu: Work,
    pub nvme_dense_bytes: f64,
    pub nvme_expert_bytes: f64,
    /// Embedding rows read from NVMe (serial: the token id is known only after sampling).
    pub nvme_row_bytes: f64,
    /// Some of the layer's weights are placed where the CPU computes them (whether or not a
    /// token uses them: an expert tensor in RAM is one CPU op however few experts are read).
    pub cpu_weights: bool,
}

/// Predicted decode speed of a placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub token_s: f64,
    pub tok_per_s: f64,
    pub layers: Vec<LayerTime>,
}

impl CostModel {
    /// The model of `hw` for a plan of `units` that streams weights from NVMe (`streams`) or
    /// not: llama.cpp repacks CPU weights only in a run that streams nothing, so the CPU's
    /// decode rate depends on it.
    pub fn new(hw: &HwProfile, units: &Units, streams: bool) -> CostModel {
        let gpu = hw.gpu.as_ref().map(|g| Device {
            flops_per_s: g.matmul_flops_per_s(),
            bytes_per_s: g.decode_bytes_per_s(),
        });
        let (tensor_overhead_s, batch_tensor_overhead_s) = match &hw.gpu {
            Some(g) => (g.tensor_overhead_s, g.batch_tensor_overhead_s),
            None => (hw.cpu.tensor_overhead_s, hw.cpu.batch_tensor_overhead_s),
        };
        let (layer_tensors, global_tensors) = tensor_counts(units);
        CostModel {
            stream_on_gpu: hw.gpu.as_ref().is_some_and(|g| g.unified_memory),
            gpu,
            cpu: Device {
                flops_per_s: hw.cpu_matmul_flops_per_s(streams),
                bytes_per_s: if streams {
                    hw.cpu_streaming_decode_bytes_per_s()
                } else {
                    hw.cpu_decode_bytes_per_s()
                },
            },
            io: io_plan(&hw.storage, hw.cpu.cores, units),
            tensor_overhead_s: tensor_overhead_s.unwrap_or(0.0),
            batch_tensor_overhead_s,
            host_layer_overhead_s: hw
                .gpu
                .as_ref()
                .and_then(|g| g.host_layer_overhead_s)
                .unwrap_or(0.0),
            layer_tensors,
            global_tensors,
        }
    }

    /// The model of a forward pass over `n_tokens` tokens: a batch of more than one token
    /// pays the batch's per-tensor overhead; a decode step (1 token) is this model.
    pub fn batch(&self, n_tokens: u64) -> CostModel {
        match self.batch_tensor_overhead_s {
            Some(overhead) if n_tokens > 1 => CostModel {
                tensor_overhead_s: overhead,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    /// The device that computes weights on `tier`; `true` = GPU.
    pub fn on_gpu(&self, tier: Tier) -> bool {
        self.gpu.is_some()
            && match tier {
                Tier::Gpu => true,
                Tier::Ram => false,
                Tier::Nvme => self.stream_on_gpu,
            }
    }

    /// The fixed seconds of `layer` (`None`: the globals): its tensors times the per-tensor
    /// overhead.
    pub fn overhead_s(&self, layer: Option<u32>) -> f64 {
        let n = match layer {
            Some(l) => self.layer_tensors.get(l as usize).copied().unwrap_or(0),
            None => self.global_tensors,
        };
        self.tensor_overhead_s * f64::from(n)
    }

    /// The fixed seconds a layer's CPU weights add to a GPU plan (none without a GPU, where
    /// the CPU runs the whole graph).
    pub fn host_layer_s(&self, cpu_weights: bool) -> f64 {
        if self.gpu.is_some() && cpu_weights {
            self.host_layer_overhead_s
        } else {
            0.0
        }
    }

    /// Time of one layer: GPU then CPU share, dense I/O overlapped (prefetched one layer
    /// ahead), expert misses serial after the router.
    pub fn layer_time(&self, layer: Option<u32>, load: &LayerLoad) -> LayerTime {
        // The fixed overhead goes to the backend that runs the graph; a GPU graph that leaves
        // for the CPU's weights pays for the round trip.
        let overhead_s = self.overhead_s(layer);
        let (gpu_s, cpu_s) = match self.gpu {
            Some(g) => (
                g.time(load.gpu) + overhead_s,
                self.cpu.cpu_time(load.cpu) + self.host_layer_s(load.cpu_weights),
            ),
            None => (0.0, self.cpu.cpu_time(load.cpu) + overhead_s),
        };
        let io_dense_s = load.nvme_dense_bytes / (self.io.dense_gbps * 1e9);
        let io_expert_s = load.nvme_expert_bytes / (self.io.expert_gbps * 1e9)
            + load.nvme_row_bytes / (self.io.row_gbps * 1e9);
        LayerTime {
            layer,
            gpu_s,
            cpu_s,
            io_dense_s,
            io_expert_s,
            total_s: (gpu_s + cpu_s).max(io_dense_s) + io_expert_s,
        }
    }

    /// Times of consecutive layers (globals, `None`, first; then layers in order) with dense
    /// reads prefetched `depth` layers ahead: each window of `depth` layers takes the larger of
    /// its compute and its dense reads, and the part of the reads compute does not hide is
    /// charged to the window's last layer; `depth` 0 adds each layer's reads to its compute.
    /// With `depth` 1 every layer's time is [`CostModel::layer_time`].
    pub fn window_times(&self, loads: &[(Option<u32>, LayerLoad)], depth: u32) -> Vec<LayerTime> {
        let mut out: Vec<LayerTime> = loads
            .iter()
            .map(|(l, load)| self.layer_time(*l, load))
            .collect();
        for w in windows(&out.iter().map(|t| t.layer).collect::<Vec<_>>(), depth) {
            let times = &mut out[w.clone()];
            let compute: f64 = times.iter().map(|t| t.gpu_s + t.cpu_s).sum();
            let io: f64 = times.iter().map(|t| t.io_dense_s).sum();
            let stall = if depth == 0 {
                io
            } else {
                (io - compute).max(0.0)
            };
            let n = times.len();
            for (i, t) in times.iter_mut().enumerate() {
                t.total_s =
                    t.gpu_s + t.cpu_s + t.io_expert_s + if i + 1 == n { stall } else { 0.0 };
            }
        }
        out
    }

    /// Whether some of layer `e`'s experts, `gpu` of them on the GPU and `ram` in RAM (the
    /// rest on NVMe), are computed by the CPU.
    pub fn experts_on_cpu(&self, e: &ExpertLayer, gpu: u32, ram: u32) -> bool {
        let nvme = e.n_expert().saturating_sub(gpu + ram);
        [(Tier::Gpu, gpu), (Tier::Ram, ram), (Tier::Nvme, nvme)]
            .iter()
            .any(|&(t, n)| n > 0 && !self.on_gpu(t))
    }

    fn work<'a>(&self, load: &'a mut LayerLoad, tier: Tier) -> &'a mut Work {
        if self.on_gpu(tier) {
            &mut load.gpu
        } else {
            &mut load.cpu
        }
    }

    /// Predicted per-token decode time of `a` (layers in order, globals first), dense reads
    /// prefetched one layer ahead.
    pub fn predict(&self, units: &Units, a: &Assignment) -> Prediction {
        self.predict_batch(units, a, 1)
    }

    /// [`CostModel::predict`] with dense reads prefetched `depth` layers ahead.
    pub fn predict_depth(&self, units: &Units, a: &Assignment, depth: u32) -> Prediction {
        self.predict_batch_depth(units, a, 1, depth)
    }

    /// Predicted time of one forward pass over a batch of `n_tokens` (prefill of an
    /// `n_tokens` prompt; `1` is a decode step). Weights are read once per batch and compute
    /// scales with the tokens; an expert is read if any token of the batch routes to it
    /// ([`expert_touch`]); embedding rows are one read per token.
    pub fn predict_batch(&self, units: &Units, a: &Assignment, n_tokens: u64) -> Prediction {
        self.predict_batch_depth(units, a, n_tokens, 1)
    }

    /// [`CostModel::predict_batch`] with dense reads prefetched `depth` layers ahead.
    pub fn predict_batch_depth(
        &self,
        units: &Units,
        a: &Assignment,
        n_tokens: u64,
        depth: u32,
    ) -> Prediction {
        let batch = self.batch(n_tokens);
        batch.predict_pass(units, a, n_tokens, depth)
    }

    /// [`CostModel::predict_batch_depth`] on the model of that batch.
    fn predict_pass(&self, units: &Units, a: &Assignment, n_tokens: u64, depth: u32) -> Prediction {
        let n = n_tokens.max(1) as f64;
        let mut loads: std::collections::BTreeMap<Option<u32>, LayerLoad> = Default::default();
        for (u, &tier) in units.units.iter().zip(&a.units) {
            let load = loads.entry(u.layer).or_default();
            let w = batch_work(u, n_tokens);
            self.work(load, tier).add(w);
            load.cpu_weights |= !self.on_gpu(tier);
            if tier == Tier::Nvme && u.row_reads() {
                load.nvme_row_bytes += w.bytes;
            } else if tier == Tier::Nvme {
                load.nvme_dense_bytes += w.bytes;
            }
        }
        for (e, s) in units.experts.iter().zip(&a.experts) {
            let load = loads.entry(Some(e.layer)).or_default();
            load.cpu_weights |= self.experts_on_cpu(e, s.gpu, s.ram);
            let touched = expert_touches(e, s.gpu, s.ram, n_tokens);
            for ((tier, uses), (_, touch)) in expert_uses(e, s.gpu, s.ram).into_iter().zip(touched)
            {
                let w = expert_batch_work(e, n * uses, touch);
                self.work(load, tier).add(w);
                if tier == Tier::Nvme {
                    load.nvme_expert_bytes += w.bytes;
                }
            }
        }
        let loads: Vec<(Option<u32>, LayerLoad)> = loads.into_iter().collect();
        let layers = self.window_times(&loads, depth);
        let token_s: f64 = layers.iter().map(|l| l.total_s).sum::<f64>() / n;
        Prediction {
            token_s,
            tok_per_s: if token_s > 0.0 {
                1.0 / token_s
            } else {
                f64::INFINITY
            },
            layers,
        }
    }
}

/// Work of unit `u` in a forward pass over `n_tokens` tokens (1 = a decode step): compute
/// scales with the tokens, weights are read once per batch, except an embedding read by rows,
/// which reads one row per token, and the head, which computes the last token's logits alone
/// (llama.cpp computes the outputs a batch asks for, and a prompt asks for its last token's).
/// Both the solver and the simulator price batches with it.
pub fn batch_work(u: &Unit, n_tokens: u64) -> Work {
    let n = n_tokens.max(1) as f64;
    let computed = if u.is_head() { 1.0 } else { n };
    let (bytes, reuse_flops) = if u.row_reads() {
        // Each token reads and uses its own row.
        (n * u.read_bytes, 0.0)
    } else {
        (u.read_bytes, (computed - 1.0) * u.flops)
    };
    Work {
        flops: computed * u.flops,
        bytes,
        reuse_flops,
    }
}

/// Work of routed experts of layer `e` in one batch: `uses` token-expert uses and `touched`
/// distinct experts (each expert's weights are read once per batch however many tokens use it).
pub fn expert_batch_work(e: &ExpertLayer, uses: f64, touched: f64) -> Work {
    Work {
        flops: uses * e.expert_flops,
        bytes: touched * e.expert_bytes as f64,
        reuse_flops: (uses - touched).max(0.0) * e.expert_flops,
    }
}

/// The prefetch windows over layers in order: the globals (`None`) alone, then consecutive runs
/// of `depth` layers (one layer each for `depth` 0 or 1). The ILP uses the same cut.
pub fn windows(layers: &[Option<u32>], depth: u32) -> Vec<std::ops::Range<usize>> {
    let size = depth.max(1) as usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let end = if layers[i].is_none() {
            i + layers[i..].iter().take_while(|l| l.is_none()).count()
        } else {
            (i + size).min(layers.len())
        };
        out.push(i..end);
        i = end;
    }
    out
}

/// Probability that a batch of `n_tokens` reads expert `id` at least once: `1 - (1 - r)^n`
/// for a per-token use rate `r` (routing of different tokens taken as independent). One
/// token touches an expert exactly at its rate.
pub fn expert_touch(e: &ExpertLayer, id: u32, n_tokens: u64) -> f64 {
    let r = e.rates[id as usize].clamp(0.0, 1.0);
    if n_tokens <= 1 {
        r
    } else {
        1.0 - (1.0 - r).powf(n_tokens as f64)
    }
}

/// Prefix sums of [`expert_touch`] in popularity order: `out[n]` = expected experts read per
/// batch among the n most popular. Concave like `cum`, since touch grows with rate.
pub fn touch_curve(e: &ExpertLayer, n_tokens: u64) -> Vec<f64> {
    if n_tokens <= 1 {
        return e.cum.clone();
    }
    let mut out = Vec::with_capacity(e.order.len() + 1);
    out.push(0.0);
    for &id in &e.order {
        out.push(out.last().copied().unwrap_or(0.0) + expert_touch(e, id, n_tokens));
    }
    out
}

/// Expected experts read per batch of `n_tokens` from each tier (as [`expert_uses`]).
pub fn expert_touches(e: &ExpertLayer, gpu: u32, ram: u32, n_tokens: u64) -> [(Tier, f64); 3] {
    if n_tokens <= 1 {
        return expert_uses(e, gpu, ram);
    }
    let c = touch_curve(e, n_tokens);
    let g = c[gpu as usize];
    let m = c[(gpu + ram) as usize];
    [
        (Tier::Gpu, g),
        (Tier::Ram, m - g),
        (Tier::Nvme, c[c.len() - 1] - m),
    ]
}

/// Uses per token served from each tier when the `gpu` most popular experts are on the GPU and
/// the next `ram` in RAM: this is the static-frequency cache's hit-rate curve.
pub fn expert_uses(e: &ExpertLayer, gpu: u32, ram: u32) -> [(Tier, f64); 3] {
    let g = e.cum[gpu as usize];
    let m = e.cum[(gpu + ram) as usize];
    [
        (Tier::Gpu, g),
        (Tier::Ram, m - g),
        (Tier::Nvme, e.total_rate() - m),
    ]
}
