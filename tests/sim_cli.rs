//! End-to-end: `hypura sim` with no arguments runs the embedded default (catalog Mixtral on the
//! M1 Max profile, synthesized trace, plan solved on the fly) and its summary is snapshotted,
//! `--json` parses, expert prefetch runs, bad input is refused with a message naming the option.

mod common;

use common::{hypura, solve, synth};

/// The placement ILP stops at a wall-clock limit (10 s, one thread), so a solve starved of CPU
/// by the other tests of this binary can return a different plan than the snapshot's. The
/// tests here take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn no_arguments_runs_the_embedded_default() {
    let _turn = turn();
    let (ok, out, err) = hypura(&["sim", "--tokens", "256"]);
    assert!(ok, "{err}");
    for needle in [
        "profiles/m1max.toml (default, embedded)",
        "mixtral-8x7b:q5_k_m (default, catalog)",
        "synthesized",
        "solved on the fly",
        "tok/s",
        "p99",
        "hit rate",
        "belady",
        "waiting for I/O",
        "storage busy",
        "prefetch",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    insta::assert_snapshot!("sim_default_256_tokens", out);
}

#[test]
fn expert_prefetch_oracle_beats_none_with_the_same_hits() {
    let _turn = turn();
    let sim = |prefetch: &str| {
        let (ok, out, err) = hypura(&[
            "sim",
            "--tokens",
            "128",
            "--policy",
            "lru",
            "--expert-prefetch",
            prefetch,
            "--json",
        ]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["summary"].clone()
    };
    let (none, oracle, coact) = (sim("none"), sim("oracle"), sim("coactivation"));
    assert_eq!(none["hit_rate"], oracle["hit_rate"]);
    assert_eq!(none["hit_rate"], coact["hit_rate"]);
    assert_eq!(oracle["expert_prefetch"], "oracle");
    assert_eq!(none["prefetch_hit_rate"].as_f64(), Some(0.0));
    // Mixtral's experts read longer than a layer computes: prefetch shortens the wait.
    let wait = |v: &serde_json::Value| v["io_wait_s_per_token"].as_f64().unwrap();
    assert!(wait(&oracle) < wait(&none));
    assert!(oracle["tok_per_s"].as_f64().unwrap() > none["tok_per_s"].as_f64().unwrap());
}

#[test]
fn json_summary_with_lru() {
    let _turn = turn();
    let (ok, out, err) = hypura(&["sim", "--tokens", "256", "--policy", "lru", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "hypura.sim/1");
    assert_eq!(v["hypura_version"], env!("CARGO_PKG_VERSION"));
    let s = &v["summary"];
    assert_eq!(s["policy"], "lru");
    assert_eq!(s["tokens"], 256);
    assert!(s["tok_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(s["layers"].as_array().unwrap().len(), 32);
    let bound = v["belady"]["hit_rate"].as_f64().unwrap();
    assert!(bound >= s["hit_rate"].as_f64().unwrap());
}

/// Per-layer partitioning names itself in the summary, and so does its Belady bound, which is
/// computed with the same partitions; splitting the cache evenly never beats Belady over it.
#[test]
fn per_layer_partition() {
    let _turn = turn();
    let args = ["sim", "--tokens", "256", "--policy", "lru", "--json"];
    let (ok, out, err) = hypura(&[&args[..], &["--partition", "per-layer"]].concat());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["policy"], "lru/per-layer");
    assert_eq!(v["belady"]["policy"], "belady/per-layer");
    let per_layer_bound = v["belady"]["hit_rate"].as_f64().unwrap();
    assert!(per_layer_bound >= v["summary"]["hit_rate"].as_f64().unwrap());
    let (ok, out, err) = hypura(&args);
    assert!(ok, "{err}");
    let global: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(global["belady"]["hit_rate"].as_f64().unwrap() >= per_layer_bound);
    let (ok, _, err) = hypura(&["sim", "--partition", "per-layer"]);
    assert!(!ok && err.contains("--partition"), "{err}");
    let (ok, _, err) = hypura(&["sim", "--policy", "lru", "--partition", "layers"]);
    assert!(!ok && err.contains("--partition"), "{err}");
}

#[test]
fn bad_arguments_are_refused() {
    let _turn = turn();
    let (ok, _, err) = hypura(&["sim", "--policy", "fifo"]);
    assert!(!ok && err.contains("--policy"), "{err}");
    let (ok, _, err) = hypura(&["sim", "--cache-bytes", "1000"]);
    assert!(!ok && err.contains("--cache-bytes"), "{err}");
    let (ok, _, err) = hypura(&["sim", "--plan", "/nonexistent/plan.json"]);
    assert!(!ok && err.contains("/nonexistent/plan.json"), "{err}");
    let (ok, _, err) = hypura(&["sim", "--expert-prefetch", "magic"]);
    assert!(!ok && err.contains("--expert-prefetch"), "{err}");
    let (ok, _, err) = hypura(&["sim", "--queue-depth", "0"]);
    assert!(!ok && err.contains("--queue-depth"), "{err}");
    // The default profile is unified memory: there is no host link to copy over.
    let (ok, _, err) = hypura(&["sim", "--host-weights-on-gpu"]);
    assert!(!ok && err.contains("--host-weights-on-gpu"), "{err}");
}

#[test]
fn a_plan_whose_model_file_moved_names_the_plan_and_asks_for_model() {
    let _turn = turn();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let model = dir.path().join("moved.gguf");
    synth(&model, &["--preset", "tiny-mixtral", "--type", "f16"]);
    let plan = solve(&model, dir.path());
    std::fs::remove_file(&model).unwrap();
    let (ok, _, err) = hypura(&["sim", "--plan", plan.to_str().unwrap(), "--tokens", "2"]);
    assert!(!ok);
    assert!(
        err.contains(plan.to_str().unwrap())
            && err.contains("moved.gguf")
            && err.contains("--model"),
        "{err}"
    );
}

/// A plan broken by hand is refused by the one plan check, naming the field, instead of being
/// simulated as whatever it happens to say.
#[test]
fn a_plan_that_contradicts_itself_is_refused_with_the_field() {
    let _turn = turn();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let model = dir.path().join("tiny.gguf");
    synth(&model, &["--preset", "tiny-mixtral", "--type", "f16"]);
    let plan_path = solve(&model, dir.path());
    let mut plan = plan::Plan::load(&plan_path).unwrap();
    let n_expert = model::Inventory::from_gguf(&model).unwrap().arch.n_expert;
    plan.experts[0].ram.push(n_expert);
    std::fs::write(&plan_path, plan.to_json()).unwrap();
    let (ok, _, err) = hypura(&[
        "sim",
        "--plan",
        plan_path.to_str().unwrap(),
        "--tokens",
        "2",
    ]);
    assert!(!ok);
    assert!(
        err.contains(plan_path.to_str().unwrap())
            && err.contains("field `experts`")
            && err.contains(&format!("expert {n_expert} is beyond")),
        "{err}"
    );
}
