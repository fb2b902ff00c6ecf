//! Hardware profiles: what a machine's GPU, host link, RAM, storage and CPU can hold and move,
//! as a versioned TOML file ([`HwProfile`]), and the measurements behind `hypura profile`
//! ([`measure`]), and what the measurements and the runtime share so that what is measured is
//! what runs: [`direct`] reads and [`pages`], the recycled memory they are copied into. It describes machines; what runs on them is decided by `place`.
//!
//! # Units (everywhere in the schema)
//!
//! - sizes: bytes (`*_bytes`, integers);
//! - bandwidth: GB/s with G = 10^9, i.e. 1 GB/s = 1e9 bytes per second (`*_gbps`);
//! - time: seconds (`*_s`);
//! - compute: TFLOP/s (10^12, `*_tflops`) for GPUs, GFLOP/s (10^9, `*_gflops`) for CPUs; one
//!   fused multiply-add counts as two operations.
//!
//! # TOML layout (version 1)
//!
//! ```toml
//! version = 1                      # required; other versions are refused
//! name = "Apple M1 Max, 32 GB"     # free-form description
//!
//! [gpu]                            # optional: absent on a CPU-only machine
//! name = "Apple M1 Max (32-core GPU)"
//! memory_bytes = 34359738368       # physical (unified: the shared pool)
//! working_set_bytes = 22906492245  # what one process may keep resident; <= memory_bytes
//! bandwidth_gbps = 400.0
//! fp16_tflops = 10.4               # dense matrix rate (tensor cores where present)
//! fp32_tflops = 10.4
//! unified_memory = true
//!
//! [host_link]                      # required for a discrete GPU, absent for unified/CPU-only
//! h2d_gbps = 55.0                  # pinned host -> device
//! d2h_gbps = 55.0                  # device -> pinned host
//!
//! [ram]
//! bytes = 34359738368
//! bandwidth_gbps = 200.0           # what the CPU can stream
//! os_reserve_bytes = 4294967296    # never planned for model data; < bytes
//!
//! [storage]
//! seq_read_gbps = 5.1
//! read_4k_qd1_latency_s = 0.00006
//! [[storage.read_curve]]           # random reads; a full grid of block sizes x queue depths
//! block_bytes = 4096
//! queue_depth = 1
//! gbps = 0.068
//!
//! [cpu]
//! cores = 10
//! fp32_gflops = 900.0
//! ```
//!
//! Every table denies unknown keys. Errors name the file, the line and column where known, and
//! the key's full path (`storage.read_curve[3].queue_depth`). `profiles/README.md` in the
//! repository documents the same schema for people writing profiles by hand.

mod annotate;
mod curve;
pub mod direct;
mod error;
pub mod measure;
pub mod pages;
mod schema;
pub mod shipped;
mod validate;

pub use annotate::Notes;
pub use error::HwError;
pub use schema::{
    BudgetError, CpuProfile, GpuProfile, HostLink, HwProfile, RamProfile, ReadPoint,
    StorageProfile, PROFILE_VERSION,
};
