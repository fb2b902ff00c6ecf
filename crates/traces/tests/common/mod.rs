//! Helpers shared by the integration tests: the shared data folder and temporary files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/data` of the repository (real recorded traces; never copied into the repo).
pub fn shared_data() -> PathBuf {
    testkit::shared_data("")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Writes `content` to `name` in a fresh temporary directory.
pub fn temp_file(name: &str, content: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

/// The error text of a result that must fail.
pub fn err_text<T: std::fmt::Debug>(r: Result<T, traces::TraceError>) -> String {
    r.expect_err("input must be rejected").to_string()
}
