//! Fuzzes the GGUF reader's layout checks against an independent oracle: well-formed headers
//! with a few tensors whose names, dims, types and offsets are chosen to collide, overlap,
//! misalign and run past the end. The reader must accept exactly the files the oracle accepts.

#![no_main]

use arbitrary::Arbitrary;
use gguf::GgmlType;
use gguf::GgufHeader;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Layout {
    v3: bool,
    /// `general.alignment`: none, a power of two, or a bad value.
    alignment: Option<u8>,
    /// Bytes of padding metadata before the tensors, moving the data section around.
    filler: u8,
    tensors: Vec<Tensor>,
    /// Data section length, in units of 16 bytes.
    data_len: u16,
}

#[derive(Arbitrary, Debug)]
struct Tensor {
    name: u8,
    n_dims: u8,
    dims: [Dim; 5],
    ty: u8,
    /// Offset in units of the alignment, plus a misalignment when `skew` is odd.
    slot: u8,
    skew: u8,
}

#[derive(Arbitrary, Debug)]
enum Dim {
    Small(u8),
    Block(u8),
    Huge(u64),
}

impl Dim {
    fn value(&self) -> u64 {
        match *self {
            Dim::Small(n) => n as u64,
            Dim::Block(n) => n as u64 * 32,
            Dim::Huge(n) => n,
        }
    }
}

const BAD_ALIGNMENTS: [u32; 4] = [0, 3, 48, 100];
const EXTRA_TYPE_IDS: [u32; 3] = [4, 31, 999];

struct Bytes(Vec<u8>);

impl Bytes {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

fuzz_target!(|l: Layout| {
    let tensors = &l.tensors[..l.tensors.len().min(8)];
    let (align_kv, alignment_ok, alignment) = match l.alignment {
        None => (None, true, 32u64),
        Some(a) if a < 8 => (Some(1u32 << a), true, 1u64 << a),
        Some(a) => (Some(BAD_ALIGNMENTS[a as usize % 4]), false, 32),
    };

    let mut b = Bytes(Vec::new());
    b.0.extend_from_slice(b"GGUF");
    b.u32(if l.v3 { 3 } else { 2 });
    b.u64(tensors.len() as u64);
    b.u64(1 + align_kv.is_some() as u64);
    b.str("filler");
    b.u32(8);
    b.str(&"x".repeat(l.filler as usize));
    if let Some(a) = align_kv {
        b.str("general.alignment");
        b.u32(4);
        b.u32(a);
    }

    // The oracle: what a correct reader must conclude about each tensor.
    let mut valid = alignment_ok;
    let mut spans = Vec::new();
    let mut names = std::collections::HashSet::new();
    for t in tensors {
        let name = format!("t{}", t.name % 6);
        let n_dims = t.n_dims % 6;
        let dims: Vec<u64> = t.dims[..n_dims as usize].iter().map(Dim::value).collect();
        let all = GgmlType::ALL;
        let type_id = match t.ty as usize {
            i if i < all.len() => all[i].id(),
            i => EXTRA_TYPE_IDS[i % EXTRA_TYPE_IDS.len()],
        };
        let offset = t.slot as u64 * alignment + (t.skew % 2) as u64;
        b.str(&name);
        b.u32(n_dims as u32);
        for &d in &dims {
            b.u64(d);
        }
        b.u32(type_id);
        b.u64(offset);

        valid &= names.insert(name) && (1..=4).contains(&n_dims) && offset % alignment == 0;
        let ty = GgmlType::ALL.iter().copied().find(|t| t.id() == type_id);
        let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let fits = dims.iter().all(|&d| d <= i64::MAX as u64)
            && elements.is_some_and(|n| n <= i64::MAX as u64);
        match ty
            .filter(|_| fits && !dims.is_empty())
            .and_then(|ty| ty.tensor_bytes(&dims))
        {
            Some(bytes) => spans.push((offset, bytes)),
            None => valid = false,
        }
    }
    let data_start = (b.0.len() as u64).div_ceil(alignment) * alignment;
    let file_len = data_start + l.data_len as u64 * 16;
    b.0.resize(file_len as usize, 0);
    for &(offset, bytes) in &spans {
        valid &= offset
            .checked_add(bytes)
            .and_then(|end| end.checked_add(data_start))
            .is_some_and(|end| end <= file_len);
    }
    for (i, a) in spans.iter().enumerate() {
        for c in &spans[i + 1..] {
            let disjoint = a.1 == 0
                || c.1 == 0
                || a.0.saturating_add(a.1) <= c.0
                || c.0.saturating_add(c.1) <= a.0;
            valid &= disjoint;
        }
    }

    match GgufHeader::from_bytes(&b.0, "layout.gguf") {
        Ok(h) => {
            assert!(
                valid,
                "the reader accepted a file the oracle rejects: {l:?}"
            );
            assert_eq!(
                (h.data_start, h.alignment, h.tensors.len()),
                (data_start, alignment, tensors.len())
            );
        }
        Err(e) => assert!(!valid, "the reader rejected a valid file: {e}\n{l:?}"),
    }
});
