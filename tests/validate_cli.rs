//! `hypura validate` end to end on a small grid: a synthesized DeepSeek-V2-Lite-routed MoE
//! (tiny widths, the real 64 experts top-6 over 26 MoE layers) replaying the real recorded
//! routing from `../shared/data`, on this machine's quick profile. Asserts the report's
//! structure, that the simulator and the runtime agree exactly on expert hits, uses and bytes
//! read without prefetch (the deterministic part of the prediction) and on uses with it, and
//! that pyarrow reads the Parquet table with a row per point. Timings are printed, not
//! asserted.
#![cfg(feature = "runtime")] // the measured side needs llama.cpp

mod common;

use common::{hypura, import_deepseek_trace};
use serde_json::Value;
use std::process::Command;

#[test]
fn small_grid_on_the_real_deepseek_trace_agrees_exactly_on_hits_and_bytes() {
    // Under target/: on the build disk (O_DIRECT works there, unlike tmpfs).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    import_deepseek_trace(&dir.path().join("ds.htrace"));
    let (ok, _, err) = hypura(&[
        "synth",
        "--preset",
        "tiny-deepseek-v2-lite",
        "-o",
        &path("ds.gguf"),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = hypura(&[
        "profile",
        "--quick",
        "--disk",
        dir.path().to_str().unwrap(),
        "-o",
        &path("hw.toml"),
    ]);
    assert!(ok, "{err}");

    let model_bytes = std::fs::metadata(path("ds.gguf")).unwrap().len();
    // 88% of the model: the least used routed experts stream through a cache, the rest is
    // resident. 70%: some layers' attention streams too, through a pool that keeps part of
    // it across tokens (what the pool keeps is the simulator's replay of the runtime's pool).
    let (most, less) = (model_bytes * 88 / 100, model_bytes * 70 / 100);
    // `hypura validate` of `grid` over 8 tokens after a 4-token prompt, plus `extra`.
    let validate = |grid: &str, extra: &[&str]| {
        let (model, hw, trace) = (path("ds.gguf"), path("hw.toml"), path("ds.htrace"));
        let mut args = vec![
            "validate",
            "-m",
            &model,
            "--hw",
            &hw,
            "--trace",
            &trace,
            "--grid",
            grid,
            "--tokens",
            "8",
            "--prompt-len",
            "4",
            "--threads",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        hypura(&args)
    };
    let grid = format!("ram={most},{less};policy=static,lru;prefetch=none,oracle");
    let (ok, out, err) = validate(&grid, &["-o", &path("out")]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["schema"], "hypura.validate/1");
    assert_eq!(report["tokens"], 8);
    assert_eq!(report["prompt_len"], 4);
    let points = report["points"].as_array().unwrap();
    let labels: Vec<&str> = points
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(points.len(), 8, "{labels:?}");
    for policy in ["static", "lru"] {
        for prefetch in ["none", "oracle"] {
            for ram in [most, less] {
                assert!(
                    points.iter().any(|p| p["policy"] == policy
                        && p["prefetch"] == prefetch
                        && p["ram_bytes"] == ram),
                    "no point {ram}/{policy}/{prefetch} in {labels:?}"
                );
            }
        }
    }
    for side in ["sim", "run"] {
        assert!(
            points.iter().any(|p| p[side]["storage_gbps"].is_f64()),
            "no point has a {side} storage rate"
        );
    }
    for p in points {
        let label = p["label"].as_str().unwrap();
        let mode = if p["ram_bytes"] == most {
            "expert-streaming"
        } else {
            "mixed"
        };
        assert_eq!(p["plan_mode"], mode, "{label}");
        for side in ["sim", "run"] {
            let m = &p[side];
            assert_eq!(m["decode_tokens"], 7, "{label} {side}");
            assert!(
                m["decode_tok_per_s"].as_f64().unwrap() > 0.0,
                "{label} {side}"
            );
            assert!(
                m["prefill_tok_per_s"].as_f64().unwrap() > 0.0,
                "{label} {side}"
            );
            assert!(m["decode_uses"].as_u64().unwrap() > 0, "{label} {side}");
            // The storage rate: absent where the timed tokens read nothing, else positive.
            if let Some(g) = m["storage_gbps"].as_f64() {
                assert!(g.is_finite() && g > 0.0, "{label} {side}: {g}");
            }
            // One time per layer of the model (26 MoE + 1 dense) plus the globals.
            assert_eq!(m["layers"].as_array().unwrap().len(), 28, "{label} {side}");
        }
        // The deterministic part: the same routing through the same policy and cache. With
        // expert prefetch, whether a prefetched expert arrived before its layer ran is timing
        // (a late one counts as a miss in the run), so only the uses must agree there.
        assert_eq!(p["sim"]["decode_uses"], p["run"]["decode_uses"], "{label}");
        if p["prefetch"] == "none" {
            for key in ["decode_hits", "decode_bytes_read"] {
                assert_eq!(p["sim"][key], p["run"][key], "{label}: {key}");
            }
            assert_eq!(p["errors"]["hits_equal"], true, "{label}");
            assert_eq!(p["errors"]["bytes_equal"], true, "{label}");
        }
        println!(
            "{label}: hits sim {} run {}, bytes sim {} run {}; decode sim {:.1} run {:.1} tok/s, error {:+.1}%",
            p["sim"]["decode_hits"],
            p["run"]["decode_hits"],
            p["sim"]["decode_bytes_read"],
            p["run"]["decode_bytes_read"],
            p["sim"]["decode_tok_per_s"].as_f64().unwrap(),
            p["run"]["decode_tok_per_s"].as_f64().unwrap(),
            p["errors"]["decode_tok_per_s"].as_f64().unwrap() * 100.0
        );
    }
    assert!(report["summary"]["hits_equal"].as_u64().unwrap() >= 4);
    assert!(
        points
            .iter()
            .any(|p| p["sim"]["decode_bytes_read"].as_u64().unwrap() > 0),
        "no point streamed anything: {labels:?}"
    );

    // Repeated runs: every run's speed is reported and the median one is compared.
    let one = format!("ram={most};policy=static;prefetch=none");
    let (ok, out, err) = validate(&one, &["--repeat", "3"]);
    assert!(ok, "{err}");
    let repeated: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(repeated["repeats"], 3);
    let p = &repeated["points"][0];
    let mut speeds: Vec<f64> = p["run_decode_tok_per_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(speeds.len(), 3, "{p}");
    speeds.sort_by(f64::total_cmp);
    assert_eq!(
        p["run"]["decode_tok_per_s"].as_f64().unwrap(),
        speeds[1],
        "{p}"
    );

    let out_dir = dir.path().join("out");
    for f in [
        "report.json",
        "points.parquet",
        "layers.parquet",
        "decode.svg",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    // Each point's observed run: a record's storage busy time is its own (the static cache's
    // preload during the model's load is not the prompt's), so at most its wall time.
    for n in 1..=8 {
        let f = out_dir.join(format!("records/{n}-run.parquet"));
        let records = metrics::read_records(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for r in &records {
            assert!(r.storage_busy_s <= r.wall_s + 1e-3, "point {n}: {r:?}");
        }
    }
    let svg = std::fs::read_to_string(out_dir.join("decode.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{svg:.80}"
    );

    // pyarrow (scripts/requirements.txt) reads the points table: a row per point.
    let py = Command::new("python3")
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows)",
        ])
        .arg(out_dir.join("points.parquet"))
        .output()
        .unwrap_or_else(|e| panic!("python3 is not runnable ({e}); run scripts/setup.sh"));
    assert!(
        py.status.success(),
        "pyarrow could not read points.parquet (this test needs scripts/requirements.txt): {}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "8");
}
