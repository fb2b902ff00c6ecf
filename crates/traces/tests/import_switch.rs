//! switch-base-8 router traces: errors of the importer on small hand-written files.

mod common;

use common::temp_file;
use traces::import::{import, Options, Source};

/// Caught by the `trace_import` fuzz target's allocation limit: `"layers": 1000000000` in an
/// 89-byte file made the importer collect the default block ids `0..layers` (4 GB) before
/// anything refused them. The count is now checked against the 512 blocks a model can have
/// first; 100000 here shows which check answers without allocating much.
#[test]
fn fuzz_regression_layer_count_is_checked_before_allocating() {
    let rt =
        r#"{"version":2,"expertsPerLayer":8,"layers":100000,"topK":1,"tokens":0,"selections":[]}"#;
    let (_dir, path) = temp_file("router-trace.v2.json", rt);
    let e = import(Source::SwitchJson, &path, &Options::default()).unwrap_err();
    assert_eq!(
        e.to_string().replace(&path.display().to_string(), "FILE"),
        "FILE: \"layers\" is 100000; a model has at most 512 blocks"
    );
}

/// Caught by the `trace_import` fuzz target (2026-12-07): a byte that is not UTF-8 inside a
/// field the importer does not read (`prompt_spans`) passed, because serde_json skips ignored
/// values without checking their strings; the file is not JSON and is now refused at its line
/// and column, as serde_json's own parser refuses it.
#[test]
fn fuzz_regression_bytes_that_are_not_utf8_in_an_ignored_field_are_refused() {
    let mut rt = br#"{"version": 2, "expertsPerLayer": 8, "layers": 1, "topK": 1, "tokens": 1, "selections": [[[1]]], "prompt_spans": [{"id": "p1", "token_end_ex"#.to_vec();
    rt.push(0x98);
    rt.extend_from_slice(br#"lusive": 1}]}"#);
    assert!(serde_json::from_slice::<serde_json::Value>(&rt).is_err());
    let (_dir, path) = temp_file("router-trace.v2.json", &rt);
    let e = import(Source::SwitchJson, &path, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("router-trace.v2.json:1:141") && e.contains("invalid unicode"),
        "{e}"
    );
}
