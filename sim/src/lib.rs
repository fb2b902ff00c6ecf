//! hypura's simulator: expert-cache replay over routing traces and the event-driven timeline core.
//!
//! [`cache`] replays a [`traces::Trace`] against an expert cache (LRU, LFU, ARC, static pinning +
//! LRU, Belady-OPT; one cache for all layers or one per layer) and counts hits, misses and bytes
//! read, exactly and fast. [`events`] is the deterministic priority queue of timestamped events
//! and the storage device model (the profile's read curve, queue depth, base latency).
//! [`decode`] runs the event-driven decode of a trace on a solver plan: compute priced by the
//! solver's cost model, misses and prefetches read on the storage device, one record per (token,
//! layer). [`prefill`] runs a request's prompt as batches of tokens before that decode (time to
//! first token), leaving the cache state decode starts from. [`metrics`] is
//! the per-(token, layer) record schema that `hypura sim` and `hypura run` both write.

pub mod cache;
pub mod decode;
mod error;
pub mod events;
pub mod metrics;
pub mod prefill;

pub use error::SimError;
