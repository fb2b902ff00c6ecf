//! Writes the binary form.

use super::{id_width, FLAG_PHASES, FLAG_TEXTS, FLAG_TIMESTAMPS, FLAG_WEIGHTS, MAGIC, VERSION};
use crate::model::{Phase, Trace};
use std::io::Write;

/// Writes `t` in the binary form to any writer (files go through [`crate::save`], which writes
/// atomically and never overwrites unless asked).
pub fn write_to(t: &Trace, w: &mut impl Write) -> std::io::Result<()> {
    let m = t.model();
    let flags = [
        (t.weights.is_some(), FLAG_WEIGHTS),
        (t.phases.is_some(), FLAG_PHASES),
        (t.timestamps_ns.is_some(), FLAG_TIMESTAMPS),
        (t.texts.is_some(), FLAG_TEXTS),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit);
    let width = id_width(m.n_expert);
    w.write_all(MAGIC)?;
    for v in [
        VERSION,
        flags,
        m.n_expert,
        m.top_k,
        m.n_shared_expert,
        m.n_layers() as u32,
        width,
    ] {
        w.write_all(&v.to_le_bytes())?;
    }
    w.write_all(&(t.n_sequences() as u64).to_le_bytes())?;
    w.write_all(&(t.n_tokens() as u64).to_le_bytes())?;
    write_str(w, &m.architecture)?;
    for l in &m.moe_layers {
        w.write_all(&l.to_le_bytes())?;
    }
    for seq in t.sequences() {
        w.write_all(&(seq.tokens.len() as u64).to_le_bytes())?;
        write_str(w, seq.id)?;
    }
    // Chunked so that writing never holds a second copy of the ids.
    for chunk in t.experts.chunks(1 << 16) {
        let bytes: Vec<u8> = if width == 1 {
            chunk.iter().map(|&id| id as u8).collect()
        } else {
            chunk.iter().flat_map(|id| id.to_le_bytes()).collect()
        };
        w.write_all(&bytes)?;
    }
    if let Some(ws) = &t.weights {
        for chunk in ws.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
            w.write_all(&bytes)?;
        }
    }
    if let Some(ps) = &t.phases {
        let bytes: Vec<u8> = ps
            .iter()
            .map(|p| matches!(p, Phase::Decode) as u8)
            .collect();
        w.write_all(&bytes)?;
    }
    if let Some(ts) = &t.timestamps_ns {
        for v in ts {
            w.write_all(&v.to_le_bytes())?;
        }
    }
    if let Some(texts) = &t.texts {
        for s in texts {
            write_str(w, s)?;
        }
    }
    Ok(())
}

fn write_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}
