//! hypura's shared vocabulary: what a model is (the GGUF [`inventory`], the model [`catalog`]) and
//! what a machine is ([`hw`] profiles). Placement (the ILP and the Plan) builds on these.
//!
//! This crate reads only headers and small files; it never loads tensor data or runs inference —
//! that is the runtime's job.

pub mod arch;
pub mod catalog;
pub mod ggml_type;
pub mod gguf;
pub mod hw;
pub mod inventory;
pub mod place;
pub mod role;
pub mod summary;
pub mod synth;
pub mod testdata;
pub mod units;

pub use arch::{ArchInfo, PerLayer};
pub use ggml_type::GgmlType;
pub use inventory::{Inventory, Source, TensorEntry};
pub use role::{Group, Role};

/// Loads a model by what the user typed: a GGUF path (any part of a split set), or a catalog
/// name such as `mixtral-8x7b:q5_k_m` when no such file exists.
pub fn load_model(spec: &str) -> Result<Inventory, ModelError> {
    let path = std::path::Path::new(spec);
    if path.exists() || spec.ends_with(".gguf") {
        return Inventory::from_gguf(path).map_err(ModelError::Gguf);
    }
    match catalog::lookup(spec) {
        Ok(inv) => Ok(inv),
        // A name with a path separator was meant as a file.
        Err(_) if spec.contains('/') => Err(ModelError::NotFound(spec.to_string())),
        Err(e) => Err(ModelError::Catalog(e)),
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("no such file: {0}")]
    NotFound(String),
}
