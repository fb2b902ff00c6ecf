//! The event-driven core: a deterministic priority queue of timestamped events, and the storage
//! device (read curve, queue depth, base latency, shared bandwidth) the decode engine issues its
//! reads to.

mod queue;
mod storage;

pub use queue::{EventQueue, Nanos};
pub use storage::StorageDevice;
