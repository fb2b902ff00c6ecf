//! The notebooks in `crates/experiments/notebooks/` run headless (`jupyter nbconvert --execute`)
//! on a small sweep of the real DeepSeek-V2-Lite routing made here, so they never rot: every
//! cell runs without an error and every figure is drawn.

mod common;

use common::{hypura, import_deepseek_trace, python_has};
use std::path::Path;
use std::process::Command;

#[test]
fn the_sweep_notebook_runs_on_a_fresh_sweep() {
    if !python_has(&["polars", "matplotlib", "nbconvert", "ipykernel"]) {
        testkit::cannot_run(
            "polars, matplotlib, nbconvert or ipykernel missing: run scripts/setup.sh",
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("ds.htrace");
    import_deepseek_trace(&trace);
    let out = dir.path().join("sweep-out");
    let hw = root.join("profiles/m4-16g.toml");
    let (ok, _, err) = hypura(&[
        "sweep",
        "--trace",
        trace.to_str().unwrap(),
        "-m",
        "deepseek-v2-lite:q5_k_m",
        "--hw",
        hw.to_str().unwrap(),
        "--tokens",
        "300",
        "--grid",
        "ram=6GiB;policy=lru,arc,belady;cache=1GiB..4GiB:3;prefetch=none,coactivation,oracle",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let executed = dir.path().join("sweep.out.ipynb");
    let run = Command::new("python3")
        .args([
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
        ])
        .arg(root.join("crates/experiments/notebooks/sweep.ipynb"))
        .arg("--output")
        .arg(&executed)
        .env("SWEEP_DIR", &out)
        .env("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the notebook failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let nb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&executed).unwrap()).unwrap();
    let outputs: Vec<&serde_json::Value> = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["outputs"].as_array())
        .flatten()
        .collect();
    assert!(
        outputs.iter().all(|o| o["output_type"] != "error"),
        "a cell failed"
    );
    let figures = outputs
        .iter()
        .filter(|o| o["data"]["image/png"].is_string())
        .count();
    assert_eq!(figures, 3, "hit rate, prefetch and Pareto figures");
}
