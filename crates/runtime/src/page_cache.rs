//! A file's pages in the kernel page cache: which are resident (mincore over a fresh mapping) and
//! dropping them (POSIX_FADV_DONTNEED). Used to check that streamed weights bypass the cache.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// The page size mincore reports in.
pub const PAGE: u64 = 4096;

/// Page-cache residency of every 4 KiB page of `file`.
pub fn cached_pages(file: &File) -> io::Result<Vec<bool>> {
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: a read-only shared mapping of a file we hold open, never dereferenced, unmapped
    // before returning.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut vec = vec![0u8; len.div_ceil(PAGE as usize)];
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        let err = io::Error::last_os_error();
        libc::munmap(addr, len);
        if rc != 0 {
            return Err(err);
        }
        Ok(vec.iter().map(|b| b & 1 != 0).collect())
    }
}

/// Bytes of `file` in the page cache.
pub fn cached_bytes(file: &File) -> io::Result<u64> {
    Ok(cached_pages(file)?.iter().filter(|&&c| c).count() as u64 * PAGE)
}

/// Cached pages lying wholly inside the byte range `[offset, offset + len)` (boundary pages may
/// hold neighbouring data), and how many such pages there are.
pub fn cached_inside(cached: &[bool], offset: u64, len: u64) -> (u64, u64) {
    let first = offset.div_ceil(PAGE);
    let end = ((offset + len) / PAGE).min(cached.len() as u64);
    let pages = end.saturating_sub(first);
    let hits = (first..end).filter(|&p| cached[p as usize]).count() as u64;
    (hits, pages)
}

/// Asks the kernel to drop `file`'s clean cached pages (dirty ones: call `sync_all` first).
pub fn drop_cached(file: &File) -> io::Result<()> {
    // SAFETY: advisory call on a descriptor we hold.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}
