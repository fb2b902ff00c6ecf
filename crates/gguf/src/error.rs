//! Errors from reading GGUF headers: each names the file, the byte offset and what is wrong.

use crate::ggml_type::{GgmlType, TypeIdError};
use crate::value::ValueType;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// An I/O error, shareable so that [`GgufError`] stays `Clone`; two are equal when their
/// [`std::io::ErrorKind`] and message are.
#[derive(Debug, Clone)]
pub struct IoError(pub Arc<std::io::Error>);

impl IoError {
    pub fn kind(&self) -> std::io::ErrorKind {
        self.0.kind()
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> IoError {
        IoError(Arc::new(e))
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &IoError) -> bool {
        self.kind() == other.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// What is wrong with `general.alignment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AlignmentError {
    #[error("is {0}: it must be a power of two")]
    NotPowerOfTwo(u32),
    #[error("must be a u32, found {0:?}")]
    NotU32(ValueType),
}

/// What is wrong with a tensor's dimensions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimsError {
    /// No dimensions, or more than [`super::MAX_DIMS`].
    #[error("{0} dimensions (1 to {max} allowed)", max = super::MAX_DIMS)]
    Count(u32),
    /// A dimension or the element count does not fit ggml's int64.
    #[error("dimensions {0:?} overflow ggml's 64-bit element count")]
    ElementsOverflow(Vec<u64>),
    /// The row (first dimension) is not a whole number of the type's blocks.
    #[error("row length {row} is not a multiple of {ty}'s block size {block}")]
    PartialBlock { ty: GgmlType, row: u64, block: u64 },
    /// The data size does not fit in 64 bits.
    #[error("the {ty} data size of dimensions {dims:?} overflows 64 bits")]
    BytesOverflow { ty: GgmlType, dims: Vec<u64> },
}

/// Why the parts of a split model do not form one model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// `split.count` is not a non-negative integer.
    #[error("split.count must be a non-negative integer, found {0:?}")]
    BadCount(ValueType),
    /// `split.count` is above 1 but the file name has no `-0000K-of-0000N` part.
    #[error("split.count is {count}, but the file name is not of the form NAME-00001-of-{count:05}.gguf")]
    NameNotSplit { count: u64 },
    /// The file name's part count differs from `split.count`.
    #[error("split.count is {count}, but the file name says {named} parts")]
    PartCountMismatch { count: u64, named: u64 },
    /// Part `part` (1-based) cannot be opened because it does not exist.
    #[error("part {part} of {count} of the split model is missing ({io}); put every part in one directory")]
    PartMissing { part: u64, count: u64, io: IoError },
    /// Part `part` (1-based) has a `split.no` other than `part - 1` (`None`: missing).
    #[error("split.no is {}, but part {part} of {count} must have split.no {}", or_missing(.found), .part - 1)]
    BadSplitNo {
        found: Option<u64>,
        part: u64,
        count: u64,
    },
    /// A part's `split.count` differs from the first-opened part's.
    #[error("split.count is {}, but {} says {count}", or_missing(.found), .given.display())]
    CountDisagrees {
        found: Option<u64>,
        count: u64,
        given: PathBuf,
    },
    /// `split.tensors.count` differs from the tensors the parts hold.
    #[error("split.tensors.count is {declared}, but the {count} parts hold {found} tensors")]
    TensorCount {
        declared: u64,
        count: u64,
        found: u64,
    },
}

fn or_missing(v: &Option<u64>) -> String {
    v.map_or("missing".to_string(), |n| n.to_string())
}

/// What is wrong with a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufErrorKind {
    Io(IoError),
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
    BadAlignment(AlignmentError),
    /// A bool value (or array element) whose byte is neither 0 nor 1.
    BadBool {
        key: String,
        byte: u8,
    },
    DuplicateKey {
        key: String,
    },
    DuplicateTensor(String),
    UnknownTensorType {
        tensor: String,
        source: TypeIdError,
    },
    BadDims {
        tensor: String,
        problem: DimsError,
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
    Split(SplitError),
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
            BadBool { key, byte } => {
                write!(f, "metadata key {key:?}: bool byte is {byte}, not 0 or 1")
            }
            DuplicateKey { key } => write!(f, "metadata key {key:?} appears twice"),
            DuplicateTensor(n) => write!(f, "tensor {n:?} appears twice"),
            UnknownTensorType { tensor, source } => write!(f, "tensor {tensor:?}: {source}"),
            BadDims { tensor, problem } => write!(f, "tensor {tensor:?}: {problem}"),
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

impl std::error::Error for GgufError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use GgufErrorKind::*;
        match &self.kind {
            Io(e) => Some(e),
            BadAlignment(e) => Some(e),
            UnknownTensorType { source, .. } => Some(source),
            BadDims { problem, .. } => Some(problem),
            Split(e) => Some(e),
            _ => None,
        }
    }
}
