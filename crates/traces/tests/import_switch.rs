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
