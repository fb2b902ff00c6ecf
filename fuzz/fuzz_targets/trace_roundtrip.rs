//! Structure-aware (`arbitrary`): builds valid traces of every shape the format allows (id
//! widths 1 and 2 around n_expert 256, up to 65536 experts, each optional per-token field on or
//! off, any Unicode in ids and texts, any finite gate weight including -0.0 and subnormals) and
//! checks the writers against the readers and against FORMAT.md, independently of the crate:
//! - both forms read back to the same trace, weights bit for bit, and JSON rewrites identically;
//! - the binary file has the header fields at FORMAT.md's offsets and exactly its size;
//! - the JSON parses (with plain serde_json) to the documented layout with the same ids,
//!   weights, phases, timestamps and texts.

#![no_main]

use arbitrary::Arbitrary;
use hypura_fuzz::{check_round_trips, check_rules, to_binary, to_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::Path;
use traces::{ModelFacts, Phase, TokenExtras, Trace, TraceBuilder};

#[derive(Arbitrary, Debug)]
struct Input {
    architecture: String,
    layers: Vec<u16>,
    n_expert: NExpert,
    top_k: u8,
    n_shared_expert: u32,
    weights: bool,
    phases: bool,
    timestamps: bool,
    texts: bool,
    sequences: Vec<Seq>,
}

#[derive(Arbitrary, Debug)]
enum NExpert {
    Small(u8),
    Edge(u8),
    Any(u16),
}

#[derive(Arbitrary, Debug)]
struct Seq {
    id: String,
    tokens: Vec<Tok>,
}

#[derive(Arbitrary, Debug)]
struct Tok {
    base: u16,
    weight_bits: Vec<u32>,
    decode: bool,
    t_ns: u64,
    text: String,
}

const EDGES: [u32; 7] = [1, 2, 255, 256, 257, 65535, 65536];

fn build(inp: &Input) -> Trace {
    let n = match inp.n_expert {
        NExpert::Small(v) => u32::from(v) + 1,
        NExpert::Edge(i) => EDGES[i as usize % EDGES.len()],
        NExpert::Any(v) => u32::from(v) + 1,
    };
    let k = 1 + u32::from(inp.top_k) % n.min(8);
    let mut layers: Vec<u32> = inp
        .layers
        .iter()
        .take(16)
        .map(|&l| u32::from(l) % 512)
        .collect();
    layers.sort_unstable();
    layers.dedup();
    if layers.is_empty() {
        layers.push(0);
    }
    let facts = ModelFacts {
        architecture: inp.architecture.clone(),
        moe_layers: layers,
        n_expert: n,
        top_k: k,
        n_shared_expert: inp.n_shared_expert,
    };
    let n_layers = facts.n_layers();
    let mut b = TraceBuilder::new(facts).expect("valid facts");
    let fallback = [Seq {
        id: String::new(),
        tokens: vec![],
    }];
    let seqs = if inp.sequences.is_empty() {
        &fallback[..]
    } else {
        &inp.sequences[..inp.sequences.len().min(8)]
    };
    let one = [Tok {
        base: 0,
        weight_bits: vec![],
        decode: false,
        t_ns: 0,
        text: String::new(),
    }];
    for s in seqs {
        b.begin_sequence(s.id.clone()).unwrap();
        let toks = if s.tokens.is_empty() {
            &one[..]
        } else {
            &s.tokens[..s.tokens.len().min(64)]
        };
        for t in toks {
            let ids: Vec<u16> = (0..n_layers as u32)
                .flat_map(|l| (0..k).map(move |j| ((u32::from(t.base) + 7 * l + j) % n) as u16))
                .collect();
            let weights: Vec<f32> = (0..ids.len())
                .map(|i| {
                    let bits = t
                        .weight_bits
                        .get(i % t.weight_bits.len().max(1))
                        .copied()
                        .unwrap_or(0);
                    let x = f32::from_bits(bits);
                    if x.is_finite() {
                        x
                    } else {
                        f32::from_bits(bits & !0x4000_0000)
                    }
                })
                .collect();
            let extras = TokenExtras {
                weights: inp.weights.then_some(&weights[..]),
                phase: inp.phases.then_some(if t.decode {
                    Phase::Decode
                } else {
                    Phase::Prefill
                }),
                timestamp_ns: inp.timestamps.then_some(t.t_ns),
                text: inp.texts.then(|| t.text.clone()),
            };
            b.push_token(&ids, extras).expect("valid token");
        }
        b.end_sequence().unwrap();
    }
    b.finish().expect("non-empty trace")
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The binary file against FORMAT.md's table.
fn check_binary_layout(t: &Trace, bin: &[u8]) {
    let m = t.model();
    let width = if m.n_expert <= 256 { 1 } else { 2 };
    assert_eq!(&bin[..8], b"HYPTRACE");
    assert_eq!(u32_at(bin, 8), 1, "version");
    let flags = u32::from(t.has_weights())
        | (u32::from(t.phase(0).is_some()) << 1)
        | (u32::from(t.timestamp_ns(0).is_some()) << 2)
        | (u32::from(t.text(0).is_some()) << 3);
    assert_eq!(u32_at(bin, 12), flags, "flags");
    assert_eq!(u32_at(bin, 16), m.n_expert);
    assert_eq!(u32_at(bin, 20), m.top_k);
    assert_eq!(u32_at(bin, 24), m.n_shared_expert);
    assert_eq!(u32_at(bin, 28) as usize, m.n_layers());
    assert_eq!(u32_at(bin, 32), width);
    assert_eq!(u64_at(bin, 36) as usize, t.n_sequences());
    assert_eq!(u64_at(bin, 44) as usize, t.n_tokens());
    assert_eq!(u32_at(bin, 52) as usize, m.architecture.len());
    let n_ids = t.n_tokens() * m.n_layers() * m.top_k as usize;
    let mut size = 52 + 4 + m.architecture.len() + 4 * m.n_layers();
    size += t.sequences().map(|s| 12 + s.id.len()).sum::<usize>();
    size += n_ids * width as usize;
    if t.has_weights() {
        size += 4 * n_ids;
    }
    if t.phase(0).is_some() {
        size += t.n_tokens();
    }
    if t.timestamp_ns(0).is_some() {
        size += 8 * t.n_tokens();
    }
    if t.text(0).is_some() {
        size += (0..t.n_tokens())
            .map(|i| 4 + t.text(i).unwrap().len())
            .sum::<usize>();
    }
    assert_eq!(
        bin.len(),
        size,
        "binary size differs from FORMAT.md's layout"
    );
}

/// The JSON form against FORMAT.md's layout, read with plain serde_json.
fn check_json_layout(t: &Trace, json: &[u8]) {
    let v: Value = serde_json::from_slice(json).expect("the JSON form is JSON");
    assert_eq!(v["format"], "hypura-trace");
    assert_eq!(v["version"], 1);
    let m = t.model();
    assert_eq!(
        v["model"]["architecture"].as_str(),
        Some(m.architecture.as_str())
    );
    assert_eq!(v["model"]["n_expert"].as_u64(), Some(u64::from(m.n_expert)));
    let seqs = v["sequences"].as_array().expect("sequences");
    assert_eq!(seqs.len(), t.n_sequences());
    let mut tok = 0;
    for (s, sv) in t.sequences().zip(seqs) {
        assert_eq!(sv["id"].as_str(), Some(s.id));
        let toks = sv["tokens"].as_array().expect("tokens");
        assert_eq!(toks.len(), s.tokens.len());
        for tv in toks {
            for l in 0..m.n_layers() {
                let ids: Vec<u64> = tv["experts"][l]
                    .as_array()
                    .expect("selection")
                    .iter()
                    .map(|x| x.as_u64().expect("id"))
                    .collect();
                let want: Vec<u64> = t.selection(tok, l).iter().map(|&i| u64::from(i)).collect();
                assert_eq!(ids, want);
                if let Some(w) = t.selection_weights(tok, l) {
                    for (x, &want) in tv["weights"][l].as_array().expect("weights").iter().zip(w) {
                        let got = x.as_f64().expect("weight") as f32;
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "weight {want:?} written as {x}"
                        );
                    }
                }
            }
            match t.phase(tok) {
                Some(Phase::Prefill) => assert_eq!(tv["phase"], "prefill"),
                Some(Phase::Decode) => assert_eq!(tv["phase"], "decode"),
                None => assert!(tv.get("phase").is_none()),
            }
            assert_eq!(tv["t_ns"].as_u64(), t.timestamp_ns(tok));
            assert_eq!(tv["text"].as_str(), t.text(tok));
            tok += 1;
        }
    }
}

fuzz_target!(|inp: Input| {
    let t = build(&inp);
    check_rules(&t);
    check_round_trips(&t);
    let bin = to_binary(&t);
    check_binary_layout(&t, &bin);
    let json = to_json(&t);
    check_json_layout(&t, &json);
    let again = traces::json::from_slice(&json, Path::new("rt.json")).unwrap();
    assert!(
        to_json(&again) == json,
        "JSON written from a read-back trace differs"
    );
});
