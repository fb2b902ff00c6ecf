//! Catalog inventories against reality: published GGUF sizes for every model, and the real
//! Gemma 3 270M Q4_K_M file tensor by tensor.

use gguf::GgmlType;
use model::catalog::{self, CatalogError, Preset};
use model::{Inventory, Source};
use std::path::PathBuf;

const GIB: f64 = (1u64 << 30) as f64;

#[test]
fn every_catalog_model_is_within_3_percent_of_its_published_file() {
    let entries = catalog::entries().expect("catalog builds");
    println!(
        "{:<26} {:>12} {:>12} {:>8}  published file",
        "model", "catalog GiB", "publ. GiB", "diff"
    );
    let mut checked = 0;
    let mut failures = Vec::new();
    for e in &entries {
        for q in &e.quants {
            let Some(p) = q.published else { continue };
            let diff = (q.bytes as f64 - p.bytes as f64) / p.bytes as f64 * 100.0;
            let name = format!("{}:{}", e.name, q.preset);
            println!(
                "{name:<26} {:>12.2} {:>12.2} {:>+7.2}%  {}",
                q.bytes as f64 / GIB,
                p.bytes as f64 / GIB,
                diff,
                p.url
            );
            checked += 1;
            if diff.abs() > 3.0 {
                failures.push(format!("{name}: {diff:+.2}%"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "catalog sizes off by more than 3%: {failures:?}"
    );
    // Every model must have at least its default quantization checked.
    for e in &entries {
        assert!(
            e.quants
                .iter()
                .any(|q| q.preset == e.default_preset && q.published.is_some()),
            "{} has no published size for its default quantization",
            e.name
        );
    }
    assert!(checked >= 8);
}

#[test]
fn required_models_and_sizes() {
    let gib = |spec: &str| catalog::lookup(spec).unwrap().total_bytes() as f64 / GIB;
    // The sizes users see on the model pages, in GiB.
    for (spec, want) in [
        ("qwen2.5-14b:q4_k_m", 8.4),
        ("mixtral-8x7b:q5_k_m", 30.9),
        ("llama-3.3-70b:q4_k_m", 39.6),
    ] {
        let got = gib(spec);
        assert!(
            (got - want).abs() / want < 0.03,
            "{spec}: {got:.2} GiB, published {want} GiB"
        );
    }
    for spec in [
        "deepseek-v2-lite:q4_k_m",
        "qwen3-30b-a3b:q4_k_m",
        "deepseek-v3:q4_k_m",
        "gpt-oss-20b:mxfp4",
        "gemma-3-270m:q4_k_m",
    ] {
        let inv = catalog::lookup(spec).unwrap();
        assert!(matches!(&inv.source, Source::Catalog { name, .. } if name == spec));
    }
}

/// Path of the real Gemma 3 270M Q4_K_M file, from the pip package CI installs.
fn gemma_path() -> PathBuf {
    testkit::gemma_3_270m_or_panic()
}

#[test]
fn gemma_catalog_matches_the_real_file_tensor_by_tensor() {
    let real = Inventory::from_gguf(&gemma_path()).expect("read gemma file");
    let cat = catalog::lookup("gemma-3-270m:q4_k_m").unwrap();
    assert_eq!(cat.tensors.len(), real.tensors.len(), "tensor count");
    for (c, r) in cat.tensors.iter().zip(&real.tensors) {
        assert_eq!(c.name, r.name, "tensor order/name");
        assert_eq!(c.dims, r.dims, "{} dims", c.name);
        assert_eq!(c.ggml_type, r.ggml_type, "{} type", c.name);
        assert_eq!(c.bytes, r.bytes, "{} bytes", c.name);
        assert_eq!(c.role, r.role);
        assert_eq!(c.layer, r.layer);
    }
    assert_eq!(cat.total_bytes(), real.total_bytes());
    // The recipe features this file exercises.
    let ty = |n: &str| cat.tensors.iter().find(|t| t.name == n).unwrap().ggml_type;
    assert_eq!(ty("token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q5_0);
    assert_eq!(ty("blk.0.attn_v.weight"), GgmlType::Q8_0);
    assert_eq!(ty("blk.2.attn_v.weight"), GgmlType::Q5_0);
    assert_eq!(ty("blk.2.ffn_down.weight"), GgmlType::Q4_K);
    assert_eq!(ty("blk.4.ffn_down.weight"), GgmlType::Q6_K);
    // Architecture facts agree with the file's metadata.
    assert_eq!(cat.arch.n_layer, real.arch.n_layer);
    assert_eq!(cat.arch.n_embd, real.arch.n_embd);
    assert_eq!(cat.arch.n_ff, real.arch.n_ff);
    assert_eq!(cat.arch.n_head, real.arch.n_head);
    assert_eq!(cat.arch.n_head_kv, real.arch.n_head_kv);
    assert_eq!(cat.arch.head_dim_k, real.arch.head_dim_k);
    assert_eq!(cat.arch.n_ctx_train, real.arch.n_ctx_train);
    assert_eq!(cat.arch.n_vocab, real.arch.n_vocab);
    assert_eq!(cat.arch.file_type, real.arch.file_type);
}

#[test]
fn moe_recipe_details() {
    let mix = catalog::lookup("mixtral-8x7b:q5_k_m").unwrap();
    let ty = |inv: &Inventory, n: &str| {
        inv.tensors
            .iter()
            .find(|t| t.name == n)
            .unwrap_or_else(|| panic!("no {n}"))
            .ggml_type
    };
    // n_expert == 8: attn_v and attn_k bumped to Q8_0; router stays F32; output Q6_K.
    assert_eq!(ty(&mix, "blk.5.attn_v.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&mix, "blk.5.attn_k.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&mix, "blk.5.ffn_gate_inp.weight"), GgmlType::F32);
    assert_eq!(ty(&mix, "output.weight"), GgmlType::Q6_K);
    assert_eq!(ty(&mix, "token_embd.weight"), GgmlType::Q5_K);
    // ffn_down experts: use_more_bits by layer number (layers 0..4, 28..32, 6, 9, ...).
    assert_eq!(ty(&mix, "blk.0.ffn_down_exps.weight"), GgmlType::Q6_K);
    assert_eq!(ty(&mix, "blk.5.ffn_down_exps.weight"), GgmlType::Q5_K);
    assert_eq!(ty(&mix, "blk.6.ffn_down_exps.weight"), GgmlType::Q6_K);
    assert_eq!(ty(&mix, "blk.1.ffn_up_exps.weight"), GgmlType::Q5_K);
    assert_eq!(mix.arch.moe_layers.len(), 32);
    assert_eq!(mix.arch.n_expert, 8);
    let e = mix
        .tensors
        .iter()
        .find(|t| t.name == "blk.0.ffn_up_exps.weight")
        .unwrap();
    assert_eq!(e.dims, [4096, 14336, 8]);
    assert_eq!(e.expert_stride, Some(e.bytes / 8));

    let mix4 = catalog::lookup("mixtral-8x7b:q4_k_m").unwrap();
    assert_eq!(ty(&mix4, "blk.3.attn_output.weight"), GgmlType::Q5_K);

    // 70B: attn_v is Q6_K in use_more_bits layers, else bumped from Q4_K to Q5_K.
    let llama = catalog::lookup("llama-3.3-70b").unwrap();
    assert_eq!(ty(&llama, "blk.0.attn_v.weight"), GgmlType::Q6_K);
    assert_eq!(ty(&llama, "blk.11.attn_v.weight"), GgmlType::Q5_K);
    assert_eq!(ty(&llama, "rope_freqs.weight"), GgmlType::F32);

    // DeepSeek-V2-Lite: 1408-wide expert rows are not a multiple of 256 -> Q5_0 / Q8_0.
    let ds = catalog::lookup("deepseek-v2-lite:q4_k_m").unwrap();
    assert_eq!(ty(&ds, "blk.4.ffn_down_exps.weight"), GgmlType::Q5_0);
    assert_eq!(ty(&ds, "blk.5.ffn_down_exps.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&ds, "blk.1.ffn_down_exps.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&ds, "blk.1.ffn_down_shexp.weight"), GgmlType::Q6_K);
    assert_eq!(ds.arch.moe_layers, (1..27).collect::<Vec<u32>>());
    assert_eq!(ds.arch.n_leading_dense, 1);

    // gpt-oss MXFP4: 3-D experts MXFP4, other matrices Q8_0, biases F32.
    let oss = catalog::lookup("gpt-oss-20b").unwrap();
    assert_eq!(ty(&oss, "blk.0.ffn_down_exps.weight"), GgmlType::MXFP4);
    assert_eq!(ty(&oss, "blk.0.attn_q.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&oss, "output.weight"), GgmlType::Q8_0);
    assert_eq!(ty(&oss, "blk.0.ffn_down_exps.bias"), GgmlType::F32);
    assert_eq!(oss.arch.file_type, Some(Preset::Mxfp4Moe.ftype()));
}

#[test]
fn unknown_model_lists_known_names_and_a_close_match() {
    let err = catalog::lookup("mixtral-8x7:q5_k_m").unwrap_err();
    match &err {
        CatalogError::UnknownModel {
            name,
            known,
            suggestion,
        } => {
            assert_eq!(name, "mixtral-8x7");
            assert!(known.iter().any(|k| k == "deepseek-v3"));
            assert_eq!(suggestion.as_deref(), Some("mixtral-8x7b"));
        }
        other => panic!("wrong error {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("did you mean \"mixtral-8x7b\"") && msg.contains("gemma-3-270m"),
        "{msg}"
    );
    assert!(matches!(
        catalog::lookup("no-such-thing"),
        Err(CatalogError::UnknownModel {
            suggestion: None,
            ..
        })
    ));
}

#[test]
fn unknown_quant_lists_available_ones() {
    let err = catalog::lookup("gpt-oss-20b:q4_k_m").unwrap_err();
    assert_eq!(
        err,
        CatalogError::UnknownQuant {
            model: "gpt-oss-20b".into(),
            quant: "q4_k_m".into(),
            available: vec!["mxfp4".into()]
        }
    );
    let msg = catalog::lookup("qwen2.5-14b:iq1_s")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("q4_k_m") && msg.contains("q5_k_m") && msg.contains("iq1_s"),
        "{msg}"
    );
}

#[test]
fn default_quant_and_case_insensitive_names() {
    let inv = catalog::lookup("Mixtral-8x7B").unwrap();
    assert!(matches!(&inv.source, Source::Catalog { name, reference }
        if name == "mixtral-8x7b:q5_k_m" && reference.contains("huggingface.co")));
    assert_eq!(inv.arch.file_type, Some(17));
    assert!(inv.tensors.iter().all(|t| t.offset.is_none()));
}
