//! The storage requests the runtime issues, as the bytes the device transfers for each.
//!
//! The runtime reads with direct I/O: every read is split into requests of at most the plan's
//! request size at page-aligned file offsets, and each request transfers whole pages
//! ([`hw::direct::split`]). A streamed tensor is one read; of a merged expert tensor, each run
//! of adjacent experts to read is one read. Where the model's file positions are unknown
//! (catalog models), reads are priced as their logical bytes in requests of the largest tensor
//! or slice.

use super::MoeLayer;
use place::units::{Span, Unit};

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
    fn without_file_positions_experts_are_their_logical_bytes() {
        let mut out = Vec::new();
        experts(&layer(None), &mut [1, 2], &mut out);
        assert_eq!(out, vec![6000; 6]);
    }
}
