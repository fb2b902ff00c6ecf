//! The storage requests the runtime issues, as the bytes the device transfers for each.
//!
//! The runtime reads with direct I/O: every read is split into requests of at most the plan's
//! request size at page-aligned file offsets, and each request transfers whole pages
//! ([`hw::direct::split`]). A streamed tensor is one read; of a merged expert tensor, each run
//! of adjacent experts to read is one read. Where the model's file positions are unknown
//! (catalog models), reads are priced as their logical bytes in requests of the largest tensor
//! or slice.

use super::MoeLayer;
use crate::events::StorageDevice;
use place::units::{Span, Unit};
use rustc_hash::FxHashMap;

/// `total` bytes as requests of at most `request` bytes (the last one smaller).
fn logical(total: u64, request: u64, out: &mut Vec<u64>) {
    let request = request.max(1);
    let mut left = total;
    while left > 0 {
        let b = left.min(request);
        out.push(b);
        left -= b;
    }
}

fn span(s: &Span, request: u64, out: &mut Vec<u64>) {
    out.extend(s.device_reads(request));
}

/// The requests that read a streamed unit's weights once: each tensor as one read, or its
/// `read_bytes` (KV of a context read included) without file positions.
pub(crate) fn unit(u: &Unit, request: u64, out: &mut Vec<u64>) {
    match &u.spans {
        Some(spans) => spans.iter().for_each(|s| span(s, request, out)),
        None => logical(u.read_bytes.ceil() as u64, u.largest_tensor, out),
    }
}

/// The requests that read the embedding rows of one token (without file positions of rows,
/// their logical bytes).
pub(crate) fn rows(u: &Unit, out: &mut Vec<u64>) {
    logical(u.read_bytes.ceil() as u64, u.largest_tensor, out);
}

/// The requests that read experts `ids` of `layer` (distinct; sorted here): for each of its
/// tensors in order, each run of adjacent ids as one read, as the runtime submits them.
pub(crate) fn experts(layer: &MoeLayer, ids: &mut [u16], out: &mut Vec<u64>) {
    ids.sort_unstable();
    let Some(slices) = &layer.slices else {
        for _ in ids.iter() {
            logical(layer.expert_bytes, layer.slice_bytes, out);
        }
        return;
    };
    for s in slices {
        let mut i = 0;
        while i < ids.len() {
            let first = ids[i];
            let mut n = 1;
            while i + n < ids.len() && ids[i + n] == first + n as u16 {
                n += 1;
            }
            span(&s.run(u32::from(first), n as u32), layer.request_bytes, out);
            i += n;
        }
    }
}

/// Tensors per expert layer the one-expert table indexes (gate, up, down); more go to the map.
const MAX_TENSORS: usize = 4;

/// The storage request classes of expert reads, computed once per (MoE layer position,
/// tensor, first id, run length): a decode reads the same runs of experts many times, and
/// splitting each into page-aligned requests and looking their sizes up cost a third of a
/// sweep's time. Gives the requests [`experts`] gives, in its order.
#[derive(Default)]
pub(crate) struct ExpertReadMemo {
    /// Key -> range of `classes` (runs of two experts or more).
    runs: FxHashMap<u64, (u32, u32)>,
    /// Range of `classes` of each one-expert read, by (position, tensor, id); length 0: not
    /// computed yet (every read has a request).
    singles: Vec<(u32, u32)>,
    classes: Vec<u32>,
    sizes: Vec<u64>,
}

impl ExpertReadMemo {
    /// Appends to `out` the classes of the requests that read experts `ids` (distinct; sorted
    /// here) of `layer`, the MoE layer at position `m`.
    pub(crate) fn experts(
        &mut self,
        m: usize,
        layer: &MoeLayer,
        ids: &mut [u16],
        storage: &mut StorageDevice,
        out: &mut Vec<u32>,
    ) {
        ids.sort_unstable();
        let tensors = layer.slices.as_ref().map_or(1, Vec::len);
        for t in 0..tensors {
            let mut i = 0;
            while i < ids.len() {
                let first = ids[i];
                let mut n = 1;
                if layer.slices.is_some() {
                    while i + n < ids.len() && ids[i + n] == first + n as u16 {
                        n += 1;
                    }
                }
                let (start, len) = self.run(m, t, first, n as u16, layer, storage);
                out.extend_from_slice(&self.classes[start as usize..(start + len) as usize]);
                i += n;
            }
        }
    }

    /// The classes of one read: `n` experts from `first` of tensor `t` (without file
    /// positions, one expert's logical bytes).
    fn run(
        &mut self,
        m: usize,
        t: usize,
        first: u16,
        n: u16,
        layer: &MoeLayer,
        storage: &mut StorageDevice,
    ) -> (u32, u32) {
        let key = (m as u64) << 48 | (t as u64) << 32 | u64::from(first) << 16 | u64::from(n);
        // Most reads are of one expert: those are looked up by index, not hashed.
        let n_expert = layer.tier.len();
        let single = (n == 1 && t < MAX_TENSORS)
            .then(|| (m * MAX_TENSORS + t) * n_expert + usize::from(first));
        if let Some(i) = single {
            match self.singles.get(i) {
                Some(&(start, len)) if len > 0 => return (start, len),
                _ => {}
            }
        } else if let Some(&r) = self.runs.get(&key) {
            return r;
        }
        self.sizes.clear();
        match &layer.slices {
            Some(slices) => span(
                &slices[t].run(u32::from(first), u32::from(n)),
                layer.request_bytes,
                &mut self.sizes,
            ),
            None => logical(layer.expert_bytes, layer.slice_bytes, &mut self.sizes),
        }
        let start = self.classes.len() as u32;
        for &b in &self.sizes {
            self.classes.push(storage.class(b));
        }
        let r = (start, self.classes.len() as u32 - start);
        match single {
            Some(i) => {
                if self.singles.len() <= i {
                    self.singles.resize(i + 1, (0, 0));
                }
                self.singles[i] = r;
            }
            None => {
                self.runs.insert(key, r);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use place::units::Slices;
    use place::Tier;

    fn layer(slices: Option<Vec<Slices>>) -> MoeLayer {
        MoeLayer {
            layer: 0,
            expert_bytes: 3 * 6000,
            expert_flops: 1.0,
            slice_bytes: 6000,
            slices,
            request_bytes: 8192,
            tier: vec![Tier::Nvme; 8],
            streams: true,
        }
    }

    #[test]
    fn adjacent_experts_are_one_read_per_tensor_widened_to_pages() {
        let s = Slices {
            offset: 1000,
            stride: 6000,
            file_bytes: 1 << 20,
        };
        let l = layer(Some(vec![s, s]));
        let mut out = Vec::new();
        // Experts 2 and 3: bytes 13_000..25_000, pages 3..7 (12_288..28_672), as requests
        // cut at 8 KiB page offsets: 12_288..20_480 and 20_480..28_672.
        experts(&l, &mut [3, 2], &mut out);
        assert_eq!(out, vec![8192, 8192, 8192, 8192]);
        // Experts 0 and 5 are two reads: 1000..7000 (pages 0..2) and 31_000..37_000 (pages
        // 7..10, cut at 36_864).
        out.clear();
        experts(&l, &mut [5, 0], &mut out);
        assert_eq!(out, vec![8192, 8192, 4096, 8192, 8192, 4096]);
    }

    #[test]
    fn the_memo_gives_the_requests_experts_gives() {
        let s = Slices {
            offset: 1000,
            stride: 6000,
            file_bytes: 1 << 20,
        };
        let curve = hw::StorageProfile {
            seq_read_gbps: 1.0,
            read_4k_qd1_latency_s: 1e-5,
            read_curve: Vec::new(),
            copy_gbps: None,
        };
        let mut storage = StorageDevice::new(&curve, 2, 0, &[]).unwrap();
        let mut memo = ExpertReadMemo::default();
        for (m, l) in [layer(Some(vec![s, s])), layer(None)].iter().enumerate() {
            for ids in [vec![3u16, 2], vec![5, 0], vec![7, 1, 2, 3, 6], vec![2, 3]] {
                let mut want = Vec::new();
                experts(l, &mut ids.clone(), &mut want);
                let mut got = Vec::new();
                memo.experts(m, l, &mut ids.clone(), &mut storage, &mut got);
                let got: Vec<u64> = got.iter().map(|&c| storage.class_bytes(c)).collect();
                assert_eq!(got, want, "{ids:?}");
            }
        }
    }

    #[test]
    fn without_file_positions_experts_are_their_logical_bytes() {
        let mut out = Vec::new();
        experts(&layer(None), &mut [1, 2], &mut out);
        assert_eq!(out, vec![6000; 6]);
    }
}
