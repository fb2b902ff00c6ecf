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
}
