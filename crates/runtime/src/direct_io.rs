//! Page-cache-free reads of tensor bytes: O_DIRECT (Linux) / F_NOCACHE (macOS) with aligned
//! supersets through an aligned bounce buffer. Short reads and errors are errors.

use crate::error::{Error, Result};
use hw::direct::AlignedBuf;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Alignment of O_DIRECT offsets, lengths and buffers, and the page size we release memory in.
pub const PAGE: usize = hw::direct::ALIGN;

/// A [`DirectReader`]'s bounce buffer size: the most bytes it reads per system call.
const CHUNK: usize = 8 << 20;

/// How the file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Reads bypass the page cache.
    Direct,
    /// The file system refused direct I/O (e.g. tmpfs): buffered reads, with the read range
    /// dropped from the page cache afterwards (POSIX_FADV_DONTNEED).
    BufferedDropBehind,
}

/// An open model file, shared by every reader and I/O worker that reads it.
pub struct DirectFile {
    file: File,
    path: PathBuf,
    mode: CacheMode,
    len: u64,
}

/// A page-aligned buffer that direct reads land in before their bytes are copied out.
pub struct Bounce(AlignedBuf);

impl Bounce {
    /// At least `bytes` (rounded up to whole pages, at least one).
    pub fn new(bytes: usize) -> Result<Bounce> {
        AlignedBuf::new(bytes)
            .map(Bounce)
            .ok_or(Error::OutOfMemory {
                what: "a direct I/O bounce buffer",
                bytes: Some(bytes as u64),
            })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn slice(&mut self, len: usize) -> &mut [u8] {
        let all = self.0.as_mut_slice();
        let n = len.min(all.len());
        &mut all[..n]
    }
}

impl DirectFile {
    pub fn open(path: &Path) -> Result<DirectFile> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let (file, mode) = match open_direct(path) {
            Ok(f) => (f, CacheMode::Direct),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (
                File::open(path).map_err(open_err)?,
                CacheMode::BufferedDropBehind,
            ),
            Err(e) => return Err(open_err(e)),
        };
        let len = file.metadata().map_err(open_err)?.len();
        Ok(DirectFile {
            file,
            path: path.to_path_buf(),
            mode,
            len,
        })
    }

    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `dst.len()` bytes at `offset` into `dst` through `bounce` (any number of pages);
    /// `tensor` names the data in errors. Returns the bytes transferred from the device (the
    /// aligned superset).
    pub fn read(
        &self,
        bounce: &mut Bounce,
        tensor: &str,
        offset: u64,
        dst: &mut [u8],
    ) -> Result<u64> {
        let len = dst.len() as u64;
        let err = |source| Error::Read {
            path: self.path.clone(),
            tensor: tensor.to_string(),
            offset,
            len,
            source,
        };
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file has only {} bytes", self.len),
                ))
            })?;
        let page = PAGE as u64;
        let mut pos = offset / page * page;
        let mut transferred = 0u64;
        let mut copied = 0usize;
        while pos < end {
            let want = (end - pos).div_ceil(page) * page;
            let want = want.min(bounce.len() as u64) as usize;
            let buf = bounce.slice(want);
            let got = read_full(&self.file, buf, pos).map_err(err)?;
            transferred += got as u64;
            // Bytes of the wanted range inside [pos, pos + got).
            let from = offset.max(pos);
            let to = end.min(pos + got as u64);
            if to <= from {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("short read at byte {pos}: the file ends early"),
                )));
            }
            let n = (to - from) as usize;
            dst[copied..copied + n].copy_from_slice(&buf[(from - pos) as usize..][..n]);
            copied += n;
            pos += got as u64;
            if got < want && pos < end {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("short read at byte {pos}: the file ends early"),
                )));
            }
        }
        if self.mode == CacheMode::BufferedDropBehind {
            drop_cached(&self.file, offset, len);
        }
        Ok(transferred)
    }
}

/// A file with its own bounce buffer: synchronous reads on the calling thread.
pub struct DirectReader {
    file: Arc<DirectFile>,
    bounce: Bounce,
}

impl DirectReader {
    pub fn open(path: &Path) -> Result<DirectReader> {
        Ok(DirectReader {
            file: Arc::new(DirectFile::open(path)?),
            bounce: Bounce::new(CHUNK)?,
        })
    }

    pub fn mode(&self) -> CacheMode {
        self.file.mode
    }

    /// The open file, for sharing with an I/O pool.
    pub fn file(&self) -> &Arc<DirectFile> {
        &self.file
    }

    /// Bytes of fixed memory the reader holds (its bounce buffer).
    pub fn overhead_bytes() -> usize {
        CHUNK
    }

    /// Reads `dst.len()` bytes at `offset` into `dst`; `tensor` names the data in errors. Returns
    /// the bytes transferred from the device (the aligned superset).
    pub fn read(&mut self, tensor: &str, offset: u64, dst: &mut [u8]) -> Result<u64> {
        self.file.read(&mut self.bounce, tensor, offset, dst)
    }
}

/// Reads until `buf` is full or end of file; retries interrupted and partial reads.
fn read_full(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // O_DIRECT needs aligned continuation offsets; a partial read that is not a whole
        // number of pages can only happen at end of file.
        if done % PAGE != 0 {
            break;
        }
    }
    Ok(done)
}

/// O_DIRECT / F_NOCACHE: the same open as `hypura profile` measures reads with.
fn open_direct(path: &Path) -> std::io::Result<File> {
    hw::direct::open_uncached(path)
}

#[cfg(target_os = "linux")]
fn drop_cached(file: &File, offset: u64, len: u64) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: advisory call on a descriptor we own; failure only leaves pages cached.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn drop_cached(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn unaligned_ranges_read_back_exactly() {
        let data: Vec<u8> = (0..3 * CHUNK as u32 / 2 + 777)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let f = file_with(&data);
        let mut r = DirectReader::open(f.path()).unwrap();
        for &(off, len) in &[
            (0usize, 1usize),
            (32, 4096),
            (4095, 2),
            (5000, CHUNK + 9000),
            (data.len() - 5, 5),
        ] {
            let mut dst = vec![0u8; len];
            r.read("t", off as u64, &mut dst).unwrap();
            assert_eq!(&dst[..], &data[off..off + len], "offset {off} len {len}");
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error_naming_the_tensor() {
        let f = file_with(&[1u8; 10_000]);
        let mut r = DirectReader::open(f.path()).unwrap();
        let mut dst = vec![0u8; 200];
        let e = r
            .read("blk.3.ffn_up.weight", 9_900, &mut dst)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("blk.3.ffn_up.weight") && e.contains("10000 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_file_that_shrinks_after_open_gives_a_short_read_error() {
        let f = file_with(&vec![3u8; 64 * 1024]);
        let mut r = DirectReader::open(f.path()).unwrap();
        f.as_file().set_len(10_000).unwrap();
        let mut dst = vec![0u8; 20_000];
        let e = r.read("x", 8_000, &mut dst).unwrap_err().to_string();
        assert!(e.contains("short read"), "{e}");
    }
}
