//! The binary reader rejects corrupt files with a byte offset, never panics and never allocates
//! from an unchecked count.

mod common;

use common::err_text;
use std::path::{Path, PathBuf};
use traces::{ModelFacts, TokenExtras, Trace, TraceBuilder};

fn small_trace() -> Trace {
    let facts = ModelFacts {
        architecture: "t".into(),
        moe_layers: vec![0, 1],
        n_expert: 4,
        top_k: 2,
        n_shared_expert: 0,
    };
    let mut b = TraceBuilder::new(facts).unwrap();
    b.begin_sequence("a").unwrap();
    for ids in [[0, 1, 2, 3], [3, 2, 1, 0]] {
        let extras = TokenExtras {
            text: Some("tok".into()),
            ..Default::default()
        };
        b.push_token(&ids, extras).unwrap();
    }
    b.end_sequence().unwrap();
    b.finish().unwrap()
}

/// Writes the small trace, lets `patch` corrupt its bytes, and returns the file.
fn corrupted(dir: &Path, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let path = dir.join("t.htrace");
    traces::save(&small_trace(), &path, false).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    patch(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Offset of the first expert id: header (52) + "t" (4 + 1) + 2 layers (8) + sequence (8 + 4 + 1).
const IDS_AT: usize = 52 + 5 + 8 + 13;

fn fails(patch: impl FnOnce(&mut Vec<u8>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = corrupted(dir.path(), patch);
    err_text(traces::binary::read(&path)).replace(&path.display().to_string(), "FILE")
}

#[test]
fn intact_file_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = corrupted(dir.path(), |b| {
        assert_eq!(&b[IDS_AT..IDS_AT + 4], [0, 1, 2, 3])
    });
    assert_eq!(traces::load(&path).unwrap(), small_trace());
}

#[test]
fn wrong_version() {
    let e = fails(|b| b[8] = 2);
    assert_eq!(
        e,
        "FILE: byte 8: unsupported binary trace version 2; this build reads version 1"
    );
}

#[test]
fn expert_id_out_of_range() {
    let e = fails(|b| b[IDS_AT + 5] = 9);
    assert_eq!(
        e,
        format!(
            "FILE: byte {}: token 1 layer 0: expert id 9 >= n_expert (4)",
            IDS_AT + 4
        )
    );
}

#[test]
fn duplicate_id() {
    let e = fails(|b| b[IDS_AT + 3] = 2);
    assert_eq!(
        e,
        format!(
            "FILE: byte {}: token 0 layer 1: expert id 2 appears twice in one selection",
            IDS_AT + 2
        )
    );
}

#[test]
fn top_k_larger_than_experts() {
    let e = fails(|b| b[20] = 7);
    assert!(
        e.contains("top_k is 7; it must be in 1..=n_expert (4)"),
        "{e}"
    );
}

#[test]
fn huge_counts_fail_before_allocating() {
    let e = fails(|b| b[36..44].copy_from_slice(&u64::MAX.to_le_bytes()));
    assert!(e.contains("file ends early: sequence table needs"), "{e}");
    let e = fails(|b| b[44..52].copy_from_slice(&(u64::MAX / 2).to_le_bytes()));
    assert!(
        e.ends_with("sequence token counts add up to 2, the header says 9223372036854775807"),
        "{e}"
    );
    let e = fails(|b| b[28..32].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(e.contains("file ends early: MoE layer ids needs"), "{e}");
}

#[test]
fn empty_trace() {
    let e = fails(|b| b[36..44].copy_from_slice(&0u64.to_le_bytes()));
    assert!(e.contains("trace is empty"), "{e}");
}

#[test]
fn truncated_and_trailing_bytes() {
    let e = fails(|b| b.truncate(b.len() - 1));
    assert!(e.contains("file ends early: token text"), "{e}");
    let e = fails(|b| b.push(0));
    assert!(
        e.contains("1 unexpected bytes after the last section"),
        "{e}"
    );
}

#[test]
fn no_truncation_or_byte_flip_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = corrupted(dir.path(), |_| {});
    let good = std::fs::read(&path).unwrap();
    for cut in 0..good.len() {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(
            traces::binary::read(&path).is_err(),
            "prefix of {cut} bytes accepted"
        );
    }
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            std::fs::write(&path, &bad).unwrap();
            let _ = traces::load(&path);
        }
    }
}

/// Problems are typed, with the byte they were found at.
#[test]
fn problems_are_typed_with_their_byte() {
    use traces::binary::{from_slice, BinaryError};
    use traces::{Place, TraceError};
    match from_slice(b"NOTMAGIC and more", Path::new("t.htrace")) {
        Err(TraceError::Binary {
            at,
            problem: BinaryError::Magic,
        }) => assert_eq!(at.place, Place::Byte(0)),
        other => panic!("{other:?}"),
    }
}
