//! Fuzzes the four importers (`hypura trace import --from ...`) on in-memory files.
//!
//! Input: byte 0 picks the source (deepseek-csv, switch-json, vllm-jsonl, vllm-routed), byte 1
//! the options the user could pass (`--n-expert`, `--top-k`, `--layers`, ...), the rest is the
//! file; for switch-json a NUL byte splits it into `router-trace.v2.json` and the
//! `capture-metadata.json` beside it (no NUL: no metadata file).
//!
//! Errors must name the file (and a line or line:column inside it where they give one). An
//! accepted trace obeys FORMAT.md's rules (checked independently), honours every option given,
//! holds the expert ids the input lists (recomputed here from the JSON sources), and reads back
//! unchanged from both trace forms.

#![no_main]

use hypura_fuzz::{check_error, check_round_trips, check_rules, Locate};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use traces::import::{deepseek_csv, switch_json, vllm_jsonl, vllm_routed, Options};
use traces::Trace;

fn options(bits: u8) -> Options {
    let layers: [&[u32]; 4] = [&[], &[1, 2], &[1, 3], &[0, 1, 2, 3, 4, 5]];
    Options {
        n_expert: [None, Some(8), Some(64), Some(300)][bits as usize & 3],
        top_k: [None, Some(1), Some(2), Some(6)][(bits as usize >> 2) & 3],
        moe_layers: Some(layers[(bits as usize >> 4) & 3].to_vec()).filter(|l| !l.is_empty()),
        n_shared_expert: (bits & 0x40 != 0).then_some(2),
        architecture: (bits & 0x80 != 0).then(|| "fuzz-arch".to_string()),
    }
}

/// Every option the user gave is what the trace says.
fn check_options(t: &Trace, o: &Options) {
    let m = t.model();
    assert!(o.n_expert.is_none_or(|n| n == m.n_expert), "{m:?} vs {o:?}");
    assert!(o.top_k.is_none_or(|k| k == m.top_k), "{m:?} vs {o:?}");
    assert!(
        o.moe_layers.as_ref().is_none_or(|l| *l == m.moe_layers),
        "{m:?} vs {o:?}"
    );
    assert!(
        o.n_shared_expert.is_none_or(|n| n == m.n_shared_expert),
        "{m:?} vs {o:?}"
    );
    assert!(
        o.architecture.as_ref().is_none_or(|a| *a == m.architecture),
        "{m:?} vs {o:?}"
    );
}

/// Every number of a JSON array, depth first.
fn flatten(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Number(n) => out.push(n.as_u64().expect("accepted ids are whole numbers")),
        other => panic!("accepted input holds {other} among its ids"),
    }
}

fn ids(t: &Trace) -> Vec<u64> {
    t.expert_ids().iter().map(|&i| u64::from(i)).collect()
}

fuzz_target!(|data: &[u8]| {
    let [source, bits, file @ ..] = data else {
        return;
    };
    let o = options(*bits);
    match source % 4 {
        0 => {
            let r = deepseek_csv::from_slice(file, Path::new("fuzz.csv"), &o);
            match r {
                Ok(t) => {
                    check_rules(&t);
                    check_options(&t, &o);
                    assert_eq!(t.n_sequences(), 1);
                    assert_eq!(t.sequence(0).id, "fuzz", "sequence id is the file stem");
                    assert!(t.text(0).is_some(), "CSV tokens carry their text");
                    check_round_trips(&t);
                }
                Err(e) => check_error(&e, "fuzz.csv", file, Locate::FileOrLine),
            }
        }
        1 => {
            let (trace, meta) = match file.iter().position(|&b| b == 0) {
                Some(i) => (&file[..i], Some(&file[i + 1..])),
                None => (file, None),
            };
            let tp = Path::new("d/router-trace.v2.json");
            let mp = Path::new("d/capture-metadata.json");
            match switch_json::from_slices(trace, tp, meta.map(|m| (m, mp)), &o) {
                Ok(t) => {
                    check_rules(&t);
                    check_options(&t, &o);
                    let v: Value = serde_json::from_slice(trace).unwrap();
                    assert_eq!(Some(t.n_tokens() as u64), v["tokens"].as_u64());
                    let mut want = Vec::new();
                    flatten(&v["selections"], &mut want);
                    assert_eq!(ids(&t), want, "ids are not the selections in order");
                    check_round_trips(&t);
                }
                Err(e) => {
                    let (name, input) = match e.to_string().starts_with("d/capture") {
                        true => ("d/capture-metadata.json", meta.unwrap_or_default()),
                        false => ("d/router-trace.v2.json", trace),
                    };
                    check_error(&e, name, input, Locate::FileOrLineColumn)
                }
            }
        }
        2 => match vllm_jsonl::from_slice(file, Path::new("fuzz.jsonl"), &o) {
            Ok(t) => {
                check_rules(&t);
                check_options(&t, &o);
                // Raw values, as the importer skips unknown fields: a number too large for an
                // f64 in a field nobody reads is valid JSON that `Value` would refuse.
                let routes = file
                    .split(|&b| b == b'\n')
                    .filter_map(|l| {
                        serde_json::from_slice::<HashMap<String, Box<RawValue>>>(l).ok()
                    })
                    .filter(|v| {
                        v.get("type")
                            .and_then(|t| serde_json::from_str::<String>(t.get()).ok())
                            .is_some_and(|t| t == "route")
                    })
                    .count();
                assert_eq!(
                    routes,
                    t.n_selections(),
                    "every route line is one selection of one token"
                );
                check_round_trips(&t);
            }
            Err(e) => check_error(&e, "fuzz.jsonl", file, Locate::FileOrLine),
        },
        _ => match vllm_routed::from_slice(file, Path::new("fuzz.json"), &o) {
            Ok(t) => {
                check_rules(&t);
                check_options(&t, &o);
                let v: Value = serde_json::from_slice(file).unwrap();
                let mut want = Vec::new();
                match &v {
                    Value::Object(map) => {
                        let seqs: Vec<&str> = t.sequences().map(|s| s.id).collect();
                        assert_eq!(seqs, map.keys().map(String::as_str).collect::<Vec<_>>());
                        map.values().for_each(|r| flatten(r, &mut want));
                    }
                    other => flatten(other, &mut want),
                }
                assert_eq!(ids(&t), want, "ids are not the arrays' numbers in order");
                check_round_trips(&t);
            }
            Err(e) => check_error(&e, "fuzz.json", file, Locate::FileOrLineColumn),
        },
    }
});
