//! hypura's experiments: configurations of the toolkit run as a grid, compared, tuned and
//! charted.
//!
//! Today that is `validate`: every point of a grid (memory budgets × cache policies × expert
//! prefetch × queue depth) is solved, simulated and run for real on the same plan, profile and
//! routing, and the simulator's prediction is compared with the measurement row by row
//! ([`measures`] computes both sides' numbers from their (token, layer) records the same way).
//! The measured speeds come from runs without records ([`validate::RunKind`]): a record per
//! layer stops the graph at every layer, which a GPU pays for more than for the layer itself.
//! Results are a typed report ([`report::ValidateReport`], JSON), Parquet tables ([`table`])
//! and an SVG chart ([`chart`]).
//!
//! [`sweep`] simulates a grid of configurations over one trace (one plan per memory budget,
//! one cache replay per policy and cache size, all cores) into Parquet rows, resumable and
//! shardable; [`tune`] runs such a grid of what `hypura run` can use and picks the best;
//! [`plot`] charts sweep results.
//!
//! [`bench`] holds `hypura bench`'s samples, statistics, balloon and report (hypura's plan
//! against plain llama.cpp under the same memory; the CLI runs the sides).
//!
//! [`calibrate`] times synthetic decodes on this machine for the profile's decode terms
//! (achieved bandwidth, per-tensor overhead), so that predictions rest on measured rates.
//!
//! Not here: the simulator, the runtime and the solver themselves (their crates); parsing
//! command lines and printing (the CLI). Without the `runtime` feature the measured side is
//! left out (the grid, the measures and the report still build).

pub mod bench;
#[cfg(feature = "runtime")]
pub mod calibrate;
pub mod chart;
pub mod grid;
pub mod measures;
pub mod plot;
pub mod report;
pub mod sweep;
pub mod table;
pub mod tune;
pub mod validate;

pub use grid::Point;
pub use measures::{Measures, Split};
pub use report::{PointReport, ValidateReport};
pub use validate::{Setup, ValidateError};
