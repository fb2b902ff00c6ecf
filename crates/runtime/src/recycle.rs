//! Memory for fills, taken before a read and given back after a release: pages of a
//! [`PagePool`] where the platform has one (recycled: moved from a released range, already
//! populated), else the reserved memory itself, released to the kernel page by page
//! (`MADV_DONTNEED`) and faulted in again by the next copy into it.

use hw::pages::{PagePool, Slot};

/// What becomes of streamed memory after use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamedMemory {
    /// Kept as stock and moved to the next fill, where the platform can move pages (Linux);
    /// released elsewhere.
    #[default]
    Recycled,
    /// Released to the kernel; the next fill faults in zeroed pages.
    Released,
}

/// See the module doc.
pub struct Recycler {
    pool: Option<PagePool>,
    /// Seconds spent moving pool pages.
    spent_s: f64,
}

impl Recycler {
    /// With a page pool for [`StreamedMemory::Recycled`] where the platform has one.
    pub fn new(memory: StreamedMemory) -> Recycler {
        Recycler {
            pool: match memory {
                StreamedMemory::Recycled => PagePool::new().ok(),
                StreamedMemory::Released => None,
            },
            spent_s: 0.0,
        }
    }

    /// Backs `[data, data + len)` with recycled pages for a fill (stale bytes until it is
    /// written). `None` without a pool or when the range is not whole pages: the fill's copy
    /// then faults in fresh pages.
    ///
    /// # Safety
    /// The range is reserved stream-buffer memory of one tensor, not in use, with no read into
    /// it in flight.
    pub unsafe fn take(&mut self, data: *mut u8, len: usize) -> Option<Slot> {
        let pool = self.pool.as_mut()?;
        let start = std::time::Instant::now();
        // SAFETY: as the caller promised; whatever the pool moves in is stock this recycler's
        // caller gave back, which it does not read before taking it again.
        let slot = unsafe { pool.attach(data, len) }.ok();
        self.spent_s += start.elapsed().as_secs_f64();
        slot
    }

    /// Gives `[data, data + len)` back: `slot`'s pages to the pool's stock (they stay there,
    /// stale, until a fill takes them), or, without a slot, the range's pages to the kernel.
    ///
    /// # Safety
    /// As [`Recycler::take`]; `slot` is what `take` returned for this range, and the range is
    /// not read again before it is taken again. Without a slot, `[data, data + len)` must be
    /// whole pages that no other loaded data shares.
    pub unsafe fn give_back(&mut self, data: *mut u8, len: usize, slot: Option<Slot>) {
        match (slot, self.pool.as_mut()) {
            (Some(s), Some(pool)) => {
                // SAFETY: as the caller promised.
                unsafe { pool.detach(data, s) };
            }
            _ => {
                // SAFETY: whole pages of the caller's range, not in use.
                unsafe { libc::madvise(data.cast(), len, libc::MADV_DONTNEED) };
            }
        }
    }

    /// Makes `[data, data + len)` stock for later fills, its pages faulted in now (at load,
    /// not during a step). Without a pool, or for a range that is not whole pages, nothing.
    ///
    /// # Safety
    /// Reserved stream-buffer memory of one tensor that is not loaded and is not read before a
    /// fill takes it.
    pub unsafe fn stock(&mut self, data: *mut u8, len: usize) {
        if let Some(pool) = self.pool.as_mut() {
            // SAFETY: as the caller promised.
            let _ = unsafe { pool.stock(data, len) };
        }
    }

    /// Gives the stock's pages back to the kernel (when this recycler goes: nothing else knows
    /// them).
    fn release_stock(&mut self) {
        if let Some(pool) = self.pool.as_mut() {
            for (addr, len) in pool.drain_stock() {
                // SAFETY: stock pieces are whole pages of memory the caller gave back and does
                // not read.
                unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) };
            }
        }
    }

    /// Seconds spent moving pool pages so far.
    pub fn spent_s(&self) -> f64 {
        self.spent_s
    }

    /// Bytes the pool holds (attached or free); 0 without a pool.
    pub fn bytes(&self) -> u64 {
        self.pool.as_ref().map_or(0, PagePool::bytes)
    }
}

impl Drop for Recycler {
    fn drop(&mut self) {
        self.release_stock();
    }
}
