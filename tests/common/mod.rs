//! Helpers shared by the end-to-end tests of the `hypura` binary.

use std::path::PathBuf;
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
