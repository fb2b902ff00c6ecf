//! `hypura synth` checked by an independent reader: files of every style and weight type, written
//! by the built binary, are parsed by the PyPI `gguf` package (llama.cpp's own Python reader) and
//! must agree with our reader on every tensor's name, type, shape, offset and data size, and
//! gguf-py's own dequantizer must decode our blocks to the values our decoder gives.

use gguf::GgufHeader;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use synth::weights;

const HYPURA: &str = env!("CARGO_BIN_EXE_hypura");

/// Prints, for each GGUF path given, its metadata keys and tensors as one JSON line.
const READER: &str = r#"
import json, sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
SAMPLED = ("token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_output.weight")
def sample(t):
    v = dequantize(t.data, t.tensor_type).astype(np.float32).flatten()
    return {"head": [float(x) for x in v[:64]], "sum": float(v.astype(np.float64).sum()), "n": int(v.size)}
for path in sys.argv[1:]:
    r = GGUFReader(path)
    values = {t.name: sample(t) for t in r.tensors if t.name in SAMPLED or t.name.endswith("ffn_down_exps.weight")}
    tensors = [{
        "name": t.name,
        "type": int(t.tensor_type),
        "shape": [int(d) for d in t.shape],
        "n_bytes": int(t.n_bytes),
        "data_offset": int(t.data_offset),
        "data_len": len(t.data.tobytes()),
    } for t in r.tensors]
    fields = {k: (f.contents() if k.startswith("general.") or k.startswith("hypura.") else None) for k, f in r.fields.items()}
    print(json.dumps({"path": path, "fields": fields, "n_tokens": len(r.fields["tokenizer.ggml.tokens"].contents()), "tensors": tensors, "values": values}))
"#;

fn python_gguf_available() {
    let out = Command::new("python3").args(["-c", "import gguf"]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import the `gguf` package, which this test uses as an independent GGUF reader: \
             run `pip install gguf` (stderr: {})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("python3 is not runnable ({e}); install Python 3 and then `pip install gguf`"),
    }
}

fn synth(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(file);
    let out = Command::new(HYPURA)
        .arg("synth")
        .args(args)
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hypura synth {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn python_gguf_reader_agrees_with_ours_on_every_style_and_type() {
    python_gguf_available();
    let dir = tempfile::tempdir().unwrap();
    let styles: &[(&str, &[&str])] = &[
        ("llama", &["--preset", "tiny-llama", "--layers", "2"]),
        (
            "mixtral",
            &[
                "--arch",
                "mixtral",
                "--layers",
                "2",
                "--embd",
                "256",
                "--ff",
                "512",
                "--experts",
                "8",
                "--top-k",
                "2",
                "--heads",
                "8",
                "--kv-heads",
                "4",
                "--vocab",
                "512",
            ],
        ),
        ("qwen2moe", &["--preset", "tiny-qwen-moe", "--layers", "2"]),
        (
            "qwen3moe",
            &[
                "--preset",
                "tiny-qwen3-moe",
                "--layers",
                "2",
                "--experts",
                "8",
            ],
        ),
        (
            "deepseek2",
            &[
                "--preset",
                "tiny-deepseek-v2-lite",
                "--layers",
                "3",
                "--experts",
                "8",
            ],
        ),
    ];
    let mut paths = Vec::new();
    for (style, args) in styles {
        for ty in ["f32", "f16", "q8_0", "q4_0"] {
            let mut a = args.to_vec();
            a.extend(["--type", ty, "--seed", "3"]);
            paths.push(synth(dir.path(), &format!("{style}-{ty}.gguf"), &a));
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the gguf package could not read our files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), paths.len());

    for (path, py) in paths.iter().zip(&lines) {
        let ctx = path.file_name().unwrap().to_string_lossy().into_owned();
        let ours = GgufHeader::open(path).unwrap();
        let py_tensors = py["tensors"].as_array().unwrap();
        assert_eq!(py_tensors.len(), ours.tensors.len(), "{ctx}: tensor count");
        for (p, t) in py_tensors.iter().zip(&ours.tensors) {
            assert_eq!(p["name"], t.name.as_str(), "{ctx}");
            assert_eq!(p["type"], t.ggml_type.id(), "{ctx}: {}", t.name);
            let shape: Vec<u64> = p["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(shape, t.dims, "{ctx}: {}", t.name);
            assert_eq!(p["n_bytes"], t.bytes, "{ctx}: {} size", t.name);
            assert_eq!(p["data_len"], t.bytes, "{ctx}: {} data length", t.name);
            assert_eq!(
                p["data_offset"],
                ours.absolute_offset(t),
                "{ctx}: {} offset",
                t.name
            );
        }
        let bytes = std::fs::read(path).unwrap();
        let values = py["values"].as_object().unwrap();
        assert!(
            values.len() >= 3,
            "{ctx}: sampled tensors {:?}",
            values.keys()
        );
        for (name, v) in values {
            let t = ours.tensors.iter().find(|t| &t.name == name).unwrap();
            let start = ours.absolute_offset(t) as usize;
            let mine =
                weights::decode(t.ggml_type, &bytes[start..start + t.bytes as usize]).unwrap();
            assert_eq!(v["n"], mine.len(), "{ctx}: {name} element count");
            let head: Vec<f32> = v["head"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(
                head,
                mine[..head.len()],
                "{ctx}: {name}: gguf-py decodes other values"
            );
            let sum: f64 = mine.iter().map(|&x| x as f64).sum();
            let py_sum = v["sum"].as_f64().unwrap();
            assert!(
                (sum - py_sum).abs() <= 1e-6 * (1.0 + py_sum.abs()),
                "{ctx}: {name}: sum {sum} vs gguf-py {py_sum}"
            );
        }
        let mut py_keys: Vec<&str> = py["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // gguf-py lists the header counts as pseudo-fields.
        py_keys.retain(|k| !k.starts_with("GGUF."));
        let mut our_keys: Vec<&str> = ours.metadata.iter().map(|(k, _)| k).collect();
        py_keys.sort_unstable();
        our_keys.sort_unstable();
        assert_eq!(py_keys, our_keys, "{ctx}: metadata keys");
        assert_eq!(py["fields"]["hypura.synth.seed"], 3, "{ctx}");
        let ftype = match ctx.rsplit('-').next().unwrap() {
            "f32.gguf" => 0,
            "f16.gguf" => 1,
            "q4_0.gguf" => 2,
            _ => 7,
        };
        assert_eq!(py["fields"]["general.file_type"], ftype, "{ctx}");
        assert_eq!(py["fields"]["general.alignment"], 32, "{ctx}");
        assert_eq!(
            py["n_tokens"],
            ours.metadata
                .get_u64(&format!(
                    "{}.vocab_size",
                    ours.metadata.get_str("general.architecture").unwrap()
                ))
                .unwrap(),
            "{ctx}"
        );
    }
}

#[test]
fn the_binary_is_deterministic_and_keeps_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--preset", "tiny-mixtral", "--layers", "1", "--seed", "9"];
    let a = synth(dir.path(), "a.gguf", &args);
    let b = synth(dir.path(), "b.gguf", &args);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let again = Command::new(HYPURA)
        .arg("synth")
        .args(args)
        .arg("-o")
        .arg(&a)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = Command::new(HYPURA)
        .arg("synth")
        .args(["--preset", "tiny-llama", "--layers", "1", "--force", "-o"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let bad = Command::new(HYPURA)
        .arg("synth")
        .args(["--arch", "gpt5", "-o"])
        .arg(dir.path().join("c.gguf"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // clap refuses the value, naming the flag and the values it takes.
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("'gpt5'") && stderr.contains("--arch") && stderr.contains("deepseek2"),
        "{stderr}"
    );
    assert!(!dir.path().join("c.gguf").exists());
}
