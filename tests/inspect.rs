//! End-to-end: `hypura inspect` on the real gemma-3-270m GGUF and on catalog models.

mod common;

use common::gemma_path;
use common::hypura;

#[test]
fn inspect_gemma_tables() {
    let path = gemma_path();
    let (ok, out, err) = hypura(&["inspect", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    insta::assert_snapshot!("inspect_gemma", out);
}

#[test]
fn inspect_gemma_json_and_tensor_list() {
    let path = gemma_path();
    let (ok, out, err) = hypura(&["inspect", "--json", "--tensors", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "hypura.inspect/1");
    assert_eq!(v["hypura_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["tensor_count"], 236);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 236);
    assert_eq!(v["arch"]["arch"], "gemma3");
    // Tied embeddings: the output head is token_embd, so a token reads every byte.
    assert_eq!(v["per_token"]["dense"], v["total_bytes"]);
    let (ok, out, _) = hypura(&["inspect", "--tensors", path.to_str().unwrap()]);
    assert!(ok);
    assert!(
        out.contains("blk.17.ffn_down.weight"),
        "tensor list missing"
    );
}

#[test]
fn inspect_rejects_what_is_neither_file_nor_catalog_name() {
    let (ok, _, err) = hypura(&["inspect", "no-such-model:q9"]);
    assert!(!ok);
    assert!(err.contains("no-such-model"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGML not a gguf").unwrap();
    let (ok, _, err) = hypura(&["inspect", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.gguf") && err.contains("not a GGUF file"),
        "{err}"
    );
}

#[test]
fn inspect_catalog_models() {
    for name in [
        "mixtral-8x7b:q5_k_m",
        "deepseek-v2-lite:q4_k_m",
        "gpt-oss-20b:mxfp4",
    ] {
        let (ok, out, err) = hypura(&["inspect", name]);
        assert!(ok, "{name}: {err}");
        insta::assert_snapshot!(
            format!("inspect_catalog_{}", name.replace([':', '.'], "_")),
            out
        );
    }
}

#[test]
fn inspect_synthetic_moe_files() {
    let dir = tempfile::tempdir().unwrap();
    for preset in ["tiny-mixtral", "tiny-qwen-moe", "tiny-deepseek-v2-lite"] {
        let path = dir.path().join(format!("{preset}.gguf"));
        let p = path.to_str().unwrap();
        let (ok, _, err) = hypura(&["synth", "--preset", preset, "--seed", "7", "-o", p]);
        assert!(ok, "synth {preset}: {err}");
        let (ok, out, err) = hypura(&["inspect", p]);
        assert!(ok, "inspect {preset}: {err}");
        insta::assert_snapshot!(format!("inspect_synth_{preset}"), out);
    }
}
