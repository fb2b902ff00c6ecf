//! Recycled pages for streamed memory. A page-aligned range of a reserved mapping is backed by
//! pages of one anonymous memory file (memfd) while it holds data ([`PagePool::attach`]) and
//! hands them back to the pool, not to the kernel, when released ([`PagePool::detach`]).
//!
//! Why: released pages (`MADV_DONTNEED`) come back on the next write as fresh zeroed pages, one
//! fault and one zeroing per 4 KiB. A refill then costs about twice the CPU of the copy itself
//! and, on a machine with few cores, waits for the cores llama.cpp computes on. Pages the pool
//! already has are mapped again in one call, populated, and need no zeroing: the stale bytes in
//! them are overwritten by the fill. RESEARCH_NOTES "Recycled pages" has the measurements.
//!
//! The pool's pages are allocated once and held until it is dropped (and the ranges attached to
//! them are unmapped). A range may be backed by several pieces of the pool, so the pool grows
//! only when its free pages are fewer than a range needs: its size is the most bytes ever
//! attached at once, whatever the mix of range sizes over time. Attached pages count in the
//! process's resident set; free ones do not, so [`PagePool::bytes`] is reported beside it.
//! Linux only (memfd); elsewhere [`PagePool::new`] fails and callers release pages as before.

use crate::direct::ALIGN;
use std::collections::BTreeMap;
use std::io;

/// Pool pages attached to one range: pieces of the pool's file (offset, bytes), in the range's
/// address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pieces: Vec<(u64, u64)>,
}

impl Slot {
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.1 as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// Which bytes of the pool's file are free: the allocator behind [`PagePool`], apart from the
/// mappings so that it can be tested alone.
#[derive(Debug, Default)]
struct Extents {
    /// Free extents, offset to length, never adjacent (merged on return).
    free: BTreeMap<u64, u64>,
    free_bytes: u64,
    /// The file's length.
    size: u64,
}

impl Extents {
    /// Pieces covering `len` bytes: the smallest free extent that holds them all, else free
    /// extents largest first, and new bytes at the end of the file only for what the free ones
    /// lack. Returns the pieces and the file's new length.
    fn take(&mut self, len: u64) -> Vec<(u64, u64)> {
        let best = self
            .free
            .iter()
            .filter(|&(_, &l)| l >= len)
            .min_by_key(|&(&o, &l)| (l, o))
            .map(|(&o, &l)| (o, l));
        if let Some((o, l)) = best {
            self.remove(o, l);
            if l > len {
                self.insert(o + len, l - len);
            }
            return vec![(o, len)];
        }
        let mut pieces = Vec::new();
        let mut left = len;
        while left > 0 {
            let Some((o, l)) = self
                .free
                .iter()
                .max_by_key(|&(&o, &l)| (l, std::cmp::Reverse(o)))
                .map(|(&o, &l)| (o, l))
            else {
                pieces.push((self.size, left));
                self.size += left;
                break;
            };
            self.remove(o, l);
            let used = l.min(left);
            if l > used {
                self.insert(o + used, l - used);
            }
            pieces.push((o, used));
            left -= used;
        }
        pieces
    }

    /// Frees `pieces`, merging each with free neighbours.
    fn give(&mut self, pieces: &[(u64, u64)]) {
        for &(o, l) in pieces {
            self.insert(o, l);
        }
    }

    fn remove(&mut self, o: u64, l: u64) {
        self.free.remove(&o);
        self.free_bytes -= l;
    }

    fn insert(&mut self, mut o: u64, mut l: u64) {
        self.free_bytes += l;
        if let Some((&po, &pl)) = self.free.range(..o).next_back() {
            if po + pl == o {
                self.free.remove(&po);
                o = po;
                l += pl;
            }
        }
        if let Some(nl) = self.free.remove(&(o + l)) {
            l += nl;
        }
        self.free.insert(o, l);
    }
}

/// Pages to attach to reserved memory and take back; see the module doc.
pub struct PagePool {
    #[cfg(target_os = "linux")]
    file: std::fs::File,
    extents: Extents,
    attached: u64,
}

impl PagePool {
    /// An empty pool (no pages yet).
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<PagePool> {
        use std::os::fd::FromRawFd;
        // SAFETY: a valid NUL-terminated name; the returned descriptor is owned by the File.
        let fd = unsafe { libc::memfd_create(c"hypura-pages".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and nothing else owns it.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        Ok(PagePool {
            file,
            extents: Extents::default(),
            attached: 0,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<PagePool> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "recycled pages need memfd (Linux)",
        ))
    }

    /// Bytes of pages the pool holds, attached or free.
    pub fn bytes(&self) -> u64 {
        self.extents.size
    }

    /// Bytes of pages attached now.
    pub fn attached_bytes(&self) -> u64 {
        self.attached
    }

    /// Grows the pool to at least `bytes` now, allocating (and zeroing) its pages ahead of the
    /// attaches that will use them: a fill then never waits for new pages, which
    /// [`PagePool::attach`] would otherwise zero on the caller's thread.
    #[cfg(target_os = "linux")]
    pub fn reserve(&mut self, bytes: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let bytes = bytes.next_multiple_of(ALIGN as u64);
        let size = self.extents.size;
        if bytes <= size {
            return Ok(());
        }
        let len = bytes - size;
        // SAFETY: a plain system call on our own descriptor.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                0,
                size as libc::off_t,
                len as libc::off_t,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // What was allocated before the refusal stays in the file, unused: shrink it back.
            let _ = self.file.set_len(size);
            return Err(e);
        }
        self.extents.size = bytes;
        self.extents.give(&[(size, len)]);
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub fn reserve(&mut self, _bytes: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "recycled pages need memfd (Linux)",
        ))
    }

    /// Backs `[addr, addr + len)` with pool pages, populated: free pages first (their old bytes
    /// are still in them), new ones only for what the free pages lack. `addr` and `len` must be
    /// multiples of [`ALIGN`].
    ///
    /// # Safety
    /// The range must be inside a mapping the caller owns (it is replaced), with no reference
    /// into it alive and no I/O into it in flight.
    #[cfg(target_os = "linux")]
    pub unsafe fn attach(&mut self, addr: *mut u8, len: usize) -> io::Result<Slot> {
        check_range(addr, len)?;
        // Grown first, by what the free pages lack, so a refusal changes nothing.
        let lack = (len as u64).saturating_sub(self.extents.free_bytes);
        if lack > 0 {
            self.file.set_len(self.extents.size + lack)?;
        }
        let pieces = self.extents.take(len as u64);
        debug_assert_eq!(
            self.extents.size,
            self.file.metadata().map_or(0, |m| m.len())
        );
        let mut at = 0usize;
        for &(offset, n) in &pieces {
            // SAFETY: the caller owns the range (see above); MAP_FIXED replaces it in one step.
            let p = unsafe {
                libc::mmap(
                    addr.add(at).cast(),
                    n as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                    std::os::fd::AsRawFd::as_raw_fd(&self.file),
                    offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                self.extents.give(&pieces);
                // The range's old memory is gone where pieces were mapped (and a failed
                // MAP_FIXED may have unmapped more): give it anonymous memory back.
                // SAFETY: as above.
                unsafe { map_anonymous(addr, len) };
                return Err(e);
            }
            at += n as usize;
        }
        self.attached += len as u64;
        Ok(Slot { pieces })
    }

    #[cfg(not(target_os = "linux"))]
    pub unsafe fn attach(&mut self, addr: *mut u8, len: usize) -> io::Result<Slot> {
        check_range(addr, len)?;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "recycled pages need memfd (Linux)",
        ))
    }

    /// Gives `slot`'s pages back to the pool and the range fresh anonymous memory (it reads as
    /// zeros and holds no page until written). On failure (the kernel refused the mapping) the
    /// range keeps its pages and the slot is not reused.
    ///
    /// # Safety
    /// `slot` must be what [`PagePool::attach`] returned for this `addr`, with no reference into
    /// the range alive and no I/O into it in flight.
    pub unsafe fn detach(&mut self, addr: *mut u8, slot: Slot) -> io::Result<()> {
        let len = slot.len();
        // SAFETY: the caller owns the range (see above).
        if !unsafe { map_anonymous(addr, len) } {
            return Err(io::Error::last_os_error());
        }
        self.attached -= len as u64;
        self.extents.give(&slot.pieces);
        Ok(())
    }
}

/// Address space reserved as the stream buffer reserves it (private, anonymous, nothing
/// committed until written), to attach pool pages to. Unmapped on drop.
pub struct Reservation {
    base: *mut u8,
    len: usize,
}

impl Reservation {
    /// `len` bytes rounded up to whole pages; `None` when the kernel refuses.
    pub fn new(len: usize) -> Option<Reservation> {
        let len = len.max(1).checked_next_multiple_of(ALIGN)?;
        #[cfg(unix)]
        {
            // SAFETY: a fresh anonymous mapping at an address the kernel picks.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            (base != libc::MAP_FAILED).then(|| Reservation {
                base: base.cast(),
                len,
            })
        }
        #[cfg(not(unix))]
        None
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole range as bytes.
    ///
    /// # Safety
    /// No other reference into the range is alive (attach and detach replace its pages).
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is valid for len bytes; exclusivity is the caller's.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: our own mapping, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

fn check_range(addr: *mut u8, len: usize) -> io::Result<()> {
    if len == 0 || len % ALIGN != 0 || addr as usize % ALIGN != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("recycled pages need whole pages: address {addr:p}, {len} bytes"),
        ));
    }
    Ok(())
}

/// Replaces `[addr, addr + len)` with private anonymous memory reserved as the stream buffer's
/// is (nothing committed until written). False when the kernel refused.
///
/// # Safety
/// As [`PagePool::detach`].
unsafe fn map_anonymous(addr: *mut u8, len: usize) -> bool {
    // SAFETY: the caller owns the range; MAP_FIXED replaces it in one step.
    let p = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    p != libc::MAP_FAILED
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    impl Reservation {
        fn page(&self, i: usize) -> *mut u8 {
            assert!(i * ALIGN < self.len);
            self.base.wrapping_add(i * ALIGN)
        }

        fn fill(&self, page: usize, n: usize, value: u8) {
            assert!(page * ALIGN + n <= self.len);
            // SAFETY: inside the mapping (checked above); no reference into it is alive.
            unsafe { std::ptr::write_bytes(self.page(page), value, n) }
        }

        fn holds(&self, page: usize, n: usize, value: u8) -> bool {
            assert!(page * ALIGN + n <= self.len);
            // SAFETY: inside the mapping (checked above); read while nothing writes.
            unsafe { std::slice::from_raw_parts(self.page(page), n) }
                .iter()
                .all(|&b| b == value)
        }
    }

    #[test]
    fn a_detached_slot_is_reused_with_its_bytes_and_the_range_reads_zeros_again() {
        let r = Reservation::new(8 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let two = 2 * ALIGN;
        let a = unsafe { pool.attach(r.page(0), two) }.unwrap();
        r.fill(0, two, 7);
        assert_eq!(
            (pool.bytes(), pool.attached_bytes()),
            (two as u64, two as u64)
        );
        unsafe { pool.detach(r.page(0), a.clone()) }.unwrap();
        assert!(r.holds(0, two, 0), "detached range");
        assert_eq!(pool.attached_bytes(), 0);
        // The same length elsewhere: the same pages, nothing new allocated.
        let b = unsafe { pool.attach(r.page(4), two) }.unwrap();
        assert_eq!(b, a);
        assert_eq!(pool.bytes(), two as u64);
        assert!(r.holds(4, two, 7), "recycled pages");
    }

    #[test]
    fn a_range_takes_free_pages_of_other_sizes_before_the_pool_grows() {
        let r = Reservation::new(16 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let a = unsafe { pool.attach(r.page(0), ALIGN) }.unwrap();
        let b = unsafe { pool.attach(r.page(1), ALIGN) }.unwrap();
        let c = unsafe { pool.attach(r.page(2), 3 * ALIGN) }.unwrap();
        r.fill(0, ALIGN, 1);
        r.fill(1, ALIGN, 2);
        r.fill(2, 3 * ALIGN, 3);
        assert!(r.holds(0, ALIGN, 1) && r.holds(1, ALIGN, 2));
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        unsafe { pool.detach(r.page(0), a) }.unwrap();
        unsafe { pool.detach(r.page(2), c) }.unwrap();
        // Four pages from the free one and the free three: no growth, and page 1 untouched.
        let d = unsafe { pool.attach(r.page(8), 4 * ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        r.fill(8, 4 * ALIGN, 4);
        assert!(r.holds(1, ALIGN, 2));
        // One more page than is free: the pool grows by that page only.
        let e = unsafe { pool.attach(r.page(12), ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 6 * ALIGN as u64);
        for (page, s) in [(1, b), (8, d), (12, e)] {
            unsafe { pool.detach(r.page(page), s) }.unwrap();
        }
        assert_eq!(pool.attached_bytes(), 0);
    }

    /// Random attach/detach sequences against page-level bookkeeping: every attached range
    /// keeps the bytes written into it (no two ranges share a page) and the pool is never larger
    /// than the most pages attached at once.
    #[test]
    fn ranges_never_share_pages_and_the_pool_is_the_peak_attached() {
        const PAGES: usize = 64;
        let r = Reservation::new(PAGES * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Ranges of 1..=4 pages at fixed places: (first page, pages, stamp, slot).
        let places: Vec<(usize, usize)> = (0..PAGES / 4).map(|i| (i * 4, 1 + i % 4)).collect();
        let mut live: Vec<Option<(u8, Slot)>> = vec![None; places.len()];
        let (mut attached, mut peak) = (0usize, 0usize);
        for step in 0..2000u32 {
            let i = (next() % places.len() as u64) as usize;
            let (page, n) = places[i];
            match live[i].take() {
                Some((_, slot)) => {
                    unsafe { pool.detach(r.page(page), slot) }.unwrap();
                    attached -= n;
                }
                None => {
                    let slot = unsafe { pool.attach(r.page(page), n * ALIGN) }.unwrap();
                    let stamp = (step % 251) as u8 + 1;
                    r.fill(page, n * ALIGN, stamp);
                    live[i] = Some((stamp, slot));
                    attached += n;
                    peak = peak.max(attached);
                }
            }
            assert_eq!(pool.attached_bytes(), (attached * ALIGN) as u64);
            assert_eq!(pool.bytes(), (peak * ALIGN) as u64, "step {step}");
            for (j, l) in live.iter().enumerate() {
                if let Some((stamp, _)) = l {
                    let (p, n) = places[j];
                    assert!(r.holds(p, n * ALIGN, *stamp), "step {step}");
                }
            }
        }
    }

    #[test]
    fn reserved_pages_are_taken_before_the_pool_grows() {
        let r = Reservation::new(8 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        pool.reserve(3 * ALIGN as u64 + 1).unwrap();
        assert_eq!((pool.bytes(), pool.attached_bytes()), (4 * ALIGN as u64, 0));
        let a = unsafe { pool.attach(r.page(0), 4 * ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 4 * ALIGN as u64);
        assert!(r.holds(0, 4 * ALIGN, 0), "reserved pages start zeroed");
        let b = unsafe { pool.attach(r.page(4), ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        // Reserving less than the pool has changes nothing.
        pool.reserve(ALIGN as u64).unwrap();
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        unsafe { pool.detach(r.page(0), a) }.unwrap();
        unsafe { pool.detach(r.page(4), b) }.unwrap();
    }

    #[test]
    fn ranges_that_are_not_whole_pages_are_refused() {
        let r = Reservation::new(2 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        for (addr, len) in [
            (r.page(0), 100),
            (r.page(0), 0),
            (r.page(0).wrapping_add(64), ALIGN),
        ] {
            let e = unsafe { pool.attach(addr, len) }.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("whole pages"), "{e}");
        }
        assert_eq!(pool.bytes(), 0);
    }
}
