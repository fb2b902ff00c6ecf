//! Which hardware profile a command uses: `--hw` names a profile file or a shipped profile
//! (`m1max`, `h200`, ...); without it, this machine's profile, which `hypura profile` measures
//! once and keeps in the user's cache directory (`$XDG_CACHE_HOME/hypura/`, else
//! `~/.cache/hypura/`), one file per host name.

use anyhow::{bail, Context, Result};
use hw::HwProfile;
use std::path::{Path, PathBuf};

/// The profile `--hw` names, or this machine's cached one when `hw` is `None`.
pub fn resolve(hw: Option<&str>) -> Result<HwProfile> {
    match hw {
        Some(arg) => named(arg),
        None => match cached()? {
            Some(p) => Ok(p),
            None => bail!(
                "no --hw given and this machine has no profile yet: run `hypura profile` (it is \
                 kept in {}), or pass --hw with a profile file or a shipped profile: {}",
                cached_path()?.display(),
                hw::shipped::names()
            ),
        },
    }
}

/// `--hw ARG`: an existing file is read; otherwise a shipped profile of that name.
pub fn named(arg: &str) -> Result<HwProfile> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(HwProfile::load(path)?);
    }
    if let Some(s) = hw::shipped::find(arg) {
        return Ok(s.load()?);
    }
    if arg.contains(std::path::MAIN_SEPARATOR) || arg.ends_with(".toml") {
        // Meant as a file: say why it cannot be read.
        return HwProfile::load(path).map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "--hw {arg} (shipped profiles by name: {})",
                hw::shipped::names()
            ))
        });
    }
    bail!(
        "--hw {arg}: no such file, and no shipped profile has that name (shipped: {})",
        hw::shipped::names()
    )
}

/// This machine's profile, when `hypura profile` has measured it.
pub fn cached() -> Result<Option<HwProfile>> {
    let path = cached_path()?;
    if !path.is_file() {
        return Ok(None);
    }
    let p = HwProfile::load(&path).with_context(|| {
        format!(
            "this machine's profile is unreadable; run `hypura profile` again (it replaces {})",
            path.display()
        )
    })?;
    Ok(Some(p))
}

/// Where this machine's profile is kept: `<cache>/hypura/profile-HOST.toml`.
pub fn cached_path() -> Result<PathBuf> {
    let host = hostname().unwrap_or_else(|| "this-machine".to_string());
    Ok(cache_dir()?.join(format!("profile-{host}.toml")))
}

/// hypura's directory in the user's cache: `$XDG_CACHE_HOME/hypura`, else `~/.cache/hypura`.
pub fn cache_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .context("neither XDG_CACHE_HOME nor HOME is set: there is no cache directory for this machine's profile; pass --hw")?;
    Ok(base.join("hypura"))
}

/// Writes `toml` as this machine's profile (replacing an earlier measurement: the cache is
/// hypura's, not the user's), creating the cache directory; returns the path.
pub fn store(toml: &str) -> Result<PathBuf> {
    let path = cached_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    outfile::write_bytes(&path, true, toml.as_bytes())?;
    Ok(path)
}

/// The machine's host name, when it is a plain file-name-safe one.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname NUL-terminates within it
    // on success (truncation is refused below by the NUL search).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buf[..end]).ok()?;
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    safe.then(|| name.to_string())
}
