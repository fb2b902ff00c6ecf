//! `hypura tune` on the real DeepSeek-V2-Lite routing: the plan it writes, simulated by `hypura
//! sim` with the chosen policy and prefetch, gives the speed tune reported; the choice beats
//! every other candidate it printed; Belady is reported as a bound.

mod common;

use common::{hypura, import_deepseek_trace};
use std::path::Path;

/// The number after the last `label` in `text` (up to a space).
fn number_after(text: &str, label: &str) -> f64 {
    let at = text
        .rfind(label)
        .unwrap_or_else(|| panic!("{label:?} not in {text}"))
        + label.len();
    text[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', '%', ')'])
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
}

#[test]
fn the_tuned_plan_simulates_to_the_speed_tune_reported() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("ds.htrace");
    import_deepseek_trace(&trace);
    // The M4 16 GB with 6 GiB of RAM: the experts of the catalog DeepSeek-V2-Lite stream.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hw = hw::HwProfile::load(root.join("profiles/m4-16g.toml")).unwrap();
    hw.ram.bytes = (6 << 30) + hw.ram.os_reserve_bytes;
    if let Some(g) = hw.gpu.as_mut() {
        g.memory_bytes = hw.ram.bytes;
        g.working_set_bytes = g.working_set_bytes.min(4 << 30);
    }
    let hw_path = dir.path().join("hw.toml");
    std::fs::write(&hw_path, hw.to_toml()).unwrap();
    let plan = dir.path().join("tuned.json");
    let args = [
        "tune",
        "--trace",
        trace.to_str().unwrap(),
        "-m",
        "deepseek-v2-lite:q5_k_m",
        "--hw",
        hw_path.to_str().unwrap(),
        "--tokens",
        "200",
        "-o",
        plan.to_str().unwrap(),
    ];
    let (ok, out, err) = hypura(&args);
    assert!(ok, "{err}");
    let best = out.lines().find(|l| l.starts_with("best: ")).expect(&out);
    let speed = number_after(best, ": ");
    let policy = best
        .split_whitespace()
        .find_map(|w| w.strip_prefix("policy="))
        .unwrap();
    let prefetch = best
        .split_whitespace()
        .find_map(|w| w.strip_prefix("prefetch="))
        .unwrap();
    for runner_up in out
        .lines()
        .skip_while(|l| !l.starts_with("runners-up"))
        .skip(1)
    {
        if !runner_up.starts_with("  policy=") {
            break;
        }
        assert!(
            number_after(runner_up, ": ") <= speed,
            "{runner_up} beats {best}"
        );
    }
    let belady = out
        .lines()
        .find(|l| l.contains("Belady with the same bytes"))
        .expect(&out);
    assert!(
        number_after(belady, "hit rate ") >= number_after(best, "hit rate "),
        "{belady}"
    );

    // The plan written, simulated on its own: the policy and queue depth come from the plan.
    let p = plan::Plan::load(&plan).unwrap();
    let sim_policy = if p.expert_cache.policy == "static-frequency" {
        "static"
    } else {
        p.expert_cache.policy.as_str()
    };
    assert_eq!(sim_policy, policy);
    let mut sim = vec![
        "sim",
        "--plan",
        plan.to_str().unwrap(),
        "--model",
        "deepseek-v2-lite:q5_k_m",
        "--hw",
        hw_path.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--tokens",
        "200",
        "--policy",
        sim_policy,
        "--expert-prefetch",
        prefetch,
        "--json",
    ];
    let cache = p.expert_cache.bytes.to_string();
    if sim_policy != "static" {
        sim.extend(["--cache-bytes", &cache]);
    }
    let (ok, json, err) = hypura(&sim);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let simulated = v["summary"]["tok_per_s"].as_f64().expect(&json);
    assert!(
        (simulated - speed).abs() <= 0.0005 * speed + 0.001,
        "tune said {speed} tok/s, the plan simulates to {simulated}"
    );

    // Not again without --force.
    let (ok, _, err) = hypura(&args);
    assert!(!ok && err.contains("--force"), "{err}");
}
