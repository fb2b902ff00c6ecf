//! The JSON form (version 1): writer here, streaming validating reader in `read`.

mod read;

use crate::model::{Phase, Trace};
use std::io::Write;

pub use read::{from_slice, read, JsonError};

/// Value of the top-level `"format"` key.
pub const FORMAT_NAME: &str = "hypura-trace";
/// The JSON version this build reads and writes.
pub const VERSION: u64 = 1;

/// Writes `trace` as JSON, one token per line, to any writer (files go through
/// [`crate::save`], which writes atomically and never overwrites unless asked).
pub fn write_to(trace: &Trace, w: &mut impl Write) -> std::io::Result<()> {
    let m = trace.model();
    writeln!(w, "{{")?;
    writeln!(w, "  \"format\": \"{FORMAT_NAME}\",")?;
    writeln!(w, "  \"version\": {VERSION},")?;
    write!(w, "  \"model\": ")?;
    serde_json::to_writer(&mut *w, m)?;
    writeln!(w, ",")?;
    writeln!(w, "  \"sequences\": [")?;
    for (s, seq) in trace.sequences().enumerate() {
        write!(w, "    {{\"id\": ")?;
        serde_json::to_writer(&mut *w, seq.id)?;
        writeln!(w, ", \"tokens\": [")?;
        for t in seq.tokens.clone() {
            write!(w, "      ")?;
            write_token(trace, t, w)?;
            writeln!(w, "{}", if t + 1 < seq.tokens.end { "," } else { "" })?;
        }
        writeln!(
            w,
            "    ]}}{}",
            if s + 1 < trace.n_sequences() { "," } else { "" }
        )?;
    }
    writeln!(w, "  ]")?;
    writeln!(w, "}}")
}

fn write_token(trace: &Trace, t: usize, w: &mut impl Write) -> std::io::Result<()> {
    let layers = trace.model().n_layers();
    write!(w, "{{\"experts\": [")?;
    for l in 0..layers {
        write_list(
            w,
            trace.selection(t, l).iter().map(|id| id.to_string()),
            l + 1 < layers,
        )?;
    }
    write!(w, "]")?;
    if trace.has_weights() {
        write!(w, ", \"weights\": [")?;
        for l in 0..layers {
            let ws = trace.selection_weights(t, l).unwrap_or(&[]);
            write_list(w, ws.iter().map(|x| format_f32(*x)), l + 1 < layers)?;
        }
        write!(w, "]")?;
    }
    if let Some(p) = trace.phase(t) {
        let name = match p {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        };
        write!(w, ", \"phase\": \"{name}\"")?;
    }
    if let Some(ts) = trace.timestamp_ns(t) {
        write!(w, ", \"t_ns\": {ts}")?;
    }
    if let Some(text) = trace.text(t) {
        write!(w, ", \"text\": ")?;
        serde_json::to_writer(&mut *w, text)?;
    }
    write!(w, "}}")
}

fn write_list(
    w: &mut impl Write,
    items: impl Iterator<Item = String>,
    comma: bool,
) -> std::io::Result<()> {
    write!(w, "[")?;
    for (i, item) in items.enumerate() {
        write!(w, "{}{item}", if i > 0 { "," } else { "" })?;
    }
    write!(w, "]{}", if comma { "," } else { "" })
}

/// Shortest text that reads back as the same `f32`; always has a `.` or exponent.
fn format_f32(x: f32) -> String {
    format!("{x:?}")
}
