//! Reads and validates the binary form. Every count is checked against the bytes left in the
//! file before anything is allocated, so a corrupt header cannot cause a huge allocation.

use super::{
    id_width, FLAG_PHASES, FLAG_TEXTS, FLAG_TIMESTAMPS, FLAG_WEIGHTS, KNOWN_FLAGS, MAGIC, VERSION,
};
use crate::builder::{check_selection, RuleError};
use crate::error::{Location, TraceError};
use crate::model::{FactsError, ModelFacts, Phase, Trace};
use std::io::{BufReader, Read};
use std::path::Path;

/// What is wrong with a binary trace; [`TraceError::Binary`] says at which byte.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BinaryError {
    #[error("file ends early: {what} needs {needed} bytes, {remaining} remain (truncated or corrupt file)")]
    Truncated {
        what: &'static str,
        needed: u64,
        remaining: u64,
    },
    #[error("{what} is not valid UTF-8")]
    NotUtf8 { what: &'static str },
    #[error("{what}: size overflows")]
    SizeOverflow { what: &'static str },
    #[error("not a hypura binary trace (magic bytes are not HYPTRACE)")]
    Magic,
    #[error("unsupported binary trace version {version}; this build reads version {VERSION}")]
    Version { version: u32 },
    #[error("unknown flag bits {bits:#x}; written by a newer hypura?")]
    UnknownFlags { bits: u32 },
    #[error("model: {0}")]
    Model(FactsError),
    #[error("id width {width} does not match n_expert {n_expert}")]
    IdWidth { width: u32, n_expert: u32 },
    #[error("trace is empty: it has no tokens")]
    Empty,
    #[error("sequence {id:?} has no tokens")]
    EmptySequence { id: String },
    #[error("sequence token counts exceed the header's token count {header}")]
    TooManySequenceTokens { header: u64 },
    #[error("sequence token counts add up to {total}, the header says {header}")]
    SequenceTokens { total: u64, header: u64 },
    #[error("expert id count overflows")]
    IdCountOverflow,
    /// A selection breaks a rule (id range, an id twice).
    #[error("token {token} layer {layer}: {rule}")]
    Selection {
        token: usize,
        layer: u32,
        rule: RuleError,
    },
    #[error("gate weight {0} is not a finite number")]
    Weight(f32),
    #[error("phase byte {0} is neither 0 (prefill) nor 1 (decode)")]
    Phase(u8),
    #[error("{count} unexpected bytes after the last section")]
    TrailingBytes { count: u64 },
}

/// Whether the file starts with the binary magic (false for shorter files).
pub fn has_magic(path: &Path) -> Result<bool, TraceError> {
    let mut f = infile::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match f
            .read(&mut head[got..])
            .map_err(|e| TraceError::io(path, e))?
        {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(&head == MAGIC)
}

/// A reader that knows its byte offset and how many bytes remain.
struct Cursor<'p, R> {
    r: R,
    off: u64,
    len: u64,
    path: &'p Path,
}

impl<R: Read> Cursor<'_, R> {
    fn fail(&self, at: u64, problem: BinaryError) -> TraceError {
        TraceError::Binary {
            at: Location::byte(self.path, at),
            problem,
        }
    }

    fn remaining(&self) -> u64 {
        self.len - self.off
    }

    /// Fails unless `n` more bytes exist, naming `what` they were meant to hold.
    fn need(&self, n: u64, what: &'static str) -> Result<(), TraceError> {
        if n > self.remaining() {
            return Err(self.fail(
                self.off,
                BinaryError::Truncated {
                    what,
                    needed: n,
                    remaining: self.remaining(),
                },
            ));
        }
        Ok(())
    }

    fn bytes(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), TraceError> {
        self.need(buf.len() as u64, what)?;
        self.r
            .read_exact(buf)
            .map_err(|e| TraceError::io(self.path, e))?;
        self.off += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TraceError> {
        let mut b = [0u8; 4];
        self.bytes(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, TraceError> {
        let mut b = [0u8; 8];
        self.bytes(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self, what: &'static str) -> Result<String, TraceError> {
        let at = self.off;
        let n = self.u32(what)? as u64;
        self.need(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.bytes(&mut buf, what)?;
        String::from_utf8(buf).map_err(|_| self.fail(at, BinaryError::NotUtf8 { what }))
    }

    /// Reads `count` fixed-size items of `size` bytes in bounded chunks, decoding each.
    fn array<T>(
        &mut self,
        count: u64,
        size: u64,
        what: &'static str,
        mut decode: impl FnMut(&[u8]) -> T,
    ) -> Result<Vec<T>, TraceError> {
        let total = count
            .checked_mul(size)
            .ok_or_else(|| self.fail(self.off, BinaryError::SizeOverflow { what }))?;
        self.need(total, what)?;
        let mut out = Vec::with_capacity(count as usize);
        let mut buf = vec![0u8; (1 << 20) - (1 << 20) % size as usize];
        let mut left = total as usize;
        while left > 0 {
            let n = left.min(buf.len());
            self.bytes(&mut buf[..n], what)?;
            out.extend(buf[..n].chunks_exact(size as usize).map(&mut decode));
            left -= n;
        }
        Ok(out)
    }
}

/// Reads and validates a binary trace file.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let file = infile::open(path).map_err(|e| TraceError::io(path, e))?;
    let len = file.metadata().map_err(|e| TraceError::io(path, e))?.len();
    parse(BufReader::with_capacity(1 << 16, file), len, path)
}

/// Parses a binary trace from memory; `path` only names the source in errors.
pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Trace, TraceError> {
    parse(bytes, bytes.len() as u64, path)
}

/// Reads the `len` bytes of a binary trace from `r`.
fn parse(r: impl Read, len: u64, path: &Path) -> Result<Trace, TraceError> {
    let mut c = Cursor {
        r,
        off: 0,
        len,
        path,
    };

    let mut magic = [0u8; 8];
    c.bytes(&mut magic, "magic")?;
    if &magic != MAGIC {
        return Err(c.fail(0, BinaryError::Magic));
    }
    let version = c.u32("version")?;
    if version != VERSION {
        return Err(c.fail(8, BinaryError::Version { version }));
    }
    let flags = c.u32("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(c.fail(
            12,
            BinaryError::UnknownFlags {
                bits: flags & !KNOWN_FLAGS,
            },
        ));
    }
    let n_expert = c.u32("n_expert")?;
    let top_k = c.u32("top_k")?;
    let n_shared_expert = c.u32("n_shared_expert")?;
    let n_layers = c.u32("n_layers")? as u64;
    let width_at = c.off;
    let width = c.u32("id width")?;
    let n_sequences = c.u64("sequence count")?;
    let n_tokens = c.u64("token count")?;
    let architecture = c.string("architecture")?;
    let layers_at = c.off;
    let moe_layers = c.array(n_layers, 4, "MoE layer ids", |b| {
        u32::from_le_bytes(b.try_into().unwrap())
    })?;
    let model = ModelFacts {
        architecture,
        moe_layers,
        n_expert,
        top_k,
        n_shared_expert,
    };
    model
        .check()
        .map_err(|e| c.fail(layers_at, BinaryError::Model(e)))?;
    if width != id_width(n_expert) {
        return Err(c.fail(width_at, BinaryError::IdWidth { width, n_expert }));
    }
    if n_sequences == 0 || n_tokens == 0 {
        return Err(c.fail(width_at + 4, BinaryError::Empty));
    }

    // Each sequence entry takes at least 12 bytes, which bounds the count by the file size.
    c.need(n_sequences.saturating_mul(12), "sequence table")?;
    let mut seq_ids = Vec::with_capacity(n_sequences as usize);
    let mut seq_starts = Vec::with_capacity(n_sequences as usize + 1);
    seq_starts.push(0usize);
    let mut total = 0u64;
    for _ in 0..n_sequences {
        let at = c.off;
        let tokens = c.u64("sequence token count")?;
        let id = c.string("sequence id")?;
        if tokens == 0 {
            return Err(c.fail(at, BinaryError::EmptySequence { id }));
        }
        total = total.saturating_add(tokens);
        if total > n_tokens {
            return Err(c.fail(at, BinaryError::TooManySequenceTokens { header: n_tokens }));
        }
        seq_ids.push(id);
        seq_starts.push(total as usize);
    }
    if total != n_tokens {
        return Err(c.fail(
            c.off,
            BinaryError::SequenceTokens {
                total,
                header: n_tokens,
            },
        ));
    }

    let k = top_k as u64;
    let n_ids = n_tokens
        .checked_mul(n_layers * k)
        .ok_or_else(|| c.fail(c.off, BinaryError::IdCountOverflow))?;
    let ids_at = c.off;
    let experts: Vec<u16> = if width == 1 {
        c.array(n_ids, 1, "expert ids", |b| u16::from(b[0]))?
    } else {
        c.array(n_ids, 2, "expert ids", |b| u16::from_le_bytes([b[0], b[1]]))?
    };
    validate_ids(&experts, &model)
        .map_err(|(sel, problem)| c.fail(ids_at + sel as u64 * k * u64::from(width), problem))?;

    let weights = if flags & FLAG_WEIGHTS != 0 {
        let at = c.off;
        let w = c.array(n_ids, 4, "gate weights", |b| {
            f32::from_le_bytes(b.try_into().unwrap())
        })?;
        if let Some(i) = w.iter().position(|x| !x.is_finite()) {
            return Err(c.fail(at + 4 * i as u64, BinaryError::Weight(w[i])));
        }
        Some(w)
    } else {
        None
    };
    let phases = if flags & FLAG_PHASES != 0 {
        let at = c.off;
        let raw = c.array(n_tokens, 1, "phases", |b| b[0])?;
        if let Some(i) = raw.iter().position(|&p| p > 1) {
            return Err(c.fail(at + i as u64, BinaryError::Phase(raw[i])));
        }
        Some(
            raw.into_iter()
                .map(|p| {
                    if p == 0 {
                        Phase::Prefill
                    } else {
                        Phase::Decode
                    }
                })
                .collect(),
        )
    } else {
        None
    };
    let timestamps_ns = if flags & FLAG_TIMESTAMPS != 0 {
        Some(c.array(n_tokens, 8, "timestamps", |b| {
            u64::from_le_bytes(b.try_into().unwrap())
        })?)
    } else {
        None
    };
    let texts = if flags & FLAG_TEXTS != 0 {
        // Each text takes at least its 4-byte length, which bounds the count.
        c.need(n_tokens.saturating_mul(4), "token texts")?;
        let mut texts = Vec::with_capacity(n_tokens as usize);
        for _ in 0..n_tokens {
            texts.push(c.string("token text")?);
        }
        Some(texts)
    } else {
        None
    };
    if c.remaining() != 0 {
        return Err(c.fail(
            c.off,
            BinaryError::TrailingBytes {
                count: c.remaining(),
            },
        ));
    }
    Ok(Trace {
        model,
        seq_ids,
        seq_starts,
        experts,
        weights,
        phases,
        timestamps_ns,
        texts,
    })
}

/// Checks every selection; the error comes with the index of the selection that breaks a rule.
fn validate_ids(ids: &[u16], m: &ModelFacts) -> Result<(), (usize, BinaryError)> {
    let k = m.top_k as usize;
    let n_layers = m.n_layers();
    let at = |sel: usize, rule: RuleError| {
        let problem = BinaryError::Selection {
            token: sel / n_layers,
            layer: m.moe_layers[sel % n_layers],
            rule,
        };
        (sel, problem)
    };
    if m.n_expert <= 64 {
        // Fast path: a 64-bit mask finds out-of-range and repeated ids in one pass.
        for (sel, chunk) in ids.chunks_exact(k).enumerate() {
            let mut mask = 0u64;
            for &id in chunk {
                let bit = 1u64.checked_shl(u32::from(id)).unwrap_or(0);
                if u32::from(id) >= m.n_expert || mask & bit != 0 {
                    return Err(at(sel, check_selection(chunk, m.n_expert).unwrap_err()));
                }
                mask |= bit;
            }
        }
        return Ok(());
    }
    for (sel, chunk) in ids.chunks_exact(k).enumerate() {
        check_selection(chunk, m.n_expert).map_err(|e| at(sel, e))?;
    }
    Ok(())
}
