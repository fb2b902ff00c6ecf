//! Fuzzes the binary (`.htrace`) reader: arbitrary bytes give a trace or an error at
//! `file: byte N` within the input, never a panic or an allocation beyond what the input implies
//! (run with `-malloc_limit_mb`); an accepted trace obeys every rule of FORMAT.md (checked
//! independently), reads back unchanged from both forms, and the binary form being canonical,
//! writing it again gives the input byte for byte.

#![no_main]

use hypura_fuzz::{check_error, check_round_trips, check_rules, to_binary, Locate};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    match traces::binary::from_slice(data, Path::new("fuzz.htrace")) {
        Ok(t) => {
            check_rules(&t);
            assert!(
                to_binary(&t) == data,
                "an accepted file does not re-encode to itself"
            );
            check_round_trips(&t);
        }
        Err(e) => check_error(&e, "fuzz.htrace", data, Locate::Byte),
    }
});
