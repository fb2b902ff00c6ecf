//! One module per subcommand: argument struct + `run`.

pub mod inspect;
pub mod profile;
#[cfg(feature = "runtime")]
pub mod run;
pub mod sim;
pub mod solve;
pub mod synth;
pub mod trace;
