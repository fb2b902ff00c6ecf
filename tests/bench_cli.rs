//! `hypura bench` on the real Gemma 3 270M: both sides' runs, statistics that hold together, and
//! tokens that are what plain llama.cpp generates from the same prompt.
#![cfg(feature = "runtime")]

mod common;

use common::hypura;

#[test]
fn bench_reports_both_sides_and_their_tokens_are_plain_llama_cpps() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let gemma = gemma.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    let (ok, _, err) = hypura(&["solve", "--hw", "m1max", "--model", gemma, "-o", plan]);
    assert!(ok, "{err}");
    let args = [
        "-m", gemma, "--plan", plan, "-p", "16", "-n", "8", "-t", "2",
    ];
    let (ok, out, err) = hypura(&[&["bench"][..], &args, &["--reps", "2", "--json"]].concat());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "hypura.bench/1");
    assert_eq!(v["setting"]["model_path"], gemma);
    assert_eq!(v["setting"]["prompt_tokens"], 16);
    let sides = v["sides"].as_array().unwrap();
    let names: Vec<&str> = sides.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hypura", "llama.cpp"]);
    assert_eq!(v["same_tokens"], true);

    // The oracle: plain llama.cpp on the same 16-token prompt, 8 tokens past end-of-generation.
    let (ok, plain, err) = hypura(&[
        "run",
        "--plain",
        "-m",
        gemma,
        "--prompt-tokens",
        "16",
        "-n",
        "8",
        "--ignore-eos",
        "--json",
    ]);
    assert!(ok, "{err}");
    let plain: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(plain["prompt_tokens"].as_array().unwrap().len(), 16);
    for side in sides {
        let runs = side["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{side}");
        for r in runs {
            assert_eq!(r["tokens"], plain["tokens"], "{}", side["name"]);
            assert!(r["decode_tok_per_s"].as_f64().unwrap() > 0.0);
        }
        for key in ["prompt_tok_per_s", "decode_tok_per_s", "ttft_s"] {
            let s = &side[key];
            let (lo, mid, hi) = (
                s["min"].as_f64().unwrap(),
                s["median"].as_f64().unwrap(),
                s["max"].as_f64().unwrap(),
            );
            assert!(lo <= mid && mid <= hi && lo > 0.0, "{key}: {s}");
        }
        // Every weight is loaded: the peak RSS holds at least the file's tensors.
        let rss = side["peak_rss_bytes"].as_u64().unwrap();
        assert!(rss > 200 << 20, "{}: {rss}", side["name"]);
    }

    // The table, llama-bench's shape; without the baseline, one side and no comparison.
    let (ok, md, err) =
        hypura(&[&["bench"][..], &args, &["--no-baseline", "--reps", "1"]].concat());
    assert!(ok, "{err}");
    assert!(
        md.contains("| pp16 |")
            && md.contains("| tg8 |")
            && md.contains("| hypura |")
            && md.contains("| disk bound t/s |"),
        "{md}"
    );
    assert!(!md.contains("llama.cpp | plain"), "{md}");
}

/// A plan whose experts stream: every run's disk rate is measured and its disk bound is that
/// rate over the bytes it read per token; `--sim` predicts what `hypura sim` predicts for the
/// same plan, profile, routing, prompt, tokens, policy and queue depth.
#[test]
fn bench_measures_the_disk_and_predicts_with_the_simulator() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (model, plan, _) = common::streamed_tiny_mixtral(dir.path());
    let trace = dir.path().join("t.json");
    common::synth_trace_for(&model, 64, 1, &trace);
    let (model, plan, trace) = (
        model.to_str().unwrap(),
        plan.to_str().unwrap(),
        trace.to_str().unwrap(),
    );
    let (ok, out, err) = hypura(&[
        "bench",
        "-m",
        model,
        "--plan",
        plan,
        "-p",
        "8",
        "-n",
        "12",
        "-t",
        "2",
        "--reps",
        "2",
        "--replay-trace",
        trace,
        "--sim",
        "--hw",
        "h200-141g",
        "--json",
        "--",
        "--queue-depth",
        "2",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["same_tokens"], true);
    for side in v["sides"].as_array().unwrap() {
        for r in side["runs"].as_array().unwrap() {
            let disk = r["disk_gbps"].as_f64().unwrap();
            assert!(disk > 0.0 && disk < 1000.0, "{r}");
        }
    }
    let hypura_side = &v["sides"][0];
    assert_eq!(hypura_side["name"], "hypura");
    let bounds: Vec<f64> = hypura_side["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let read = r["read_bytes_per_token"].as_f64().unwrap();
            assert!(read > 0.0, "the experts stream: {r}");
            r["disk_gbps"].as_f64().unwrap() * 1e9 / read
        })
        .collect();
    let median = hypura_side["disk_bound_tok_per_s"]["median"]
        .as_f64()
        .unwrap();
    assert!((median / ((bounds[0] + bounds[1]) / 2.0) - 1.0).abs() < 1e-9);

    // The oracle: `hypura sim` on the same inputs (the plan's LRU policy, 11 decoded tokens).
    let (ok, sim, err) = hypura(&[
        "sim",
        "--plan",
        plan,
        "--model",
        model,
        "--hw",
        "h200-141g",
        "--trace",
        trace,
        "--prompt-len",
        "8",
        "--tokens",
        "11",
        "--policy",
        "lru",
        "--queue-depth",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    let sim: serde_json::Value = serde_json::from_str(&sim).unwrap();
    let p = &v["prediction"];
    assert!(p["profile"].as_str().unwrap().contains("H200"), "{p}");
    assert_eq!(
        p["decode_tok_per_s"], sim["summary"]["tok_per_s"],
        "{p} vs {sim}"
    );
    assert_eq!(
        p["prompt_tok_per_s"], sim["prefill"]["tok_per_s"],
        "{p} vs {sim}"
    );
    let (a, b) = (
        p["read_bytes_per_token"].as_f64().unwrap(),
        sim["summary"]["bytes_read_per_token"].as_f64().unwrap(),
    );
    assert!((a / b - 1.0).abs() < 1e-12, "{a} vs {b}");

    // A prediction that cannot be made fails before any run.
    let (ok, _, err) = hypura(&[
        "bench",
        "-m",
        model,
        "--plan",
        plan,
        "-p",
        "8",
        "-n",
        "12",
        "--sim",
        "--hw",
        "h200-141g",
    ]);
    assert!(
        !ok && err.contains("--sim") && err.contains("trace"),
        "{err}"
    );
}
