//! `hypura sweep` and `hypura plot` end to end on the real DeepSeek-V2-Lite routing (imported
//! from `../shared/data`), the catalog model and a shipped profile: a grid written as Parquet,
//! read back by pyarrow, resumed, charted as PNG and SVG; bad input named.

mod common;

use common::{hypura, import_deepseek_trace};
use std::path::Path;
use std::process::Command;

const GRID: &str = "ram=6GiB;policy=lru,belady;cache=1GiB..4GiB:3;prefetch=none,oracle";

fn sweep(trace: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let hw = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/m4-16g.toml");
    let mut args = vec![
        "sweep",
        "--trace",
        trace.to_str().unwrap(),
        "-m",
        "deepseek-v2-lite:q5_k_m",
        "--hw",
        hw.to_str().unwrap(),
        "--tokens",
        "300",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    hypura(&args)
}

/// (rows, distinct config ids, rows with an error) as pyarrow reads the directory.
fn pyarrow_counts(dir: &Path) -> Option<(usize, usize, usize)> {
    let script = "import sys, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1])\n\
                  ids = t.column('config_id').to_pylist()\n\
                  errs = [e for e in t.column('error').to_pylist() if e]\n\
                  print(t.num_rows, len(set(ids)), len(errs))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No module named"), "pyarrow failed: {err}");
        return None;
    }
    let s = String::from_utf8(out.stdout).unwrap();
    let v: Vec<usize> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    Some((v[0], v[1], v[2]))
}

#[test]
fn sweep_writes_resumes_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("ds.htrace");
    import_deepseek_trace(&trace);
    let out = dir.path().join("results");
    let (ok, stdout, err) = sweep(&trace, &out, &["--grid", GRID]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("12 configurations in the grid: 0 already in"),
        "{stdout}"
    );
    assert!(stdout.contains("12 run now (0 failed"), "{stdout}");
    match pyarrow_counts(&out) {
        Some(counts) => assert_eq!(counts, (12, 12, 0)),
        None => testkit::cannot_run("pyarrow is not installed: run scripts/setup.sh"),
    }
    // Resumed: nothing to do; a grown grid runs only what is new.
    let (ok, stdout, err) = sweep(&trace, &out, &["--grid", GRID]);
    assert!(
        ok && stdout.contains("12 already in") && stdout.contains("0 run now"),
        "{stdout}{err}"
    );
    let grown = format!("{GRID};depth=0,1");
    let (ok, stdout, err) = sweep(&trace, &out, &["--grid", &grown]);
    assert!(ok, "{err}");
    // depth=0 and 1 are new configurations (the first run left depth at the plan's).
    assert!(
        stdout.contains("24 configurations in the grid: 0 already"),
        "{stdout}"
    );

    // The profile's own 16 GB hold the whole model: the sweep says its policies change nothing.
    let resident = dir.path().join("resident");
    let (ok, stdout, err) = sweep(&trace, &resident, &["--grid", "policy=lru,arc"]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains(
            "note: with the profile's memory the plan keeps every routed expert in memory"
        ),
        "{stdout}"
    );

    let png = dir.path().join("hit.png");
    let plot = |args: &[&str]| {
        let mut a = vec!["plot", out.to_str().unwrap()];
        a.extend_from_slice(args);
        hypura(&a)
    };
    let (ok, stdout, err) = plot(&[
        "--x",
        "cache",
        "--y",
        "hit_rate",
        "--by",
        "policy",
        "--where",
        "prefetch=none",
        "--where",
        "depth=0",
        "--log-x",
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 line(s), 6 point(s)"), "{stdout}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian.
    assert_eq!(&bytes[16..24], &[0, 0, 3, 132, 0, 0, 2, 88]);
    let svg = dir.path().join("speed.svg");
    let (ok, _, err) = plot(&[
        "--x",
        "cache",
        "--y",
        "tok_per_s",
        "--by",
        "prefetch",
        "--where",
        "policy=lru",
        "--where",
        "depth=1",
        "--pareto",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    for label in [
        "oracle",
        "none",
        "Pareto front",
        "decode speed (tok/s)",
        "expert cache (GiB)",
    ] {
        assert!(text.contains(label), "{label} missing from the SVG");
    }
    // Not again without --force; rows that differ in an input are not averaged.
    let (ok, _, err) = plot(&[
        "--x",
        "cache",
        "--y",
        "tok_per_s",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("--force"), "{err}");
    let (ok, _, err) = plot(&[
        "--x",
        "cache",
        "--y",
        "tok_per_s",
        "--by",
        "policy",
        "-o",
        dir.path().join("x.svg").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("differ in") && err.contains("--where"),
        "{err}"
    );
}

#[test]
fn bad_sweep_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("ds.htrace");
    import_deepseek_trace(&trace);
    let out = dir.path().join("r");
    let (ok, _, err) = sweep(&trace, &out, &["--grid", "cache=4GiB..1GiB:3"]);
    assert!(
        !ok && err.contains("--grid") && err.contains("A must be less than B"),
        "{err}"
    );
    let (ok, _, err) = sweep(&trace, &out, &["--shard", "2/2"]);
    assert!(
        !ok && err.contains("--shard") && err.contains("0 <= I < N"),
        "{err}"
    );
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("old.parquet"), b"PAR1").unwrap();
    let (ok, _, err) = sweep(&trace, &out, &[]);
    assert!(!ok && err.contains("old.parquet"), "{err}");
}
