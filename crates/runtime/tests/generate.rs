//! `Context::generate` stops at an end-of-generation token, unless `Sampling::ignore_eos`: then it
//! generates all `n_predict` tokens, the same ones up to where it would have stopped.

mod common;

use common::{synth, PARAMS};
use runtime::{Context, Model, ModelParams, Sampling};
use synth::presets::Overrides;

#[test]
fn ignore_eos_generates_past_an_end_of_generation_token() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let small_vocab = Overrides {
        n_vocab: Some(300),
        ..Overrides::default()
    };
    let path = synth(dir.path(), "tiny-llama", small_vocab);
    let model = Model::load(&path, &ModelParams::llama_defaults()).unwrap();
    let prompt = model.tokenize("hello", true).unwrap();
    let n = 200;
    let generate = |seed: u32, ignore_eos: bool| {
        // A high temperature samples almost uniformly: the end token comes within a few hundred.
        let sampling = Sampling {
            temp: 50.0,
            seed,
            ignore_eos,
        };
        let mut ctx = Context::new(&model, PARAMS, None).unwrap();
        ctx.generate(&prompt, n, sampling).unwrap().tokens
    };
    let (seed, stopped) = (0..40)
        .map(|seed| (seed, generate(seed, false)))
        .find(|(_, t)| t.len() < n)
        .expect("no seed of 40 reached an end-of-generation token");
    assert!(
        model.is_end_of_generation(*stopped.last().unwrap()),
        "{stopped:?}"
    );
    let all = generate(seed, true);
    assert_eq!(all.len(), n);
    assert_eq!(all[..stopped.len()], stopped[..]);
}
