//! Files of the Hugging Face Hub, kept in the hub's own cache layout: find a file already
//! downloaded (by `hypura pull`, `hf download`, or any program using `huggingface_hub`), and
//! download one so that those programs find it too. Downloads resume where an interrupted one
//! stopped, are checked against the sha256 the hub publishes, and become visible only once
//! complete.
//!
//! It is not a general hub client: no uploads, no Xet protocol (the hub serves every file over
//! plain HTTPS too), no model cards. Which repository and file a model name means is the
//! caller's business (`model::catalog` for hypura's names).
//!
//! The cache layout, as `huggingface_hub` writes it:
//! ```text
//! <cache>/models--<org>--<name>/refs/<revision>        the commit a branch or tag pointed at
//! <cache>/models--<org>--<name>/blobs/<etag>           file contents, named by their sha256
//! <cache>/models--<org>--<name>/snapshots/<commit>/<path> -> ../../blobs/<etag>
//! ```

mod cache;
mod download;
mod error;
mod remote;

pub use cache::Cache;
pub use download::{Checksum, Fetched, Step};
pub use error::HubError;
pub use remote::{FileMeta, Hub, RemoteFile};

/// A model repository on the hub: `org/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    org: String,
    name: String,
}

impl RepoId {
    /// Parses `org/name`. Each part is what the hub allows: letters, digits, `-`, `_`, `.`, not
    /// starting or ending with `-` or `.`, at most 96 characters.
    pub fn parse(s: &str) -> Result<RepoId, HubError> {
        let bad = || HubError::BadRepo(s.to_string());
        let (org, name) = s.split_once('/').ok_or_else(bad)?;
        if !(valid_part(org) && valid_part(name)) {
            return Err(bad());
        }
        Ok(RepoId {
            org: org.to_string(),
            name: name.to_string(),
        })
    }

    /// The repository's folder in the cache: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        format!("models--{}--{}", self.org, self.name)
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.org, self.name)
    }
}

fn valid_part(p: &str) -> bool {
    let edge = |c: char| c == '-' || c == '.';
    !p.is_empty()
        && p.len() <= 96
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !p.starts_with(edge)
        && !p.ends_with(edge)
        && !p.contains("--")
        && !p.contains("..")
}

/// A file's path inside a repository: `/`-separated, relative, no `.` or `..` parts, so that it
/// can name a file under a snapshot folder and nothing outside it.
pub(crate) fn check_repo_path(path: &str) -> Result<(), HubError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(HubError::BadPath(path.to_string()))
    }
}

/// A revision: a branch, tag or commit name that can also name a file under `refs/`.
pub(crate) fn check_revision(rev: &str) -> Result<(), HubError> {
    let ok = !rev.is_empty()
        && rev.len() <= 256
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && rev
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(HubError::BadRevision(rev.to_string()))
    }
}

/// A full commit hash (40 hexadecimal digits).
pub(crate) fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A sha256 in hexadecimal (what the hub gives as the etag of an LFS file).
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_org_slash_name() {
        let r = RepoId::parse("bartowski/Llama-3.3-70B-Instruct-GGUF").unwrap();
        assert_eq!(
            r.cache_folder(),
            "models--bartowski--Llama-3.3-70B-Instruct-GGUF"
        );
        assert_eq!(r.to_string(), "bartowski/Llama-3.3-70B-Instruct-GGUF");
        for bad in [
            "",
            "noslash",
            "a/b/c",
            "/b",
            "a/",
            "a/../b",
            "a/.hidden",
            "a/b-",
            "a--b/c",
            "a/b c",
            "../etc",
        ] {
            assert!(RepoId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn paths_and_revisions_cannot_leave_their_folder() {
        for good in ["a.gguf", "Q5_K_M/x-00001-of-00002.gguf"] {
            check_repo_path(good).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(check_repo_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "main",
            "v1.0",
            "refs/pr/1",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            check_revision(good).unwrap();
        }
        for bad in ["", "..", "a/../b", "a b", "/main", "main/"] {
            assert!(check_revision(bad).is_err(), "{bad:?} accepted");
        }
    }
}
