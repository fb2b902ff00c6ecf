//! Errors from reading GGUF headers: each names the file, the byte offset and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// What is wrong with a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufErrorKind {
    Io(String),
    BadMagic([u8; 4]),
    UnsupportedVersion(u32),
    BigEndian,
    /// The file ends inside the header while reading `what`.
    Truncated {
        what: String,
    },
    /// A count or length cannot fit in the bytes left in the file.
    TooLarge {
        what: String,
        value: u64,
        limit: u64,
    },
    /// A count or length would take the header past [`super::MAX_HEADER_BYTES`]; `limit` is the
    /// most that still fits under it.
    HeaderTooLarge {
        what: String,
        value: u64,
        limit: u64,
    },
    BadUtf8 {
        what: String,
    },
    UnknownValueType {
        key: String,
        id: u32,
    },
    NestingTooDeep {
        key: String,
    },
    BadAlignment(String),
    BadMetadata(String),
    DuplicateTensor(String),
    UnknownTensorType {
        tensor: String,
        detail: String,
    },
    BadDims {
        tensor: String,
        detail: String,
    },
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    OutsideFile {
        tensor: String,
        end: u64,
        file_bytes: u64,
    },
    Overlap {
        first: String,
        second: String,
    },
    Split(String),
}

/// An error reading a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufError {
    pub path: PathBuf,
    /// Byte offset in the file where the problem was found, when it is a place in the header.
    pub offset: Option<u64>,
    pub kind: GgufErrorKind,
}

impl fmt::Display for GgufErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufErrorKind::*;
        match self {
            Io(e) => write!(f, "cannot read: {e}"),
            BadMagic(m) => write!(
                f,
                "not a GGUF file: magic is {:?}, expected \"GGUF\"",
                String::from_utf8_lossy(m)
            ),
            UnsupportedVersion(v) => write!(f, "GGUF version {v} is not supported (2 and 3 are)"),
            BigEndian => write!(
                f,
                "big-endian GGUF files are not supported; convert it on a little-endian machine"
            ),
            Truncated { what } => write!(f, "file is truncated: it ends while reading {what}"),
            TooLarge { what, value, limit } => {
                write!(
                    f,
                    "{what} is {value}, more than the {limit} the rest of the file can hold"
                )
            }
            HeaderTooLarge { what, value, limit } => write!(
                f,
                "{what} is {value}, more than the {limit} that fit in the header's {} MiB limit \
                 (real GGUF headers are a few MiB); the file is probably corrupt",
                super::MAX_HEADER_BYTES >> 20
            ),
            BadUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            UnknownValueType { key, id } => {
                write!(f, "metadata key {key:?} has unknown value type {id}")
            }
            NestingTooDeep { key } => {
                write!(
                    f,
                    "metadata key {key:?} nests arrays deeper than {} levels",
                    super::read::MAX_NESTING
                )
            }
            BadAlignment(d) => write!(f, "general.alignment {d}"),
            BadMetadata(d) => write!(f, "{d}"),
            DuplicateTensor(n) => write!(f, "tensor {n:?} appears twice"),
            UnknownTensorType { tensor, detail } => write!(f, "tensor {tensor:?}: {detail}"),
            BadDims { tensor, detail } => write!(f, "tensor {tensor:?}: {detail}"),
            Misaligned {
                tensor,
                offset,
                alignment,
            } => {
                write!(f, "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}")
            }
            OutsideFile {
                tensor,
                end,
                file_bytes,
            } => {
                write!(f, "tensor {tensor:?}: data ends at byte {end}, past the end of the file ({file_bytes} bytes)")
            }
            Overlap { first, second } => write!(f, "tensors {first:?} and {second:?} overlap"),
            Split(d) => write!(f, "{d}"),
        }
    }
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(o) = self.offset {
            write!(f, " (byte {o})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for GgufError {}
