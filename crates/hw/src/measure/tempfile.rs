//! The storage benchmark's scratch file: space check before creating it, direct-I/O opening, and
//! a guard that always deletes it (on drop, on error, and from the Ctrl-C handler).

use super::interrupt;
use super::{IoOp, MeasureError};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Extra free space left untouched beyond the file itself, so the benchmark never fills a disk.
const MIN_MARGIN_BYTES: u64 = 256 << 20;

/// Deletes the file when dropped.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Creates a new, empty, uniquely named file in `dir` after checking there is room for
    /// `bytes` plus a margin.
    pub fn create(dir: &Path, bytes: u64) -> Result<(TempFile, File), MeasureError> {
        let meta = std::fs::metadata(dir).map_err(|source| MeasureError::DirUnusable {
            dir: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(MeasureError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        if is_memory_fs(dir) {
            // Recent kernels accept O_DIRECT on tmpfs, which would "measure" RAM as storage.
            return Err(MeasureError::MemoryFs {
                dir: dir.to_path_buf(),
            });
        }
        let free = free_bytes(dir)?;
        let margin = (bytes / 20).max(MIN_MARGIN_BYTES);
        if free < bytes + margin {
            return Err(MeasureError::NoSpace {
                dir: dir.to_path_buf(),
                file_bytes: bytes,
                margin_bytes: margin,
                free_bytes: free,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(
            ".hypura-profile-{}-{nanos}.tmp",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| MeasureError::io(IoOp::Create(path.clone()), e))?;
        interrupt::register_temp_file(&path);
        Ok((TempFile { path }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for reading around the page cache (O_DIRECT on Linux, F_NOCACHE on macOS).
    /// A filesystem that refuses is an error, never a silent fall-back to cached reads.
    pub fn open_uncached(&self) -> Result<File, MeasureError> {
        open_uncached(&self.path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        interrupt::unregister_temp_file();
        // NotFound is fine: the signal handler may have unlinked it already.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn open_uncached(path: &Path) -> Result<File, MeasureError> {
    crate::direct::open_uncached(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::EINVAL) {
            no_direct_io(path)
        } else {
            MeasureError::io(IoOp::OpenUncached(path.to_path_buf()), e)
        }
    })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn open_uncached(path: &Path) -> Result<File, MeasureError> {
    Err(MeasureError::Unsupported {
        path: path.to_path_buf(),
    })
}

/// The error for a filesystem without direct I/O, naming tmpfs when that is the reason.
pub fn no_direct_io(path: &Path) -> MeasureError {
    let dir = path.parent().unwrap_or(path);
    MeasureError::NoDirectIo {
        dir: dir.to_path_buf(),
        tmpfs: is_memory_fs(dir),
    }
}

/// tmpfs or ramfs: files live in the page cache, so "uncached" reads would still hit RAM.
#[cfg(target_os = "linux")]
pub(super) fn is_memory_fs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs on a NUL-terminated path into a zeroed struct.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0
            && matches!(s.f_type as i64, TMPFS_MAGIC | RAMFS_MAGIC)
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn is_memory_fs(_dir: &Path) -> bool {
    false
}

/// Bytes an unprivileged user may still write on the filesystem holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> Result<u64, MeasureError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        MeasureError::NulInPath {
            dir: dir.to_path_buf(),
        }
    })?;
    // SAFETY: statvfs on a NUL-terminated path into a zeroed struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(MeasureError::io(
            IoOp::Statvfs(dir.to_path_buf()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}
