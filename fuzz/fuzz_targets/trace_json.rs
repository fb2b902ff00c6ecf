//! Fuzzes the JSON trace reader: arbitrary bytes give a trace or an error at `file:line:column`
//! inside the input, never a panic; an accepted trace obeys every rule of FORMAT.md (checked
//! independently) and reads back unchanged from both the JSON and the binary form.

#![no_main]

use hypura_fuzz::{check_error, check_round_trips, check_rules, Locate};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    match traces::json::from_slice(data, Path::new("fuzz.json")) {
        Ok(t) => {
            check_rules(&t);
            check_round_trips(&t);
        }
        Err(e) => check_error(&e, "fuzz.json", data, Locate::LineColumn),
    }
});
