//! End-to-end: `hypura solve` writes plan.json, explains it, refuses bad input and overwrites,
//! and uses a trace's expert frequencies. Snapshots pin `--explain` for catalog models on the
//! shipped profiles.

mod common;

use common::hypura;

use std::path::{Path, PathBuf};

fn profile(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{name}.toml"))
        .display()
        .to_string()
}

fn plan(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn solve_writes_a_plan_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    let hw = profile("m1max");
    let args = [
        "solve",
        "--hw",
        &hw,
        "--model",
        "mixtral-8x7b:q5_k_m",
        "-o",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, err) = hypura(&args);
    assert!(ok, "{err}");
    assert!(stdout.is_empty(), "the plan goes to the file: {stdout}");
    let p = plan(&out);
    assert_eq!(p["version"], 3);
    // The plan carries its profile (so `sim --plan` needs no --hw) and, for a catalog model,
    // no file path.
    let carried: hw::HwProfile = serde_json::from_value(p["inputs"]["profile"].clone()).unwrap();
    assert_eq!(carried, hw::HwProfile::load(&hw).unwrap());
    assert!(p["inputs"]["model"].get("path").is_none());
    assert_eq!(p["mode"], "expert-streaming");
    assert_eq!(p["inputs"]["model"]["name"], "mixtral-8x7b:q5_k_m");
    assert!(p["prediction"]["tok_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(p["tensors"]["blk.0.attn_q.weight"], "gpu");
    assert_eq!(p["experts"].as_array().unwrap().len(), 32);

    let (ok, _, err) = hypura(&args);
    assert!(!ok && err.contains("already exists; pass --force"), "{err}");
    let mut forced = args.to_vec();
    forced.push("--force");
    let (ok, _, err) = hypura(&forced);
    assert!(ok, "{err}");
}

#[test]
fn solve_reports_an_infeasible_context_with_the_shortfall() {
    let hw = profile("m4-16g");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "llama-3.3-70b",
        "--ctx",
        "1048576",
    ]);
    assert!(!ok);
    assert!(
        err.contains("infeasible") && err.contains("short by") && err.contains("--ctx"),
        "{err}"
    );
}

#[test]
fn solve_rejects_bad_arguments() {
    let hw = profile("m1max");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "gemma-3-270m",
        "--kv-type",
        "q5_k",
    ]);
    assert!(!ok && err.contains("--kv-type"), "{err}");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        "/nonexistent/hw.toml",
        "--model",
        "gemma-3-270m",
    ]);
    assert!(!ok && err.contains("/nonexistent/hw.toml"), "{err}");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "gemma-3-270m",
        "--mip-gap",
        "2",
    ]);
    assert!(!ok && err.contains("--mip-gap"), "{err}");
    let (ok, _, err) = hypura(&["solve", "--hw", &hw, "--model", "no-such-model"]);
    assert!(!ok && err.contains("unknown catalog model"), "{err}");
}

#[test]
fn solve_uses_the_trace_frequencies() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.htrace");
    let (ok, _, err) = hypura(&[
        "trace",
        "synth",
        "-o",
        trace.to_str().unwrap(),
        "--experts",
        "8",
        "--top-k",
        "2",
        "--layers",
        "0-31",
        "--sequences",
        "4",
        "--tokens",
        "200",
        "--skew",
        "1.2",
    ]);
    assert!(ok, "{err}");
    let hw = profile("m4-16g");
    let out = dir.path().join("plan.json");
    let (ok, stdout, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "mixtral-8x7b:q5_k_m",
        "--trace",
        trace.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--explain",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("expert use: from the trace"), "{stdout}");
    assert!(stdout.contains("an LRU cache of the same"), "{stdout}");
    let p = plan(&out);
    assert_eq!(p["inputs"]["trace_hash"].as_str().unwrap().len(), 16);
    let uniform_out = dir.path().join("uniform.json");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "mixtral-8x7b:q5_k_m",
        "-o",
        uniform_out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let u = plan(&uniform_out);
    let hit = |p: &serde_json::Value| p["expert_cache"]["hit_rate"].as_f64().unwrap();
    assert!(
        hit(&p) > hit(&u),
        "skewed trace {} vs uniform {}",
        hit(&p),
        hit(&u)
    );

    // A trace of another model shape is refused with what differs.
    let (ok, _, err) = hypura(&[
        "trace",
        "synth",
        "-o",
        trace.to_str().unwrap(),
        "--experts",
        "16",
        "--layers",
        "0-31",
        "--force",
        "--sequences",
        "1",
        "--tokens",
        "10",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = hypura(&[
        "solve",
        "--hw",
        &hw,
        "--model",
        "mixtral-8x7b:q5_k_m",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("16 experts"), "{err}");
}

#[test]
fn greedy_flag_skips_the_ilp() {
    let hw = profile("m4-16g");
    let (ok, out, err) = hypura(&["solve", "--hw", &hw, "--model", "qwen3-30b-a3b", "--greedy"]);
    assert!(ok, "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["solver"]["method"], "greedy");
    assert!(p["solver"]["gap"].is_null());
}

/// Every shipped profile and every catalog model (Mixtral at the quantization the notes use).
const PROFILES: [&str; 7] = [
    "h100-pcie-80g",
    "h200-141g",
    "m1max",
    "m2max",
    "m3max",
    "m4-16g",
    "m4max",
];
const MODELS: [&str; 8] = [
    "gemma-3-270m",
    "qwen2.5-14b",
    "mixtral-8x7b:q5_k_m",
    "llama-3.3-70b",
    "qwen3-30b-a3b",
    "deepseek-v2-lite",
    "deepseek-v3",
    "gpt-oss-20b",
];

/// What `hypura solve --explain` prints without a trace, solved in this process.
fn explain(hw: &str, model: &str) -> String {
    let hw = hw::HwProfile::load(profile(hw)).unwrap();
    let inv = model::load_model(model).unwrap();
    let solved = place::solve(&inv, &hw, &place::SolveOptions::default()).unwrap();
    place::explain::render(&solved)
}

/// `--explain` for all 56 catalog model x shipped profile pairs. They are solved in-process on
/// two threads rather than as 56 CLI runs (the CLI prints exactly `explain::render`: see the
/// next test), which keeps the set about as cheap as a handful of CLI runs.
#[test]
fn explain_snapshots() {
    let pairs: Vec<(&str, &str)> = PROFILES
        .iter()
        .flat_map(|&hw| MODELS.iter().map(move |&m| (hw, m)))
        .collect();
    let (first, second) = pairs.split_at(pairs.len() / 2);
    let outs: Vec<String> = std::thread::scope(|s| {
        let run = |half: &[(&str, &str)]| -> Vec<String> {
            half.iter().map(|&(hw, m)| explain(hw, m)).collect()
        };
        let other = s.spawn(move || run(second));
        let mut outs = run(first);
        outs.extend(other.join().unwrap());
        outs
    });
    assert_eq!(outs.len(), 56);
    for ((hw, model), out) in pairs.iter().zip(outs) {
        let name = format!("solve_explain_{hw}_{}", model.replace(':', "_"));
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn explain_cli_prints_the_rendered_plan() {
    let (hw, model) = ("m1max", "mixtral-8x7b:q5_k_m");
    let (ok, out, err) = hypura(&["solve", "--hw", &profile(hw), "--model", model, "--explain"]);
    assert!(ok, "{err}");
    assert_eq!(out, explain(hw, model));
}

/// `--ram-budget` and `--gpu-budget` plan for the profile with that much memory: the same plan
/// as a copy of the profile whose `ram.bytes` (the budget plus the OS reserve) and
/// `gpu.working_set_bytes` were edited by hand; a budget beyond the profile is refused, naming
/// the flag.
#[test]
fn memory_budgets_plan_as_a_profile_with_that_much_memory() {
    let dir = tempfile::tempdir().unwrap();
    let hw = profile("h100-pcie-80g");
    let text = std::fs::read_to_string(&hw).unwrap();
    let (ram, gpu) = (16u64 << 30, 6u64 << 30);
    let reserve: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("os_reserve_bytes = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("working_set_bytes = ") {
                format!("working_set_bytes = {gpu}")
            } else if l.starts_with("bytes = ") {
                format!("bytes = {}", ram + reserve)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(edited, text);
    let edited_path = dir.path().join("edited.toml");
    std::fs::write(&edited_path, edited).unwrap();
    let solve = |hw: &str, extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec![
            "solve",
            "--hw",
            hw,
            "--model",
            "mixtral-8x7b:q5_k_m",
            "--greedy",
        ];
        args.extend_from_slice(extra);
        args.extend(["-o", out.to_str().unwrap()]);
        let (ok, _, err) = hypura(&args);
        assert!(ok, "{err}");
        plan(&out)
    };
    let budgeted = solve(
        &hw,
        &["--ram-budget", "16GiB", "--gpu-budget", "6GiB"],
        "a.json",
    );
    let by_hand = solve(edited_path.to_str().unwrap(), &[], "b.json");
    assert_eq!(budgeted["mode"], by_hand["mode"]);
    assert_ne!(
        budgeted["mode"], "full-resident",
        "the budgets made it stream"
    );
    assert_eq!(budgeted["tensors"], by_hand["tensors"]);
    assert_eq!(budgeted["experts"], by_hand["experts"]);
    let name = budgeted["inputs"]["profile_name"].as_str().unwrap();
    assert!(
        name.contains("RAM for the plan: 17179869184 bytes"),
        "{name}"
    );

    for (flag, value) in [("--ram-budget", "900TB"), ("--gpu-budget", "1TB")] {
        let out = dir.path().join("c.json");
        let (ok, _, err) = hypura(&[
            "solve",
            "--hw",
            &hw,
            "--model",
            "mixtral-8x7b:q5_k_m",
            flag,
            value,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(
            !ok && err.contains(flag) && err.contains("more than the profile"),
            "{err}"
        );
        assert!(!out.exists());
    }
}
