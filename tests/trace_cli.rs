//! `hypura trace`: import, convert, stats, synth end to end through the binary.

mod common;

use common::hypura;

use std::path::Path;

#[test]
fn import_convert_stats_and_synth() {
    let data = testkit::shared_data("traces/switch-base-8");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sw.json");
    let bin = dir.path().join("sw.htrace");
    let (ok, out, err) = hypura(&[
        "trace",
        "import",
        "--from",
        "switch-json",
        data.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("10 sequences, 215 tokens, 6 MoE layers, 1290 selections"),
        "{out}"
    );
    let (ok, _, err) = hypura(&[
        "trace",
        "convert",
        json.to_str().unwrap(),
        bin.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = hypura(&[
        "trace",
        "convert",
        json.to_str().unwrap(),
        bin.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("already exists; pass --force"), "{err}");
    let (ok, out, err) = hypura(&["trace", "stats", bin.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["schema"], "hypura.trace-stats/1");
    assert_eq!(stats["tokens"], 215);
    assert_eq!(stats["layers"].as_array().unwrap().len(), 6);
    let synth = dir.path().join("s.htrace");
    let (ok, out, err) = hypura(&[
        "trace",
        "synth",
        "-o",
        synth.to_str().unwrap(),
        "--experts",
        "16",
        "--top-k",
        "2",
        "--layers",
        "0-3",
        "--sequences",
        "3",
        "--tokens",
        "50",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("3 sequences, 150 tokens, 4 MoE layers"),
        "{out}"
    );
    let (ok, _, err) = hypura(&[
        "trace",
        "stats",
        json.with_extension("missing").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("sw.missing"), "{err}");
}

/// The importers' messages speak of facts given; the CLI names the options that give them.
#[test]
fn import_errors_name_the_options() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/traces/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.json");
    let import = |from: &str, file: &str, extra: &[&str]| {
        let path = fixtures.join(file);
        let mut args = vec![
            "trace",
            "import",
            "--from",
            from,
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, _, err) = hypura(&args);
        assert!(!ok, "{from} {file} {extra:?} was imported");
        err
    };
    let err = import("vllm-jsonl", "vllm_routes.jsonl", &[]);
    assert!(
        err.contains("do not state the routed-expert count; pass --n-expert N"),
        "{err}"
    );
    let err = import(
        "vllm-routed",
        "vllm_routed.json",
        &["--n-expert", "8", "--layers", "0-4"],
    );
    assert!(
        err.contains("--layers names 5 layers but the arrays have 3"),
        "{err}"
    );
    let err = import(
        "vllm-jsonl",
        "vllm_routes.jsonl",
        &["--n-expert", "8", "--layers", "1,2"],
    );
    assert!(
        err.contains("unknown layer 3; --layers lists [1, 2]"),
        "{err}"
    );
    assert!(!out.exists());
}
