//! Writing a file the user named: refuse to replace anything but a regular file, and an
//! existing one unless asked ([`target`]); write under a hidden temporary name beside it,
//! renamed over the target only once everything is written ([`Partial`], [`write_atomic`]), so
//! an interrupted or failed write never leaves a truncated file where a good one was. A
//! symbolic link is written through: the file it points at is replaced, the link stays.
//!
//! Temporary files still being written are removed when their writer fails or is dropped,
//! and by [`remove_partials`], which a program calls from its Ctrl-C / SIGTERM handler.
//!
//! Every writer in hypura goes through here. Messages name the file, never a command-line flag:
//! the CLI adds the advice (`--force`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why an output file was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutfileError {
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("{0} is a directory; give a file name to write")]
    IsDir(PathBuf),
    #[error("{0} is not a regular file (a device, FIFO or socket); give a file name to write")]
    NotRegular(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Symbolic links followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The file a write to `path` replaces: `path` itself or, through symbolic links, the file they
/// point at. Refuses a directory, anything else that is not a regular file, and an existing
/// file unless `overwrite`. Errors name `path` as given.
pub fn target(path: &Path, overwrite: bool) -> Result<PathBuf, OutfileError> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(at),
            Err(source) => {
                return Err(OutfileError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link = fs::read_link(&at).map_err(|source| OutfileError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            at = parent_dir(&at).join(link);
        } else if kind.is_dir() {
            return Err(OutfileError::IsDir(path.to_path_buf()));
        } else if !kind.is_file() {
            return Err(OutfileError::NotRegular(path.to_path_buf()));
        } else if !overwrite {
            return Err(OutfileError::Exists(path.to_path_buf()));
        } else {
            return Ok(at);
        }
    }
    Err(OutfileError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("too many levels of symbolic links"),
    })
}

/// Whether `path` may be written (see [`target`]).
pub fn check(path: &Path, overwrite: bool) -> Result<(), OutfileError> {
    target(path, overwrite).map(|_| ())
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

/// Temporary files being written now, for [`remove_partials`].
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partials() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PARTIALS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file still being written. For a signal handler that then exits:
/// the writers are not told.
pub fn remove_partials() {
    for p in partials().drain(..) {
        let _ = fs::remove_file(p);
    }
}

/// A file being written beside its target: created by [`Partial::create`], renamed over the
/// target by [`Partial::commit`], removed if dropped before that.
#[derive(Debug)]
pub struct Partial {
    /// As the user named it, for messages and the final check.
    path: PathBuf,
    overwrite: bool,
    tmp: PathBuf,
    committed: bool,
}

impl Partial {
    /// Checks `path` ([`target`]) and creates the temporary file beside the file it names.
    pub fn create(path: &Path, overwrite: bool) -> Result<(Partial, File), OutfileError> {
        let target = target(path, overwrite)?;
        let tmp = partial_path(&target);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|source| OutfileError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        partials().push(tmp.clone());
        Ok((
            Partial {
                path: path.to_path_buf(),
                overwrite,
                tmp,
                committed: false,
            },
            file,
        ))
    }

    /// The temporary file (its target is the `path` given to [`Partial::create`]).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary file over the target, checking it again first: someone may have
    /// created the file (or a link) while it was written.
    pub fn commit(mut self) -> Result<(), OutfileError> {
        let target = target(&self.path, self.overwrite)?;
        fs::rename(&self.tmp, &target).map_err(|source| OutfileError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
        partials().retain(|p| p != &self.tmp);
    }
}

/// Writes `path` through `fill`: a buffered [`Partial`] renamed over the target when `fill`
/// and the flush succeed. On any error the temporary file is removed and `path` is as it was.
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), OutfileError> {
    let (partial, file) = Partial::create(path, overwrite)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)
        .and_then(|()| w.flush())
        .map_err(|source| OutfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    drop(w);
    partial.commit()
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

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        std::fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let e = write_bytes(&link, false, b"new").unwrap_err();
        assert!(
            matches!(e, OutfileError::Exists(ref p) if p == &link),
            "{e}"
        );
        write_bytes(&link, true, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link creates the file it points at.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("made.json", &dangling).unwrap();
        write_bytes(&dangling, false, b"made").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.json")).unwrap(),
            "made"
        );
    }

    #[cfg(unix)]
    #[test]
    fn device_nodes_and_fifos_are_refused_even_with_overwrite() {
        let e = write_bytes(Path::new("/dev/null"), true, b"x").unwrap_err();
        assert!(matches!(e, OutfileError::NotRegular(_)), "{e}");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = write_bytes(&fifo, true, b"x").unwrap_err();
        assert!(matches!(e, OutfileError::NotRegular(_)), "{e}");
        let link = dir.path().join("to-null");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let e = write_bytes(&link, true, b"x").unwrap_err();
        assert!(matches!(e, OutfileError::NotRegular(_)), "{e}");
    }

    #[test]
    fn remove_partials_removes_files_still_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.gguf");
        let (partial, _file) = Partial::create(&p, false).unwrap();
        assert!(partial.tmp_path().exists());
        remove_partials();
        assert!(!partial.tmp_path().exists());
        drop(partial);
        assert!(!p.exists());
    }
}
