//! vLLM route logs and routed-experts arrays: shapes from the fixtures, one test per error.

mod common;

use common::{err_text, fixture, temp_file};
use traces::import::{import, JsonlError, Options, Source};

fn opts(n_expert: u32) -> Options {
    Options {
        n_expert: Some(n_expert),
        ..Default::default()
    }
}

#[test]
fn route_log_groups_requests_tokens_and_layers() {
    let t = import(Source::VllmJsonl, &fixture("vllm_routes.jsonl"), &opts(8)).unwrap();
    assert_eq!(t.model().moe_layers, [1, 3]);
    assert_eq!(t.model().top_k, 2);
    assert_eq!((t.n_sequences(), t.n_tokens(), t.n_selections()), (2, 3, 6));
    assert_eq!(t.sequence(0).id, "r1");
    assert_eq!(t.sequence(1).tokens, 2..3);
    // r1 token 1 was logged layer 3 first; storage follows moe_layers order.
    assert_eq!(t.selection(1, 0), [1, 2]);
    assert_eq!(t.selection(1, 1), [5, 4]);
    assert_eq!(t.selection_weights(0, 0), Some(&[0.75f32, 0.25][..]));
    assert_eq!(t.selection(2, 0), [7, 6]);
}

fn route(req: &str, token: u64, layer: u32, ids: &str) -> String {
    format!(
        r#"{{"type":"route","req_id":"{req}","token_idx":{token},"layer":{layer},"topk_ids":{ids}}}"#
    )
}

fn log_fails(lines: &[String], o: &Options) -> String {
    let (_dir, path) = temp_file("r.jsonl", lines.join("\n"));
    err_text(import(Source::VllmJsonl, &path, o)).replace(&path.display().to_string(), "FILE")
}

/// Found by the `trace_import` fuzz target: a line that is not UTF-8 was reported as an I/O
/// error of the whole file (`FILE: stream did not contain valid UTF-8`), without its line.
#[test]
fn fuzz_regression_invalid_utf8_names_its_line() {
    let ok = route("a", 0, 0, "[0,1]");
    let (_dir, path) = temp_file(
        "r.jsonl",
        [ok.as_bytes(), b"\n{\"type\":\"x\xff\"}\n"].concat(),
    );
    let e = import(Source::VllmJsonl, &path, &opts(8)).unwrap_err();
    let traces::TraceError::Import { problem, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(
        matches!(
            **problem,
            traces::import::ImportError::Jsonl(JsonlError::NotUtf8 { byte: 11 })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.location().map(|at| at.place),
        Some(traces::Place::Line(2))
    );
    assert_eq!(
        e.to_string().replace(&path.display().to_string(), "FILE"),
        "FILE:2: not UTF-8 text (byte 11 of the line)"
    );
}

#[test]
fn route_log_errors() {
    let ok = route("a", 0, 0, "[0,1]");
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 0, 1, "[0,8]")], &opts(8)),
        "FILE:2: expert id 8 >= n_expert (8)"
    );
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 0, 1, "[2,2]")], &opts(8)),
        "FILE:2: expert id 2 appears twice in one selection"
    );
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 0, 1, "[2]")], &opts(8)),
        "FILE:2: topk_ids has 1 ids but top_k is 2"
    );
    let layers = Options {
        moe_layers: Some(vec![0, 1]),
        ..opts(8)
    };
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 0, 5, "[2,3]")], &layers),
        "FILE:2: unknown layer 5; the MoE layers given are [0, 1]"
    );
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 0, 0, "[2,3]")], &opts(8)),
        "FILE:2: request \"a\" token 0 layer 0 logged twice (also line 1)"
    );
    assert_eq!(
        log_fails(
            &[
                ok.clone(),
                route("a", 0, 1, "[2,3]"),
                route("a", 1, 0, "[2,3]")
            ],
            &opts(8)
        ),
        "FILE:3: request \"a\" token 1 has no route for layer 1"
    );
    assert_eq!(
        log_fails(&[ok.clone(), route("a", 2, 0, "[2,3]")], &opts(8)),
        "FILE:2: request \"a\": token_idx 2 follows token 0; token 1 has no routes"
    );
    assert_eq!(
        log_fails(&[r#"{"type":"config"}"#.to_string()], &opts(8)),
        "FILE: no \"route\" lines: the trace would be empty"
    );
    assert_eq!(
        log_fails(&[ok.clone(), "{\"type\":".to_string()], &opts(8)),
        "FILE:2: EOF while parsing a value"
    );
    assert_eq!(
        log_fails(&[r#"{"type":"route","req_id":"a"}"#.to_string()], &opts(8)),
        "FILE:1: route line has no \"token_idx\""
    );
    let e = log_fails(&[ok], &Options::default());
    assert_eq!(
        e,
        "FILE: vLLM route records do not state the routed-expert count"
    );
}

#[test]
fn routed_arrays_single_request() {
    let t = import(Source::VllmRouted, &fixture("vllm_routed.json"), &opts(8)).unwrap();
    assert_eq!(t.model().moe_layers, [0, 1, 2]);
    assert_eq!(
        (
            t.n_sequences(),
            t.n_tokens(),
            t.n_selections(),
            t.model().top_k
        ),
        (1, 3, 9, 2)
    );
    assert_eq!(t.selection(2, 2), [2, 3]);
}

#[test]
fn routed_arrays_by_request_with_layer_ids() {
    let o = Options {
        moe_layers: Some(vec![1, 3]),
        ..opts(8)
    };
    let t = import(
        Source::VllmRouted,
        &fixture("vllm_routed_by_request.json"),
        &o,
    )
    .unwrap();
    assert_eq!(t.model().moe_layers, [1, 3]);
    assert_eq!((t.n_sequences(), t.n_tokens()), (2, 3));
    assert_eq!((t.sequence(0).id, t.sequence(1).id), ("req-a", "req-b"));
    assert_eq!(t.selection(2, 0), [7, 6]);
}

fn routed_fails(content: &str, o: &Options) -> String {
    let (_dir, path) = temp_file("r.json", content);
    err_text(import(Source::VllmRouted, &path, o)).replace(&path.display().to_string(), "FILE")
}

#[test]
fn routed_array_errors() {
    let o = opts(4);
    assert_eq!(
        routed_fails("[[[0,1],[2,4]]]", &o),
        "FILE: request \"0\" [0][1]: expert id 4 >= n_expert (4)"
    );
    assert_eq!(
        routed_fails("[[[0,1],[2,2]]]", &o),
        "FILE: request \"0\" [0][1]: expert id 2 appears twice in one selection"
    );
    assert_eq!(
        routed_fails("[[[0,1],[2,3]],[[0,1],[2]]]", &o),
        "FILE: request \"0\" [1][1]: selection has 1 expert ids but top_k is 2"
    );
    assert_eq!(
        routed_fails("[[[0,1],[2,3]],[[0,1]]]", &o),
        "FILE: request \"0\" [1]: 1 layers; the first token has 2"
    );
    let layers = Options {
        moe_layers: Some(vec![0, 1, 2]),
        ..opts(4)
    };
    assert_eq!(
        routed_fails("[[[0,1],[2,3]]]", &layers),
        "FILE: the MoE layer list given names 3 layers but the arrays have 2"
    );
    assert_eq!(routed_fails("[]", &o), "FILE: expected [gen_len][num_moe_layers][top_k] numbers, a list of such arrays, or an object of them by request id");
    assert_eq!(
        routed_fails("{\"a\": []}", &o),
        "FILE: no request has a token: the trace would be empty"
    );
    assert_eq!(
        routed_fails("[[[0,1]", &o),
        "FILE:1:7: EOF while parsing a list"
    );
}
