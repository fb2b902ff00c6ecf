//! DeepSeek CSV importer: real CSV quoting, and one test per malformed-input error.

mod common;

use common::{err_text, fixture, temp_file};
use traces::import::{import, Options, Source};

/// Two MoE layers (1, 2), 8 experts, top-2: small enough to write CSVs by hand.
fn small() -> Options {
    Options {
        moe_layers: Some(vec![1, 2]),
        n_expert: Some(8),
        top_k: Some(2),
        ..Default::default()
    }
}

const HEAD: &str = "Layer ID,Batch Number,Token,Activated Expert IDs\n";

fn fails(body: &str) -> String {
    let (_dir, path) = temp_file("p.csv", format!("{HEAD}{body}"));
    err_text(import(Source::DeepseekCsv, &path, &small()))
        .replace(&path.display().to_string(), "FILE")
}

#[test]
fn quoted_token_text_with_commas_quotes_and_newlines() {
    let t = import(
        Source::DeepseekCsv,
        &fixture("deepseek_quoted.csv"),
        &small(),
    )
    .unwrap();
    assert_eq!((t.n_sequences(), t.n_tokens()), (1, 3));
    assert_eq!(t.sequence(0).id, "deepseek_quoted");
    assert_eq!(t.text(1), Some("a, \"quoted\"\nline"));
    assert_eq!(t.text(2), Some(","));
    assert_eq!(t.selection(1, 0), [2, 3]);
    assert_eq!(t.selection(1, 1), [5, 6]);
    assert_eq!(t.selection(2, 1), [7, 4]);
}

#[test]
fn expert_id_out_of_range() {
    let e = fails("1,0,a,\"[0, 8]\"\n2,0,a,\"[1, 2]\"\n");
    assert_eq!(e, "FILE:2: layer 1: expert id 8 >= n_expert (8)");
}

#[test]
fn duplicate_ids() {
    let e = fails("1,0,a,\"[0, 1]\"\n2,0,a,\"[2, 2]\"\n");
    assert_eq!(
        e,
        "FILE:3: layer 2: expert id 2 appears twice in one selection"
    );
}

#[test]
fn top_k_mismatch() {
    let e = fails("1,0,a,\"[0, 1, 2]\"\n2,0,a,\"[1, 2]\"\n");
    assert_eq!(
        e,
        "FILE:2: layer 1: selection has 3 expert ids but top_k is 2"
    );
}

#[test]
fn unknown_layer() {
    let e = fails("1,0,a,\"[0, 1]\"\n27,0,a,\"[1, 2]\"\n");
    assert_eq!(
        e,
        "FILE:3: unknown layer 27; the model's MoE layers are [1, 2]"
    );
}

#[test]
fn empty_file_is_an_empty_sequence() {
    let e = fails("");
    assert_eq!(
        e,
        "FILE: layer 1 has no rows; every MoE layer must be logged"
    );
}

#[test]
fn empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_text(import(Source::DeepseekCsv, dir.path(), &small()));
    assert!(e.ends_with("directory has no *.csv files"), "{e}");
}

#[test]
fn layers_must_be_layer_major_and_complete() {
    let e = fails("1,0,a,\"[0, 1]\"\n2,0,a,\"[1, 2]\"\n1,0,b,\"[0, 1]\"\n");
    assert_eq!(
        e,
        "FILE:4: layer 1 appears again after other layers; rows must be layer-major"
    );
    let e = fails("1,0,a,\"[0, 1]\"\n1,0,b,\"[0, 1]\"\n2,0,a,\"[1, 2]\"\n");
    assert_eq!(
        e,
        "FILE:4: layer 2 has 1 rows but layer 1 has 2; every layer must log every token"
    );
    let e = fails("1,0,a,\"[0, 1]\"\n2,0,b,\"[1, 2]\"\n");
    assert!(
        e.contains("layer 2 position 0 has token \"b\" but layer 1 has \"a\""),
        "{e}"
    );
}

#[test]
fn bad_header_fields_and_lists() {
    let (_dir, path) = temp_file("p.csv", "Layer,Token\n1,a\n");
    let e = err_text(import(Source::DeepseekCsv, &path, &small()));
    assert!(e.contains(":1: header is"), "{e}");
    assert_eq!(
        fails("1,0,a,b,\"[0, 1]\"\n"),
        "FILE:2: row has 5 fields; expected 4 (quote token text that contains commas)"
    );
    assert_eq!(
        fails("x,0,a,\"[0, 1]\"\n"),
        "FILE:2: Layer ID \"x\" is not a whole number"
    );
    assert!(fails("1,0,a,\"0, 1\"\n").contains("is not a bracketed list"));
    assert!(fails("1,0,a,\"[0, z]\"\n").contains("expert id \"z\" is not a whole number"));
}
