//! One module per subcommand: argument struct + `run`.

use anyhow::Context;
use std::io::Read;
use std::path::Path;

/// `value` (a JSON object) with the schema id of what it is and the hypura version that wrote
/// it, as every `--json` output carries (`hypura run` writes its own typed report).
pub fn stamped(schema: &str, mut value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        map.insert("schema".into(), schema.into());
        map.insert("hypura_version".into(), env!("CARGO_PKG_VERSION").into());
    }
    value
}

/// Refuses, before any work, to write over a file the user has unless `--force` was given: the
/// one message every command gives. (Writers check again when they write, through `outfile`.)
pub fn refuse_existing(path: &Path, force: bool, flag: &str) -> anyhow::Result<()> {
    match outfile::check(path, force) {
        Ok(()) => Ok(()),
        Err(outfile::OutfileError::Exists(_)) => Err(exists(path, "overwrite it", flag)),
        Err(e) => Err(e.into()),
    }
}

/// The same refusal for an output directory a command creates and fills: one that exists is
/// written into only with `--force`.
#[cfg(feature = "runtime")] // only `validate` writes a directory
pub fn refuse_existing_dir(dir: &Path, force: bool, flag: &str) -> anyhow::Result<()> {
    if dir.exists() && !force {
        return Err(exists(dir, "write into it", flag));
    }
    Ok(())
}

fn exists(path: &Path, with_force: &str, flag: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} already exists; pass --force to {with_force}, or choose another {flag}",
        path.display()
    )
}

/// Reads a plan file; one this hypura cannot read (another version wrote it) gets what to do.
pub fn load_plan(path: &Path) -> anyhow::Result<plan::Plan> {
    plan::Plan::load(path).map_err(|e| match e {
        plan::PlanError::Version { .. } => anyhow::anyhow!("{e}; re-run `hypura solve`"),
        e => e.into(),
    })
}

/// FNV-1a 64 of a file's bytes, hex: how plans and sweeps name the trace they used.
pub fn file_hash(path: &Path) -> anyhow::Result<String> {
    let mut f = infile::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = plan::Fnv1a::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.hex())
}

#[cfg(feature = "runtime")]
pub mod bench;
#[cfg(feature = "runtime")]
pub mod chat;
pub mod inspect;
pub mod list;
pub mod plot;
pub mod profile;
pub mod pull;
#[cfg(feature = "runtime")]
pub mod run;
#[cfg(feature = "runtime")]
pub mod serve;
pub mod shell;
pub mod sim;
pub mod solve;
pub mod sweep;
pub mod synth;
pub mod trace;
pub mod tune;
#[cfg(feature = "runtime")]
pub mod validate;
