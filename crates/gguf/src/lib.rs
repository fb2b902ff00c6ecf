//! GGUF files: the header reader (v2/v3), split-file sets, metadata values, the ggml tensor
//! types, and the writer used by `hypura synth`.
//!
//! It knows the file format only: what a tensor is for, and what a model's architecture means,
//! are the `model` crate's business. It reads headers, never tensor data.

mod error;
pub mod ggml_type;
mod read;
mod split;
mod value;
mod write;

pub use error::{AlignmentError, DimsError, GgufError, GgufErrorKind, IoError, SplitError};
pub use read::{GgufHeader, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS, MAX_HEADER_BYTES};
pub use split::{open_model, split_paths, GgufModel};
pub use value::{Array, Metadata, Value, ValueType};
pub use write::{encode_header, write_gguf, GgufLayout, GgufWriteError, TensorSpec};

pub use ggml_type::GgmlType;
