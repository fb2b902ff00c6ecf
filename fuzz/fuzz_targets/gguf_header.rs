//! Fuzzes the GGUF header reader: arbitrary bytes must give a header or an error, never a panic,
//! and an accepted header must satisfy what the rest of hypura relies on.

#![no_main]

use gguf::GgufHeader;
use libfuzzer_sys::fuzz_target;
use model::TensorEntry;

fuzz_target!(|data: &[u8]| {
    let h = match GgufHeader::from_bytes(data, "fuzz.gguf") {
        Ok(h) => h,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("fuzz.gguf"),
                "error does not name the file: {msg}"
            );
            return;
        }
    };
    assert!(h.alignment.is_power_of_two());
    assert_eq!(h.data_start % h.alignment, 0);
    assert_eq!(h.file_bytes, data.len() as u64);
    for t in &h.tensors {
        // Inside the file: Inventory::from_gguf and the runtime read these bytes.
        let start = h.absolute_offset(t);
        assert!(
            start
                .checked_add(t.bytes)
                .is_some_and(|end| end <= h.file_bytes),
            "{t:?} outside the file"
        );
        // Inventory::from_gguf expects every accepted tensor to make an entry.
        let e = TensorEntry::new(&t.name, t.ggml_type, t.dims.clone(), 8)
            .expect("accepted tensor has a size");
        assert_eq!(e.bytes, t.bytes);
        let _ = e.elements();
    }
    // No two tensors with data share a byte (checked pairwise here, independently of the reader).
    let spans: Vec<(u64, u64)> = h
        .tensors
        .iter()
        .filter(|t| t.bytes > 0)
        .map(|t| (t.offset, t.offset + t.bytes))
        .collect();
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            assert!(a.1 <= b.0 || b.1 <= a.0, "tensors overlap: {a:?} {b:?}");
        }
    }
    for (_, v) in h.metadata.iter() {
        let _ = v.to_string();
    }
});
