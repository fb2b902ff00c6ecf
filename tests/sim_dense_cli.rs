//! End-to-end: `hypura sim` on the real (dense) Gemma 3 270M: it runs without a routing trace,
//! refuses one, reads nothing when everything is resident, re-reads the streamed FFN bytes every
//! token when they are on NVMe, and prefetching layers ahead shortens the predicted wait.

mod common;

use std::path::Path;

use common::{ffn_matrices, gemma_path, hypura, solve, stream_from_nvme};

const TOKENS: u64 = 8;

fn sim_json(plan: &Path, model: &Path, extra: &[&str]) -> serde_json::Value {
    let tokens = TOKENS.to_string();
    let mut args = vec![
        "sim",
        "--plan",
        plan.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--hw",
        concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/h200-141g.toml"),
        "--tokens",
        &tokens,
        "--json",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = hypura(&args);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_dense_model_is_simulated_without_a_trace() {
    let gemma = gemma_path();
    let dir = tempfile::tempdir().unwrap();
    let plan = solve(&gemma, dir.path());

    let resident = sim_json(&plan, &gemma, &[]);
    let s = &resident["summary"];
    assert_eq!(s["tokens"], TOKENS, "{s}");
    assert_eq!(s["bytes_read_per_token"], 0.0, "{s}");
    assert!(
        resident["belady"].is_null(),
        "no cache policy applies: {resident}"
    );
    assert!(s["tok_per_s"].as_f64().unwrap() > 0.0, "{s}");

    let inv = model::Inventory::from_gguf(&gemma).unwrap();
    let ffn = ffn_matrices(&inv);
    // Direct reads move whole pages: each tensor's range widened to 4 KiB at both ends, cut
    // at the end of the file.
    let file_len = std::fs::metadata(&gemma).unwrap().len();
    let ffn_bytes: u64 = ffn
        .iter()
        .map(|t| {
            let start = t.offset.unwrap();
            let end = ((start + t.bytes).div_ceil(4096) * 4096).min(file_len);
            end - start / 4096 * 4096
        })
        .sum();
    let largest = ffn.iter().map(|t| t.bytes).max().unwrap();
    let streamed = stream_from_nvme(&plan, &ffn, 3 * largest);
    let wait = |v: &serde_json::Value| v["summary"]["io_wait_s_per_token"].as_f64().unwrap();
    let (mut last_wait, mut last_tps) = (f64::INFINITY, 0.0);
    for depth in ["0", "1", "2"] {
        let v = sim_json(
            &streamed,
            &gemma,
            &["--prefetch-depth", depth, "--queue-depth", "4"],
        );
        let s = &v["summary"];
        // A pool of three matrices holds none across tokens: every token reads every FFN byte.
        assert_eq!(
            s["bytes_read_per_token"], ffn_bytes as f64,
            "depth {depth}: {s}"
        );
        let tps = s["tok_per_s"].as_f64().unwrap();
        assert!(wait(&v) < last_wait && tps > last_tps, "depth {depth}: {s}");
        (last_wait, last_tps) = (wait(&v), tps);
    }
    assert!(last_tps < resident["summary"]["tok_per_s"].as_f64().unwrap());

    let trace = testkit::shared_data("traces/deepseek-v2-lite");
    let trace = trace.to_str().unwrap();
    let (ok, _, err) = hypura(&[
        "sim",
        "--plan",
        plan.to_str().unwrap(),
        "--model",
        gemma.to_str().unwrap(),
        "--trace",
        trace,
    ]);
    assert!(
        !ok && err.contains("--trace") && err.contains("no routed experts"),
        "{err}"
    );
}
