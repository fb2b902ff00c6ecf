//! Where hub downloads live on this machine, and what is already there.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{check_repo_path, check_revision, is_commit, HubError, RepoId};

/// The hub cache folder (`~/.cache/huggingface/hub` unless the environment says otherwise).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The folder `huggingface_hub` uses: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else
    /// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Result<Cache, HubError> {
        root_from(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map(Cache::at)
        .ok_or(HubError::NoCacheDir)
    }

    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<cache>/models--org--name`.
    pub fn repo_dir(&self, repo: &RepoId) -> PathBuf {
        self.root.join(repo.cache_folder())
    }

    /// The commit a downloaded revision stands for: a commit hash names itself; a branch or tag
    /// the commit `refs/<revision>` recorded when it was last downloaded. `None` when nothing
    /// of that revision was downloaded.
    pub fn commit(&self, repo: &RepoId, revision: &str) -> Result<Option<String>, HubError> {
        check_revision(revision)?;
        if is_commit(revision) {
            return Ok(Some(revision.to_ascii_lowercase()));
        }
        let path = self.repo_dir(repo).join("refs").join(revision);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let commit = text.trim();
                if is_commit(commit) {
                    Ok(Some(commit.to_string()))
                } else {
                    Err(HubError::Io {
                        path,
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            "does not hold a commit hash (40 hexadecimal digits)",
                        ),
                    })
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HubError::Io { path, source: e }),
        }
    }

    /// The snapshot folder of a revision, if one was downloaded.
    pub fn snapshot(&self, repo: &RepoId, revision: &str) -> Result<Option<PathBuf>, HubError> {
        Ok(self
            .commit(repo, revision)?
            .map(|c| self.repo_dir(repo).join("snapshots").join(c))
            .filter(|d| d.is_dir()))
    }

    /// A repository file of a revision, if it was downloaded (its link leads to a file).
    pub fn file(
        &self,
        repo: &RepoId,
        revision: &str,
        path: &str,
    ) -> Result<Option<PathBuf>, HubError> {
        check_repo_path(path)?;
        Ok(self
            .snapshot(repo, revision)?
            .map(|d| d.join(path))
            .filter(|f| f.is_file()))
    }

    /// Downloaded files of a revision under `folder` (`""` for all), as repository paths
    /// (`/`-separated), sorted. Links whose blob is gone are left out.
    pub fn files(
        &self,
        repo: &RepoId,
        revision: &str,
        folder: &str,
    ) -> Result<Vec<String>, HubError> {
        if !folder.is_empty() {
            check_repo_path(folder)?;
        }
        let Some(snapshot) = self.snapshot(repo, revision)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let start = if folder.is_empty() {
            snapshot.clone()
        } else {
            snapshot.join(folder)
        };
        if start.is_dir() {
            walk(&start, &snapshot, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    pub(crate) fn blob(&self, repo: &RepoId, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    /// Points `snapshots/<commit>/<path>` at `blobs/<etag>` (a relative link, as
    /// `huggingface_hub` makes), replacing a different link atomically.
    pub(crate) fn link(
        &self,
        repo: &RepoId,
        commit: &str,
        path: &str,
        etag: &str,
    ) -> Result<PathBuf, HubError> {
        check_repo_path(path)?;
        let dst = self
            .repo_dir(repo)
            .join("snapshots")
            .join(commit)
            .join(path);
        let dir = dst.parent().expect("a snapshot file has a folder");
        fs::create_dir_all(dir).map_err(HubError::io(dir))?;
        let ups = 2 + path.matches('/').count();
        let target = PathBuf::from("../".repeat(ups)).join("blobs").join(etag);
        if fs::read_link(&dst).is_ok_and(|t| t == target) {
            return Ok(dst);
        }
        let tmp = dir.join(format!(
            ".{}.link-{}",
            dst.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(HubError::io(&tmp))?;
        fs::rename(&tmp, &dst).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            HubError::Io {
                path: dst.clone(),
                source: e,
            }
        })?;
        Ok(dst)
    }

    /// Records that `revision` (a branch or tag) now points at `commit`.
    pub(crate) fn set_ref(
        &self,
        repo: &RepoId,
        revision: &str,
        commit: &str,
    ) -> Result<(), HubError> {
        check_revision(revision)?;
        if is_commit(revision) {
            return Ok(());
        }
        let path = self.repo_dir(repo).join("refs").join(revision);
        let dir = path.parent().expect("a ref has a folder");
        fs::create_dir_all(dir).map_err(HubError::io(dir))?;
        outfile::write_bytes(&path, true, commit.as_bytes()).map_err(|e| HubError::Io {
            path: path.clone(),
            source: io::Error::other(e.to_string()),
        })
    }
}

/// The cache folder the environment names (see [`Cache::from_env`]); `var` reads a variable.
fn root_from(var: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

fn walk(dir: &Path, snapshot: &Path, out: &mut Vec<String>) -> Result<(), HubError> {
    for entry in fs::read_dir(dir).map_err(HubError::io(dir))? {
        let entry = entry.map_err(HubError::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(HubError::io(&path))?;
        if kind.is_dir() {
            walk(&path, snapshot, out)?;
        } else if path.is_file() {
            let rel = path
                .strip_prefix(snapshot)
                .expect("walked under the snapshot");
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_folder_follows_huggingface_hub_precedence() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, PathBuf)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
                .collect();
            root_from(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let all = [
            ("HF_HUB_CACHE", "/a"),
            ("HUGGINGFACE_HUB_CACHE", "/b"),
            ("HF_HOME", "/c"),
            ("XDG_CACHE_HOME", "/d"),
            ("HOME", "/e"),
        ];
        let expect = [
            "/a",
            "/b",
            "/c/hub",
            "/d/huggingface/hub",
            "/e/.cache/huggingface/hub",
        ];
        for (i, want) in expect.iter().enumerate() {
            assert_eq!(env(&all[i..]), Some(PathBuf::from(want)));
        }
        assert_eq!(env(&[]), None);
    }

    #[test]
    fn links_are_relative_and_found_through_refs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let repo = RepoId::parse("org/name").unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let etag = "e".repeat(64);
        assert_eq!(cache.file(&repo, "main", "d/x.gguf").unwrap(), None);
        let blob = cache.blob(&repo, &etag);
        fs::create_dir_all(blob.parent().unwrap()).unwrap();
        fs::write(&blob, b"bytes").unwrap();
        let link = cache.link(&repo, commit, "d/x.gguf", &etag).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from(format!("../../../blobs/{etag}"))
        );
        // Not reachable through "main" until the ref says which commit it is.
        assert_eq!(cache.file(&repo, "main", "d/x.gguf").unwrap(), None);
        cache.set_ref(&repo, "main", commit).unwrap();
        assert_eq!(
            cache.file(&repo, "main", "d/x.gguf").unwrap(),
            Some(link.clone())
        );
        assert_eq!(cache.file(&repo, commit, "d/x.gguf").unwrap(), Some(link));
        assert_eq!(cache.files(&repo, "main", "").unwrap(), ["d/x.gguf"]);
        assert_eq!(cache.files(&repo, "main", "d").unwrap(), ["d/x.gguf"]);
        // A link whose blob is gone is no file.
        fs::remove_file(&blob).unwrap();
        assert_eq!(cache.file(&repo, "main", "d/x.gguf").unwrap(), None);
        assert!(cache.files(&repo, "main", "").unwrap().is_empty());
    }

    #[test]
    fn a_ref_that_holds_no_commit_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let repo = RepoId::parse("org/name").unwrap();
        let refs = cache.repo_dir(&repo).join("refs");
        fs::create_dir_all(&refs).unwrap();
        fs::write(refs.join("main"), "garbage").unwrap();
        let e = cache.commit(&repo, "main").unwrap_err().to_string();
        assert!(e.contains("refs/main") && e.contains("commit hash"), "{e}");
    }
}
