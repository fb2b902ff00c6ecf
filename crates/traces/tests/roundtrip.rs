//! Property: any valid trace survives JSON and binary exactly, and the forms convert losslessly.

use proptest::prelude::*;
use traces::{ModelFacts, Phase, TokenExtras, Trace, TraceBuilder};

/// Shape and optional fields of a generated trace; the ids come from `seed`.
#[derive(Debug, Clone)]
struct Spec {
    n_expert: u32,
    top_k: u32,
    layers: Vec<u32>,
    seq_lens: Vec<usize>,
    weights: bool,
    phases: bool,
    timestamps: bool,
    texts: bool,
    seed: u64,
}

fn spec() -> impl Strategy<Value = Spec> {
    let n_expert = prop_oneof![1u32..=9, 250u32..=260, Just(4096u32), Just(65536u32)];
    (
        n_expert,
        1u32..=4,
        prop::collection::btree_set(0u32..100, 1..4),
        prop::collection::vec(1usize..6, 1..4),
        any::<[bool; 4]>(),
        any::<u64>(),
    )
        .prop_map(|(n_expert, k, layers, seq_lens, f, seed)| Spec {
            n_expert,
            top_k: k.min(n_expert),
            layers: layers.into_iter().collect(),
            seq_lens,
            weights: f[0],
            phases: f[1],
            timestamps: f[2],
            texts: f[3],
            seed,
        })
}

/// splitmix64: a tiny deterministic generator so ids follow from the proptest seed.
use seeded::splitmix64 as next;

const CHARS: [char; 10] = ['a', ' ', ',', '"', '\\', '\n', 'é', '漢', '\u{0}', 'Ġ'];

fn build(s: &Spec) -> Trace {
    let facts = ModelFacts {
        architecture: "prop".into(),
        moe_layers: s.layers.clone(),
        n_expert: s.n_expert,
        top_k: s.top_k,
        n_shared_expert: 1,
    };
    let mut b = TraceBuilder::new(facts).unwrap();
    let mut rng = s.seed;
    let per_token = s.layers.len() * s.top_k as usize;
    for (i, &len) in s.seq_lens.iter().enumerate() {
        b.begin_sequence(format!("seq-{i}\"x\"")).unwrap();
        for _ in 0..len {
            let mut ids = Vec::with_capacity(per_token);
            for _ in 0..s.layers.len() {
                let start = ids.len();
                while ids.len() < start + s.top_k as usize {
                    let id = (next(&mut rng) % u64::from(s.n_expert)) as u16;
                    if !ids[start..].contains(&id) {
                        ids.push(id);
                    }
                }
            }
            let weights: Vec<f32> = (0..per_token)
                .map(|_| loop {
                    let x = f32::from_bits(next(&mut rng) as u32);
                    if x.is_finite() {
                        break x;
                    }
                })
                .collect();
            let text: String = (0..next(&mut rng) % 5)
                .map(|_| CHARS[(next(&mut rng) % 10) as usize])
                .collect();
            let extras = TokenExtras {
                weights: s.weights.then_some(weights.as_slice()),
                phase: s.phases.then(|| {
                    if next(&mut rng) % 2 == 0 {
                        Phase::Prefill
                    } else {
                        Phase::Decode
                    }
                }),
                timestamp_ns: s.timestamps.then(|| next(&mut rng)),
                text: s.texts.then_some(text),
            };
            b.push_token(&ids, extras).unwrap();
        }
        b.end_sequence().unwrap();
    }
    b.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_and_binary_round_trip_exactly(s in spec()) {
        let t = build(&s);
        let dir = tempfile::tempdir().unwrap();
        let (json, bin, json2) = (dir.path().join("a.json"), dir.path().join("a.htrace"), dir.path().join("b.json"));
        traces::save(&t, &json, false).unwrap();
        let from_json = traces::load(&json).unwrap();
        prop_assert_eq!(&from_json, &t);
        traces::save(&from_json, &bin, false).unwrap();
        let from_bin = traces::load(&bin).unwrap();
        prop_assert_eq!(&from_bin, &t);
        traces::save(&from_bin, &json2, false).unwrap();
        prop_assert_eq!(std::fs::read(&json).unwrap(), std::fs::read(&json2).unwrap());
    }
}

#[test]
fn save_refuses_to_overwrite_without_force() {
    let s = Spec {
        n_expert: 4,
        top_k: 2,
        layers: vec![0],
        seq_lens: vec![1],
        weights: false,
        phases: false,
        timestamps: false,
        texts: false,
        seed: 1,
    };
    let t = build(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    traces::save(&t, &path, false).unwrap();
    let e = traces::save(&t, &path, false).unwrap_err().to_string();
    assert!(e.ends_with("t.json: already exists"), "{e}");
    traces::save(&t, &path, true).unwrap();
    let e = traces::save(&t, &dir.path().join("t.txt"), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("name the file *.json (JSON) or *.htrace (binary)"),
        "{e}"
    );
}
