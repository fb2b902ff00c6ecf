//! The event-driven decode engine: runs every (token, layer) step in order on the event queue,
//! with storage reads on the shared [`StorageDevice`], and writes one record per step.
//!
//! A step: wait for its streamed dense weights (issued `prefetch_depth` steps earlier) and, for
//! the globals, the sampled token's embedding row; copy host weights over the link if the GPU
//! computes them; compute attention, norms and router; at routing, hits are computed from
//! resident weights and misses become reads (or use the prefetch already staged for them), and
//! the next MoE layer's prefetch is issued; once every needed read has landed, compute the rest
//! of the layer. Compute times come from the solver's cost model for the step's actual work; on
//! unified memory, the bytes the storage DMA writes during a compute phase take memory bandwidth
//! from it.

use super::steps::{self, LayerSteps, Phase};
use super::{reads, DecodePolicy, Machine, MoeLayer, Options, Placement};
use crate::dense::DenseReads;
use crate::events::{EventQueue, Nanos, StorageDevice};
use metrics::{SummaryBuilder, TokenLayerRecord};
use place::cost::Work;
use place::Tier;
use policy::cache::Policy;
use policy::prefetch::{Coactivation, ExpertPrefetch};
use std::collections::VecDeque;
use traces::Trace;

/// Everything the engine reads.
pub(super) struct Inputs<'a> {
    pub placement: &'a Placement<'a>,
    pub machine: &'a Machine,
    pub opts: &'a Options,
    pub policy: &'a DecodePolicy,
    pub moe: &'a [MoeLayer],
    pub layers: &'a [LayerSteps],
    /// Which streamed dense tensors each step reads, where a pool keeps some across tokens.
    pub dense: Option<&'a DenseReads>,
    pub trace: &'a Trace,
    /// Whether each expert access of the trace hits the cache, in stored order.
    pub hits: &'a [bool],
}

/// What the engine produced besides the records.
pub(super) struct Outcome {
    /// Every record when the options keep them, else none.
    pub records: Vec<TokenLayerRecord>,
    pub summary: SummaryBuilder,
    /// Every byte read (the records' bytes, wasted prefetches included).
    pub bytes_read: u64,
    pub prefetch_wasted_bytes: u64,
}

/// Requests waited for as a whole; freed once nobody holds it and its reads are over.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    outstanding: u32,
    bytes: u64,
    holders: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for dense weights and embedding rows before the pre-routing phase.
    Inputs,
    Pre,
    /// Waiting for expert reads before the post-routing phase.
    Experts,
    Post,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    PhaseDone,
}

struct Engine<'a> {
    inp: &'a Inputs<'a>,
    storage: StorageDevice,
    queue: EventQueue<Event>,
    done_buf: Vec<(Nanos, u32)>,
    tickets: Vec<Ticket>,
    free: Vec<u32>,
    /// Dense-weight tickets of upcoming steps, by global step index.
    dense: VecDeque<(usize, u32)>,
    dense_issued: usize,
    /// Experts of the next MoE layer being prefetched: the ticket of their reads (one for all)
    /// and each one's share of its bytes.
    staged: Vec<(u16, u32, u64)>,
    coact: Option<Coactivation>,
    predicted: Vec<u16>,
    /// The cache's contents as the run goes (co-activation prefetch under a cache policy).
    residency: Option<super::Residency>,
    demand: Vec<u16>,
    /// Request classes of the read being issued.
    classes: Vec<u32>,
    memo: reads::ExpertReadMemo,
    // The step in progress.
    g: usize,
    stage: Stage,
    wanted: Vec<u32>,
    wait_from: Nanos,
    phase_from: Nanos,
    phase_ns: Nanos,
    phase_mem_s: f64,
    phase_extended: bool,
    delivered_from: f64,
    busy_from: Nanos,
    post: Phase,
    pre_s: f64,
    rec: TokenLayerRecord,
    records: Vec<TokenLayerRecord>,
    summary: SummaryBuilder,
    bytes_read: u64,
    wasted: u64,
    n_steps: usize,
    per_token: usize,
    /// `g` as (token, position in the token's step list).
    step_token: usize,
    step_layer: usize,
    /// Compute seconds of each layer's pre-routing phase (the same every token).
    pre_secs: Vec<f64>,
}

fn ns(s: f64) -> Nanos {
    (s * 1e9).round() as Nanos
}

fn secs(n: Nanos) -> f64 {
    n as f64 * 1e-9
}

pub(super) fn run(
    inp: &Inputs<'_>,
    storage: StorageDevice,
    residency: Option<super::Residency>,
) -> Outcome {
    let per_token = inp.layers.len();
    let n_expert = inp.trace.model().n_expert as usize;
    let mut e = Engine {
        inp,
        storage,
        queue: EventQueue::new(),
        done_buf: Vec::new(),
        tickets: Vec::new(),
        free: Vec::new(),
        dense: VecDeque::new(),
        dense_issued: 0,
        staged: Vec::new(),
        coact: (inp.opts.expert_prefetch == ExpertPrefetch::Coactivation)
            .then(|| Coactivation::new(inp.moe.len(), n_expert)),
        predicted: Vec::new(),
        residency,
        demand: Vec::new(),
        classes: Vec::new(),
        memo: reads::ExpertReadMemo::default(),
        g: 0,
        stage: Stage::Post,
        wanted: Vec::new(),
        wait_from: 0,
        phase_from: 0,
        phase_ns: 0,
        phase_mem_s: 0.0,
        phase_extended: false,
        delivered_from: 0.0,
        busy_from: 0,
        post: Phase::default(),
        pre_s: 0.0,
        rec: TokenLayerRecord::empty(0, None),
        records: if inp.opts.keep_records {
            Vec::with_capacity(per_token * inp.trace.n_tokens())
        } else {
            Vec::new()
        },
        summary: SummaryBuilder::new(),
        bytes_read: 0,
        wasted: 0,
        n_steps: per_token * inp.trace.n_tokens(),
        per_token,
        step_token: 0,
        step_layer: 0,
        pre_secs: inp
            .layers
            .iter()
            .map(|l| {
                let cpu = steps::has_cpu_work(&l.pre);
                steps::compute_s(inp.placement.cost, l.layer, l.pre.gpu, l.pre.cpu, cpu)
            })
            .collect(),
    };
    if e.n_steps > 0 {
        e.start_step(0);
    }
    loop {
        // Storage completions at or before the next event go first, so a phase that ends at
        // the instant a read lands sees it.
        match (e.queue.peek_time(), e.storage.next_completion()) {
            (q, Some(s)) if q.is_none_or(|q| s <= q) => e.sync(s),
            (Some(_), _) => {
                let (now, Event::PhaseDone) = e.queue.pop().expect("peeked");
                e.phase_done(now);
            }
            (None, _) => break,
        }
    }
    Outcome {
        records: e.records,
        summary: e.summary,
        bytes_read: e.bytes_read,
        prefetch_wasted_bytes: e.wasted,
    }
}

impl Engine<'_> {
    fn new_ticket(&mut self) -> u32 {
        let t = Ticket {
            outstanding: 0,
            bytes: 0,
            holders: 1,
        };
        match self.free.pop() {
            Some(id) => {
                self.tickets[id as usize] = t;
                id
            }
            None => {
                self.tickets.push(t);
                self.tickets.len() as u32 - 1
            }
        }
    }

    /// Issues requests of `sizes` bytes as one ticket at `now`.
    fn read(&mut self, now: Nanos, sizes: &[u64]) -> u32 {
        let mut classes = std::mem::take(&mut self.classes);
        classes.clear();
        classes.extend(sizes.iter().map(|&b| self.storage.class(b)));
        let id = self.read_classes(now, &classes);
        self.classes = classes;
        id
    }

    /// Issues a read of experts `ids` of the MoE layer at position `m` as one ticket at `now`.
    fn read_experts(&mut self, now: Nanos, m: usize, ids: &mut [u16]) -> u32 {
        let mut classes = std::mem::take(&mut self.classes);
        classes.clear();
        self.memo
            .experts(m, &self.inp.moe[m], ids, &mut self.storage, &mut classes);
        let id = self.read_classes(now, &classes);
        self.classes = classes;
        id
    }

    /// Issues requests of storage classes `classes` as one ticket at `now`.
    fn read_classes(&mut self, now: Nanos, classes: &[u32]) -> u32 {
        let id = self.new_ticket();
        for &c in classes {
            let bytes = self.storage.class_bytes(c);
            let t = &mut self.tickets[id as usize];
            t.outstanding += 1;
            t.bytes += bytes;
            self.bytes_read += bytes;
            let buf = &mut self.done_buf;
            self.storage
                .issue(now, id, c, &mut |at, tag| buf.push((at, tag)));
        }
        self.drain();
        id
    }

    fn done(&self, id: u32) -> bool {
        self.tickets[id as usize].outstanding == 0
    }

    /// One holder lets go of a ticket (freed once none holds it and its reads are over).
    fn release(&mut self, id: u32) {
        let t = &mut self.tickets[id as usize];
        t.holders -= 1;
        if t.holders == 0 && t.outstanding == 0 {
            self.free.push(id);
        }
    }

    /// Runs storage to `t` and handles what completed.
    fn sync(&mut self, t: Nanos) {
        let buf = &mut self.done_buf;
        self.storage
            .advance_to(t, &mut |at, tag| buf.push((at, tag)));
        self.drain();
    }

    fn drain(&mut self) {
        let mut i = 0;
        while i < self.done_buf.len() {
            let (at, id) = self.done_buf[i];
            i += 1;
            let t = &mut self.tickets[id as usize];
            t.outstanding -= 1;
            if t.outstanding == 0 && t.holders == 0 {
                self.free.push(id);
            }
            if matches!(self.stage, Stage::Inputs | Stage::Experts) && self.ready() {
                self.proceed(at);
            }
        }
        self.done_buf.clear();
    }

    fn ready(&self) -> bool {
        self.wanted.iter().all(|&id| self.done(id))
    }

    fn layer(&self) -> &LayerSteps {
        &self.inp.layers[self.step_layer]
    }

    fn token(&self) -> usize {
        self.step_token
    }

    fn start_step(&mut self, now: Nanos) {
        let layer = self.layer().layer;
        self.rec = TokenLayerRecord::empty(self.token() as u32, layer);
        self.rec.start_s = secs(now);
        self.sync(now);
        self.busy_from = self.storage.busy_ns();
        // Dense weights are read `depth` steps ahead (the pool holds depth + 1 layers).
        let depth = self.inp.opts.prefetch_depth as usize;
        let upto = (self.g + depth).min(self.n_steps - 1);
        while self.dense_issued <= upto {
            let g = self.dense_issued;
            let inp = self.inp;
            let reads = match inp.dense {
                Some(d) => d.step(g),
                None => &inp.layers[g % self.per_token].dense_reads,
            };
            if !reads.is_empty() {
                let id = self.read(now, reads);
                self.dense.push_back((g, id));
            }
            self.dense_issued += 1;
        }
        self.wanted.clear();
        if self.dense.front().is_some_and(|(g, _)| *g == self.g) {
            let (_, id) = self.dense.pop_front().expect("front");
            self.rec.bytes_read += self.tickets[id as usize].bytes;
            self.wanted.push(id);
        }
        let inp = self.inp;
        let rows = &inp.layers[self.step_layer].row_reads;
        if !rows.is_empty() {
            let id = self.read(now, rows);
            self.rec.bytes_read += self.tickets[id as usize].bytes;
            self.wanted.push(id);
        }
        self.stage = Stage::Inputs;
        self.wait_from = now;
        if self.ready() {
            self.proceed(now);
        }
    }

    /// The awaited reads are in: start the next compute phase.
    fn proceed(&mut self, now: Nanos) {
        self.rec.io_wait_s += secs(now - self.wait_from);
        match self.stage {
            Stage::Inputs => {
                let pre = self.layer().pre;
                self.pre_s = self.pre_secs[self.step_layer];
                self.stage = Stage::Pre;
                self.start_phase(now, pre, self.pre_s);
            }
            Stage::Experts => {
                let layer = self.layer().layer;
                let mut all = self.layer().pre;
                let post = self.post;
                all.add(&post);
                // The step's compute is priced whole, as the solver prices a layer; the
                // post-routing phase is what the whole adds to the pre-routing phase.
                let cpu = self.layer().cpu_weights;
                let total = steps::compute_s(self.inp.placement.cost, layer, all.gpu, all.cpu, cpu);
                let post_s = (total - self.pre_s).max(0.0);
                self.stage = Stage::Post;
                self.start_phase(now, post, post_s);
            }
            Stage::Pre | Stage::Post => unreachable!("proceed is called only while waiting"),
        }
    }

    fn start_phase(&mut self, now: Nanos, phase: Phase, compute_s: f64) {
        let mut link_ns = 0;
        if phase.link_bytes > 0.0 {
            let h2d = self.inp.machine.h2d_bytes_per_s.expect("checked at setup");
            link_ns = ns(phase.link_bytes / h2d);
            self.rec.link_s += secs(link_ns);
            self.rec.bytes_linked += phase.link_bytes.round() as u64;
        }
        let compute_ns = ns(compute_s);
        self.rec.compute_s += secs(compute_ns);
        self.phase_from = now + link_ns;
        self.phase_ns = compute_ns;
        self.phase_mem_s = steps::memory_s(self.inp.placement.cost, phase.gpu, phase.cpu);
        self.phase_extended = false;
        self.delivered_from = self.storage.delivered_bytes();
        self.queue
            .push(now + link_ns + compute_ns, Event::PhaseDone);
    }

    fn phase_done(&mut self, now: Nanos) {
        if self.inp.machine.unified && !self.phase_extended {
            // Storage DMA into the shared memory during the phase takes bus bandwidth: the
            // phase's memory traffic grows by the bytes delivered meanwhile (one correction;
            // DMA during the extension itself is not charged again).
            self.sync(now);
            let dma = self.storage.delivered_bytes() - self.delivered_at_phase_start();
            self.phase_extended = true;
            if dma > 0.0 {
                let bus = self.bus_bytes_per_s();
                let slack = (secs(self.phase_ns) - self.phase_mem_s).max(0.0);
                let extra = ns((dma / bus - slack).max(0.0));
                if extra > 0 {
                    self.rec.compute_s += secs(extra);
                    self.queue.push(now + extra, Event::PhaseDone);
                    return;
                }
            }
        }
        match self.stage {
            Stage::Pre => self.routed(now),
            Stage::Post => self.end_step(now),
            Stage::Inputs | Stage::Experts => unreachable!("no phase runs while waiting"),
        }
    }

    fn delivered_at_phase_start(&self) -> f64 {
        self.delivered_from
    }

    fn bus_bytes_per_s(&self) -> f64 {
        let cost = self.inp.placement.cost;
        cost.gpu.map_or(cost.cpu.bytes_per_s, |g| g.bytes_per_s)
    }

    /// The router has chosen: price hits, read misses, prefetch the next MoE layer.
    fn routed(&mut self, now: Nanos) {
        self.post = self.layer().post;
        self.wanted.clear();
        self.sync(now);
        if let Some(m) = self.layer().moe {
            self.route_experts(now, m);
        }
        self.stage = Stage::Experts;
        self.wait_from = now;
        if self.ready() {
            self.proceed(now);
        }
    }

    fn route_experts(&mut self, now: Nanos, m: usize) {
        let inp = self.inp;
        let (cost, machine, opts) = (inp.placement.cost, inp.machine, inp.opts);
        let token = self.token();
        let k = inp.trace.model().top_k as usize;
        let n_moe = inp.moe.len();
        let layer = &inp.moe[m];
        let sel = inp.trace.selection(token, m);
        let first = (token * n_moe + m) * k;
        let hits = &inp.hits[first..first + k];
        let mut demand = std::mem::take(&mut self.demand);
        demand.clear();
        for (&e, &hit) in sel.iter().zip(hits) {
            if let Some(r) = self.residency.as_mut() {
                let online = r.access(m, e);
                debug_assert!(online.is_none_or(|h| h == hit), "online cache disagrees");
            }
            let tier = match (hit, layer.tier[e as usize]) {
                (true, Tier::Gpu) => Tier::Gpu,
                (true, _) => Tier::Ram,
                (false, _) => Tier::Nvme,
            };
            let w = steps::place_work(
                cost,
                machine,
                opts,
                tier,
                Work {
                    flops: layer.expert_flops,
                    bytes: layer.expert_bytes as f64,
                    reuse_flops: 0.0,
                },
            );
            self.post.add(&w);
            self.rec.expert_accesses += 1;
            if hit {
                self.rec.expert_hits += 1;
                continue;
            }
            // A prefetched expert is a hit (in memory, or on its way, only because of the
            // prefetch); the step waits for its reads.
            match self.staged.iter().position(|s| s.0 == e) {
                Some(i) => {
                    let (_, id, share) = self.staged.swap_remove(i);
                    self.rec.prefetch_hits += 1;
                    self.rec.expert_hits += 1;
                    self.rec.bytes_read += share;
                    self.wanted.push(id);
                }
                None => demand.push(e),
            }
        }
        // Prefetches the router did not ask for are wasted (reads cannot be cancelled).
        self.waste_staged();
        if !demand.is_empty() {
            let id = self.read_experts(now, m, &mut demand);
            self.rec.bytes_read += self.tickets[id as usize].bytes;
            self.wanted.push(id);
        }
        self.demand = demand;
        if let Some(c) = self.coact.as_mut() {
            if m > 0 {
                c.learn(m - 1, inp.trace.selection(token, m - 1), sel);
            }
        }
        if m + 1 < n_moe {
            self.prefetch_next(now, token, m, k);
        }
    }

    fn prefetch_next(&mut self, now: Nanos, token: usize, m: usize, k: usize) {
        let inp = self.inp;
        let n_moe = inp.moe.len();
        let next_sel = inp.trace.selection(token, m + 1);
        let next_first = (token * n_moe + m + 1) * k;
        let next_hits = &inp.hits[next_first..next_first + k];
        let mut candidates = std::mem::take(&mut self.predicted);
        match inp.opts.expert_prefetch {
            ExpertPrefetch::None => candidates.clear(),
            ExpertPrefetch::Oracle => {
                candidates.clear();
                candidates.extend(
                    next_sel
                        .iter()
                        .zip(next_hits)
                        .filter(|(_, &h)| !h)
                        .map(|(&e, _)| e),
                );
            }
            ExpertPrefetch::Coactivation => {
                let c = self.coact.as_mut().expect("set for coactivation");
                c.predict(m, inp.trace.selection(token, m), k, &mut candidates);
                // The runtime knows what its cache holds: a predicted expert that is resident
                // is not read. Residency now equals residency at the next layer's access (no
                // access happens in between), which the replay gives for the selected
                // experts. For the others: the plan's tiers where the policy keeps them
                // (static; pinned-lru pins them), else the online replay of the same accesses
                // (lru, lfu, ...: the cache manages all expert memory and a RAM-tier expert
                // is resident only while cached, as in the runtime).
                let pinned = matches!(
                    inp.policy,
                    DecodePolicy::Static
                        | DecodePolicy::Cache {
                            policy: Policy::PinnedLru(_),
                            ..
                        }
                );
                let tiers = &inp.moe[m + 1].tier;
                let residency = self.residency.as_ref();
                // A layer none of whose experts streams is resident whatever the policy.
                let streams = inp.moe[m + 1].streams;
                candidates.retain(|&e| {
                    streams
                        && match next_sel.iter().position(|&s| s == e) {
                            Some(i) => !next_hits[i],
                            None => {
                                let kept = pinned && tiers[e as usize] != Tier::Nvme;
                                !(kept || residency.is_some_and(|r| r.holds(m + 1, e)))
                            }
                        }
                });
            }
        }
        if !candidates.is_empty() {
            // One read of them all, as the runtime submits them (adjacent ones merge).
            let id = self.read_experts(now, m + 1, &mut candidates);
            let n = candidates.len() as u64;
            let bytes = self.tickets[id as usize].bytes;
            self.tickets[id as usize].holders = n as u32;
            for (i, &e) in candidates.iter().enumerate() {
                let share = bytes / n + if i == 0 { bytes % n } else { 0 };
                self.staged.push((e, id, share));
            }
        }
        self.predicted = candidates;
    }

    fn end_step(&mut self, now: Nanos) {
        self.sync(now);
        self.rec.wall_s = secs(now) - self.rec.start_s;
        self.rec.storage_busy_s = secs(self.storage.busy_ns() - self.busy_from);
        self.busy_from = self.storage.busy_ns();
        self.summary.push(&self.rec);
        if self.inp.opts.keep_records {
            self.records.push(self.rec);
        }
        for i in 0..self.wanted.len() {
            self.release(self.wanted[i]);
        }
        self.wanted.clear();
        self.g += 1;
        self.step_layer += 1;
        if self.step_layer == self.per_token {
            self.step_layer = 0;
            self.step_token += 1;
        }
        if self.g < self.n_steps {
            self.start_step(now);
        } else {
            self.waste_staged();
        }
    }
}

impl Engine<'_> {
    /// Drops the staged prefetches, counting their bytes as wasted (and, as the runtime
    /// does, as read by the step that drops them).
    fn waste_staged(&mut self) {
        for i in 0..self.staged.len() {
            let (_, id, share) = self.staged[i];
            self.wasted += share;
            self.rec.bytes_read += share;
            self.release(id);
        }
        self.staged.clear();
    }
}
