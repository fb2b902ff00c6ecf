//! `hypura sim --prompt-len` on the real DeepSeek-V2-Lite routing trace (imported from
//! `../shared/data/traces/deepseek-v2-lite`) and the 16 GB M4 plan of `sim_real_trace.rs`, whose
//! experts stream: a 64-token prompt is prefilled before decode, and bad prompts are refused.

mod common;

use common::{hypura, import_deepseek_trace};
use std::path::Path;

const MODEL: &str = "deepseek-v2-lite:q5_k_m";

#[test]
fn prompt_of_64_tokens_on_the_real_deepseek_trace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hw = root.join("profiles/m4-16g.toml");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("deepseek.htrace");
    import_deepseek_trace(&trace);
    let plan = dir.path().join("plan.json");
    let (ok, _, err) = hypura(&[
        "solve",
        "--model",
        MODEL,
        "--hw",
        hw.to_str().unwrap(),
        "--ctx",
        "131072",
        "--trace",
        trace.to_str().unwrap(),
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let records = dir.path().join("records.jsonl");
    let base = [
        "sim",
        "--trace",
        trace.to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
        "--hw",
        hw.to_str().unwrap(),
        "--policy",
        "lru",
        "--tokens",
        "200",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        hypura(&a)
    };

    let (ok, out, err) = with(&["--prompt-len", "64", "--out", records.to_str().unwrap()]);
    assert!(ok, "{err}");
    println!("{out}");
    for needle in [
        "prefill: 64 prompt tokens in 1 batch(es) of 64",
        "ttft",
        "prompt tok/s",
        "per batch (hit rate)",
        "decode: 200 tokens, policy lru",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // One row per step: the prompt batch's (token 0), then 200 decode tokens' (from 1).
    let rows = metrics::read_records(&records).unwrap();
    let batch_rows = rows.iter().take_while(|r| r.token == 0).count();
    assert_eq!(rows.len(), batch_rows * 201);
    assert_eq!(rows.last().unwrap().token, 200);
    let accesses: u32 = rows[..batch_rows].iter().map(|r| r.expert_accesses).sum();
    // The union of 64 tokens' top-6 at 26 layers: more than one token's, at most 64 per layer.
    assert!(accesses > 26 * 6 && accesses <= 26 * 64, "{accesses}");

    let (ok, out, err) = with(&["--prompt-len", "64", "--batch", "16", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = &v["prefill"];
    assert_eq!(p["prompt_tokens"], 64);
    assert_eq!(p["batches"], 4);
    assert_eq!(p["per_batch"].as_array().unwrap().len(), 4);
    let ttft = p["ttft_s"].as_f64().unwrap();
    assert!(ttft > 0.0);
    assert!((p["tok_per_s"].as_f64().unwrap() - 64.0 / ttft).abs() < 1e-9 * 64.0 / ttft);
    assert!(p["bytes_read"].as_u64().unwrap() > 0);
    // A batch's union of experts (~1000 over 26 layers) outgrows this plan's 4.5 GB cache and
    // comes round in the same layer order every batch: LRU evicts each expert just before its
    // reuse and hits nothing, while Belady keeps about half (measured 0.49).
    let hit = p["hit_rate"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&hit), "prefill hit rate {hit}");
    assert_eq!(p["per_batch"][0]["expert_hits"], 0);
    let belady = v["belady_prefill"]["hit_rate"].as_f64().unwrap();
    assert!(
        belady > hit + 0.2 && belady < 1.0,
        "LRU {hit}, Belady {belady}"
    );
    assert_eq!(v["summary"]["tokens"], 200);

    // Without --prompt-len the JSON has no prefill.
    let (ok, out, err) = with(&["--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v.get("prefill").is_none());

    let (ok, _, err) = with(&["--prompt-len", "30000"]);
    assert!(
        !ok && err.contains("--prompt-len 30000") && err.contains("the trace has 22287"),
        "{err}"
    );
    let (ok, _, err) = with(&["--prompt-len", "0"]);
    assert!(
        !ok && err.contains("--prompt-len") && err.contains("0 is not in 1..="),
        "{err}"
    );
    let (ok, _, err) = with(&["--prompt-len", "8", "--batch", "0"]);
    assert!(
        !ok && err.contains("--batch") && err.contains("0 is not in 1..="),
        "{err}"
    );
}
