//! Fuzzes the hardware profile reader (`HwProfile::from_toml_str`, what `HwProfile::load` runs on
//! a file's text): any text gives a profile or an error naming the file (with a line:column
//! inside the text where it gives one, and the key for a bad value), never a panic. An accepted
//! profile passes `validate`, writes back (`to_toml`, and `to_toml_annotated` with a note on
//! every key) to TOML that reads back equal, and its storage read curve answers finite
//! bandwidths within the measured range.

#![no_main]

use hw::{HwError, HwProfile, Notes};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.toml";

fn check_error(e: &HwError, text: &str) {
    let shown = e.to_string();
    assert!(
        shown.starts_with(ORIGIN),
        "error does not name the file: {shown}"
    );
    match e {
        HwError::Io { .. } => panic!("text input gave an I/O error: {shown}"),
        HwError::Parse {
            location, message, ..
        } => {
            assert!(!message.trim().is_empty(), "{shown}");
            if let Some((line, col)) = *location {
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(
                    (1..=lines.len()).contains(&line),
                    "line {line} outside the text: {shown}"
                );
                let chars = lines[line - 1].chars().count();
                assert!(
                    (1..=chars + 1).contains(&col),
                    "column {col} outside line {line}: {shown}"
                );
            }
        }
        HwError::Invalid { key, message, .. } => {
            assert!(!key.is_empty() && !message.is_empty(), "{shown}");
            assert_eq!(e.key(), Some(key.as_str()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // `HwProfile::load` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = match HwProfile::from_toml_str(text, ORIGIN) {
        Ok(p) => p,
        Err(e) => return check_error(&e, text),
    };
    p.validate().expect("an accepted profile is valid");
    let toml = p.to_toml();
    let back = HwProfile::from_toml_str(&toml, "rt.toml")
        .unwrap_or_else(|e| panic!("written profile does not read back: {e}\n{toml}"));
    assert_eq!(back, p, "to_toml round trip changed the profile\n{toml}");

    let mut notes = Notes::new();
    let mut section = String::new();
    for line in toml.lines() {
        let t = line.trim();
        if let Some(s) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            section = format!("{s}[]");
        } else if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
        }
        if let Some((k, _)) = t.split_once(" = ") {
            let key = if section.is_empty() {
                k.to_string()
            } else {
                format!("{section}.{k}")
            };
            notes.insert(
                key,
                format!("note # with \"quotes\"\nand a newline for {k}"),
            );
        }
    }
    let annotated = p.to_toml_annotated("header line\n# second = 1\n[not a table]", &notes);
    let back = HwProfile::from_toml_str(&annotated, "annotated.toml")
        .unwrap_or_else(|e| panic!("annotated profile does not read back: {e}\n{annotated}"));
    assert_eq!(
        back, p,
        "to_toml_annotated changed the profile\n{annotated}"
    );

    let s = &p.storage;
    let max = s.read_curve.iter().map(|r| r.gbps).fold(0.0, f64::max);
    let min = s
        .read_curve
        .iter()
        .map(|r| r.gbps)
        .fold(f64::INFINITY, f64::min);
    let min_block = s.read_curve.iter().map(|r| r.block_bytes).min().unwrap();
    for r in s.read_curve.iter().take(4) {
        for (block, qd) in [
            (r.block_bytes, r.queue_depth),
            (
                r.block_bytes.saturating_add(1),
                r.queue_depth.saturating_add(1),
            ),
            (r.block_bytes / 2 + 1, 0),
            (u64::MAX, u32::MAX),
            (1, 1),
        ] {
            let g = s.read_gbps(block, qd);
            assert!(g.is_finite() && g >= 0.0, "read_gbps({block}, {qd}) = {g}");
            assert!(
                g <= max * (1.0 + 1e-12),
                "read_gbps({block}, {qd}) = {g} above the curve's {max}"
            );
            if block >= min_block {
                assert!(
                    g >= min * (1.0 - 1e-12),
                    "read_gbps({block}, {qd}) = {g} below the curve's {min}"
                );
            }
        }
    }
});
