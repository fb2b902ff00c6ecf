//! Every `hypura synth` preset, in Q4_0 and Q8_0, loads in llama.cpp (the runtime's build, with
//! plain llama.cpp's defaults) and decodes with finite logits: the synthesizer writes files the
//! real loader accepts, not just files our own reader accepts.

use gguf::GgmlType;
use runtime::{Context, ContextParams, Model, ModelParams, Sampling};
use synth::presets::{self, Overrides};
use synth::{Preset, SynthSpec};

#[test]
fn every_preset_in_q4_0_and_q8_0_loads_and_decodes_in_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for preset in Preset::ALL {
        for weight_type in [GgmlType::Q4_0, GgmlType::Q8_0] {
            let (family, base) = presets::base(Some(preset), None).unwrap();
            let arch = presets::apply(family, base, &Overrides::default()).unwrap();
            let spec = SynthSpec {
                arch,
                weight_type,
                seed: 1,
                name: format!("load-check-{}", preset.name()),
            };
            let path = dir
                .path()
                .join(format!("{}-{}.gguf", preset.name(), weight_type.name()));
            spec.write(&path, false, &mut |_, _| {}).unwrap();

            let model = Model::load(&path, &ModelParams::llama_defaults())
                .unwrap_or_else(|e| panic!("llama.cpp refused {}: {e}", path.display()));
            let prompt = model.tokenize("hello world", true).unwrap();
            let params = ContextParams {
                n_ctx: 64,
                n_threads: 2,
                op_offload: true,
                ..ContextParams::DEFAULT
            };
            let mut ctx = Context::new(&model, params, None).unwrap();
            let g = ctx.generate(&prompt, 6, Sampling::GREEDY).unwrap();
            assert!(
                !g.tokens.is_empty(),
                "{}: no token generated",
                path.display()
            );
            let logits = ctx.last_logits();
            assert_eq!(logits.len(), model.n_vocab(), "{}", path.display());
            assert!(
                logits.iter().all(|x| x.is_finite()),
                "{}: non-finite logits",
                path.display()
            );
            checked.push(format!("{} {}", preset.name(), weight_type.name()));
            std::fs::remove_file(&path).unwrap();
        }
    }
    // Five presets when this was written; a preset list that shrank to nothing would pass
    // vacuously.
    assert!(checked.len() >= 10, "checked only {checked:?}");
}
