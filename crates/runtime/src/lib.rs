//! hypura's real runtime: loads a GGUF through llama.cpp (hypura-sys) placing each tensor on the
//! tier a solved [`plan::Plan`] chose, streams NVMe-tier weights from disk inside
//! the eval callback, and generates tokens with llama.cpp's samplers. Expert caching and prefetch
//! decisions come from `policy` and records go out in `metrics`' schema, the same code and schema
//! as the simulator's; the runtime depends on neither the simulator nor the solver.
//!
//! Everything is single-threaded from the caller's view: llama.cpp's objects stay on one thread.

pub mod backend;
pub mod chat;
pub mod context;
pub mod direct_io;
pub mod error;
pub mod experts;
pub mod io_pool;
pub mod mem;
pub mod model;
pub mod moe;
pub mod page_cache;
pub mod placement;
pub mod planned;
pub mod recycle;
pub mod report;
pub mod routing;
pub mod stream;

pub use self::model::{LoadMode, Model, ModelParams};
pub use context::{Context, ContextParams, FlashAttn, Generation, Sampling};
pub use error::{Error, Result, TokenizeError};
pub use planned::{MoeOptions, PlannedModel};
pub use recycle::StreamedMemory;
pub use routing::ReplayScope;
pub use stream::IoOptions;
