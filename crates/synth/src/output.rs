//! Writing a big output file safely and fast: refuse to overwrite without being asked, check free
//! space first, write under a temporary name from a second thread (so generating the data and
//! copying it into the kernel overlap), and rename only once everything is on disk.

use model::units::human_bytes;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes handed to the writer thread at a time: large, so the kernel sees few big writes.
const BUF_BYTES: usize = 8 << 20;
/// Full buffers that may wait for the writer thread; bounds memory to a few buffers.
const QUEUED_BUFFERS: usize = 2;
/// Room left over on the disk beyond the file itself.
const SPARE_BYTES: u64 = 16 << 20;

/// Why the output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Refused(#[from] outfile::OutfileError),
    #[error("not enough free space in {dir}: the file needs {need} bytes ({need_h}), {free} bytes ({free_h}) are free")]
    NoSpace {
        dir: PathBuf,
        need: u64,
        free: u64,
        need_h: String,
        free_h: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes free to an unprivileged user on the filesystem holding `dir`, where the platform says.
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> io::Result<Option<u64>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs only writes into the struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field widths differ between platforms
    Ok(Some(
        (st.f_bavail as u64).saturating_mul(st.f_frsize as u64),
    ))
}

#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> io::Result<Option<u64>> {
    Ok(None)
}

/// Checks that `path` may be written (absent, or `force`) and `bytes` fit on its disk.
pub fn check_target(path: &Path, bytes: u64, force: bool) -> Result<(), OutputError> {
    outfile::check(path, force)?;
    let dir = outfile::parent_dir(path);
    if let Some(free) = free_bytes(&dir).map_err(io_at(&dir))? {
        let need = bytes.saturating_add(SPARE_BYTES);
        if free < need {
            return Err(OutputError::NoSpace {
                dir,
                need,
                free,
                need_h: human_bytes(need),
                free_h: human_bytes(free),
            });
        }
    }
    Ok(())
}

/// A buffered writer whose buffers are written to the file by a second thread.
pub struct ThreadedWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<io::Result<File>>>,
}

impl ThreadedWriter {
    pub fn new(file: File) -> ThreadedWriter {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUED_BUFFERS);
        let (back, recycled) = channel::<Vec<u8>>();
        let handle = std::thread::spawn(move || {
            let mut file = file;
            for mut buf in rx {
                file.write_all(&buf)?;
                buf.clear();
                // The producer may be gone already; then the buffer is simply freed.
                let _ = back.send(buf);
            }
            Ok(file)
        });
        ThreadedWriter {
            buf: Vec::with_capacity(BUF_BYTES),
            tx: Some(tx),
            recycled,
            handle: Some(handle),
        }
    }

    /// The writer thread's result once it has stopped.
    fn join(&mut self) -> io::Result<File> {
        self.tx.take();
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| io::Error::other("the file writer thread panicked"))?,
            None => Err(io::Error::other("the file writer has already finished")),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUF_BYTES));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(full).is_ok())
            .unwrap_or(false);
        if !sent {
            // The thread stopped on a write error: report that error.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the file writer stopped early")));
        }
        Ok(())
    }

    /// Writes what is buffered and returns the file once every byte has been written to it.
    pub fn finish(mut self) -> io::Result<File> {
        self.send()?;
        self.join()
    }
}

impl Write for ThreadedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (BUF_BYTES - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BUF_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands the buffer to the writer thread (durability comes from [`ThreadedWriter::finish`]
    /// and the sync in [`write_atomically`]).
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ThreadedWriter {
    /// Stops the thread before the file is removed or renamed by the caller.
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.join();
        }
    }
}

/// Writes `path` through `body`. The data goes to a temporary file next to it that is synced
/// and then renamed over `path`, so `path` never holds a partial file; the temporary file is
/// removed on failure. `E` carries `body`'s own errors.
pub fn write_atomically<E, F>(path: &Path, bytes: u64, force: bool, body: F) -> Result<(), E>
where
    E: From<OutputError>,
    F: FnOnce(&mut ThreadedWriter) -> Result<(), E>,
{
    check_target(path, bytes, force)?;
    let (partial, file) = outfile::Partial::create(path, force).map_err(OutputError::from)?;
    let tmp = partial.tmp_path().to_path_buf();
    let mut w = ThreadedWriter::new(file);
    body(&mut w)?;
    let file = w.finish().map_err(io_at(&tmp))?;
    file.sync_all().map_err(io_at(&tmp))?;
    drop(file);
    // Checked again: someone may have created the file while we wrote.
    partial.commit().map_err(OutputError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    #[test]
    fn writes_then_refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        write_atomically::<OutputError, _>(&p, 3, false, |w| {
            w.write_all(b"abc").map_err(io_at(Path::new("x")))
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        let e = write_atomically::<OutputError, _>(&p, 3, false, |_| Ok(())).unwrap_err();
        assert!(
            matches!(e, OutputError::Refused(outfile::OutfileError::Exists(_))),
            "{e}"
        );
        assert!(e.to_string().ends_with("m.gguf already exists"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        write_atomically::<OutputError, _>(&p, 3, true, |w| {
            w.write_all(b"xyz").map_err(io_at(Path::new("x")))
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"xyz");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        let e = write_atomically::<OutputError, _>(&p, 3, false, |w| {
            w.write_all(b"half").unwrap();
            Err(io_at(Path::new("gen"))(io::Error::other(
                "generator failed",
            )))
        })
        .unwrap_err();
        assert!(e.to_string().contains("generator failed"));
        assert!(!p.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn impossible_sizes_and_directories_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.gguf");
        let e = check_target(&p, u64::MAX / 2, false).unwrap_err();
        assert!(matches!(e, OutputError::NoSpace { .. }), "{e}");
        assert!(e.to_string().contains("not enough free space"));
        assert!(matches!(
            check_target(dir.path(), 1, true),
            Err(OutputError::Refused(outfile::OutfileError::IsDir(_)))
        ));
    }

    #[test]
    fn threaded_writer_keeps_order_across_many_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let mut w = ThreadedWriter::new(File::create(&p).unwrap());
        let mut want = Vec::new();
        for i in 0..(3 * BUF_BYTES / 1000 + 7) {
            let piece = vec![(i % 251) as u8; 1000 + i % 3];
            w.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
        }
        w.finish().unwrap();
        assert_eq!(fs::read(&p).unwrap(), want);
    }

    #[test]
    fn threaded_writer_reports_write_errors() {
        // A file opened read-only refuses writes; the error surfaces on a later write or finish.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ro");
        fs::write(&p, b"").unwrap();
        let mut w = ThreadedWriter::new(File::open(&p).unwrap());
        let result = w
            .write_all(&vec![1u8; 4 * BUF_BYTES])
            .and_then(|_| w.finish().map(|_| ()));
        assert!(result.is_err());
    }
}
