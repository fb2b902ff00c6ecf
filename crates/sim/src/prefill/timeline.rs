//! The prefill timeline: every (batch, layer) step in order on the shared storage device, one
//! record per step.
//!
//! A step is a decode step over a batch, priced by the same pieces as the decode engine: wait
//! for its streamed dense weights (issued `prefetch_depth` steps ahead, across batches) and the
//! batch's embedding rows; copy host weights over the link if the GPU computes them; compute
//! attention, norms and router for the batch; at routing, the batch's union of experts is
//! needed: hits are computed from memory, misses are read (all together, then waited for);
//! compute the rest. Compute is the solver's cost model for the batch's work, storage is
//! [`StorageDevice`], and on unified memory the storage DMA during a compute phase takes bus
//! bandwidth from it, as in the decode engine. Prefill issues no expert prefetch. Every read is
//! waited for within prefill, so the device is idle when decode starts.

use super::batches::Batch;
use crate::decode::steps::{self, LayerSteps, Phase};
use crate::decode::{Machine, MoeLayer, Options, Placement};
use crate::dense::DenseReads;
use crate::events::{Nanos, StorageDevice};
use metrics::TokenLayerRecord;
use place::cost::{expert_batch_work, CostModel};
use place::units::ExpertLayer;
use place::Tier;
use std::collections::VecDeque;

/// Everything the timeline reads.
pub(super) struct Inputs<'a> {
    pub placement: &'a Placement<'a>,
    pub machine: &'a Machine,
    pub opts: &'a Options,
    pub moe: &'a [MoeLayer],
    /// The solver's expert layer of every MoE position (for the batch work of experts).
    pub units: &'a [&'a ExpertLayer],
    /// Step lists of a full batch and of the last batch (the same when it is full).
    pub full: &'a [LayerSteps],
    pub last: &'a [LayerSteps],
    pub batches: &'a [Batch],
    /// Which streamed dense tensors each step reads, where a pool keeps some across batches.
    pub dense: Option<&'a DenseReads>,
}

/// What the timeline produced: one record per step, batch index as the token index.
pub(super) struct Outcome {
    pub records: Vec<TokenLayerRecord>,
    pub end_ns: Nanos,
    pub bytes_read: u64,
    pub busy_ns: Nanos,
}

fn ns(s: f64) -> Nanos {
    (s * 1e9).round() as Nanos
}

fn secs(n: Nanos) -> f64 {
    n as f64 * 1e-9
}

/// Reads in flight on the device, grouped into tickets that are waited for as a whole.
struct Reads {
    storage: StorageDevice,
    outstanding: Vec<u32>,
    ticket_bytes: Vec<u64>,
    bytes_read: u64,
    done: Vec<(Nanos, u32)>,
}

impl Reads {
    /// Issues requests of `sizes` bytes at `now` as one ticket.
    fn issue(&mut self, now: Nanos, sizes: &[u64]) -> usize {
        let id = self.outstanding.len();
        self.outstanding.push(sizes.len() as u32);
        self.ticket_bytes.push(0);
        for &bytes in sizes {
            let c = self.storage.class(bytes);
            let bytes = self.storage.class_bytes(c);
            self.ticket_bytes[id] += bytes;
            self.bytes_read += bytes;
            let buf = &mut self.done;
            self.storage
                .issue(now, id as u32, c, &mut |at, tag| buf.push((at, tag)));
        }
        self.settle();
        id
    }

    fn advance(&mut self, t: Nanos) {
        let buf = &mut self.done;
        self.storage
            .advance_to(t, &mut |at, tag| buf.push((at, tag)));
        self.settle();
    }

    fn settle(&mut self) {
        for (_, id) in self.done.drain(..) {
            self.outstanding[id as usize] -= 1;
        }
    }

    /// The time at or after `now` when every ticket of `ids` has landed.
    fn wait(&mut self, now: Nanos, ids: &[usize]) -> Nanos {
        let mut t = now;
        while ids.iter().any(|&id| self.outstanding[id] > 0) {
            let next = self
                .storage
                .next_completion()
                .expect("a ticket with reads outstanding has requests on the device");
            self.advance(next);
            t = t.max(next);
        }
        t
    }
}

pub(super) fn run(inp: &Inputs<'_>, storage: StorageDevice) -> Outcome {
    let per_batch = inp.full.len();
    let n_steps = per_batch * inp.batches.len();
    let steps_of = |g: usize| step_of(inp, g);
    let mut reads = Reads {
        storage,
        outstanding: Vec::new(),
        ticket_bytes: Vec::new(),
        bytes_read: 0,
        done: Vec::new(),
    };
    // A batch's fixed costs are the cost model's for its size (all batches but the last are
    // full).
    let batch_costs: Vec<CostModel> = inp
        .batches
        .iter()
        .map(|b| inp.placement.cost.batch(b.tokens as u64))
        .collect();
    let mut dense: VecDeque<(usize, usize)> = VecDeque::new();
    let mut dense_issued = 0;
    let mut records = Vec::with_capacity(n_steps);
    let mut now: Nanos = 0;
    for g in 0..n_steps {
        let (b, step) = (g / per_batch, steps_of(g));
        let cost = &batch_costs[b];
        let mut rec = TokenLayerRecord::empty(b as u32, step.layer);
        rec.start_s = secs(now);
        reads.advance(now);
        let busy_from = reads.storage.busy_ns();
        // Dense weights are read `depth` steps ahead, as in decode.
        let upto = (g + inp.opts.prefetch_depth as usize).min(n_steps - 1);
        while dense_issued <= upto {
            let r = match inp.dense {
                Some(d) => d.step(dense_issued),
                None => &steps_of(dense_issued).dense_reads,
            };
            if !r.is_empty() {
                dense.push_back((dense_issued, reads.issue(now, r)));
            }
            dense_issued += 1;
        }
        let mut wanted = Vec::new();
        if dense.front().is_some_and(|(s, _)| *s == g) {
            wanted.push(dense.pop_front().expect("front").1);
        }
        if !step.row_reads.is_empty() {
            wanted.push(reads.issue(now, &step.row_reads));
        }
        rec.bytes_read += wanted.iter().map(|&id| reads.ticket_bytes[id]).sum::<u64>();
        let ready = reads.wait(now, &wanted);
        rec.io_wait_s += secs(ready - now);
        now = ready;

        let pre_cpu = steps::has_cpu_work(&step.pre);
        let pre_s = steps::compute_s(cost, step.layer, step.pre.gpu, step.pre.cpu, pre_cpu);
        now = phase(inp, &mut reads, &mut rec, now, &step.pre, pre_s);

        reads.advance(now);
        let mut post = step.post;
        if let Some(m) = step.moe {
            let layer = &inp.moe[m];
            let mut misses = Vec::new();
            for t in &inp.batches[b].layers[m] {
                let tier = match (t.hit, layer.tier[t.expert as usize]) {
                    (true, Tier::Gpu) => Tier::Gpu,
                    (true, _) => Tier::Ram,
                    (false, _) => Tier::Nvme,
                };
                let w = expert_batch_work(inp.units[m], f64::from(t.uses), 1.0);
                post.add(&steps::place_work(cost, inp.machine, inp.opts, tier, w));
                rec.expert_accesses += 1;
                rec.expert_hits += u32::from(t.hit);
                if !t.hit {
                    misses.push(t.expert);
                }
            }
            if !misses.is_empty() {
                let mut sizes = Vec::new();
                crate::decode::reads::experts(layer, &mut misses, &mut sizes);
                let id = reads.issue(now, &sizes);
                rec.bytes_read += reads.ticket_bytes[id];
                let ready = reads.wait(now, &[id]);
                rec.io_wait_s += secs(ready - now);
                now = ready;
            }
        }
        // The step's compute is priced whole, as the solver prices a layer (decode does the same).
        let mut all = step.pre;
        all.add(&post);
        let total = steps::compute_s(cost, step.layer, all.gpu, all.cpu, step.cpu_weights);
        now = phase(
            inp,
            &mut reads,
            &mut rec,
            now,
            &post,
            (total - pre_s).max(0.0),
        );

        reads.advance(now);
        rec.wall_s = secs(now) - rec.start_s;
        rec.storage_busy_s = secs(reads.storage.busy_ns() - busy_from);
        records.push(rec);
    }
    Outcome {
        records,
        end_ns: now,
        bytes_read: reads.bytes_read,
        busy_ns: reads.storage.busy_ns(),
    }
}

/// Global step `g`: layer `g % steps per batch` of batch `g / steps per batch`.
fn step_of<'a>(inp: &Inputs<'a>, g: usize) -> &'a LayerSteps {
    let per_batch = inp.full.len();
    let list = if g / per_batch + 1 == inp.batches.len() {
        inp.last
    } else {
        inp.full
    };
    &list[g % per_batch]
}

/// Runs one compute phase from `now` (link copy, then compute; on unified memory extended by
/// the storage DMA it shares the bus with, once) and returns its end.
fn phase(
    inp: &Inputs<'_>,
    reads: &mut Reads,
    rec: &mut TokenLayerRecord,
    now: Nanos,
    p: &Phase,
    compute_s: f64,
) -> Nanos {
    let mut link_ns = 0;
    if p.link_bytes > 0.0 {
        let h2d = inp.machine.h2d_bytes_per_s.expect("checked at setup");
        link_ns = ns(p.link_bytes / h2d);
        rec.link_s += secs(link_ns);
        rec.bytes_linked += p.link_bytes.round() as u64;
    }
    let compute_ns = ns(compute_s);
    rec.compute_s += secs(compute_ns);
    let delivered_from = reads.storage.delivered_bytes();
    let end = now + link_ns + compute_ns;
    if !inp.machine.unified {
        return end;
    }
    reads.advance(end);
    let dma = reads.storage.delivered_bytes() - delivered_from;
    if dma <= 0.0 {
        return end;
    }
    let cost = inp.placement.cost;
    let bus = cost.gpu.map_or(cost.cpu.bytes_per_s, |g| g.bytes_per_s);
    let slack = (secs(compute_ns) - steps::memory_s(cost, p.gpu, p.cpu)).max(0.0);
    let extra = ns((dma / bus - slack).max(0.0));
    rec.compute_s += secs(extra);
    end + extra
}
