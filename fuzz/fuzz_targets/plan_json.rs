//! Fuzzes the plan.json reader (`Plan::from_json`, what `Plan::load` runs on a file's text): any
//! text gives a plan or an error naming the file and the field, never a panic; an accepted plan
//! writes back (`to_json`) to JSON that reads back equal and writes identically again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plan::{Plan, PlanError};

const ORIGIN: &str = "fuzz-plan.json";

fuzz_target!(|data: &[u8]| {
    // `Plan::load` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = match Plan::from_json(text, ORIGIN) {
        Ok(p) => p,
        Err(e) => {
            let shown = e.to_string();
            match &e {
                PlanError::Io { .. } => panic!("text input gave an I/O error: {shown}"),
                PlanError::Field { path, message, .. } => {
                    assert_eq!(path, ORIGIN, "{shown}");
                    assert!(!message.trim().is_empty(), "{shown}");
                }
                PlanError::Version { path, .. } => assert_eq!(path, ORIGIN, "{shown}"),
            }
            assert!(
                shown.starts_with(ORIGIN),
                "error does not name the file: {shown}"
            );
            return;
        }
    };
    let json = p.to_json();
    let back = Plan::from_json(&json, "rt.json")
        .unwrap_or_else(|e| panic!("written plan does not read back: {e}\n{json}"));
    assert_eq!(back, p, "to_json round trip changed the plan\n{json}");
    assert_eq!(back.to_json(), json, "to_json is not stable");
});
