//! Oracles the fuzz targets share: where a trace error must point, and what every accepted trace
//! must satisfy (rules of `crates/traces/FORMAT.md`, checked here independently of the readers,
//! and lossless round trips through both on-disk forms).

use std::path::Path;
use traces::{Place, Trace, TraceError};

/// How a reader must locate its errors (FORMAT.md: "Errors name the place").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locate {
    /// `file:line:column`, inside the input.
    LineColumn,
    /// `file: byte N`, N within the input.
    Byte,
    /// `file` or `file:line`, the line inside the input.
    FileOrLine,
    /// `file` or `file:line:column` (JSON-based importers: syntax errors have a place, rule
    /// violations found after parsing name the file).
    FileOrLineColumn,
}

/// Lines of `input` as an editor counts them (a final line without a newline counts).
pub fn line_count(input: &[u8]) -> usize {
    input.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Byte length of line `line` (1-based) of `input`, without its newline.
fn line_len(input: &[u8], line: usize) -> usize {
    input
        .split(|&b| b == b'\n')
        .nth(line - 1)
        .map_or(0, <[u8]>::len)
}

/// Checks that `e`, from reading the in-memory `input` named `name`, is a content error (there is
/// no I/O on a slice) located as `how` says, with a message.
pub fn check_error(e: &TraceError, name: &str, input: &[u8], how: Locate) {
    let at = match e {
        TraceError::Io { .. } => panic!("in-memory input gave an I/O error: {e}"),
        _ => e
            .location()
            .unwrap_or_else(|| panic!("a content error without a location: {e:?}")),
    };
    let msg = e.to_string();
    let msg = msg
        .strip_prefix(&format!("{at}: "))
        .unwrap_or_else(|| panic!("error does not start with its location: {e}"));
    assert!(!msg.trim().is_empty(), "error without a message: {e:?}");
    assert_eq!(at.path, Path::new(name), "error does not name {name}: {e}");
    let line_ok = |l: u64| {
        assert!(
            (1..=line_count(input) as u64).contains(&l),
            "line {l} outside the input's {} lines: {e}",
            line_count(input)
        );
    };
    let line_col = |l: u64, c: u64| {
        line_ok(l);
        // serde_json puts EOF errors after the last byte, column 0 at a line's start.
        assert!(
            c <= line_len(input, l as usize) as u64 + 1,
            "column {c} beyond line {l} ({} bytes): {e}",
            line_len(input, l as usize)
        );
    };
    match (how, at.place) {
        (Locate::LineColumn | Locate::FileOrLineColumn, Place::LineColumn { line, column }) => {
            line_col(line, column)
        }
        (Locate::Byte, Place::Byte(n)) => assert!(
            n <= input.len() as u64,
            "byte {n} beyond the input's {} bytes: {e}",
            input.len()
        ),
        (Locate::FileOrLine, Place::Line(l)) => line_ok(l),
        (Locate::FileOrLine | Locate::FileOrLineColumn, Place::File) => {}
        (how, place) => panic!("{place:?} where the reader locates errors as {how:?}: {e}"),
    }
}

/// The format's rules, checked on an accepted trace without the crate's own validation code.
pub fn check_rules(t: &Trace) {
    let m = t.model();
    assert!((1..=traces::MAX_EXPERTS).contains(&m.n_expert), "{m:?}");
    assert!(m.top_k >= 1 && m.top_k <= m.n_expert, "{m:?}");
    assert!(!m.moe_layers.is_empty(), "{m:?}");
    assert!(m.moe_layers.windows(2).all(|w| w[0] < w[1]), "{m:?}");
    assert!(
        m.moe_layers.iter().all(|&b| b < traces::MAX_BLOCKS),
        "{m:?}"
    );
    assert!(t.n_sequences() >= 1 && t.n_tokens() >= 1);
    let mut next = 0;
    for s in t.sequences() {
        assert_eq!(s.tokens.start, next, "sequences do not tile the tokens");
        assert!(
            s.tokens.end > s.tokens.start,
            "sequence {:?} has no tokens",
            s.id
        );
        next = s.tokens.end;
    }
    assert_eq!(next, t.n_tokens());
    let k = m.top_k as usize;
    assert_eq!(t.n_expert_ids(), t.n_tokens() * m.n_layers() * k);
    for tok in 0..t.n_tokens() {
        for l in 0..m.n_layers() {
            let sel = t.selection(tok, l);
            assert_eq!(sel.len(), k);
            for (i, &id) in sel.iter().enumerate() {
                assert!(
                    u32::from(id) < m.n_expert,
                    "id {id} >= n_expert {}",
                    m.n_expert
                );
                assert!(!sel[..i].contains(&id), "id {id} twice in {sel:?}");
            }
            if let Some(w) = t.selection_weights(tok, l) {
                assert_eq!(w.len(), k);
                assert!(w.iter().all(|x| x.is_finite()), "{w:?}");
            }
        }
        let _ = (t.phase(tok), t.timestamp_ns(tok), t.text(tok));
    }
}

/// Gate weights equal bit for bit (`==` on f32 would let 0.0 stand for -0.0).
fn same_weights(a: &Trace, b: &Trace) -> bool {
    a.has_weights() == b.has_weights()
        && (0..a.n_tokens()).all(|t| {
            (0..a.model().n_layers()).all(|l| {
                let bits = |x: &Trace| {
                    x.selection_weights(t, l)
                        .map(|w| w.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                bits(a) == bits(b)
            })
        })
}

/// The trace written as JSON.
pub fn to_json(t: &Trace) -> Vec<u8> {
    let mut out = Vec::new();
    traces::json::write_to(t, &mut out).expect("writing to memory");
    out
}

/// The trace written in the binary form.
pub fn to_binary(t: &Trace) -> Vec<u8> {
    let mut out = Vec::new();
    traces::binary::write_to(t, &mut out).expect("writing to memory");
    out
}

/// An accepted trace survives both forms unchanged: written as JSON and as binary, each reads
/// back to the same trace, weights bit for bit.
pub fn check_round_trips(t: &Trace) {
    let json = to_json(t);
    let back = traces::json::from_slice(&json, Path::new("rt.json")).unwrap_or_else(|e| {
        panic!(
            "written JSON does not read back: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert!(
        back == *t && same_weights(&back, t),
        "JSON round trip changed the trace"
    );
    let bin = to_binary(t);
    let back = traces::binary::from_slice(&bin, Path::new("rt.htrace"))
        .unwrap_or_else(|e| panic!("written binary does not read back: {e}"));
    assert!(
        back == *t && same_weights(&back, t),
        "binary round trip changed the trace"
    );
}
