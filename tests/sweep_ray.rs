//! The Ray launcher (`crates/experiments/launch/sweep_ray.py`) on a local Ray instance (the
//! PyPI `ray` that `scripts/setup.sh` installs): three shards of a sweep over the real
//! DeepSeek-V2-Lite routing write one directory whose rows are the unsharded run's.

mod common;

use common::{hypura, import_deepseek_trace, python_has};
use std::path::Path;
use std::process::Command;

/// config_id -> (tok/s, hit rate) as pyarrow reads `dir`.
fn rows(dir: &Path) -> String {
    let script = "import sys, json, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1])\n\
                  r = dict(zip(t.column('config_id').to_pylist(), zip(t.column('tok_per_s').to_pylist(), t.column('hit_rate').to_pylist())))\n\
                  print(json.dumps(sorted(r.items())))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ray_shards_make_the_whole_sweep() {
    if !python_has(&["ray", "pyarrow"]) {
        testkit::cannot_run("the PyPI ray and pyarrow are not installed: run scripts/setup.sh");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("ds.htrace");
    import_deepseek_trace(&trace);
    let hw = root.join("profiles/m4-16g.toml");
    let sweep_args = |out: &Path| -> Vec<String> {
        [
            "--trace",
            trace.to_str().unwrap(),
            "-m",
            "deepseek-v2-lite:q5_k_m",
            "--hw",
            hw.to_str().unwrap(),
            "--tokens",
            "200",
            "--grid",
            "ram=6GiB;policy=lru,arc,belady;cache=1GiB,3GiB;prefetch=none,oracle",
            "-o",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let whole = dir.path().join("whole");
    let mut args = vec!["sweep".to_string()];
    args.extend(sweep_args(&whole));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = hypura(&args);
    assert!(ok, "{err}");

    let sharded = dir.path().join("sharded");
    let out = Command::new("python3")
        .arg(root.join("crates/experiments/launch/sweep_ray.py"))
        .args([
            "--shards",
            "3",
            "--hypura",
            env!("CARGO_BIN_EXE_hypura"),
            "--",
        ])
        .args(sweep_args(&sharded))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 of 3 shards done"), "{stdout}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("shard {i}/3 on ")), "{stdout}");
    }
    let files = std::fs::read_dir(&sharded).unwrap().count();
    assert_eq!(files, 3, "one file per shard");
    assert_eq!(rows(&sharded), rows(&whole));
}
