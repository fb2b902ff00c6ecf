//! Expert-cache policies and expert prefetch predictors: the decisions the simulator replays and
//! the runtime makes, from one copy of the code, so a prediction and a measurement differ only in
//! timing, never in which experts hit.
//!
//! [`cache`] replays a routing trace against LRU, LFU, LFRU, ARC, pinned + LRU or Belady-OPT
//! (one cache over all layers or one per layer) and counts hits, misses and bytes; its
//! [`cache::OnlineCache`] takes one access at a time, as the runtime does. [`prefetch`] chooses the
//! next MoE layer's experts to read ahead (co-activation learned online, or the oracle).
//! [`dense_pool`] is the pool whole streamed tensors are read into: what it evicts and what it
//! reads ahead, in the cyclic order of [`use_order`].
//!
//! It knows nothing of time, storage or llama.cpp: the simulator and the runtime supply those.

pub mod cache;
pub mod dense_pool;
mod error;
pub mod prefetch;
pub mod use_order;

pub use error::PolicyError;
