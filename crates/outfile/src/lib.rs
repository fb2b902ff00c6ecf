//! Writing a file the user named: refuse to replace an existing one unless asked
//! ([`check`]), and write under a hidden temporary name beside it, renamed over the target only
//! once everything is written ([`write_atomic`]), so an interrupted or failed write never leaves
//! a truncated file where a good one was.
//!
//! Every writer in hypura goes through here. Messages name the file, never a command-line flag:
//! the CLI adds the advice (`--force`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why an output file was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutfileError {
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("{0} is a directory; give a file name to write")]
    IsDir(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Whether `path` may be written: not a directory, and absent unless `overwrite`.
pub fn check(path: &Path, overwrite: bool) -> Result<(), OutfileError> {
    if path.is_dir() {
        return Err(OutfileError::IsDir(path.to_path_buf()));
    }
    if !overwrite && path.exists() {
        return Err(OutfileError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// The directory `path` is written in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary name beside `path`: hidden, and marked as partial with this process's id.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    parent_dir(path).join(format!(".{name}.partial-{}", std::process::id()))
}

/// Writes `path` through `fill`: [`check`]s it, fills a buffered temporary file beside it, and
/// renames that over `path` when `fill` and the flush succeed. On any error the temporary file
/// is removed and `path` is as it was.
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), OutfileError> {
    check(path, overwrite)?;
    let partial = partial_path(path);
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutfileError::Io { path, source }
    };
    let result = File::create(&partial)
        .map_err(at(&partial))
        .and_then(|file| {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            fill(&mut w).and_then(|()| w.flush()).map_err(at(path))
        })
        .and_then(|()| std::fs::rename(&partial, path).map_err(at(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// [`write_atomic`] of a byte string.
pub fn write_bytes(path: &Path, overwrite: bool, bytes: &[u8]) -> Result<(), OutfileError> {
    write_atomic(path, overwrite, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_kept_unless_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.txt");
        std::fs::write(&p, "mine").unwrap();
        let e = write_bytes(&p, false, b"new").unwrap_err();
        assert!(matches!(e, OutfileError::Exists(_)), "{e}");
        assert_eq!(e.to_string(), format!("{} already exists", p.display()));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "mine");
        write_bytes(&p, true, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "old").unwrap();
        let e = write_atomic(&p, true, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_bytes(dir.path(), true, b"x").unwrap_err();
        assert!(matches!(e, OutfileError::IsDir(_)), "{e}");
    }

    #[test]
    fn a_bare_file_name_is_written_beside_itself() {
        assert_eq!(parent_dir(Path::new("plan.json")), PathBuf::from("."));
        assert_eq!(
            partial_path(Path::new("a/plan.json")),
            PathBuf::from(format!("a/.plan.json.partial-{}", std::process::id()))
        );
    }
}
