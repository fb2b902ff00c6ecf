//! Per-expert residency of streamed merged expert tensors (`blk.N.ffn_{gate,up,down}_exps`):
//! fills only the selected experts' slices with O_DIRECT reads, keeps an expert cache driven by
//! sim's policies ([`policy::cache::OnlineCache`]), preloads the plan's RAM experts for good, and
//! gives memory back page by page (recycled for later fills: [`crate::recycle`]) without touching
//! a neighbour that is still resident.
//!
//! Lifecycle of one MoE layer's step: the router's selection arrives ([`Experts::select`]):
//! every selected (token, expert) is one cache access, in router order; what the cache evicts is
//! released at once unless the current layer needs it, in which case it stays until its matmul
//! has run. Then the reads of every selected expert the cache keeps are submitted to the
//! [`IoPool`] for all of the layer's tensors at once, so the up and down slices arrive while the
//! gate matmul runs (those bytes stay resident anyway, so reading them early costs no memory).
//! At each expert matmul's ask ([`Experts::fill`]) the rest of that tensor's needed slices
//! (selected but not cached: read only for this matmul) are submitted and the tensor's reads are
//! waited for; after it ([`Experts::after_matmul`]) slices neither cached nor preloaded are
//! released. Adjacent slices are one read, split into the pool's request size. The node about to
//! run never loses its experts, and no slice is released while a read into it is in flight.

use crate::direct_io::{DirectFile, PAGE};
use crate::error::{Error, Result};
use crate::io_pool::{IoPool, ReadHandle};
use crate::model::StreamedTensor;
use crate::recycle::{Recycler, StreamedMemory};
use crate::stream::StreamStats;
use plan::PlacementError;
use policy::cache::{CacheConfig, Capacity, ExpertBytes, OnlineCache, Partition, Policy};
use policy::prefetch::{Coactivation, ExpertPrefetch};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Where expert slices are read from: the pool and the model's files (indexed by
/// [`ExpertTensor::file`]).
#[derive(Clone, Copy)]
pub struct ExpertIo<'a> {
    pub pool: &'a IoPool,
    pub files: &'a [Arc<DirectFile>],
    /// What becomes of expert memory after use (read when the experts are set up).
    pub memory: StreamedMemory,
}

/// One streamed merged expert tensor and where its data is in the model file.
#[derive(Debug, Clone)]
pub struct ExpertTensor {
    pub t: StreamedTensor,
    /// Index of the reader (model file) holding it.
    pub file: usize,
    /// Absolute file offset of its data.
    pub offset: u64,
    /// Transformer block index.
    pub layer: u32,
    /// Bytes of one expert's slice (`nb[2]`).
    pub stride: usize,
}

struct Slices {
    x: ExpertTensor,
    layer_pos: usize,
    /// Slices holding the file's bytes now, or once `in_flight` completes.
    loaded: Vec<bool>,
    /// Reads submitted and not yet waited for.
    in_flight: Vec<ReadHandle>,
    /// Slices are whole pages: each loaded one has recycled pages of its own (`pages`);
    /// otherwise neighbours share pages and a release gives back only unshared ones.
    whole_pages: bool,
    pages: Vec<Option<hw::pages::Slot>>,
}

struct Layer {
    tensors: Vec<usize>,
    /// Preloaded for good (the plan's RAM/GPU experts of a split tensor).
    permanent: Vec<bool>,
    /// Selected by the current step.
    needed: Vec<bool>,
    /// One cached expert's bytes (all its tensors' slices).
    expert_bytes: u64,
}

/// Per-expert streaming state of every MoE layer with a streamed expert tensor.
pub struct Experts {
    slices: Vec<Slices>,
    by_tensor: HashMap<usize, usize>,
    layers: Vec<Layer>,
    /// MoE layer position of each transformer block (None: dense block).
    layer_pos: HashMap<u32, usize>,
    n_expert: usize,
    cache: OnlineCache,
    resident_bytes: u64,
    permanent_bytes: u64,
    prefetch: Option<Prefetch>,
    /// Memory for slices that are whole pages.
    recycler: Recycler,
}

/// Expert prefetch (sim's [`ExpertPrefetch`], same timing): after MoE layer `m` routes a
/// decode token, experts of layer `m + 1` are read while layer `m` computes. They stay outside
/// the cache until the router of `m + 1` chooses them (then they are cache accesses like any
/// other, without a read) or not (then they are released): at most top-k experts beyond the
/// cache's bytes.
struct Prefetch {
    predictor: Predictor,
    top_k: usize,
    /// Experts read ahead for a MoE position, not selected or dropped yet.
    staged: Option<(usize, Vec<u16>)>,
}

enum Predictor {
    /// The experts that most often followed this selection in earlier tokens (sim's predictor,
    /// learned online).
    Coactivation {
        coact: Coactivation,
        /// The previous decode selection: (MoE position, experts).
        last: Option<(usize, Vec<u16>)>,
    },
    /// The next layer's actual selection, known when routing is replayed from a trace.
    Oracle,
}

impl Experts {
    /// `moe_layers`: block indices of the model's MoE layers; `permanent`: per block index,
    /// experts to preload (now) and never evict. `cache_bytes` is all the expert memory, as the
    /// plan's `expert_cache.bytes`: the permanent experts of streaming layers take their share
    /// first and the cache holds the rest, one cache for all layers (per layer when their
    /// expert sizes differ).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tensors: Vec<ExpertTensor>,
        moe_layers: &[u32],
        n_expert: usize,
        permanent: &HashMap<u32, Vec<u32>>,
        policy: Policy,
        cache_bytes: u64,
        io: ExpertIo,
        stats: &mut StreamStats,
    ) -> Result<Experts> {
        let layer_pos: HashMap<u32, usize> = moe_layers
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i))
            .collect();
        let mut layers: Vec<Layer> = moe_layers
            .iter()
            .map(|_| Layer {
                tensors: Vec::new(),
                permanent: vec![false; n_expert],
                needed: vec![false; n_expert],
                expert_bytes: 0,
            })
            .collect();
        let mut slices = Vec::with_capacity(tensors.len());
        let mut by_tensor = HashMap::new();
        for x in tensors {
            let pos = *layer_pos
                .get(&x.layer)
                .ok_or_else(|| Error::ExpertTensorLayer {
                    tensor: x.t.name.clone(),
                    layer: x.layer,
                })?;
            if x.stride == 0 || x.stride * n_expert != x.t.bytes || x.file >= io.files.len() {
                return Err(Error::ExpertSlices {
                    tensor: x.t.name.clone(),
                    bytes: x.t.bytes as u64,
                    n_expert: n_expert as u64,
                    stride: x.stride as u64,
                });
            }
            layers[pos].tensors.push(slices.len());
            layers[pos].expert_bytes += x.stride as u64;
            by_tensor.insert(x.t.tensor as usize, slices.len());
            let whole_pages = x.stride % PAGE == 0 && x.t.data as usize % PAGE == 0;
            slices.push(Slices {
                x,
                layer_pos: pos,
                loaded: vec![false; n_expert],
                in_flight: Vec::new(),
                whole_pages,
                pages: vec![None; n_expert],
            });
        }
        // Layers without a streamed tensor take the largest size, so the cache's byte capacity
        // resolves; none of their experts is ever accessed.
        let largest = layers
            .iter()
            .map(|l| l.expert_bytes)
            .max()
            .unwrap_or(0)
            .max(1);
        let sizes: Vec<u64> = layers
            .iter()
            .map(|l| {
                if l.expert_bytes == 0 {
                    largest
                } else {
                    l.expert_bytes
                }
            })
            .collect();
        let partition = if sizes.iter().all(|&s| s == largest) {
            Partition::Global
        } else {
            Partition::PerLayer
        };
        let bytes = ExpertBytes::per_layer_sizes(sizes)?;
        let permanent_share: u64 = permanent
            .iter()
            .filter_map(|(block, ids)| {
                let pos = *layer_pos.get(block)?;
                Some(ids.len() as u64 * layers[pos].expert_bytes)
            })
            .sum();
        let config = CacheConfig {
            policy,
            partition,
            capacity: Capacity::Bytes(cache_bytes.saturating_sub(permanent_share)),
        };
        let cache = OnlineCache::new(layers.len(), n_expert, &config, &bytes)?;
        let mut experts = Experts {
            slices,
            by_tensor,
            layers,
            layer_pos,
            n_expert,
            cache,
            resident_bytes: 0,
            permanent_bytes: 0,
            prefetch: None,
            recycler: Recycler::new(io.memory),
        };

        for (&block, ids) in permanent {
            let Some(&pos) = experts.layer_pos.get(&block) else {
                continue;
            };
            for &e in ids {
                let e = e as usize;
                if e >= n_expert {
                    return Err(PlacementError::ExpertOutOfRange {
                        layer: block,
                        id: e as u32,
                        n_expert: n_expert as u32,
                    }
                    .into());
                }
                experts.layers[pos].permanent[e] = true;
            }
            for i in experts.layers[pos].tensors.clone() {
                let want = experts.layers[pos].permanent.clone();
                experts.submit(i, &want, io, stats);
            }
        }
        experts.wait_all(stats)?;
        experts.permanent_bytes = experts.resident_bytes;
        experts.stock_cache(cache_bytes.saturating_sub(permanent_share));
        Ok(experts)
    }

    /// Faults in up to `bytes` of not-loaded whole-page slices as recycled-page stock, so that
    /// the cache's first fills move pages instead of faulting them in during a step.
    fn stock_cache(&mut self, bytes: u64) {
        let mut left = bytes;
        for s in self.slices.iter().filter(|s| s.whole_pages) {
            for e in 0..self.n_expert {
                if left < s.x.stride as u64 {
                    return;
                }
                if s.loaded[e] {
                    continue;
                }
                // SAFETY: a not-loaded slice's own pages; nothing reads it before a fill takes
                // it (a fill of this very slice finds its pages in place).
                unsafe {
                    self.recycler
                        .stock(s.x.t.data.add(e * s.x.stride), s.x.stride)
                };
                left -= s.x.stride as u64;
            }
        }
    }

    /// Whether `tensor` (a graph source's base tensor) is one of ours.
    pub fn owns(&self, tensor: usize) -> bool {
        self.by_tensor.contains_key(&tensor)
    }

    /// Bytes resident now: preloaded, cached and in-use slices.
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    /// Bytes of recycled pages held (attached or free).
    pub fn recycled_bytes(&self) -> u64 {
        self.recycler.bytes()
    }

    /// Seconds spent moving recycled pages.
    pub fn recycle_s(&self) -> f64 {
        self.recycler.spent_s()
    }

    /// Bytes of the preloaded (never evicted) experts.
    pub fn permanent_bytes(&self) -> u64 {
        self.permanent_bytes
    }

    /// Sets expert prefetch for a model routing `top_k` experts per token. The oracle reads
    /// what [`Experts::select`] is told comes next, so it needs replayed routing.
    pub fn set_prefetch(&mut self, kind: ExpertPrefetch, top_k: usize) {
        let predictor = match kind {
            ExpertPrefetch::None => {
                self.prefetch = None;
                return;
            }
            ExpertPrefetch::Coactivation => Predictor::Coactivation {
                coact: Coactivation::new(self.layers.len(), self.n_expert),
                last: None,
            },
            ExpertPrefetch::Oracle => Predictor::Oracle,
        };
        self.prefetch = Some(Prefetch {
            predictor,
            top_k,
            staged: None,
        });
    }

    /// Cache capacity in experts, per partition.
    pub fn cache_capacities(&self) -> &[u32] {
        self.cache.capacities()
    }

    /// The router of block `layer` chose `ids` (`top_k` per token, router order, tokens in
    /// order): one cache access each; releases what the cache evicted, then submits the reads of
    /// the selected experts the cache keeps, for every tensor of the layer. `upcoming`: the next
    /// MoE layer's selection when it is known (replayed routing), for the oracle prefetch.
    pub fn select(
        &mut self,
        layer: u32,
        ids: &[u16],
        upcoming: Option<&[u16]>,
        io: ExpertIo,
        stats: &mut StreamStats,
    ) -> Result<()> {
        let Some(&pos) = self.layer_pos.get(&layer) else {
            return Ok(());
        };
        if self.layers[pos].tensors.is_empty() {
            // Nothing of this layer streams: every expert is resident.
            stats.expert_accesses += ids.len() as u64;
            stats.expert_hits += ids.len() as u64;
            return Ok(());
        }
        // Reads of a layer whose matmuls never asked (none expected) land before any release.
        self.wait_all(stats)?;
        self.layers[pos].needed.fill(false);
        for &e in ids {
            let e = usize::from(e);
            // A batch needs each expert once: its first access is the one counted (and it is
            // read if that access misses); later ones only refresh the cache's recency.
            let first = !std::mem::replace(&mut self.layers[pos].needed[e], true);
            stats.expert_accesses += u64::from(first);
            if self.layers[pos].permanent[e] {
                stats.expert_hits += u64::from(first);
                continue;
            }
            let a = self.cache.access(pos, e as u16);
            stats.expert_hits += u64::from(first && a.hit);
            for (lp, victim) in a.evicted {
                let v = usize::from(victim);
                stats.evictions += 1;
                if lp == pos && self.layers[pos].needed[v] {
                    continue; // released after its matmul
                }
                for i in self.layers[lp].tensors.clone() {
                    self.release(i, v);
                }
            }
        }
        self.drop_staged(pos, stats);
        let kept: Vec<bool> = (0..self.n_expert)
            .map(|e| self.layers[pos].needed[e] && self.cache.is_cached(pos, e as u16))
            .collect();
        for i in self.layers[pos].tensors.clone() {
            self.submit(i, &kept, io, stats);
        }
        self.prefetch_next(pos, ids, upcoming, io, stats);
        Ok(())
    }

    /// Settles experts read ahead: those of `pos` the router chose count as prefetch hits (the
    /// cache now holds them, or their matmuls release them); the others, and any left from an
    /// earlier step, are released unless cached or preloaded.
    fn drop_staged(&mut self, pos: usize, stats: &mut StreamStats) {
        let Some((at, staged)) = self.prefetch.as_mut().and_then(|p| p.staged.take()) else {
            return;
        };
        for e in staged {
            let e = usize::from(e);
            if at == pos && self.layers[pos].needed[e] {
                // In memory (or on its way) only because of the prefetch: the cache missed it,
                // since a prefetch reads only experts that are not resident.
                stats.expert_prefetch_hits += 1;
                stats.expert_hits += 1;
            } else if !self.layers[at].permanent[e] && !self.cache.is_cached(at, e as u16) {
                for i in self.layers[at].tensors.clone() {
                    self.release(i, e);
                }
            }
        }
    }

    /// Learns from a decode step's selection at `pos` and reads ahead the predicted experts of
    /// the next MoE layer (prompt batches neither learn nor prefetch).
    fn prefetch_next(
        &mut self,
        pos: usize,
        ids: &[u16],
        upcoming: Option<&[u16]>,
        io: ExpertIo,
        stats: &mut StreamStats,
    ) {
        let Some(mut p) = self.prefetch.take() else {
            return;
        };
        let decode = ids.len() <= p.top_k;
        let next = pos + 1;
        let mut predicted = Vec::new();
        match &mut p.predictor {
            Predictor::Coactivation { last, .. } if !decode => *last = None,
            Predictor::Coactivation { coact, last } => {
                if let Some((m, prev)) = last.take() {
                    if m + 1 == pos {
                        coact.learn(m, &prev, ids);
                    }
                }
                *last = Some((pos, ids.to_vec()));
                if next < self.layers.len() {
                    coact.predict(pos, ids, p.top_k, &mut predicted);
                }
            }
            Predictor::Oracle if decode => predicted.extend_from_slice(upcoming.unwrap_or(&[])),
            Predictor::Oracle => {}
        }
        if !predicted.is_empty()
            && next < self.layers.len()
            && !self.layers[next].tensors.is_empty()
        {
            let first = self.layers[next].tensors[0];
            predicted.retain(|&e| !self.slices[first].loaded[usize::from(e)]);
            let mut want = vec![false; self.n_expert];
            for &e in &predicted {
                want[usize::from(e)] = true;
            }
            for i in self.layers[next].tensors.clone() {
                self.submit(i, &want, io, stats);
            }
            stats.expert_prefetches += predicted.len() as u64;
            p.staged = Some((next, predicted));
        }
        self.prefetch = Some(p);
    }

    /// Before the matmul over `tensor`: reads the needed slices that are not resident and waits
    /// for every read into the tensor.
    pub fn fill(&mut self, tensor: usize, io: ExpertIo, stats: &mut StreamStats) -> Result<()> {
        let i = self.by_tensor[&tensor];
        let pos = self.slices[i].layer_pos;
        let want = self.layers[pos].needed.clone();
        self.submit(i, &want, io, stats);
        self.wait(i, stats)
    }

    /// After the matmul over `tensor`: releases slices that were only needed for it.
    pub fn after_matmul(&mut self, tensor: usize, stats: &mut StreamStats) -> Result<()> {
        let i = self.by_tensor[&tensor];
        // Its reads were waited for at the ask; a failed decode may not have asked.
        self.wait(i, stats)?;
        let pos = self.slices[i].layer_pos;
        for e in 0..self.n_expert {
            if self.slices[i].loaded[e]
                && !self.layers[pos].permanent[e]
                && !self.cache.is_cached(pos, e as u16)
            {
                self.release(i, e);
            }
        }
        Ok(())
    }

    /// Waits for every read in flight (before the memory they write into may go).
    pub fn wait_all(&mut self, stats: &mut StreamStats) -> Result<()> {
        let mut first = Ok(());
        for i in 0..self.slices.len() {
            let r = self.wait(i, stats);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Waits for tensor `i`'s reads in flight, all of them even when one fails.
    fn wait(&mut self, i: usize, stats: &mut StreamStats) -> Result<()> {
        if self.slices[i].in_flight.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut first = Ok(());
        for h in self.slices[i].in_flight.drain(..) {
            match h.wait() {
                Ok(n) => stats.bytes_read += n,
                Err(e) if first.is_ok() => first = Err(e),
                Err(_) => {}
            }
        }
        stats.io_wait_s += start.elapsed().as_secs_f64();
        first
    }

    /// Submits reads of every slice of tensor `i` that `want` marks and is not loaded (runs of
    /// adjacent slices are one read); they count as loaded from now on.
    fn submit(&mut self, i: usize, want: &[bool], io: ExpertIo, stats: &mut StreamStats) {
        let n = self.n_expert;
        let mut e = 0;
        while e < n {
            if !want[e] || self.slices[i].loaded[e] {
                e += 1;
                continue;
            }
            let first = e;
            while e < n && want[e] && !self.slices[i].loaded[e] {
                e += 1;
            }
            let s = &mut self.slices[i];
            let stride = s.x.stride;
            if s.whole_pages {
                for o in first..e {
                    // SAFETY: slice `o` is whole pages of this tensor's reservation, not loaded:
                    // nothing reads it and no read into it is in flight.
                    s.pages[o] = unsafe { self.recycler.take(s.x.t.data.add(o * stride), stride) };
                }
            }
            let at = s.x.offset + (first * stride) as u64;
            // SAFETY: [first, e) slices lie inside the tensor's reserved memory. Until the
            // handles are waited for (`wait`, before any release of this tensor and before the
            // experts or the pool go) nothing else touches these bytes: llama.cpp reads them only
            // after the fill's wait, and workers copy exactly the requested range out of their
            // aligned bounce buffers, so a neighbour sharing a page is never written.
            let handles = unsafe {
                io.pool.submit_read(
                    &io.files[s.x.file],
                    &s.x.t.name,
                    at,
                    s.x.t.data.add(first * stride),
                    (e - first) * stride,
                )
            };
            s.in_flight.extend(handles);
            s.loaded[first..e].fill(true);
            stats.expert_fills += (e - first) as u64;
            self.resident_bytes += ((e - first) * stride) as u64;
        }
    }

    /// Drops slice `e` of tensor `i`: releases the pages that no other loaded slice overlaps.
    fn release(&mut self, i: usize, e: usize) {
        let s = &mut self.slices[i];
        if !s.loaded[e] {
            return;
        }
        s.loaded[e] = false;
        self.resident_bytes -= s.x.stride as u64;
        if s.whole_pages {
            // SAFETY: slice `e`'s own pages; not in use and no read into them in flight.
            unsafe {
                self.recycler.give_back(
                    s.x.t.data.add(e * s.x.stride),
                    s.x.stride,
                    s.pages[e].take(),
                );
            }
            return;
        }
        let (first, end) = releasable_pages(&s.loaded, s.x.stride, e, s.x.t.reserved);
        if end > first {
            // SAFETY: whole pages of this tensor's reserved range that hold no loaded slice.
            unsafe {
                self.recycler
                    .give_back(s.x.t.data.add(first * PAGE), (end - first) * PAGE, None);
            }
        }
    }
}

impl Drop for Experts {
    /// Reads still in flight write into memory that must outlive them; then every slice is
    /// given back (and the recycler, dropped after this, releases its stock), so a later
    /// streamer over the same model starts with none of this one's expert memory.
    fn drop(&mut self) {
        let _ = self.wait_all(&mut StreamStats::default());
        for i in 0..self.slices.len() {
            for e in 0..self.n_expert {
                self.release(i, e);
            }
        }
    }
}

/// Pages `[first, end)` that releasing slice `e` may drop: those of its byte range that no other
/// loaded slice overlaps (only its first and last page can be shared, so the run is contiguous).
/// `reserved` is the tensor's page-rounded reservation: the last slice owns the tail up to it.
pub(crate) fn releasable_pages(
    loaded: &[bool],
    stride: usize,
    e: usize,
    reserved: usize,
) -> (usize, usize) {
    let n = loaded.len();
    let lo = e * stride;
    let hi = if e + 1 == n {
        reserved
    } else {
        (e + 1) * stride
    };
    let mut first = lo / PAGE;
    let mut end = hi.div_ceil(PAGE);
    let shared = |page: usize| {
        let a = page * PAGE / stride;
        let b = (((page + 1) * PAGE - 1) / stride).min(n - 1);
        (a..=b).any(|o| o != e && loaded[o])
    };
    while first < end && shared(first) {
        first += 1;
    }
    while end > first && shared(end - 1) {
        end -= 1;
    }
    (first, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_shared_with_a_loaded_neighbour_are_kept() {
        // Slices of 6000 bytes: slice 1 spans bytes 6000..12000, pages 1 and 2.
        let mut loaded = vec![false, true, false, false];
        assert_eq!(releasable_pages(&loaded, 6000, 1, 24576), (1, 3));
        loaded[0] = true; // shares page 1
        assert_eq!(releasable_pages(&loaded, 6000, 1, 24576), (2, 3));
        loaded[2] = true; // shares page 2
        let (first, end) = releasable_pages(&loaded, 6000, 1, 24576);
        assert!(end <= first, "{first}..{end}");
    }

    #[test]
    fn tiny_slices_release_a_page_only_when_all_its_slices_are_out() {
        // 1000-byte slices: page 0 holds slices 0..=4.
        let mut loaded = vec![false; 8];
        loaded[2] = true;
        loaded[3] = true;
        let (first, end) = releasable_pages(&loaded, 1000, 2, 8192);
        assert!(end <= first, "{first}..{end}");
        loaded[3] = false;
        assert_eq!(releasable_pages(&loaded, 1000, 2, 8192), (0, 1));
    }

    #[test]
    fn the_last_slice_owns_the_reserved_tail() {
        let loaded = vec![false, false, true];
        assert_eq!(releasable_pages(&loaded, 5000, 2, 16384), (2, 4));
    }
}
