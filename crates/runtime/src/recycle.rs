//! Memory for fills, taken before a read and given back after a release: pages of a
//! [`PagePool`] where the platform has one (recycled, already populated), else the reserved
//! memory itself, released to the kernel page by page (`MADV_DONTNEED`) and faulted in again
//! by the next copy into it.

use crate::error::{Error, Result};
use hw::pages::{PagePool, Slot};

/// What becomes of streamed memory after use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamedMemory {
    /// Kept in a page pool and mapped again for the next fill, where the platform has one
    /// (Linux); released elsewhere.
    #[default]
    Recycled,
    /// Released to the kernel; the next fill faults in zeroed pages.
    Released,
}

/// See the module doc.
pub struct Recycler {
    pool: Option<PagePool>,
}

impl Recycler {
    /// With a page pool for [`StreamedMemory::Recycled`] where the platform has one.
    pub fn new(memory: StreamedMemory) -> Recycler {
        Recycler {
            pool: match memory {
                StreamedMemory::Recycled => PagePool::new().ok(),
                StreamedMemory::Released => None,
            },
        }
    }

    /// Backs `[data, data + len)` with pool pages for a fill. `None` without a pool or when
    /// the range is not whole pages (the copy then faults in fresh pages).
    ///
    /// # Safety
    /// The range is reserved stream-buffer memory of one tensor, not in use, with no read into
    /// it in flight.
    pub unsafe fn take(&mut self, data: *mut u8, len: usize, tensor: &str) -> Result<Option<Slot>> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(None);
        };
        if len % crate::direct_io::PAGE != 0 || data as usize % crate::direct_io::PAGE != 0 {
            return Ok(None);
        }
        // SAFETY: as the caller promised.
        unsafe { pool.attach(data, len) }
            .map(Some)
            .map_err(|source| Error::Recycle {
                tensor: tensor.to_string(),
                bytes: len as u64,
                source,
            })
    }

    /// Gives `[data, data + len)` back: `slot`'s pages to the pool, or, without a slot, the
    /// range's pages to the kernel. A detach the kernel refuses leaves the pages in place (the
    /// range stays valid memory; the slot is not reused).
    ///
    /// # Safety
    /// As [`Recycler::take`]; `slot` is what `take` returned for this range. Without a slot,
    /// `[data, data + len)` must be whole pages that no other loaded data shares.
    pub unsafe fn give_back(&mut self, data: *mut u8, len: usize, slot: Option<Slot>) {
        match (slot, self.pool.as_mut()) {
            (Some(s), Some(pool)) => {
                // SAFETY: as the caller promised.
                let _ = unsafe { pool.detach(data, s) };
            }
            _ => {
                // SAFETY: whole pages of the caller's range, not in use.
                unsafe { libc::madvise(data.cast(), len, libc::MADV_DONTNEED) };
            }
        }
    }

    /// Allocates pool pages for `bytes` of fills ahead of them (the memory the caller's plan
    /// gives it), so that fills do not wait for new pages to be zeroed. Without a pool nothing
    /// happens; a refusal leaves the pool to grow on demand.
    pub fn reserve(&mut self, bytes: u64) {
        if let Some(pool) = self.pool.as_mut() {
            let _ = pool.reserve(bytes);
        }
    }

    /// Bytes the pool holds (attached or free); 0 without a pool.
    pub fn bytes(&self) -> u64 {
        self.pool.as_ref().map_or(0, PagePool::bytes)
    }
}
