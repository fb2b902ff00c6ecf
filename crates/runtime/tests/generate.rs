//! `Context::generate` stops at an end-of-generation token, unless `Sampling::ignore_eos`: then it
//! generates all `n_predict` tokens, the same ones up to where it would have stopped. The
//! truncating samplers (top-k, top-p, min-p) apply; tokens reach a callback as they come.

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
            ..Sampling::GREEDY
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

#[test]
fn truncation_to_the_top_token_samples_what_greedy_picks_and_tokens_stream_as_sampled() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = synth(dir.path(), "tiny-llama", Overrides::default());
    let model = Model::load(&path, &ModelParams::llama_defaults()).unwrap();
    let prompt = model.tokenize("hello", true).unwrap();
    let n = 24;
    let run = |sampling: Sampling| {
        let mut ctx = Context::new(&model, PARAMS, None).unwrap();
        let mut streamed = Vec::new();
        let g = ctx
            .generate_with(&prompt, n, sampling, |t| {
                streamed.push(t);
                true
            })
            .unwrap();
        assert_eq!(
            streamed, g.tokens,
            "the callback sees every token, in order"
        );
        g.tokens
    };
    let greedy = run(Sampling {
        ignore_eos: true,
        ..Sampling::GREEDY
    });
    // At temperature 50 the draw is nearly uniform over a 32000-token vocabulary: only a
    // filter that keeps the top token alone reproduces greedy's tokens.
    let hot = Sampling {
        temp: 50.0,
        seed: 7,
        ignore_eos: true,
        ..Sampling::GREEDY
    };
    assert_ne!(run(hot), greedy, "the unfiltered draw");
    for (name, s) in [
        ("top-k 1", Sampling { top_k: 1, ..hot }),
        ("min-p 1", Sampling { min_p: 1.0, ..hot }),
        ("top-p 0", Sampling { top_p: 0.0, ..hot }),
    ] {
        assert_eq!(run(s), greedy, "{name}");
    }
}
