//! hypura's shared vocabulary: what a model is (the GGUF [`inventory`], the model [`catalog`]) and
//! what a machine is ([`hw`] profiles). Placement (the ILP and the Plan) builds on these.
//!
//! This crate reads only headers and small files; it never loads tensor data or runs inference —
//! that is the runtime's job.

pub mod arch;
pub mod ggml_type;
pub mod gguf;
pub mod inventory;
pub mod role;

pub use arch::{ArchInfo, PerLayer};
pub use ggml_type::GgmlType;
pub use inventory::{Inventory, Source, TensorEntry};
pub use role::{Group, Role};
