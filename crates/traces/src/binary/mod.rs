//! The binary form (version 1): a small little-endian header, then flat arrays (see FORMAT.md).

mod read;
mod write;

pub use read::{from_slice, has_magic, read, BinaryError};
pub use write::write_to;

/// First eight bytes of every binary trace.
pub const MAGIC: &[u8; 8] = b"HYPTRACE";
/// The binary version this build reads and writes.
pub const VERSION: u32 = 1;

/// Bits of the header's `flags` field: which optional per-token arrays follow the ids.
pub(crate) const FLAG_WEIGHTS: u32 = 1;
pub(crate) const FLAG_PHASES: u32 = 2;
pub(crate) const FLAG_TIMESTAMPS: u32 = 4;
pub(crate) const FLAG_TEXTS: u32 = 8;
pub(crate) const KNOWN_FLAGS: u32 = FLAG_WEIGHTS | FLAG_PHASES | FLAG_TIMESTAMPS | FLAG_TEXTS;

/// Bytes per stored expert id: one when every id fits a byte.
pub(crate) fn id_width(n_expert: u32) -> u32 {
    if n_expert <= 256 {
        1
    } else {
        2
    }
}
