//! The event-driven core: a deterministic priority queue of timestamped events, and a timeline of
//! (token, layer) steps driven by it with compute times and storage bandwidth from the caller.

mod queue;
mod timeline;

pub use queue::{EventQueue, Nanos};
pub use timeline::{simulate, Step, StepRecord, Storage, Timeline};
