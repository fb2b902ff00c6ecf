//! GGUF files: header reader (v2/v3), split-file sets, metadata values, and the writer used by `hypura synth`.

mod error;
mod read;
mod split;
mod value;
mod write;

pub use error::{GgufError, GgufErrorKind};
pub use read::{GgufHeader, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS, MAX_HEADER_BYTES};
pub use split::{open_model, split_paths, GgufModel};
pub use value::{Array, Metadata, Value, ValueType};
pub use write::{encode_header, write_gguf, GgufLayout, GgufWriteError, TensorSpec};
