//! `scripts/fetch-test-data` against a local HTTP server laid out as the traces' public
//! sources: every file of the manifest arrives with the bytes of the real data, a second run
//! fetches nothing, and a served file that is not the manifest's is refused by name.

mod common;

use common::PyServer;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (sha256, path under the data directory, source path on the server) of every manifest line.
fn manifest() -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(testkit::repo_root().join("scripts/test-data.manifest")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// `python3 -m http.server` on a free loopback port serving `root`.
fn serve(root: &Path) -> PyServer {
    let args = ["-m", "http.server", "0", "--bind", "127.0.0.1"].map(std::ffi::OsStr::new);
    PyServer::start(root, &args)
}

fn fetch(server: &PyServer, dest: &Path) -> std::process::Output {
    Command::new(testkit::repo_root().join("scripts/fetch-test-data"))
        .arg(dest)
        .env("HYPURA_TEST_DATA_URL", server.url())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn fetched_traces_are_the_real_ones_and_a_wrong_file_is_refused() {
    let entries = manifest();
    assert_eq!(
        entries.len(),
        304,
        "300 DeepSeek prompts and 4 switch-base-8 files"
    );
    let served = tempfile::tempdir().unwrap();
    for (_, path, source) in &entries {
        let to: PathBuf = served.path().join(source);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(testkit::shared_data(path), &to).unwrap();
    }
    let server = serve(served.path());
    let dest = tempfile::tempdir().unwrap();
    let first = fetch(&server, dest.path());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("304 fetched"),
        "{}",
        text(&first.stdout)
    );
    for (_, path, _) in &entries {
        assert_eq!(
            std::fs::read(dest.path().join(path)).unwrap(),
            std::fs::read(testkit::shared_data(path)).unwrap(),
            "{path}"
        );
    }
    let again = fetch(&server, dest.path());
    assert!(
        text(&again.stdout).contains("(0 fetched)"),
        "{}",
        text(&again.stdout)
    );

    // A served file that is not the one the manifest pins: refused, nothing left in place.
    let (_, path, source) = &entries[7];
    std::fs::write(served.path().join(source), b"Layer ID,Batch Number\n").unwrap();
    std::fs::remove_file(dest.path().join(path)).unwrap();
    let bad = fetch(&server, dest.path());
    assert!(!bad.status.success());
    let err = text(&bad.stderr);
    assert!(
        err.contains(path.as_str()) && err.contains("sha256"),
        "{err}"
    );
    assert!(!dest.path().join(path).exists());
    assert!(!dest.path().join(format!("{path}.part")).exists());
}
