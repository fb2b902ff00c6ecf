//! `synth` end to end: every architecture style and weight type written to disk and read
//! back through the GGUF reader and `Inventory::from_gguf`; determinism; file safety; size fitting.

use gguf::GgmlType;
use gguf::{GgufHeader, Value};
use model::{Group, Inventory, Role};
use std::path::Path;
use synth::presets::{self, Overrides, ShapeError};
use synth::{weights, SynthError, SynthSpec};
use synth::{Arch, Preset};

fn spec(preset: &str, o: Overrides, ty: GgmlType, seed: u64) -> SynthSpec {
    let preset: Preset = preset.parse().unwrap();
    let (family, base) = presets::base(Some(preset), None).unwrap();
    let arch = presets::apply(family, base, &o).unwrap();
    SynthSpec {
        arch,
        weight_type: ty,
        seed,
        name: format!("test-{preset}"),
    }
}

/// Small variants of every preset, so the full type matrix writes in well under a second.
fn styles() -> Vec<(&'static str, Overrides)> {
    let small = Overrides {
        n_layer: Some(2),
        n_vocab: Some(300),
        ..Default::default()
    };
    vec![
        ("tiny-llama", small.clone()),
        ("tiny-mixtral", small.clone()),
        ("tiny-qwen-moe", small.clone()),
        (
            "tiny-qwen3-moe",
            Overrides {
                n_expert: Some(8),
                ..small.clone()
            },
        ),
        // 3 layers: a full (q_lora) deepseek2 with one leading dense layer.
        (
            "tiny-deepseek-v2-lite",
            Overrides {
                n_layer: Some(3),
                n_expert: Some(8),
                ..small.clone()
            },
        ),
        // 27 layers: llama.cpp's "lite" deepseek2 (plain attn_q).
        (
            "tiny-deepseek-v2-lite",
            Overrides {
                n_expert: Some(8),
                n_vocab: Some(300),
                ..Default::default()
            },
        ),
    ]
}

const TYPES: [GgmlType; 4] = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];

fn write(s: &SynthSpec, path: &Path) {
    let summary = s.write(path, false, &mut |_, _| {}).unwrap();
    assert_eq!(summary.file_bytes, std::fs::metadata(path).unwrap().len());
}

fn tensor_data(h: &GgufHeader, bytes: &[u8], name: &str) -> (GgmlType, Vec<f32>) {
    let t = h
        .tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    let start = h.absolute_offset(t) as usize;
    let vals = weights::decode(t.ggml_type, &bytes[start..start + t.bytes as usize]).unwrap();
    (t.ggml_type, vals)
}

#[test]
fn every_style_and_type_reads_back_with_the_expected_inventory() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (preset, o)) in styles().into_iter().enumerate() {
        for ty in TYPES {
            let s = spec(preset, o.clone(), ty, 42);
            let a = &s.arch;
            let path = dir.path().join(format!("{i}-{preset}-{ty}.gguf"));
            write(&s, &path);
            let ctx = format!("{preset} (#{i}) {ty}");
            let plan = s.plan().unwrap();

            let inv = Inventory::from_gguf(&path).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let names: Vec<&str> = inv.tensors.iter().map(|t| t.name.as_str()).collect();
            let planned: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, planned, "{ctx}");
            for t in &inv.tensors {
                let f32_expected =
                    t.dims.len() == 1 || t.group() == Group::Norm || t.role == Role::FfnGateInp;
                let want = if f32_expected { GgmlType::F32 } else { ty };
                assert_eq!(t.ggml_type, want, "{ctx}: {}", t.name);
                assert_ne!(t.role, Role::Other, "{ctx}: {} has no role", t.name);
                if t.group() == Group::Experts {
                    assert_eq!(t.dims.len(), 3, "{ctx}: {}", t.name);
                    assert_eq!(
                        t.expert_stride,
                        Some(t.bytes / a.n_expert as u64),
                        "{ctx}: {}",
                        t.name
                    );
                } else {
                    assert_eq!(t.expert_stride, None, "{ctx}: {}", t.name);
                }
            }

            let info = &inv.arch;
            assert_eq!(info.arch, a.arch, "{ctx}");
            assert_eq!(info.name.as_deref(), Some(s.name.as_str()));
            assert_eq!((info.n_layer, info.n_embd), (a.n_layer, a.n_embd), "{ctx}");
            assert_eq!(
                (info.n_expert, info.n_expert_used),
                (a.n_expert, a.n_expert_used),
                "{ctx}"
            );
            assert_eq!(info.n_vocab, Some(a.n_vocab), "{ctx}");
            assert_eq!(info.n_leading_dense, a.n_leading_dense, "{ctx}");
            assert_eq!(info.n_shared_expert, a.n_shared_expert, "{ctx}");
            let want_ftype = match ty {
                GgmlType::F32 => 0,
                GgmlType::F16 => 1,
                GgmlType::Q4_0 => 2,
                _ => 7,
            };
            assert_eq!(info.file_type, Some(want_ftype), "{ctx}");
            if a.n_expert > 0 {
                assert_eq!(info.expert_ff, Some(a.expert_ff), "{ctx}");
                let moe: Vec<u32> = (a.n_leading_dense..a.n_layer).collect();
                assert_eq!(info.moe_layers, moe, "{ctx}");
                let e = inv.expert_bytes(a.n_layer - 1).unwrap();
                let per_expert = 3 * ty.tensor_bytes(&[a.n_embd, a.expert_ff]).unwrap();
                assert_eq!(e, per_expert, "{ctx}: one expert's gate + up + down");
            } else {
                assert!(info.moe_layers.is_empty());
            }

            let bytes = std::fs::read(&path).unwrap();
            let h = GgufHeader::from_bytes(&bytes, "synth").unwrap();
            assert_eq!(h.metadata.get("hypura.synth.seed"), Some(&Value::U64(42)));
            assert_eq!(h.metadata.get_u64("general.alignment"), Some(32));
            assert_eq!(h.metadata.get_str("tokenizer.ggml.model"), Some("llama"));
            let (norm_ty, norm) = tensor_data(&h, &bytes, "blk.0.attn_norm.weight");
            assert_eq!(norm_ty, GgmlType::F32);
            assert!(norm.iter().all(|&v| v == 1.0), "{ctx}: norms are ones");
            let (_, w) = tensor_data(&h, &bytes, "token_embd.weight");
            assert!(
                w.iter().all(|v| v.is_finite() && v.abs() <= 0.0501),
                "{ctx}: embeddings small"
            );
            assert!(
                w.iter().any(|v| v.abs() > 0.01),
                "{ctx}: embeddings not all zero"
            );
            if a.n_expert > 0 {
                let last = format!("blk.{}.ffn_down_exps.weight", a.n_layer - 1);
                let (_, x) = tensor_data(&h, &bytes, &last);
                assert!(
                    x.iter().all(|v| v.is_finite() && v.abs() <= 0.0501),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn deepseek2_lite_depth_uses_plain_attn_q() {
    let dir = tempfile::tempdir().unwrap();
    let lite = spec(
        "tiny-deepseek-v2-lite",
        Overrides {
            n_expert: Some(8),
            ..Default::default()
        },
        GgmlType::Q8_0,
        1,
    );
    let full = spec(
        "tiny-deepseek-v2-lite",
        Overrides {
            n_layer: Some(4),
            n_expert: Some(8),
            ..Default::default()
        },
        GgmlType::Q8_0,
        1,
    );
    for (s, lite) in [(lite, true), (full, false)] {
        let path = dir.path().join(format!("ds-{lite}.gguf"));
        write(&s, &path);
        let h = GgufHeader::open(&path).unwrap();
        let has = |n: &str| h.tensors.iter().any(|t| t.name == n);
        assert_eq!(has("blk.0.attn_q.weight"), lite);
        assert_eq!(has("blk.0.attn_q_a.weight"), !lite);
        assert_eq!(
            h.metadata.get("deepseek2.attention.q_lora_rank").is_some(),
            !lite
        );
        assert!(
            has("blk.0.ffn_down.weight") && !has("blk.0.ffn_gate_inp.weight"),
            "layer 0 is dense"
        );
        assert!(has("blk.1.ffn_down_shexp.weight") && has("blk.1.attn_k_b.weight"));
        assert_eq!(h.metadata.get_u64("deepseek2.expert_shared_count"), Some(2));
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let o = Overrides {
        n_layer: Some(2),
        ..Default::default()
    };
    let paths: Vec<_> = [7u64, 7, 8]
        .iter()
        .enumerate()
        .map(|(i, &seed)| {
            let p = dir.path().join(format!("m{i}.gguf"));
            write(&spec("tiny-mixtral", o.clone(), GgmlType::Q4_0, seed), &p);
            std::fs::read(p).unwrap()
        })
        .collect();
    assert_eq!(paths[0], paths[1], "same arguments and seed");
    assert_eq!(paths[0].len(), paths[2].len());
    assert_ne!(paths[0], paths[2], "another seed");
    // Every weight tensor differs under another seed, not just the seed key.
    let (h0, h2) = (
        GgufHeader::from_bytes(&paths[0], "a").unwrap(),
        GgufHeader::from_bytes(&paths[2], "b").unwrap(),
    );
    let t = h0
        .tensors
        .iter()
        .find(|t| t.name == "blk.1.ffn_up_exps.weight")
        .unwrap();
    let r = h0.absolute_offset(t) as usize..(h0.absolute_offset(t) + t.bytes) as usize;
    assert_eq!(h0.absolute_offset(t), h2.absolute_offset(t));
    assert_ne!(paths[0][r.clone()], paths[2][r]);
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"precious").unwrap();
    let s = spec(
        "tiny-llama",
        Overrides {
            n_layer: Some(1),
            ..Default::default()
        },
        GgmlType::Q8_0,
        0,
    );
    let e = s.write(&path, false, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().ends_with("already exists"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    s.write(&path, true, &mut |_, _| {}).unwrap();
    assert!(Inventory::from_gguf(&path).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

#[test]
fn progress_reaches_the_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        "tiny-qwen-moe",
        Overrides {
            n_layer: Some(1),
            ..Default::default()
        },
        GgmlType::F16,
        0,
    );
    let mut last = (0, 0);
    let summary = s
        .write(&dir.path().join("p.gguf"), false, &mut |d, t| last = (d, t))
        .unwrap();
    assert_eq!(last, (summary.file_bytes, summary.file_bytes));
    assert_eq!(s.file_bytes().unwrap(), summary.file_bytes);
}

#[test]
fn bad_shapes_are_refused_with_a_reason() {
    let (family, base) = presets::base(Some(Preset::TinyLlama), None).unwrap();
    let err = |o: Overrides| {
        presets::apply(family, base.clone(), &o)
            .unwrap_err()
            .to_string()
    };
    assert!(err(Overrides {
        n_embd: Some(250),
        ..Default::default()
    })
    .contains("not divisible by 8 heads"));
    assert!(err(Overrides {
        n_shared_expert: Some(1),
        n_expert: Some(4),
        ..Default::default()
    })
    .contains("no shared experts"));
    let (qf, qb) = presets::base(None, Some(Arch::Qwen2Moe)).unwrap();
    let e = presets::apply(
        qf,
        qb,
        &Overrides {
            n_shared_expert: Some(0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e,
        ShapeError::NeedsSharedExperts {
            family: presets::Family::Qwen2Moe
        }
    );
    assert!(e.to_string().contains("qwen3moe"), "{e}");
    assert!(presets::base(Some(Preset::TinyLlama), Some(Arch::Qwen3Moe))
        .unwrap_err()
        .to_string()
        .contains("conflicts"));
    assert_eq!(presets::base(None, None), Err(ShapeError::NothingToBuild));
    assert!("nope"
        .parse::<Preset>()
        .unwrap_err()
        .to_string()
        .contains("tiny-mixtral"));
    assert!("gpt"
        .parse::<Arch>()
        .unwrap_err()
        .to_string()
        .contains("qwen3moe or deepseek2"));

    // Rows that are not whole Q4_0 blocks; the same shape is fine in F16.
    let odd = spec(
        "tiny-llama",
        Overrides {
            n_embd: Some(200),
            n_head: Some(4),
            ..Default::default()
        },
        GgmlType::Q4_0,
        0,
    );
    let e = odd.plan().unwrap_err();
    assert!(
        matches!(
            &e,
            SynthError::PartialBlock {
                ty: GgmlType::Q4_0,
                block: 32,
                ..
            }
        ),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains("not a multiple of Q4_0's block of 32") && e.contains("f16"),
        "{e}"
    );
    assert!(SynthSpec {
        weight_type: GgmlType::F16,
        ..odd.clone()
    }
    .plan()
    .is_ok());
    let e = SynthSpec {
        weight_type: GgmlType::Q4_K,
        ..odd.clone()
    }
    .plan()
    .unwrap_err()
    .to_string();
    assert!(e.contains("Q4_K"), "{e}");
    let tiny_vocab = spec(
        "tiny-llama",
        Overrides {
            n_vocab: Some(100),
            ..Default::default()
        },
        GgmlType::F16,
        0,
    );
    assert!(tiny_vocab
        .plan()
        .unwrap_err()
        .to_string()
        .contains("at least 259"));
}

#[test]
fn size_targets_are_met_within_a_few_percent() {
    for (preset, target, layers) in [
        ("tiny-mixtral", 64u64 << 20, None),
        ("tiny-qwen3-moe", 40 << 20, None),
        ("tiny-llama", 20 << 20, Some(6)),
        ("tiny-deepseek-v2-lite", 100 << 20, None),
    ] {
        let (family, base) = presets::base(Some(preset.parse().unwrap()), None).unwrap();
        let arch = synth::fit_size(family, &base, GgmlType::Q4_0, target, layers, None).unwrap();
        if let Some(l) = layers {
            assert_eq!(arch.n_layer, l);
        }
        let s = SynthSpec {
            arch,
            weight_type: GgmlType::Q4_0,
            seed: 0,
            name: "fit".into(),
        };
        let got = s.file_bytes().unwrap() as f64;
        let miss = (got / target as f64 - 1.0).abs();
        assert!(
            miss < 0.05,
            "{preset}: {got} bytes for a target of {target} ({:?})",
            s.arch
        );
    }
}

#[test]
fn sizes_parse() {
    assert_eq!(synth::parse_size("2GiB"), Ok(2 << 30));
    assert_eq!(synth::parse_size("1.5g"), Ok(3 << 29));
    assert_eq!(synth::parse_size("500MB"), Ok(500_000_000));
    assert_eq!(synth::parse_size("64k"), Ok(65536));
    assert_eq!(synth::parse_size("1000"), Ok(1000));
    assert!(synth::parse_size("2 parsecs")
        .unwrap_err()
        .to_string()
        .contains("unknown unit"));
    assert!(synth::parse_size("GiB").is_err());
}

#[test]
fn overrides_derive_the_fields_that_follow_from_them() {
    let (family, base) = presets::base(None, Some(Arch::Mixtral)).unwrap();
    // Width and heads: llama derives the head width; the 2-heads-per-kv-head grouping is kept.
    let a = presets::apply(
        family,
        base.clone(),
        &Overrides {
            n_embd: Some(512),
            n_head: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.head_dim, a.n_head_kv), (128, 2));
    // A Mixtral-style model has one FFN width for the dense key and the experts.
    let a = presets::apply(
        family,
        base.clone(),
        &Overrides {
            n_ff: Some(1024),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.n_ff, a.expert_ff), (1024, 1024));
    let e = presets::apply(
        family,
        base,
        &Overrides {
            n_ff: Some(1024),
            expert_ff: Some(512),
            ..Default::default()
        },
    );
    assert_eq!(
        e,
        Err(ShapeError::FfnWidthsDiffer {
            ff: 1024,
            expert_ff: 512
        })
    );
    assert!(e.unwrap_err().to_string().contains("one FFN width"));
    // Turning a dense llama into an MoE gets an expert width and a top-k.
    let (family, base) = presets::base(Some(Preset::TinyLlama), None).unwrap();
    let a = presets::apply(
        family,
        base,
        &Overrides {
            n_expert: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.n_expert, a.n_expert_used, a.expert_ff), (4, 2, 512));
    // More shared experts keep each one's width.
    let (family, base) = presets::base(Some(Preset::TinyQwenMoe), None).unwrap();
    let a = presets::apply(
        family,
        base,
        &Overrides {
            n_shared_expert: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.shared_expert_ff, 1024);
    assert!(a.qkv_bias && a.shared_expert_gate);
    // deepseek2's shared width is always experts x expert width, as llama.cpp sizes it.
    let (family, base) = presets::base(Some(Preset::TinyDeepseekV2Lite), None).unwrap();
    let a = presets::apply(
        family,
        base,
        &Overrides {
            expert_ff: Some(96),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.shared_expert_ff, 2 * 96);
}

#[test]
fn tied_embeddings_drop_the_output_head() {
    let dir = tempfile::tempdir().unwrap();
    let o = Overrides {
        n_layer: Some(1),
        tied_embeddings: Some(true),
        ..Default::default()
    };
    let s = spec("tiny-qwen3-moe", o, GgmlType::Q8_0, 0);
    let path = dir.path().join("tied.gguf");
    write(&s, &path);
    let inv = Inventory::from_gguf(&path).unwrap();
    assert!(inv.tensors.iter().any(|t| t.role == Role::TokenEmbd));
    assert!(!inv.tensors.iter().any(|t| t.role == Role::Output));
    assert!(
        inv.tensors.iter().any(|t| t.role == Role::AttnQNorm),
        "qwen3moe has q/k norms"
    );
}
