//! hypura's simulator: expert-cache replay over routing traces and the event-driven timeline core.
//!
//! [`cache`] replays a [`traces::Trace`] against an expert cache (LRU, LFU, ARC, static pinning +
//! LRU, Belady-OPT; one cache for all layers or one per layer) and counts hits, misses and bytes
//! read, exactly and fast. [`events`] is the deterministic priority queue of timestamped events
//! the token-by-token simulation is built on, with a storage channel model that takes compute
//! times and bandwidth from the caller. [`decode`] simulates decoding a trace on a solver plan,
//! pricing every (token, layer) with the solver's cost model and the cache's hits. [`metrics`] is
//! the per-(token, layer) record schema that `hypura sim` and `hypura run` both write.

pub mod cache;
pub mod decode;
mod error;
pub mod events;
pub mod metrics;

pub use error::SimError;
