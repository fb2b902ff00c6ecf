//! Metadata that llama.cpp aborts on (a `GGML_ASSERT`, not an error it returns) is refused when
//! the model is read, with the key named: a valid small llama header is read, then each value
//! llama.cpp asserts on is set in turn.

mod common;

use common::Gguf;
use gguf::{Array, GgmlType, Value};
use model::Inventory;

/// A small llama-architecture header with a vocabulary, with `edit` applied to its metadata.
fn header(edit: impl FnOnce(&mut Vec<(String, Value)>)) -> Vec<u8> {
    let mut kvs: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.block_count".into(), Value::U32(1)),
        ("llama.embedding_length".into(), Value::U32(64)),
        ("llama.feed_forward_length".into(), Value::U32(128)),
        ("llama.attention.head_count".into(), Value::U32(4)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("llama.context_length".into(), Value::U32(256)),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(Array::String(vec!["<s>".into(), "a".into(), "b".into()])),
        ),
    ];
    edit(&mut kvs);
    let mut g = Gguf::new(3);
    for (k, v) in kvs {
        g = g.kv(&k, v);
    }
    g.tensor("token_embd.weight", GgmlType::F32, &[64, 3])
        .tensor("blk.0.attn_q.weight", GgmlType::F32, &[64, 64])
        .build()
}

fn set(kvs: &mut Vec<(String, Value)>, key: &str, v: Value) {
    kvs.retain(|(k, _)| k != key);
    kvs.push((key.to_string(), v));
}

fn read(bytes: &[u8]) -> Result<Inventory, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, bytes).unwrap();
    Inventory::from_gguf(&p).map_err(|e| e.to_string())
}

fn refused(edit: impl FnOnce(&mut Vec<(String, Value)>), phrases: &[&str]) {
    let err = read(&header(edit)).expect_err("llama.cpp would abort on this file");
    assert!(err.contains("m.gguf"), "{err} does not name the file");
    for p in phrases {
        assert!(err.contains(p), "{err:?} does not say {p:?}");
    }
}

#[test]
fn the_base_header_is_accepted() {
    let inv = read(&header(|_| {})).unwrap();
    assert_eq!(inv.arch.n_layer, 1);
}

#[test]
fn block_count_zero_or_above_llama_max_layers() {
    for n in [0, 513, u32::MAX] {
        refused(
            |kv| set(kv, "llama.block_count", Value::U32(n)),
            &["llama.block_count", "1..=512"],
        );
    }
    assert!(read(&header(|kv| set(kv, "llama.block_count", Value::U32(512)))).is_ok());
}

#[test]
fn norm_epsilons_must_be_finite_and_not_negative() {
    for key in [
        "llama.attention.layer_norm_rms_epsilon",
        "llama.attention.layer_norm_epsilon",
    ] {
        for bad in [f32::NAN, -1e-5, f32::INFINITY, f32::NEG_INFINITY] {
            refused(|kv| set(kv, key, Value::F32(bad)), &[key, "finite"]);
        }
        // f64 beyond f32's range becomes infinite when llama.cpp reads it as f32.
        refused(|kv| set(kv, key, Value::F64(1e300)), &[key]);
        assert!(read(&header(|kv| set(kv, key, Value::F32(0.0)))).is_ok());
    }
}

#[test]
fn expert_counts_llama_cpp_asserts_on() {
    let moe = |n: u32, used: Option<u32>| {
        move |kv: &mut Vec<(String, Value)>| {
            set(kv, "llama.expert_count", Value::U32(n));
            if let Some(u) = used {
                set(kv, "llama.expert_used_count", Value::U32(u));
            }
        }
    };
    refused(moe(100_000, Some(2)), &["llama.expert_count", "1024"]);
    refused(moe(1025, Some(2)), &["llama.expert_count"]);
    refused(moe(8, None), &["llama.expert_used_count"]);
    refused(moe(8, Some(0)), &["llama.expert_used_count"]);
    refused(
        |kv| set(kv, "llama.expert_used_count", Value::U32(2)),
        &["llama.expert_used_count", "llama.expert_count"],
    );
    refused(
        |kv| {
            moe(8, Some(2))(kv);
            set(kv, "llama.expert_group_count", Value::U32(3));
            set(kv, "llama.expert_group_used_count", Value::U32(1));
        },
        &["llama.expert_group_count"],
    );
    assert!(read(&header(moe(1024, Some(8)))).is_ok());
    assert!(read(&header(|kv| {
        moe(8, Some(2))(kv);
        set(kv, "llama.expert_group_count", Value::U32(4));
        set(kv, "llama.expert_group_used_count", Value::U32(2));
    }))
    .is_ok());
}

#[test]
fn a_vocabulary_with_a_repeated_token_text() {
    let tokens = |t: &[&str]| {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        move |kv: &mut Vec<(String, Value)>| {
            set(kv, "tokenizer.ggml.tokens", Value::Array(Array::String(t)))
        }
    };
    refused(
        tokens(&["<s>", "a", "a"]),
        &["tokenizer.ggml.tokens", "token 2"],
    );
    // An empty text stands for `[EMPTY_<id>]` in llama.cpp, which may then repeat.
    refused(tokens(&["<s>", "[EMPTY_2]", ""]), &["token 2"]);
    assert!(read(&header(tokens(&["<s>", "", ""]))).is_ok());
}
