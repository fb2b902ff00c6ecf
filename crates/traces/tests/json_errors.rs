//! The JSON reader rejects every rule violation with `file:line:column` and a clear message.

mod common;

use common::{err_text, temp_file};

const MODEL: &str =
    r#""model": {"architecture": "t", "moe_layers": [0, 1], "n_expert": 4, "top_k": 2}"#;

/// A trace whose second token (line 5) is `token`.
fn doc(token: &str) -> String {
    format!(
        "{{\"format\": \"hypura-trace\", \"version\": 1,\n{MODEL},\n\"sequences\": [{{\"id\": \"a\", \"tokens\": [\n\
         {{\"experts\": [[0, 1], [2, 3]]}},\n{token}\n]}}]}}\n"
    )
}

/// Loads `content` and returns the error, checking it points at line `line`.
fn fails_at(content: &str, line: usize) -> String {
    let (_dir, path) = temp_file("t.json", content);
    let e = err_text(traces::load(&path));
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        e.starts_with(&prefix),
        "error {e:?} should start with {prefix:?}"
    );
    e
}

#[test]
fn valid_document_loads() {
    let (_dir, path) = temp_file(
        "t.json",
        doc(r#"{"experts": [[3, 2], [1, 0]], "text": "x"}"#),
    );
    let e = err_text(traces::load(&path));
    assert!(e.contains("text that earlier tokens lack"), "{e}");
    let (_dir, path) = temp_file("t.json", doc(r#"{"experts": [[3, 2], [1, 0]]}"#));
    let t = traces::load(&path).unwrap();
    assert_eq!((t.n_tokens(), t.selection(1, 0)), (2, &[3u16, 2][..]));
}

#[test]
fn expert_id_out_of_range() {
    let e = fails_at(&doc(r#"{"experts": [[0, 4], [2, 3]]}"#), 5);
    assert!(e.contains("layer 0: expert id 4 >= n_expert (4)"), "{e}");
}

#[test]
fn duplicate_id_in_selection() {
    let e = fails_at(&doc(r#"{"experts": [[0, 1], [3, 3]]}"#), 5);
    assert!(
        e.contains("layer 1: expert id 3 appears twice in one selection"),
        "{e}"
    );
}

#[test]
fn top_k_mismatch_too_few_and_too_many() {
    let e = fails_at(&doc(r#"{"experts": [[0], [2, 3]]}"#), 5);
    assert!(
        e.contains("layer 0: selection has 1 entries but top_k is 2"),
        "{e}"
    );
    let e = fails_at(&doc(r#"{"experts": [[0, 1, 2], [2, 3]]}"#), 5);
    assert!(e.contains("more than top_k (2)"), "{e}");
}

#[test]
fn unknown_layer_more_selections_than_moe_layers() {
    let e = fails_at(&doc(r#"{"experts": [[0, 1], [2, 3], [0, 1]]}"#), 5);
    assert!(
        e.contains("more than 2 layer selections; the model declares 2 MoE layers"),
        "{e}"
    );
    let e = fails_at(&doc(r#"{"experts": [[0, 1]]}"#), 5);
    assert!(e.contains("token has 1 layer selections"), "{e}");
}

#[test]
fn model_layers_must_be_strictly_increasing() {
    let content = r#"{"version": 1,
"model": {"architecture": "t", "moe_layers": [3, 3], "n_expert": 4, "top_k": 2}, "sequences": []}"#;
    let e = fails_at(content, 2);
    assert!(e.contains("moe_layers must be strictly increasing"), "{e}");
}

#[test]
fn empty_trace_and_empty_sequence() {
    let e = fails_at(
        &format!("{{\"version\": 1, {MODEL},\n\"sequences\": []}}"),
        2,
    );
    assert!(e.contains("trace is empty"), "{e}");
    let e = fails_at(
        &format!(
            "{{\"version\": 1, {MODEL},\n\"sequences\": [{{\"id\": \"a\", \"tokens\": []}}]}}"
        ),
        2,
    );
    assert!(e.contains("sequence has no tokens"), "{e}");
}

#[test]
fn wrong_or_missing_version() {
    let e = fails_at(
        &doc("{\"experts\": [[0, 1], [2, 3]]}").replace("\"version\": 1", "\"version\": 2"),
        1,
    );
    assert!(
        e.contains("unsupported trace version 2; this build reads version 1"),
        "{e}"
    );
    let e = fails_at(&format!("{{{MODEL},\n\"sequences\": []}}"), 2);
    assert!(
        e.contains("\"version\" and \"model\" must come before \"sequences\""),
        "{e}"
    );
}

#[test]
fn top_k_larger_than_n_expert() {
    let e = fails_at(
        &format!(
            "{{\"version\": 1,\n{}}}",
            MODEL.replace("\"top_k\": 2", "\"top_k\": 5")
        ),
        2,
    );
    assert!(
        e.contains("top_k is 5; it must be in 1..=n_expert (4)"),
        "{e}"
    );
}

#[test]
fn syntax_and_type_errors_carry_positions() {
    let e = fails_at(&doc(r#"{"experts": [[0, 1], [2, "x"]]}"#), 5);
    assert!(e.contains("invalid type"), "{e}");
    let truncated = doc("{\"experts\": [[0, 1], [2, 3]]}");
    let e = fails_at(&truncated[..truncated.len() - 8], 5);
    assert!(e.contains("EOF"), "{e}");
    let e = fails_at(&doc(r#"{"experts": [[0, 1], [2, 3]], "colour": 1}"#), 5);
    assert!(e.contains("unknown key \"colour\""), "{e}");
}

#[test]
fn weights_must_match_ids_and_be_on_every_token() {
    let first = "{\"experts\": [[0, 1], [2, 3]]}";
    let content = doc(r#"{"experts": [[0, 1], [2, 3]], "weights": [[0.5, 0.5], [1.0, 0.0]]}"#);
    let e = fails_at(&content, 5);
    assert!(e.contains("gate weights that earlier tokens lack"), "{e}");
    let with_weights = content.replace(
        first,
        r#"{"experts": [[0, 1], [2, 3]], "weights": [[0.5, 0.5], [1.0]]}"#,
    );
    let e = fails_at(&with_weights, 4);
    assert!(
        e.contains("layer 1: selection has 1 entries but top_k is 2"),
        "{e}"
    );
}

/// Rule violations come back as typed problems at serde_json's position; syntax errors as
/// serde_json's own.
#[test]
fn problems_are_typed() {
    use traces::json::{from_slice, JsonError};
    use traces::{Place, TraceError};
    let path = std::path::Path::new("t.json");
    let bad_version =
        doc("{\"experts\": [[0, 1], [2, 3]]}").replace("\"version\": 1", "\"version\": 2");
    match from_slice(bad_version.as_bytes(), path) {
        Err(TraceError::Json {
            at,
            problem: JsonError::Version { version: 2 },
        }) => assert!(
            matches!(at.place, Place::LineColumn { line: 1, .. }),
            "{at}"
        ),
        other => panic!("{other:?}"),
    }
    match from_slice(doc(r#"{"experts": [[0], [2, 3]]}"#).as_bytes(), path) {
        Err(TraceError::Json {
            problem:
                JsonError::SelectionSize {
                    layer: 0,
                    count: 1,
                    top_k: 2,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match from_slice(b"{\"version\": ", path) {
        Err(TraceError::Json {
            problem: JsonError::Syntax(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
