//! On-demand weights: fills streamed (NVMe-tier) tensors from disk inside llama.cpp's eval
//! callback, just before the first node that reads them, and gives whole pages back (recycled for
//! later fills: [`crate::recycle`]) to stay within the plan's pool.
//!
//! How the callback is used (ggml_backend_sched_compute_splits, verified by the tests): for each
//! node the scheduler first asks `cb(node, ask=true)`; nodes up to the first one answered `true`
//! run as one batch, the backend is synchronised, then `cb(node, ask=false)` is called. During
//! the asks nothing is running, so a node's streamed inputs are read right there. We answer
//! `true` only for nodes that read a streamed tensor: their batch ends at them, so once it has run
//! (`ask=false`) their tensors may be released again. Everything else runs in large batches.
//!
//! Metrics: with recording on, the callback also asks for each layer's output node (`l_out-N`)
//! and writes one [`TokenLayerRecord`] per (token, layer) from the time between those marks.
//!
//! Reads run on an [`IoPool`] (the plan's queue depth, large tensors split into the plan's
//! request size). Asked for a node in layer L, the streamer submits the node's own tensors, the
//! rest of layer L and layers L+1..L+d (d: the prefetch depth; [`UseOrder::ahead`]) as far as
//! the pool allows, and waits only for the node's own tensors: io_wait is that wait alone.
//!
//! What is evicted, read ahead and waited for is [`policy::dense_pool`]'s decision (the
//! simulator replays the same code); the streamer carries it out.
//!
//! MoE: with [`Streamer::set_moe`] the callback also stops at the router nodes and expert
//! matmuls that [`crate::moe`] handles (per-expert streaming, routing record and replay); expert
//! slices are read through the same pool ([`crate::experts`]).

use crate::direct_io::{DirectFile, DirectReader};
use crate::error::{Error, Result};
use crate::experts::ExpertIo;
use crate::io_pool::{IoPool, IoStats, ReadHandle};
use crate::model::StreamedTensor;
use crate::moe::Moe;
use crate::recycle::{Recycler, StreamedMemory};
use hypura_sys as sys;
use metrics::TokenLayerRecord;
use policy::dense_pool::{Action, DensePool};
use policy::use_order::UseOrder;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

mod fill;

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    /// Tensor fills from disk.
    pub fills: u64,
    /// Streamed-tensor uses served from memory.
    pub hits: u64,
    pub evictions: u64,
    /// Bytes transferred from the device (aligned supersets).
    pub bytes_read: u64,
    /// Seconds the compute thread waited for reads.
    pub io_wait_s: f64,
    /// Largest number of streamed bytes resident at once (whole tensors and expert slices).
    pub peak_resident_bytes: u64,
    /// Of the fills, those read ahead of the node that uses them.
    pub prefetches: u64,
    /// Routed-expert accesses of MoE layers: one per token and selected expert in decode, one
    /// per distinct selected expert in a prompt batch.
    pub expert_accesses: u64,
    /// Of those, accesses whose expert was already in memory (cached, preloaded or prefetched).
    pub expert_hits: u64,
    /// Expert slices read from disk (one per expert and tensor).
    pub expert_fills: u64,
    /// Experts read ahead by co-activation prefetch, and of those, the ones the router then chose.
    pub expert_prefetches: u64,
    pub expert_prefetch_hits: u64,
    /// Bytes of recycled pages held ([`crate::recycle`]): in use or in stock, all of them in the
    /// resident set.
    pub recycled_bytes: u64,
    /// Seconds the compute thread spent moving recycled pages (part of the decode and prompt
    /// time outside `io_wait_s`).
    pub recycle_s: f64,
}

/// How the streamer reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IoOptions {
    /// Requests in flight (I/O threads).
    pub queue_depth: u32,
    /// Reads larger than this are split into requests of this size.
    pub request_bytes: u64,
    /// Layers read ahead of the one computing (0: a layer's tensors are read when it starts).
    pub prefetch_depth: u32,
    /// The model's layer count, where the read-ahead wraps to layer 0 (default: the last
    /// streamed layer + 1).
    pub n_layer: Option<u32>,
    /// What becomes of streamed memory after use.
    pub memory: StreamedMemory,
}

impl Default for IoOptions {
    fn default() -> IoOptions {
        IoOptions {
            queue_depth: 1,
            request_bytes: 8 << 20,
            prefetch_depth: 0,
            n_layer: None,
            memory: StreamedMemory::default(),
        }
    }
}

struct Slot {
    t: StreamedTensor,
    file: usize,
    offset: u64,
    /// Reads in flight, not yet waited for.
    fill: Vec<ReadHandle>,
    /// Recycled pages backing it while resident.
    pages: Option<hw::pages::Slot>,
}

/// The state behind the eval callback. Lives in a Box whose address llama.cpp holds.
pub struct Streamer {
    slots: Vec<Slot>,
    by_tensor: HashMap<usize, usize>,
    files: Vec<Arc<DirectFile>>,
    io: IoPool,
    io_opts: IoOptions,
    /// What is in memory, and the decisions.
    pool: DensePool,
    /// The pool's actions, reused between nodes.
    actions: Vec<Action>,
    /// Bytes of resident tensors, reads in flight included, as the actions carried out so far
    /// leave them.
    resident_bytes: u64,
    /// Memory for fills.
    recycler: Recycler,
    stats: StreamStats,
    error: Option<Error>,
    rec: Recorder,
    /// Router interception (per-expert streaming, routing record/replay), when on.
    moe: Option<Moe>,
    /// Sitting a decode out ([`crate::Context::warm_up`]): no node is asked for.
    paused: bool,
}

/// Per-(token, layer) timing between layer-output marks.
struct Recorder {
    on: bool,
    records: Vec<TokenLayerRecord>,
    run_start: Instant,
    token: u32,
    mark: Instant,
    mark_stats: StreamStats,
    mark_busy_s: f64,
}

const LAYER_MARK: &[u8] = b"l_out-";

impl Streamer {
    /// `locations`: (index into `readers`, absolute file offset) of each streamed tensor's data,
    /// by name.
    pub fn new(
        tensors: &[StreamedTensor],
        locations: &HashMap<String, (usize, u64)>,
        readers: Vec<DirectReader>,
        pool_bytes: u64,
    ) -> Result<Streamer> {
        let mut slots = Vec::with_capacity(tensors.len());
        let mut by_tensor = HashMap::new();
        for t in tensors {
            let (file, offset) = *locations
                .get(&t.name)
                .filter(|(f, _)| *f < readers.len())
                .ok_or_else(|| Error::NotInHeader {
                    tensor: t.name.clone(),
                })?;
            by_tensor.insert(t.tensor as usize, slots.len());
            slots.push(Slot {
                t: t.clone(),
                file,
                offset,
                fill: Vec::new(),
                pages: None,
            });
        }
        let io_opts = IoOptions::default();
        let mut s = Streamer {
            pool: dense_pool(&slots, pool_bytes, io_opts)?,
            actions: Vec::new(),
            slots,
            by_tensor,
            files: readers.iter().map(|r| Arc::clone(r.file())).collect(),
            io: IoPool::new(io_opts.queue_depth, io_opts.request_bytes)?,
            io_opts,
            resident_bytes: 0,
            recycler: Recycler::new(io_opts.memory),
            stats: StreamStats::default(),
            error: None,
            rec: Recorder {
                on: false,
                records: Vec::new(),
                run_start: Instant::now(),
                token: 0,
                mark: Instant::now(),
                mark_stats: StreamStats::default(),
                mark_busy_s: 0.0,
            },
            moe: None,
            paused: false,
        };
        s.stock_pool();
        Ok(s)
    }

    /// Faults in the dense pool's memory as recycled-page stock (tensors not resident, up to
    /// the pool's capacity), so that fills move pages instead of faulting them in.
    fn stock_pool(&mut self) {
        let mut left = self.pool.capacity();
        for slot in &self.slots {
            if left < slot.t.reserved as u64 {
                break;
            }
            // SAFETY: nothing is resident yet (a new recycler's first use); the range is this
            // tensor's own pages and nothing reads them before a fill takes them.
            unsafe { self.recycler.stock(slot.t.data, slot.t.reserved) };
            left -= slot.t.reserved as u64;
        }
    }

    /// A streamer that streams nothing and forces `trace`'s routing on a model of `arch` loaded
    /// without a plan (the eval callback only overwrites the router's top-k ids).
    pub fn replaying(arch: &model::ArchInfo, trace: traces::Trace) -> Result<Streamer> {
        let facts = crate::routing::model_facts(arch);
        let routing = crate::routing::Routing::new(facts, false, Some(trace))?;
        let mut s = Streamer::new(&[], &HashMap::new(), Vec::new(), 0)?;
        s.set_moe(Moe::new(routing, None));
        Ok(s)
    }

    /// Reads with `io` (queue depth, request size, prefetch depth) from now on.
    pub fn with_io(mut self, io: IoOptions) -> Result<Streamer> {
        self.evict_all();
        self.io = IoPool::new(io.queue_depth, io.request_bytes)?;
        self.pool = dense_pool(&self.slots, self.pool.capacity(), io)?;
        // The old recycler releases its stock as it goes.
        self.recycler = Recycler::new(io.memory);
        self.io_opts = io;
        self.stock_pool();
        Ok(self)
    }

    pub fn io_options(&self) -> IoOptions {
        self.io_opts
    }

    /// The I/O pool's counters (requests, most in flight, busy time).
    pub fn io_stats(&self) -> IoStats {
        self.io.stats()
    }

    /// Hook: turns router interception on (see [`crate::moe`]).
    pub fn set_moe(&mut self, moe: Moe) {
        self.moe = Some(moe);
        self.note_peaks();
    }

    pub fn moe(&self) -> Option<&Moe> {
        self.moe.as_ref()
    }

    /// The pool, files and counters, for preloading experts before the first decode.
    pub fn io(&mut self) -> (ExpertIo<'_>, &mut StreamStats) {
        let io = ExpertIo {
            pool: &self.io,
            files: &self.files,
            memory: self.io_opts.memory,
        };
        (io, &mut self.stats)
    }

    /// Updates the peaks of resident streamed bytes and of recycled pages.
    fn note_peaks(&mut self) {
        let resident = self.all_resident_bytes();
        self.stats.peak_resident_bytes = self.stats.peak_resident_bytes.max(resident);
        let experts = self.moe.as_ref().and_then(|m| m.experts.as_ref());
        // Pools never shrink: their sum now is their peak.
        self.stats.recycled_bytes =
            self.recycler.bytes() + experts.map_or(0, |x| x.recycled_bytes());
        self.stats.recycle_s = self.recycler.spent_s() + experts.map_or(0.0, |x| x.recycle_s());
    }

    /// Streamed bytes resident now (whole tensors and expert slices).
    fn all_resident_bytes(&self) -> u64 {
        let experts = self.moe.as_ref().and_then(|m| m.experts.as_ref());
        self.resident_bytes + experts.map_or(0, |x| x.resident_bytes())
    }

    /// A streamer with nothing to stream, for per-layer metrics alone.
    pub fn metrics_only() -> Streamer {
        let mut s =
            Streamer::new(&[], &HashMap::new(), Vec::new(), 0).expect("no tensors cannot fail");
        s.record_layers(true);
        s
    }

    /// Pauses or resumes the streamer: paused, llama.cpp asks it for nothing, so it reads,
    /// records and routes nothing.
    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Turns per-(token, layer) records on or off (off by default: each layer mark is a sync).
    pub fn record_layers(&mut self, on: bool) {
        self.rec.on = on;
        self.rec.run_start = Instant::now();
    }

    /// The records so far.
    pub fn records(&self) -> &[TokenLayerRecord] {
        &self.rec.records
    }

    /// Starts the decode step of token `token` (prompt tokens of one batch share an index).
    pub fn begin_token(&mut self, token: u32) {
        // Nothing runs between decodes: pins left by an aborted decode go.
        self.on_done();
        self.rec.token = token;
        self.rec.mark = Instant::now();
        self.rec.mark_stats = self.stats;
        // The pool was busy before the token too (loading, an earlier run): not this token's.
        self.rec.mark_busy_s = self.io.stats().busy_s;
    }

    /// Ends the decode step: the work after the last layer (output head) becomes a `layer: None`
    /// record.
    pub fn end_token(&mut self) {
        if let Some(Err(e)) = self.moe.as_mut().map(|m| m.end_decode()) {
            self.error.get_or_insert(e);
        }
        if self.rec.on {
            self.push_record(None);
        }
    }

    fn push_record(&mut self, layer: Option<u32>) {
        let now = Instant::now();
        let r = &mut self.rec;
        let wall_s = (now - r.mark).as_secs_f64();
        let io_wait_s = self.stats.io_wait_s - r.mark_stats.io_wait_s;
        let busy_s = self.io.stats().busy_s;
        r.records.push(TokenLayerRecord {
            token: r.token,
            layer,
            start_s: (r.mark - r.run_start).as_secs_f64(),
            wall_s,
            compute_s: (wall_s - io_wait_s).max(0.0),
            io_wait_s,
            link_s: 0.0,
            bytes_read: self.stats.bytes_read - r.mark_stats.bytes_read,
            bytes_linked: 0,
            // A step's uses are at most top-k per token of one ubatch: far below u32::MAX.
            expert_hits: (self.stats.expert_hits - r.mark_stats.expert_hits) as u32,
            expert_accesses: (self.stats.expert_accesses - r.mark_stats.expert_accesses) as u32,
            prefetch_hits: (self.stats.expert_prefetch_hits - r.mark_stats.expert_prefetch_hits)
                as u32,
            storage_busy_s: busy_s - r.mark_busy_s,
        });
        r.mark = now;
        r.mark_stats = self.stats;
        r.mark_busy_s = busy_s;
    }

    /// Whether any weights are streamed, whole tensors or expert slices (false for a streamer
    /// that only records metrics or routing).
    pub fn streams_weights(&self) -> bool {
        !self.slots.is_empty() || self.moe.as_ref().is_some_and(|m| m.experts.is_some())
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    /// The first error a callback hit; the decode that saw it must be treated as failed.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// `ask` phase for `node`: make its streamed inputs resident; true when it has any.
    fn on_ask(&mut self, node: *const sys::ggml_tensor) -> bool {
        if self.error.is_some() {
            return false;
        }
        let mut uses = self.rec.on && layer_mark(node).is_some();
        if let Some(m) = self.moe.as_mut() {
            let io = ExpertIo {
                pool: &self.io,
                files: &self.files,
                memory: self.io_opts.memory,
            };
            match m.on_ask(node, io, &mut self.stats) {
                Ok(ask) => uses |= ask,
                Err(e) => {
                    self.error = Some(e);
                    return true;
                }
            }
            self.note_peaks();
        }
        let mut need = Vec::new();
        // SAFETY: llama.cpp passes a valid graph node; srcs are valid or NULL.
        let srcs = unsafe { (*node).src };
        for src in srcs.iter().copied().filter(|s| !s.is_null()) {
            let base = base_tensor(src);
            if let Some(&i) = self.by_tensor.get(&(base as usize)) {
                uses = true;
                if !need.contains(&i) {
                    need.push(i);
                }
            }
        }
        if !need.is_empty() {
            if let Err(e) = self.ensure(&need) {
                self.error = Some(e);
            }
        }
        uses
    }

    /// The batch ending at `node`, which we asked for, has run.
    fn on_node_done(&mut self, node: *mut sys::ggml_tensor) {
        if let Some(m) = self.moe.as_mut() {
            let io = ExpertIo {
                pool: &self.io,
                files: &self.files,
                memory: self.io_opts.memory,
            };
            if let Err(e) = m.on_done(node, io, &mut self.stats) {
                self.error.get_or_insert(e);
            }
        }
        if self.rec.on {
            if let Some(layer) = node_layer(node, LAYER_MARK) {
                self.push_record(Some(layer));
            }
        }
        self.on_done();
    }

    /// Unpins: the pinned tensors' node has run, they may go again.
    fn on_done(&mut self) {
        self.pool.done();
    }

    /// Releases every streamed tensor's memory.
    pub fn evict_all(&mut self) {
        // Reads in flight finish first (their errors no longer matter).
        if let Some(x) = self.moe.as_mut().and_then(|m| m.experts.as_mut()) {
            let _ = x.wait_all(&mut self.stats);
        }
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.pool.evict_all(&mut actions);
        if self.carry_out(&actions).is_err() {
            self.release_everything();
        }
        self.actions = actions;
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.on_done();
        self.evict_all();
    }
}

/// The pool over `slots` (layers from `blk.N.` names), reading as `io` says.
fn dense_pool(slots: &[Slot], pool_bytes: u64, io: IoOptions) -> Result<DensePool> {
    let layers: Vec<Option<u32>> = slots
        .iter()
        .map(|s| UseOrder::layer_of(&s.t.name))
        .collect();
    let offsets: Vec<u64> = slots.iter().map(|s| s.offset).collect();
    let n_layer = io
        .n_layer
        .unwrap_or_else(|| layers.iter().flatten().max().map_or(0, |l| l + 1));
    let order = UseOrder::new(&layers, &offsets, n_layer);
    let reserved = slots.iter().map(|s| s.t.reserved as u64).collect();
    DensePool::new(reserved, order, pool_bytes, io.prefetch_depth).map_err(|e| {
        Error::PoolTooSmall {
            pool: e.pool,
            need: e.need,
            pinned: e.pinned,
            tensor: slots[e.slot].t.name.clone(),
        }
    })
}

/// N for a node named `l_out-N`.
fn layer_mark(node: *const sys::ggml_tensor) -> Option<u32> {
    node_layer(node, LAYER_MARK)
}

/// N for a node named `<prefix>N` (llama.cpp names per-layer nodes `<name>-<layer>`).
pub(crate) fn node_layer(node: *const sys::ggml_tensor, prefix: &[u8]) -> Option<u32> {
    // SAFETY: ggml names are NUL-terminated within the fixed-size array.
    let name = unsafe { std::ffi::CStr::from_ptr((*node).name.as_ptr()) }.to_bytes();
    let digits = name.strip_prefix(prefix)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The tensor owning `t`'s data: its view source, or itself.
pub(crate) fn base_tensor(t: *mut sys::ggml_tensor) -> *mut sys::ggml_tensor {
    // SAFETY: llama.cpp passes valid graph tensors.
    unsafe {
        if (*t).view_src.is_null() {
            t
        } else {
            (*t).view_src
        }
    }
}

/// llama.cpp's `cb_eval`; `user_data` is a `*mut Streamer`.
pub(crate) unsafe extern "C" fn eval_callback(
    t: *mut sys::ggml_tensor,
    ask: bool,
    user_data: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: the context that registered us holds the Streamer alive and unaliased during decode.
    let s = unsafe { &mut *(user_data as *mut Streamer) };
    if s.paused {
        // Ask for nothing; let every node's compute go on.
        return !ask;
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if ask {
            s.on_ask(t)
        } else {
            s.on_node_done(t);
            true
        }
    }));
    r.unwrap_or_else(|_| {
        s.error = Some(Error::CallbackPanic);
        true
    })
}

/// llama.cpp's `abort_callback`: stops the decode once a fill has failed.
pub(crate) unsafe extern "C" fn abort_callback(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: as for eval_callback.
    unsafe { (*(user_data as *const Streamer)).failed() }
}
