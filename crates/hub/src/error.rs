use std::io;
use std::path::PathBuf;

/// Why a hub file could not be found or downloaded. Messages name the repository file, the URL
/// or the cache path concerned.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0:?} is not a hub repository (org/name: letters, digits, '-', '_', '.')")]
    BadRepo(String),
    #[error("{0:?} is not a file path inside a repository")]
    BadPath(String),
    #[error("{0:?} is not a revision (branch, tag or commit)")]
    BadRevision(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        /// What the status means here, starting with "; " (empty when nothing useful is known).
        hint: String,
    },
    #[error("{url}: {what}")]
    Protocol { url: String, what: String },
    #[error(
        "download of {file} stopped at {got} of {size} bytes ({reason}); run the same command again to resume"
    )]
    Interrupted {
        file: String,
        got: u64,
        size: u64,
        reason: String,
    },
    #[error(
        "{file}: downloaded {got} bytes, but the hub said {size}; the partial download was removed"
    )]
    SizeMismatch { file: String, got: u64, size: u64 },
    #[error(
        "{file}: the downloaded bytes have sha256 {got}, but the hub says {expected}; the download was removed"
    )]
    Checksum {
        file: String,
        expected: String,
        got: String,
    },
    #[error("another download of {file} is writing {partial}; wait for it to finish")]
    Busy { file: String, partial: PathBuf },
    #[error(
        "no cache folder for hub downloads: none of HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME is set"
    )]
    NoCacheDir,
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> HubError {
        let path = path.into();
        move |source| HubError::Io { path, source }
    }
}
