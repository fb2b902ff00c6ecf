//! On-demand weights: fills streamed (NVMe-tier) tensors from disk inside llama.cpp's eval
//! callback, just before the first node that reads them, and releases whole pages to stay within
//! the plan's pool.
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
//! Eviction: the node about to run keeps its tensors (pinned); among the others the most recently
//! used goes first. A decode step reads the layers in the same order every token, and for such a
//! cyclic order evicting the most recently used tensor is what Belady's optimal policy does.

use crate::direct_io::DirectReader;
use crate::error::{Error, Result};
use crate::model::StreamedTensor;
use hypura_sys as sys;
use sim::metrics::TokenLayerRecord;
use std::collections::HashMap;
use std::time::Instant;

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
    /// Largest number of streamed bytes resident at once.
    pub peak_resident_bytes: u64,
}

struct Slot {
    t: StreamedTensor,
    file: usize,
    offset: u64,
    resident: bool,
    pinned: bool,
    last_use: u64,
}

/// The state behind the eval callback. Lives in a Box whose address llama.cpp holds.
pub struct Streamer {
    slots: Vec<Slot>,
    by_tensor: HashMap<usize, usize>,
    readers: Vec<DirectReader>,
    pool_bytes: u64,
    resident_bytes: u64,
    tick: u64,
    pinned: Vec<usize>,
    stats: StreamStats,
    error: Option<Error>,
    rec: Recorder,
}

/// Per-(token, layer) timing between layer-output marks.
struct Recorder {
    on: bool,
    records: Vec<TokenLayerRecord>,
    run_start: Instant,
    token: u32,
    mark: Instant,
    mark_stats: StreamStats,
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
                .ok_or_else(|| {
                    Error::Placement(format!(
                        "streamed tensor {} is not in the GGUF header",
                        t.name
                    ))
                })?;
            if t.reserved as u64 > pool_bytes {
                return Err(Error::PoolTooSmall {
                    pool: pool_bytes,
                    need: t.reserved as u64,
                    pinned: 0,
                    tensor: t.name.clone(),
                });
            }
            by_tensor.insert(t.tensor as usize, slots.len());
            slots.push(Slot {
                t: t.clone(),
                file,
                offset,
                resident: false,
                pinned: false,
                last_use: 0,
            });
        }
        Ok(Streamer {
            slots,
            by_tensor,
            readers,
            pool_bytes,
            resident_bytes: 0,
            tick: 0,
            pinned: Vec::new(),
            stats: StreamStats::default(),
            error: None,
            rec: Recorder {
                on: false,
                records: Vec::new(),
                run_start: Instant::now(),
                token: 0,
                mark: Instant::now(),
                mark_stats: StreamStats::default(),
            },
        })
    }

    /// A streamer with nothing to stream, for per-layer metrics alone.
    pub fn metrics_only() -> Streamer {
        let mut s =
            Streamer::new(&[], &HashMap::new(), Vec::new(), 0).expect("no tensors cannot fail");
        s.record_layers(true);
        s
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
        self.rec.token = token;
        self.rec.mark = Instant::now();
        self.rec.mark_stats = self.stats;
    }

    /// Ends the decode step: the work after the last layer (output head) becomes a `layer: None`
    /// record.
    pub fn end_token(&mut self) {
        if self.rec.on {
            self.push_record(None);
        }
    }

    fn push_record(&mut self, layer: Option<u32>) {
        let now = Instant::now();
        let r = &mut self.rec;
        let wall_s = (now - r.mark).as_secs_f64();
        let io_wait_s = self.stats.io_wait_s - r.mark_stats.io_wait_s;
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
            expert_hits: 0,
            expert_accesses: 0,
            prefetch_hits: 0,
            // Reads are synchronous: the device is busy exactly while compute waits.
            storage_busy_s: io_wait_s,
        });
        r.mark = now;
        r.mark_stats = self.stats;
    }

    /// Whether any tensor is streamed (false for a metrics-only streamer).
    pub fn streams_weights(&self) -> bool {
        !self.slots.is_empty()
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
        // SAFETY: llama.cpp passes a valid graph node; srcs are valid or NULL.
        let srcs = unsafe { (*node).src };
        for src in srcs.iter().copied().filter(|s| !s.is_null()) {
            // SAFETY: as above.
            let base = unsafe {
                if (*src).view_src.is_null() {
                    src
                } else {
                    (*src).view_src
                }
            };
            if let Some(&i) = self.by_tensor.get(&(base as usize)) {
                uses = true;
                if let Err(e) = self.ensure(i) {
                    self.error = Some(e);
                    return true;
                }
            }
        }
        uses
    }

    /// The batch ending at `node`, which we asked for, has run.
    fn on_node_done(&mut self, node: *const sys::ggml_tensor) {
        if self.rec.on {
            if let Some(layer) = layer_mark(node) {
                self.push_record(Some(layer));
            }
        }
        self.on_done();
    }

    /// Unpins: the pinned tensors' node has run, they may go again.
    fn on_done(&mut self) {
        for i in self.pinned.drain(..) {
            self.slots[i].pinned = false;
        }
    }

    fn ensure(&mut self, i: usize) -> Result<()> {
        self.tick += 1;
        let tick = self.tick;
        let slot = &mut self.slots[i];
        slot.last_use = tick;
        if !slot.pinned {
            slot.pinned = true;
            self.pinned.push(i);
        }
        if slot.resident {
            self.stats.hits += 1;
            return Ok(());
        }
        let need = slot.t.reserved as u64;
        while self.resident_bytes + need > self.pool_bytes {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.resident && !s.pinned)
                .max_by_key(|(_, s)| s.last_use)
                .map(|(j, _)| j);
            match victim {
                Some(j) => self.evict(j),
                None => {
                    return Err(Error::PoolTooSmall {
                        pool: self.pool_bytes,
                        need,
                        pinned: self.resident_bytes,
                        tensor: self.slots[i].t.name.clone(),
                    })
                }
            }
        }
        let slot = &mut self.slots[i];
        let start = Instant::now();
        // SAFETY: the slot's reserved pages belong to this tensor alone and nothing is running.
        let dst = unsafe { std::slice::from_raw_parts_mut(slot.t.data, slot.t.bytes) };
        let transferred = self.readers[slot.file].read(&slot.t.name, slot.offset, dst)?;
        slot.resident = true;
        self.stats.io_wait_s += start.elapsed().as_secs_f64();
        self.stats.bytes_read += transferred;
        self.stats.fills += 1;
        self.resident_bytes += need;
        self.stats.peak_resident_bytes = self.stats.peak_resident_bytes.max(self.resident_bytes);
        Ok(())
    }

    fn evict(&mut self, j: usize) {
        let slot = &mut self.slots[j];
        // SAFETY: the range is whole pages reserved for this tensor only; it is not in use.
        unsafe {
            libc::madvise(slot.t.data.cast(), slot.t.reserved, libc::MADV_DONTNEED);
        }
        slot.resident = false;
        self.resident_bytes -= slot.t.reserved as u64;
        self.stats.evictions += 1;
    }

    /// Releases every streamed tensor's memory.
    pub fn evict_all(&mut self) {
        for j in 0..self.slots.len() {
            if self.slots[j].resident && !self.slots[j].pinned {
                self.evict(j);
            }
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.on_done();
        self.evict_all();
    }
}

/// N for a node named `l_out-N`.
fn layer_mark(node: *const sys::ggml_tensor) -> Option<u32> {
    // SAFETY: ggml names are NUL-terminated within the fixed-size array.
    let name = unsafe { std::ffi::CStr::from_ptr((*node).name.as_ptr()) }.to_bytes();
    let digits = name.strip_prefix(LAYER_MARK)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// llama.cpp's `cb_eval`; `user_data` is a `*mut Streamer`.
pub(crate) unsafe extern "C" fn eval_callback(
    t: *mut sys::ggml_tensor,
    ask: bool,
    user_data: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: the context that registered us holds the Streamer alive and unaliased during decode.
    let s = unsafe { &mut *(user_data as *mut Streamer) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if ask {
            s.on_ask(t)
        } else {
            s.on_node_done(t);
            true
        }
    }));
    r.unwrap_or_else(|_| {
        s.error = Some(Error::Placement("panic in the eval callback".into()));
        true
    })
}

/// llama.cpp's `abort_callback`: stops the decode once a fill has failed.
pub(crate) unsafe extern "C" fn abort_callback(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: as for eval_callback.
    unsafe { (*(user_data as *const Streamer)).failed() }
}
