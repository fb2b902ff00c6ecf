//! The GGUF header reader on malformed input: every error has its kind and a message naming the
//! file and the fault; valid v2/v3 files, split sets and the real Gemma 3 file read back exactly.

mod common;

use common::{sample, Gguf, W};
use gguf::GgmlType;
use gguf::{
    AlignmentError, Array, DimsError, GgufError, GgufErrorKind as K, GgufHeader, SplitError, Value,
    ValueType, MAX_HEADER_BYTES,
};
use model::{Inventory, Source};
use std::path::{Path, PathBuf};

fn read(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    GgufHeader::from_bytes(bytes, "bad.gguf")
}

fn fails(bytes: &[u8]) -> GgufError {
    match read(bytes) {
        Ok(h) => panic!("the reader accepted a malformed file: {h:?}"),
        Err(e) => e,
    }
}

/// The message starts with the file name and contains every phrase.
fn says(e: &GgufError, phrases: &[&str]) {
    let msg = e.to_string();
    assert!(
        msg.starts_with("bad.gguf"),
        "{msg:?} does not name the file"
    );
    for p in phrases {
        assert!(msg.contains(p), "{msg:?} does not say {p:?}");
    }
}

/// A file with one tensor and no metadata, its data section `data_len` bytes long.
fn one_tensor(dims: &[u64], type_id: u32, offset: u64, data_len: u64) -> Vec<u8> {
    let mut w = W::new();
    w.header(3, 1, 0)
        .tensor("w", dims, type_id, offset)
        .pad(32)
        .zeros(data_len);
    w.bytes()
}

/// A file with no tensors and the given metadata entries, written as raw bytes by `kvs`.
fn metadata_only(n_kv: u64, kvs: impl FnOnce(&mut W)) -> Vec<u8> {
    let mut w = W::new();
    w.header(3, 0, n_kv);
    kvs(&mut w);
    w.bytes()
}

// ---- file identity -------------------------------------------------------------------------

#[test]
fn wrong_magic() {
    let mut bytes = sample(3).build();
    bytes[..4].copy_from_slice(b"GGML");
    let e = fails(&bytes);
    assert_eq!(e.kind, K::BadMagic(*b"GGML"));
    assert_eq!(e.offset, Some(0));
    says(&e, &["not a GGUF file", "GGML"]);
}

#[test]
fn unsupported_version() {
    for version in [0, 1, 4, 0x0100_0000] {
        let mut g = sample(3);
        g.version = version;
        let e = fails(&g.build());
        assert_eq!(e.kind, K::UnsupportedVersion(version));
        says(&e, &[&format!("GGUF version {version} is not supported")]);
    }
}

#[test]
fn big_endian() {
    for version in [2u32, 3] {
        let mut bytes = sample(3).build();
        bytes[4..8].copy_from_slice(&version.to_be_bytes());
        let e = fails(&bytes);
        assert_eq!(e.kind, K::BigEndian);
        says(&e, &["big-endian"]);
    }
}

// ---- truncation ----------------------------------------------------------------------------

#[test]
fn truncated_at_every_length_is_an_error_never_a_panic() {
    for version in [2, 3] {
        let g = sample(version);
        let header_end = g.header_bytes().len();
        let full = g.build();
        read(&full).expect("the untruncated file reads");
        for n in 0..full.len() {
            let e = fails(&full[..n]);
            if n < header_end {
                assert!(
                    matches!(e.kind, K::Truncated { .. } | K::TooLarge { .. }),
                    "cut at {n}: {e}"
                );
                assert!(
                    e.offset.is_some_and(|o| o <= n as u64),
                    "cut at {n}: offset {:?}",
                    e.offset
                );
            } else {
                // The header is whole; the data section is short.
                assert!(
                    matches!(e.kind, K::OutsideFile { file_bytes, .. } if file_bytes == n as u64),
                    "cut at {n}: {e}"
                );
            }
            says(&e, &[]);
        }
    }
}

#[test]
fn truncated_inside_each_header_field_says_which() {
    // A 64-byte first value leaves room for the declared counts, so a cut later on is reported
    // where it happens, not as an impossible count.
    let mut w = W::new();
    w.header(3, 1, 3).kv("pad", &Value::String("x".repeat(64)));
    let k1 = w.len();
    w.kv("general.architecture", &Value::String("llama".into()));
    let k2 = w.len();
    w.kv("arr", &Value::Array(Array::U32(vec![1, 2, 3, 4])));
    let t = w.len();
    w.tensor("w", &[32, 2], 0, 0).pad(32).zeros(256);
    let full = w.bytes();
    read(&full).expect("the untruncated file reads");

    let arch = "\"general.architecture\"";
    let cases: Vec<(usize, bool, String)> = vec![
        (2, true, "the magic number".into()),
        (6, true, "the version".into()),
        (10, true, "the tensor count".into()),
        (18, true, "the metadata count".into()),
        (k1 + 4, true, "the length of metadata key 1".into()),
        (
            k1 + 8 + 3,
            false,
            "the length of metadata key 1 is 20".into(),
        ),
        (k1 + 28 + 2, true, format!("the type of {arch}")),
        (
            k1 + 32 + 5,
            true,
            format!("the length of the value of {arch}"),
        ),
        (
            k1 + 40 + 2,
            false,
            format!("the length of the value of {arch} is 5"),
        ),
        (k2 + 11 + 4 + 2, true, "the type of \"arr\"".into()),
        (
            k2 + 11 + 8 + 3,
            true,
            "the element count of array \"arr\"".into(),
        ),
        (
            k2 + 11 + 16 + 5,
            false,
            "the element count of array \"arr\" is 4".into(),
        ),
        (t + 3, true, "the length of the name of tensor 0".into()),
        (
            t + 9 + 2,
            true,
            "the dimension count of tensor \"w\"".into(),
        ),
        (t + 13 + 10, true, "the dimensions of tensor \"w\"".into()),
        (t + 29 + 2, true, "the type of tensor \"w\"".into()),
        (t + 33 + 5, true, "the data offset of tensor \"w\"".into()),
    ];
    for (cut, truncated, what) in cases {
        let e = fails(&full[..cut]);
        if truncated {
            assert!(
                matches!(&e.kind, K::Truncated { what: w } if w == &what),
                "cut at {cut}: {e}"
            );
            says(&e, &["file is truncated", &what]);
        } else {
            assert!(matches!(&e.kind, K::TooLarge { .. }), "cut at {cut}: {e}");
            says(&e, &[&what, "the rest of the file can hold"]);
        }
    }
}

// ---- counts and lengths --------------------------------------------------------------------

#[test]
fn tensor_count_beyond_the_file() {
    let mut w = W::new();
    w.header(3, u64::MAX, 0).zeros(100);
    let e = fails(&w.bytes());
    assert!(
        matches!(&e.kind, K::TooLarge { what, value: u64::MAX, limit: 4 } if what == "the tensor count"),
        "{e}"
    );
    says(
        &e,
        &["the tensor count is 18446744073709551615, more than the 4"],
    );
}

#[test]
fn metadata_count_beyond_the_file() {
    let e = fails(&metadata_only(1 << 40, |w| {
        w.kv("k", &Value::U8(1));
    }));
    assert!(
        matches!(&e.kind, K::TooLarge { what, value, .. } if what == "the metadata count" && *value == 1 << 40)
    );
    says(&e, &["the metadata count is 1099511627776"]);
}

#[test]
fn string_length_beyond_the_file() {
    let e = fails(&metadata_only(1, |w| {
        w.str("k").u32(8).u64(1 << 50).raw(b"short");
    }));
    assert!(
        matches!(&e.kind, K::TooLarge { value, limit: 5, .. } if *value == 1 << 50),
        "{e}"
    );
    says(&e, &["the length of the value of \"k\""]);

    let e = fails(&metadata_only(1, |w| {
        w.u64(u64::MAX).raw(&[0; 20]);
    }));
    assert!(
        matches!(
            &e.kind,
            K::TooLarge {
                value: u64::MAX,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["the length of metadata key 0"]);
}

#[test]
fn array_count_beyond_the_file() {
    // u64 elements: 8 bytes each, so 5 of the 40 bytes left fit, not 6.
    let e = fails(&metadata_only(1, |w| {
        w.str("a").u32(9).u32(10).u64(6).zeros(40);
    }));
    assert!(
        matches!(
            &e.kind,
            K::TooLarge {
                value: 6,
                limit: 5,
                ..
            }
        ),
        "{e}"
    );
    says(
        &e,
        &["the element count of array \"a\" is 6, more than the 5"],
    );

    for elem_type in 0..=12u32 {
        let e = fails(&metadata_only(1, |w| {
            w.str("a").u32(9).u32(elem_type).u64(u64::MAX).zeros(64);
        }));
        assert!(
            matches!(
                &e.kind,
                K::TooLarge {
                    value: u64::MAX,
                    ..
                }
            ),
            "type {elem_type}: {e}"
        );
    }
}

/// A file larger than the header limit may not hold a header that large: a count the file could
/// hold but the limit cannot is refused before anything is allocated. The file is sparse, so the
/// test writes only its first bytes.
#[test]
fn counts_past_the_header_limit_in_a_large_file() {
    let dir = tempfile::tempdir().unwrap();
    type Body = fn(&mut W);
    let cases: [(&str, Body, &str); 3] = [
        (
            "string",
            |w| {
                w.str("k").u32(8).u64(MAX_HEADER_BYTES);
            },
            "the length of the value of \"k\"",
        ),
        (
            "array",
            |w| {
                w.str("k").u32(9).u32(0).u64(MAX_HEADER_BYTES);
            },
            "the element count of array \"k\"",
        ),
        (
            "nested",
            |w| {
                w.str("k").u32(9).u32(9).u64(MAX_HEADER_BYTES / 12);
            },
            "the element count of array \"k\"",
        ),
    ];
    for (name, body, what) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, metadata_only(1, body)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(2 * MAX_HEADER_BYTES)
            .unwrap();
        let e = GgufHeader::open(&path).unwrap_err();
        assert!(
            matches!(&e.kind, K::HeaderTooLarge { what: w, .. } if w == what),
            "{name}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&path.display().to_string()) && msg.contains("header's 256 MiB limit"),
            "{msg}"
        );
    }
}

// ---- metadata values -----------------------------------------------------------------------

#[test]
fn unknown_metadata_value_type() {
    for id in [13, 255, u32::MAX] {
        let e = fails(&metadata_only(1, |w| {
            w.str("k").u32(id).u64(0);
        }));
        assert_eq!(
            e.kind,
            K::UnknownValueType {
                key: "k".into(),
                id
            }
        );
        assert_eq!(e.offset, Some(24 + 9));
        says(
            &e,
            &[&format!("metadata key \"k\" has unknown value type {id}")],
        );
    }
    // Also as an array's element type.
    let e = fails(&metadata_only(1, |w| {
        w.str("k").u32(9).u32(13).u64(0);
    }));
    assert_eq!(
        e.kind,
        K::UnknownValueType {
            key: "k".into(),
            id: 13
        }
    );
}

#[test]
fn bool_byte_other_than_0_or_1() {
    let e = fails(&metadata_only(1, |w| {
        w.str("flag").u32(7).u8(2).zeros(4);
    }));
    assert!(
        matches!(&e.kind, K::BadBool { key, byte: 2 } if key == "flag"),
        "{e}"
    );
    assert_eq!(e.offset, Some(24 + 12 + 4));
    says(&e, &["metadata key \"flag\": bool byte is 2, not 0 or 1"]);

    let e = fails(&metadata_only(1, |w| {
        w.str("flags").u32(9).u32(7).u64(3).raw(&[1, 0, 7]);
    }));
    says(&e, &["metadata key \"flags\": bool byte is 7"]);
}

fn nested_arrays(levels: u32) -> Vec<u8> {
    metadata_only(1, |w| {
        w.str("deep").u32(9);
        for _ in 1..levels {
            w.u32(9).u64(1);
        }
        w.u32(0).u64(0);
    })
}

#[test]
fn nested_arrays_deeper_than_the_limit() {
    let h = read(&nested_arrays(16)).expect("16 levels are allowed");
    let mut a = h.metadata.get("deep").and_then(Value::as_array).unwrap();
    let mut levels = 1;
    while let Array::Array(inner) = a {
        a = &inner[0];
        levels += 1;
    }
    assert_eq!((levels, a), (16, &Array::U8(vec![])));

    for levels in [17, 1000] {
        let e = fails(&nested_arrays(levels));
        assert_eq!(e.kind, K::NestingTooDeep { key: "deep".into() });
        says(
            &e,
            &["metadata key \"deep\" nests arrays deeper than 16 levels"],
        );
    }
}

#[test]
fn invalid_utf8() {
    let e = fails(&metadata_only(1, |w| {
        w.str_bytes(b"gen\xffral").u32(4).u32(1);
    }));
    assert_eq!(
        e.kind,
        K::BadUtf8 {
            what: "metadata key 0".into()
        }
    );
    assert_eq!(e.offset, Some(24 + 8));
    says(&e, &["metadata key 0 is not valid UTF-8"]);

    let e = fails(&metadata_only(1, |w| {
        w.str("k").u32(8).str_bytes(b"\xc3\x28");
    }));
    says(&e, &["the value of \"k\" is not valid UTF-8"]);

    let mut w = W::new();
    w.header(3, 1, 0)
        .str_bytes(b"\xe2\x82")
        .u32(1)
        .u64(32)
        .u32(0)
        .u64(0)
        .pad(32)
        .zeros(128);
    let e = fails(&w.bytes());
    says(&e, &["the name of tensor 0 is not valid UTF-8"]);
}

#[test]
fn duplicate_keys() {
    let e = fails(&metadata_only(3, |w| {
        w.kv("a", &Value::U8(1)).kv("b", &Value::U8(2));
        let at = w.len() as u64;
        w.kv("a", &Value::String("again".into()));
        assert_eq!(at, 24 + 2 * 14);
    }));
    assert!(
        matches!(&e.kind, K::DuplicateKey { key } if key == "a"),
        "{e}"
    );
    assert_eq!(e.offset, Some(24 + 2 * 14));
    says(&e, &["metadata key \"a\" appears twice"]);
}

#[test]
fn bad_alignment() {
    use AlignmentError::*;
    for (value, kind, detail) in [
        (
            Value::U32(0),
            NotPowerOfTwo(0),
            "is 0: it must be a power of two",
        ),
        (
            Value::U32(3),
            NotPowerOfTwo(3),
            "is 3: it must be a power of two",
        ),
        (
            Value::U32(48),
            NotPowerOfTwo(48),
            "is 48: it must be a power of two",
        ),
        (
            Value::U64(32),
            NotU32(ValueType::U64),
            "must be a u32, found U64",
        ),
        (
            Value::String("32".into()),
            NotU32(ValueType::String),
            "must be a u32, found String",
        ),
    ] {
        let bytes = Gguf::new(3).kv("general.alignment", value).build();
        let e = fails(&bytes);
        assert_eq!(e.kind, K::BadAlignment(kind), "{e}");
        says(&e, &["general.alignment ", detail]);
    }
}

// ---- tensor infos --------------------------------------------------------------------------

#[test]
fn unknown_and_removed_tensor_types() {
    let e = fails(&one_tensor(&[32], 999, 0, 128));
    assert!(
        matches!(&e.kind, K::UnknownTensorType { tensor, .. } if tensor == "w"),
        "{e}"
    );
    assert_eq!(e.offset, Some(24 + 9 + 4 + 8));
    says(&e, &["tensor \"w\": unknown ggml type id 999"]);

    for (id, name) in [(31, "Q4_0_4_4"), (4, "Q4_2"), (38, "IQ4_NL_8_8")] {
        let e = fails(&one_tensor(&[32], id, 0, 128));
        assert!(matches!(&e.kind, K::UnknownTensorType { .. }), "{e}");
        says(
            &e,
            &[
                &format!("ggml type {id} ({name}) was removed"),
                "re-quantize",
            ],
        );
    }
}

#[test]
fn dimension_count_0_and_5() {
    for n in [0usize, 5, 1000] {
        let e = fails(&one_tensor(&vec![1; n], 0, 0, 128));
        let detail = format!("{n} dimensions (1 to 4 allowed)");
        assert_eq!(
            e.kind,
            K::BadDims {
                tensor: "w".into(),
                problem: DimsError::Count(n as u32)
            }
        );
        assert_eq!(e.offset, Some(24 + 9));
        says(&e, &[&format!("tensor \"w\": {detail}")]);
    }
}

#[test]
fn row_length_not_a_multiple_of_the_block_size() {
    let e = fails(&one_tensor(&[100, 2], GgmlType::Q4_K.id(), 0, 4096));
    assert!(
        matches!(&e.kind, K::BadDims { tensor, problem: DimsError::PartialBlock { row: 100, block: 256, .. } } if tensor == "w"),
        "{e}"
    );
    says(
        &e,
        &["tensor \"w\": row length 100 is not a multiple of Q4_K's block size 256"],
    );
}

#[test]
fn dims_that_overflow() {
    let cases: [(&[u64], GgmlType, &str); 5] = [
        (
            &[1 << 40, 1 << 40],
            GgmlType::F32,
            "overflow ggml's 64-bit element count",
        ),
        (
            &[u64::MAX],
            GgmlType::F32,
            "overflow ggml's 64-bit element count",
        ),
        // Zero elements, but one dimension is not a valid int64.
        (
            &[0, u64::MAX],
            GgmlType::F32,
            "overflow ggml's 64-bit element count",
        ),
        (
            &[1 << 32, 1 << 31],
            GgmlType::Q4_0,
            "overflow ggml's 64-bit element count",
        ),
        // 2^62 elements fit an int64; 2^65 bytes do not fit a u64.
        (
            &[1 << 61, 2],
            GgmlType::I64,
            "data size of dimensions [2305843009213693952, 2] overflows 64 bits",
        ),
    ];
    for (dims, ty, detail) in cases {
        let e = fails(&one_tensor(dims, ty.id(), 0, 4096));
        assert!(matches!(&e.kind, K::BadDims { .. }), "{dims:?}: {e}");
        says(&e, &["tensor \"w\": ", detail]);
    }
}

/// Regression, found by `cargo fuzz run gguf_layout` against the original reader: a zero
/// dimension made the byte size 0, so a tensor whose element count overflows u64 (ggml's int64
/// `ne` product) was accepted and `TensorEntry::elements` later overflowed.
#[test]
fn fuzz_regression_element_count_overflow_hidden_by_a_zero_dim() {
    let dims = [1_224_979_098_644_774_912, 18, 0];
    assert_eq!(
        GgmlType::IQ4_NL.tensor_bytes(&dims),
        Some(0),
        "the byte size alone looks fine"
    );
    let e = fails(&one_tensor(&dims, GgmlType::IQ4_NL.id(), 576, 74_016));
    assert!(
        matches!(&e.kind, K::BadDims { tensor, .. } if tensor == "w"),
        "{e}"
    );
    says(&e, &["overflow ggml's 64-bit element count"]);
}

#[test]
fn zero_sized_tensors_are_valid() {
    let h = read(&one_tensor(&[0, 1 << 62, 2], 0, 0, 0)).unwrap();
    assert_eq!(h.tensors[0].bytes, 0);
}

#[test]
fn misaligned_offset() {
    let e = fails(&one_tensor(&[8], 0, 8, 128));
    assert_eq!(
        e.kind,
        K::Misaligned {
            tensor: "w".into(),
            offset: 8,
            alignment: 32
        }
    );
    assert_eq!(e.offset, Some(24 + 9 + 4 + 8 + 4));
    says(
        &e,
        &["tensor \"w\": data offset 8 is not a multiple of the alignment 32"],
    );

    let mut g =
        Gguf::new(3)
            .kv("general.alignment", Value::U32(64))
            .tensor("w", GgmlType::F32, &[8]);
    g.tensors[0].offset = 32;
    let e = fails(&g.build());
    assert!(
        matches!(
            e.kind,
            K::Misaligned {
                offset: 32,
                alignment: 64,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn tensor_data_past_the_end_of_the_file() {
    // 32 F32 = 128 bytes; the data section has 100.
    let bytes = one_tensor(&[32], 0, 0, 100);
    let e = fails(&bytes);
    let (end, file_bytes) = (64 + 128, bytes.len() as u64);
    assert_eq!(
        e.kind,
        K::OutsideFile {
            tensor: "w".into(),
            end,
            file_bytes
        }
    );
    says(
        &e,
        &[&format!(
            "tensor \"w\": data ends at byte {end}, past the end of the file ({file_bytes} bytes)"
        )],
    );

    // The end does not fit in 64 bits.
    let e = fails(&one_tensor(&[32], 0, u64::MAX - 31, 128));
    assert!(
        matches!(e.kind, K::OutsideFile { end: u64::MAX, .. }),
        "{e}"
    );
}

fn two_tensors(a: (&str, u64, u64), b: (&str, u64, u64), more: &[(&str, u64, u64)]) -> Vec<u8> {
    let all: Vec<_> = [a, b].iter().chain(more).copied().collect();
    let mut w = W::new();
    w.header(3, all.len() as u64, 0);
    for (name, elements, offset) in &all {
        w.tensor(name, &[*elements], 0, *offset);
    }
    w.pad(32).zeros(4096);
    w.bytes()
}

#[test]
fn overlapping_tensors() {
    let e = fails(&two_tensors(("a", 32, 0), ("b", 32, 64), &[]));
    assert_eq!(
        e.kind,
        K::Overlap {
            first: "a".into(),
            second: "b".into()
        }
    );
    says(&e, &["tensors \"a\" and \"b\" overlap"]);

    // Same offset, listed in the other order.
    let e = fails(&two_tensors(("b", 8, 32), ("a", 8, 32), &[]));
    assert!(matches!(e.kind, K::Overlap { .. }), "{e}");

    // Regression: a zero-sized tensor (or a short one) between two overlapping tensors hid the
    // overlap when only neighbours were compared.
    let e = fails(&two_tensors(("a", 64, 0), ("z", 0, 64), &[("b", 32, 128)]));
    assert_eq!(
        e.kind,
        K::Overlap {
            first: "a".into(),
            second: "b".into()
        }
    );
    let e = fails(&two_tensors(("a", 128, 0), ("s", 8, 64), &[("b", 32, 256)]));
    assert!(matches!(e.kind, K::Overlap { .. }), "{e}");

    // Adjacent tensors and zero-sized ones anywhere are fine.
    read(&two_tensors(
        ("a", 32, 0),
        ("b", 32, 128),
        &[("z", 0, 64), ("y", 0, 128)],
    ))
    .unwrap();
}

#[test]
fn duplicate_tensor_names() {
    let e = fails(&two_tensors(("w", 8, 0), ("w", 8, 32), &[]));
    assert_eq!(e.kind, K::DuplicateTensor("w".into()));
    says(&e, &["tensor \"w\" appears twice"]);
}

// ---- valid files ---------------------------------------------------------------------------

#[test]
fn v2_and_v3_files_with_every_value_type_read_back_exactly() {
    for version in [2, 3] {
        let g = sample(version);
        let bytes = g.build();
        let h = read(&bytes).unwrap();
        assert_eq!(h.version, version);
        assert_eq!(h.metadata.0, g.kvs, "metadata, in file order");
        assert_eq!(h.alignment, 64);
        assert_eq!(
            h.data_start,
            (g.header_bytes().len() as u64).div_ceil(64) * 64
        );
        assert_eq!(h.file_bytes, bytes.len() as u64);
        assert_eq!(h.tensors.len(), g.tensors.len());
        for (got, want) in h.tensors.iter().zip(&g.tensors) {
            assert_eq!(
                (&got.name, &got.dims, got.ggml_type, got.offset),
                (&want.name, &want.dims, want.ty, want.offset)
            );
            assert_eq!(got.bytes, want.ty.tensor_bytes(&want.dims).unwrap());
            assert_eq!(h.absolute_offset(got), h.data_start + want.offset);
        }
        // Q4_K [256, 4]: 4 blocks of 144 bytes.
        assert_eq!(h.tensors[0].bytes, 576);
    }
}

#[test]
fn the_test_writer_follows_the_spec_byte_for_byte() {
    // Guards the hand-written helper itself against drifting with the reader.
    let mut w = W::new();
    w.header(3, 1, 1)
        .kv("k", &Value::Array(Array::U16(vec![1])))
        .tensor("t", &[32], 2, 0);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        b'G', b'G', b'U', b'F', 3, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0,   1, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0, b'k',   9, 0, 0, 0,   2, 0, 0, 0,   1, 0, 0, 0, 0, 0, 0, 0,   1, 0,
        1, 0, 0, 0, 0, 0, 0, 0, b't',   1, 0, 0, 0,   32, 0, 0, 0, 0, 0, 0, 0,   2, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(w.bytes(), expected);
}

// ---- split sets ----------------------------------------------------------------------------

/// Writes `x-0000K-of-00003.gguf` parts into `dir`, editing part `k`'s builder with `edit`.
fn write_split(dir: &Path, edit: impl Fn(usize, Gguf) -> Gguf) -> Vec<(PathBuf, Gguf)> {
    let tensors: [&[(&str, GgmlType, &[u64])]; 3] = [
        &[
            ("token_embd.weight", GgmlType::Q8_0, &[64, 10]),
            ("blk.0.attn_q.weight", GgmlType::F16, &[64, 64]),
        ],
        &[
            ("blk.0.ffn_up.weight", GgmlType::Q4_K, &[256, 96]),
            ("blk.1.attn_q.weight", GgmlType::F16, &[64, 64]),
        ],
        &[("output.weight", GgmlType::Q6_K, &[256, 10])],
    ];
    let mut parts = Vec::new();
    for (k, ts) in tensors.iter().enumerate() {
        let mut g = Gguf::new(3);
        if k == 0 {
            g = g
                .kv("general.architecture", Value::String("llama".into()))
                .kv("llama.block_count", Value::U32(2))
                .kv("llama.embedding_length", Value::U32(64));
        }
        g = g
            .kv("split.no", Value::U16(k as u16))
            .kv("split.count", Value::U16(3))
            .kv("split.tensors.count", Value::I32(5));
        for (name, ty, dims) in ts.iter() {
            g = g.tensor(name, *ty, dims);
        }
        let g = edit(k, g);
        let path = dir.join(format!("x-{:05}-of-00003.gguf", k + 1));
        std::fs::write(&path, g.build()).unwrap();
        parts.push((path, g));
    }
    parts
}

#[test]
fn split_set_reads_as_one_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let parts = write_split(dir.path(), |_, g| g);
    // Any part opens the whole set.
    for (given, _) in &parts {
        let inv = Inventory::from_gguf(given).unwrap();
        assert_eq!(inv.arch.arch, "llama");
        assert_eq!(inv.arch.n_layer, 2);
        let want: Vec<(String, u32, u64)> = parts
            .iter()
            .enumerate()
            .flat_map(|(file, (_, g))| {
                let data_start = (g.header_bytes().len() as u64).div_ceil(32) * 32;
                g.tensors
                    .iter()
                    .map(move |t| (t.name.clone(), file as u32, data_start + t.offset))
            })
            .collect();
        let got: Vec<(String, u32, u64)> = inv
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.file, t.offset.unwrap()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|t| t.1).collect::<Vec<_>>(), [0, 0, 1, 1, 2]);
        match &inv.source {
            Source::File { paths, file_bytes } => {
                assert_eq!(
                    paths,
                    &parts.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
                );
                let sizes: Vec<u64> = parts.iter().map(|(_, g)| g.build().len() as u64).collect();
                assert_eq!(file_bytes, &sizes);
            }
            other => panic!("source {other:?}"),
        }
    }
}

fn split_error(edit: impl Fn(usize, Gguf) -> Gguf, after: impl Fn(&Path)) -> (GgufError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let parts = write_split(dir.path(), edit);
    after(dir.path());
    let e = match Inventory::from_gguf(&parts[0].0).unwrap_err() {
        model::InventoryError::Gguf(e) => e,
        other => panic!("not a GGUF error: {other}"),
    };
    (e, dir.path().to_path_buf())
}

fn set(g: Gguf, key: &str, v: Value) -> Gguf {
    let mut g = g;
    g.kvs.iter_mut().find(|(k, _)| k == key).unwrap().1 = v;
    g
}

#[test]
fn split_part_missing() {
    let (e, dir) = split_error(
        |_, g| g,
        |d| std::fs::remove_file(d.join("x-00003-of-00003.gguf")).unwrap(),
    );
    assert!(
        matches!(&e.kind, K::Split(SplitError::PartMissing { part: 3, count: 3, io }) if io.kind() == std::io::ErrorKind::NotFound),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("part 3 of 3 of the split model is missing"),
        "{e}"
    );
    assert_eq!(e.path, dir.join("x-00003-of-00003.gguf"));
    assert!(e.to_string().starts_with(&e.path.display().to_string()));
}

#[test]
fn split_no_wrong() {
    let (e, dir) = split_error(
        |k, g| {
            if k == 1 {
                set(g, "split.no", Value::U16(2))
            } else {
                g
            }
        },
        |_| {},
    );
    assert_eq!(e.path, dir.join("x-00002-of-00003.gguf"));
    assert_eq!(
        e.kind,
        K::Split(SplitError::BadSplitNo {
            found: Some(2),
            part: 2,
            count: 3
        })
    );
    assert!(
        e.to_string()
            .contains("x-00002-of-00003.gguf: split.no is 2"),
        "{e}"
    );
}

#[test]
fn split_count_disagrees_between_parts() {
    let (e, dir) = split_error(
        |k, g| {
            if k == 2 {
                set(g, "split.count", Value::U16(4))
            } else {
                g
            }
        },
        |_| {},
    );
    assert_eq!(e.path, dir.join("x-00003-of-00003.gguf"));
    assert!(
        matches!(
            &e.kind,
            K::Split(SplitError::CountDisagrees {
                found: Some(4),
                count: 3,
                ..
            })
        ),
        "{e}"
    );
    let m = e.kind.to_string();
    assert!(
        m.starts_with("split.count is 4, but ") && m.ends_with("says 3"),
        "{e}"
    );
}

#[test]
fn split_tensor_count_mismatch() {
    let (e, dir) = split_error(
        |k, g| {
            if k == 0 {
                set(g, "split.tensors.count", Value::I32(6))
            } else {
                g
            }
        },
        |_| {},
    );
    assert_eq!(e.path, dir.join("x-00001-of-00003.gguf"));
    assert_eq!(
        e.kind,
        K::Split(SplitError::TensorCount {
            declared: 6,
            count: 3,
            found: 5
        })
    );
    assert_eq!(
        e.kind.to_string(),
        "split.tensors.count is 6, but the 3 parts hold 5 tensors"
    );
}

#[test]
fn split_duplicate_tensor_across_parts() {
    let (e, _) = split_error(
        |k, g| {
            if k == 2 {
                g.tensor("blk.0.attn_q.weight", GgmlType::F16, &[64, 64])
            } else {
                g
            }
        },
        |_| {},
    );
    // The extra tensor also breaks split.tensors.count, which is checked first.
    assert!(
        matches!(&e.kind, K::Split(SplitError::TensorCount { found: 6, .. })),
        "{e}"
    );
    let (e, _) = split_error(
        |k, g| match k {
            0 => set(g, "split.tensors.count", Value::I32(6)),
            2 => g.tensor("blk.0.attn_q.weight", GgmlType::F16, &[64, 64]),
            _ => g,
        },
        |_| {},
    );
    assert_eq!(e.kind, K::DuplicateTensor("blk.0.attn_q.weight".into()));
}

#[test]
fn split_name_without_split_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, Gguf::new(3).kv("split.count", Value::U16(2)).build()).unwrap();
    let e = gguf::open_model(&path).unwrap_err();
    assert!(
        matches!(&e.kind, K::Split(SplitError::NameNotSplit { count: 2 })),
        "{e}"
    );
    assert!(e.to_string().contains("NAME-00001-of-00002.gguf"), "{e}");

    std::fs::write(
        &path,
        Gguf::new(3)
            .kv("split.count", Value::String("2".into()))
            .build(),
    )
    .unwrap();
    let e = gguf::open_model(&path).unwrap_err();
    assert!(
        matches!(&e.kind, K::Split(SplitError::BadCount(ValueType::String))),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("split.count must be a non-negative integer"),
        "{e}"
    );
}

// ---- the real model ------------------------------------------------------------------------

fn gemma_path() -> PathBuf {
    testkit::gemma_3_270m_or_panic()
}

#[test]
fn real_gemma_file_reads() {
    let path = gemma_path();
    let h = GgufHeader::open(&path).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.tensors.len(), 236);
    assert_eq!(h.metadata.get_str("general.architecture"), Some("gemma3"));
    assert_eq!(h.metadata.get_u64("gemma3.block_count"), Some(18));
    // Cross-checked with the PyPI `gguf` package's GGUFReader (0.19).
    assert_eq!(h.metadata.0.len(), 33);
    assert_eq!(
        (h.alignment, h.data_start, h.file_bytes),
        (32, 6_525_120, 253_113_024)
    );
    assert_eq!(h.tensors.iter().map(|t| t.bytes).sum::<u64>(), 246_587_904);
    let last = h.tensors.last().unwrap();
    assert_eq!(
        (last.name.as_str(), h.absolute_offset(last), last.bytes),
        ("blk.17.post_ffw_norm.weight", 253_110_464, 2560)
    );

    let inv = Inventory::from_gguf(&path).unwrap();
    assert_eq!(
        (inv.arch.arch.as_str(), inv.arch.n_layer, inv.tensors.len()),
        ("gemma3", 18, 236)
    );
    assert!(inv.tensors.iter().all(|t| t.file == 0));
}
