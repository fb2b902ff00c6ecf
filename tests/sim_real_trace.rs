//! `hypura sim` on the real DeepSeek-V2-Lite routing trace (imported from
//! `../shared/data/traces/deepseek-v2-lite` with `hypura trace import`) on a plan for the
//! catalog's deepseek-v2-lite (64 routed experts, top-6, 26 MoE layers) solved for the 16 GB M4
//! with a 128k context, whose KV cache leaves 4.3 GB for experts, so they stream: the summary
//! shows the policy's hit rate next to the Belady-OPT bound.

mod common;

use common::{hypura, import_deepseek_trace};
use std::path::Path;

const MODEL: &str = "deepseek-v2-lite:q5_k_m";
const TOKENS: &str = "2000";

#[test]
fn sim_on_the_imported_real_deepseek_trace_shows_the_belady_bound() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hw = root.join("profiles/m4-16g.toml");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("deepseek.htrace");
    let out = import_deepseek_trace(&trace);
    assert!(
        out.contains("300 sequences, 22287 tokens, 26 MoE layers"),
        "{out}"
    );

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

    let args = |json: bool| {
        let mut a = vec![
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
            TOKENS,
        ];
        if json {
            a.push("--json");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let text_args = args(false);
    let (ok, out, err) = hypura(&text_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    println!("{out}");
    for needle in ["2000 tokens, policy lru", "hit rate", "belady", "tok/s"] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }

    let json_args = args(true);
    let (ok, out, err) = hypura(&json_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (s, bound) = (&v["summary"], &v["belady"]);
    assert_eq!(s["policy"], "lru");
    assert_eq!(bound["policy"], "belady");
    assert_eq!(s["tokens"], 2000);
    assert_eq!(s["layers"].as_array().unwrap().len(), 26);
    let (hit, opt) = (
        s["hit_rate"].as_f64().unwrap(),
        bound["hit_rate"].as_f64().unwrap(),
    );
    // Experts stream on this machine, so LRU misses, and the offline optimum is strictly better.
    assert!(hit > 0.0 && hit < 1.0, "LRU hit rate {hit}");
    assert!(opt > hit, "Belady {opt} vs LRU {hit}");
    assert!(bound["tok_per_s"].as_f64().unwrap() >= s["tok_per_s"].as_f64().unwrap());
}
