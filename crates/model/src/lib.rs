//! What a model is, in hypura's words: the architecture facts a GGUF declares ([`arch`]), what
//! each tensor is for ([`role`]), the [`inventory`] of every tensor with its size and place in the
//! file, per-group and per-layer totals ([`summary`]), and the [`catalog`] of published models that
//! need no download. [`load_model`] takes what the user typed: a GGUF path or a catalog name.
//!
//! It reads headers only, never tensor data; it does not place, simulate or run anything. The
//! GGUF format itself lives in the `gguf` crate.

pub mod arch;
pub mod catalog;
pub mod error;
pub mod inventory;
pub mod llama_limits;
pub mod role;
pub mod summary;
pub mod units;

pub use arch::{ArchInfo, PerLayer};
pub use error::{InventoryError, MetadataError, RecipeError, SpecError};
pub use gguf::GgmlType;
pub use inventory::{Inventory, Source, TensorEntry};
pub use role::{Group, Role};

/// Loads a model by what the user typed: a GGUF path (any part of a split set), or a catalog
/// name such as `mixtral-8x7b:q5_k_m` when no such file exists.
pub fn load_model(spec: &str) -> Result<Inventory, ModelError> {
    let path = std::path::Path::new(spec);
    if path.exists() || spec.ends_with(".gguf") {
        return Inventory::from_gguf(path).map_err(ModelError::Inventory);
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
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("no such file: {0}")]
    NotFound(String),
}
