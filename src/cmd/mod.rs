//! One module per subcommand: argument struct + `run`.

use std::path::Path;

/// Refuses, before any work, to write over a file the user has unless `--force` was given: the
/// one message every command gives. (Writers check again when they write, through `outfile`.)
pub fn refuse_existing(path: &Path, force: bool, flag: &str) -> anyhow::Result<()> {
    match outfile::check(path, force) {
        Ok(()) => Ok(()),
        Err(outfile::OutfileError::Exists(_)) => anyhow::bail!(
            "{} already exists; pass --force to overwrite it, or choose another {flag}",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}

pub mod inspect;
pub mod profile;
#[cfg(feature = "runtime")]
pub mod run;
pub mod sim;
pub mod solve;
pub mod synth;
pub mod trace;
