//! hypura's simulator: the event-driven timeline of a plan decoding (and prefilling) a routing
//! trace on a modelled machine.
//!
//! [`events`] is the deterministic priority queue of timestamped events and the storage device
//! model (the profile's read curve, queue depth, base latency). [`decode`] runs the event-driven
//! decode of a trace on a plan: compute priced by `place`'s cost model, experts served by a
//! `policy` cache, misses and prefetches read on the storage device, one `metrics` record per
//! (token, layer). [`prefill`] runs a request's prompt as batches of tokens before that decode
//! (time to first token), leaving the cache state decode starts from.
//!
//! It does not choose placements (`place`), implement cache policies (`policy`) or run models
//! (`runtime`); it prices what they decide.

pub mod decode;
pub mod default_trace;
mod dense;
mod error;
pub mod events;
pub mod planned;
pub mod prefill;
pub mod report;

pub use error::SimError;
pub use planned::Planned;
pub use report::{SimReport, SIM_SCHEMA};
