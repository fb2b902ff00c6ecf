//! Helpers shared by the end-to-end tests of the `hypura` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the built `hypura` with `args`: (success, stdout, stderr).
pub fn hypura(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hypura"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real Gemma 3 270M GGUF; fails the test with install instructions when it is missing.
#[allow(dead_code)] // not every test binary uses it
pub fn gemma_path() -> PathBuf {
    solver::testdata::gemma_3_270m().unwrap_or_else(|e| panic!("{e}"))
}

/// `hypura run --plan PLAN -m MODEL -p PROMPT -n N` plus `extra`: (success, stdout, stderr).
#[allow(dead_code)]
pub fn hypura_run(
    plan: &Path,
    model: &Path,
    prompt: &str,
    n: usize,
    extra: &[&str],
) -> (bool, String, String) {
    let n = n.to_string();
    let mut args = vec![
        "run",
        "--plan",
        plan.to_str().unwrap(),
        "-m",
        model.to_str().unwrap(),
        "-p",
        prompt,
        "-n",
        &n,
    ];
    args.extend_from_slice(extra);
    hypura(&args)
}

/// `hypura synth -o OUT` plus `args`, which must succeed.
#[allow(dead_code)]
pub fn synth(out: &Path, args: &[&str]) {
    let mut all = vec!["synth", "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, _, err) = hypura(&all);
    assert!(ok, "{err}");
}
