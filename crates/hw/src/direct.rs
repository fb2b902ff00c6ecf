//! The one direct-I/O primitive hypura reads storage with, shared by `hypura profile` (which
//! measures reads this way) and the runtime (which streams weights this way), so what is
//! measured is what runs: files opened around the page cache, and page-aligned buffers.
//!
//! Direct reads need the buffer address, the file offset and the length to be multiples of the
//! device's logical block size; [`ALIGN`] (4096) covers every common device.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::File;
use std::io;
use std::path::Path;
use std::ptr::NonNull;

/// Alignment of direct-read offsets, lengths and buffers.
pub const ALIGN: usize = 4096;

/// Opens `path` for reading around the page cache: O_DIRECT on Linux, F_NOCACHE on macOS.
/// A file system that refuses direct I/O (e.g. tmpfs on older kernels) gives `EINVAL`; other
/// platforms always do.
#[cfg(target_os = "linux")]
pub fn open_uncached(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(target_os = "macos")]
pub fn open_uncached(path: &Path) -> io::Result<File> {
    use std::os::unix::io::AsRawFd;
    let f = File::open(path)?;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_NOCACHE, 1) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn open_uncached(_path: &Path) -> io::Result<File> {
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

/// A zeroed heap buffer whose address and length are multiples of [`ALIGN`].
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// At least `len` bytes (rounded up to whole [`ALIGN`] pages, at least one), or `None` when
    /// the allocation fails. Pages are mapped lazily; [`AlignedBuf::touch`] maps them now.
    pub fn new(len: usize) -> Option<AlignedBuf> {
        let len = len.max(1).checked_next_multiple_of(ALIGN)?;
        let layout = Layout::from_size_align(len, ALIGN).ok()?;
        // SAFETY: layout has non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(AlignedBuf { ptr, layout })
    }

    /// Writes one byte of every page, so no page fault lands inside a timed read later.
    pub fn touch(&mut self) {
        for page in self.as_mut_slice().chunks_mut(ALIGN) {
            page[0] = 1;
        }
    }

    /// Gives the pages back to the OS: the next write faults in fresh zeroed pages, as a copy
    /// into the runtime's streamed memory does after an eviction released it.
    pub fn release(&mut self) {
        #[cfg(unix)]
        // SAFETY: the range is this buffer's own whole pages (address and length are multiples
        // of ALIGN, see `new`); after MADV_DONTNEED they read as zeros, which `new` promised.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast(),
                self.layout.size(),
                libc::MADV_DONTNEED,
            );
        }
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for layout.size() bytes and uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Largest request a read is split into.
pub const MAX_REQUEST: u64 = 1 << 30;

/// The request size reads of `bytes` become: whole pages, at least one, at most [`MAX_REQUEST`].
pub fn request_size(bytes: u64) -> u64 {
    bytes
        .clamp(ALIGN as u64, MAX_REQUEST)
        .div_ceil(ALIGN as u64)
        * ALIGN as u64
}

/// One request of a split read: `len` bytes at file `offset`, landing `start` bytes into the
/// destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub offset: u64,
    pub start: usize,
    pub len: usize,
}

impl Request {
    /// Bytes the device transfers for it: the request widened to whole pages at both ends, cut
    /// at the end of a file of `file_len` bytes (a direct read there returns short).
    pub fn device_bytes(&self, file_len: Option<u64>) -> u64 {
        let page = ALIGN as u64;
        let first = self.offset / page * page;
        let end = (self.offset + self.len as u64).div_ceil(page) * page;
        end.min(file_len.unwrap_or(u64::MAX)).saturating_sub(first)
    }
}

/// `len` bytes at file `offset` as requests of at most `request` bytes (a multiple of the
/// page, see [`request_size`]), cut at page-aligned file offsets, so that no page is read
/// twice: together they transfer the range widened to whole pages.
pub fn split(offset: u64, len: usize, request: u64) -> Vec<Request> {
    let page = ALIGN as u64;
    let request = request.max(page);
    let end = offset + len as u64;
    let mut out = Vec::new();
    let mut at = offset;
    while at < end {
        // The first request ends at the page boundary `request` bytes past its aligned start.
        let next = ((at / page * page) + request).min(end);
        out.push(Request {
            offset: at,
            start: (at - offset) as usize,
            len: (next - at) as usize,
        });
        at = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_whole_pages() {
        for len in [0, 1, 4095, 4096, 4097, 3 << 20] {
            let mut b = AlignedBuf::new(len).unwrap();
            assert_eq!(b.as_mut_slice().as_ptr() as usize % ALIGN, 0, "{len}");
            assert_eq!(b.len() % ALIGN, 0);
            assert!(
                b.len() >= len.max(1) && b.len() < len.max(1) + ALIGN,
                "{len}: {}",
                b.len()
            );
            assert!(b.as_mut_slice().iter().all(|&x| x == 0));
        }
        assert!(AlignedBuf::new(usize::MAX).is_none());
    }

    #[test]
    fn split_cuts_at_page_boundaries_and_covers_the_range() {
        for &(offset, len, req) in &[
            (0u64, 1usize, 4096u64),
            (100, 3 * 4096, 4096),
            (4095, 10_000, 8192),
            (8192, 8192, 8192),
            (777, 100_000, 3 * 4096),
        ] {
            let parts = split(offset, len, req);
            let mut expect_start = 0;
            for (i, r) in parts.iter().enumerate() {
                assert_eq!(r.start, expect_start);
                assert_eq!(r.offset, offset + r.start as u64);
                assert!(r.len > 0 && r.len as u64 <= req);
                if i > 0 {
                    assert_eq!(r.offset % ALIGN as u64, 0, "{parts:?}");
                }
                expect_start += r.len;
            }
            assert_eq!(expect_start, len, "{parts:?}");
            // Together the requests transfer the range widened to whole pages, once.
            let device: u64 = parts.iter().map(|r| r.device_bytes(None)).sum();
            let first = offset / 4096 * 4096;
            let last = (offset + len as u64).div_ceil(4096) * 4096;
            assert_eq!(device, last - first, "{parts:?}");
        }
    }

    #[test]
    fn device_bytes_widen_to_pages_and_stop_at_the_file_end() {
        let r = |offset, len| Request {
            offset,
            start: 0,
            len,
        };
        assert_eq!(r(0, 1).device_bytes(None), 4096);
        assert_eq!(r(4095, 2).device_bytes(None), 8192);
        assert_eq!(r(8192, 4096).device_bytes(None), 4096);
        // A file of 10_000 bytes: the last page holds 1808 of them.
        assert_eq!(r(9000, 1000).device_bytes(Some(10_000)), 10_000 - 8192);
        assert_eq!(r(100, 9900).device_bytes(Some(10_000)), 10_000);
    }

    #[test]
    fn request_sizes_are_whole_pages_within_bounds() {
        assert_eq!(request_size(0), 4096);
        assert_eq!(request_size(4097), 8192);
        assert_eq!(request_size(8 << 20), 8 << 20);
        assert_eq!(request_size(u64::MAX), MAX_REQUEST);
    }
}
