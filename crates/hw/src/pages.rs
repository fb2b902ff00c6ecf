//! Recycled pages for streamed memory. Pages that held a released range stay where they are,
//! populated, as free stock ([`PagePool::detach`]); the next range to fill takes them by moving
//! their page-table entries there with `mremap` ([`PagePool::attach`]), so no page is zeroed or
//! faulted in again. Only what the stock lacks is new memory, faulted in by the fill as before.
//!
//! Why: released pages (`MADV_DONTNEED`) come back on the next write as fresh zeroed pages, one
//! fault and one zeroing per 4 KiB, which costs more CPU than the copy itself and, on a machine
//! with few cores, waits for the cores llama.cpp computes on. Moving a 1.6 MB range's entries
//! takes tens of microseconds; mapping pages of a memfd instead would cost a page lookup per
//! 4 KiB again. RESEARCH_NOTES "Recycled pages" has the measurements.
//!
//! The stock lives inside the caller's reserved memory, at the addresses of ranges that were
//! released: those bytes are stale and must not be read (the caller reads only attached
//! ranges). Pages are never given back to the kernel until the reservation is unmapped, so the
//! pages held ([`PagePool::bytes`], all of them in the resident set) are the most ever attached
//! at once. Linux only (`MREMAP_DONTUNMAP`, 5.7); elsewhere [`PagePool::new`] fails and callers
//! release pages as before.

use crate::direct::ALIGN;
use std::collections::BTreeMap;
use std::io;

/// The pieces of one attached range (address, bytes), each moved in from the stock, found in
/// place, or new; each becomes a stock piece of its own when the range is detached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pieces: Vec<(usize, usize)>,
}

impl Slot {
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// Free populated pages, by address: see the module doc.
pub struct PagePool {
    /// Stock pieces, address to length. Never merged: a piece is one mapping (one `mremap`
    /// source must lie in one), and merging neighbours could join two.
    stock: BTreeMap<usize, usize>,
    stock_bytes: u64,
    attached: u64,
}

impl PagePool {
    /// An empty pool; fails where pages cannot be moved (not Linux, or a kernel without
    /// `MREMAP_DONTUNMAP`).
    pub fn new() -> io::Result<PagePool> {
        probe_move()?;
        Ok(PagePool {
            stock: BTreeMap::new(),
            stock_bytes: 0,
            attached: 0,
        })
    }

    /// Bytes of pages the pool holds: attached ranges and stock.
    pub fn bytes(&self) -> u64 {
        self.attached + self.stock_bytes
    }

    /// Bytes of pages attached now.
    pub fn attached_bytes(&self) -> u64 {
        self.attached
    }

    /// Gives `[addr, addr + len)` the stock's pages: those already inside it stay, others are
    /// moved in (the smallest piece that covers a gap, else the largest first); what the stock
    /// lacks is left to be faulted in. The range's bytes are stale until written. `addr` and
    /// `len` must be multiples of [`ALIGN`].
    ///
    /// # Safety
    /// The range must be private anonymous memory the caller owns (its pages are replaced),
    /// with no reference into it alive and no I/O into it in flight; so must every stock piece
    /// (ranges the caller detached and has not attached again).
    pub unsafe fn attach(&mut self, addr: *mut u8, len: usize) -> io::Result<Slot> {
        check_range(addr, len)?;
        let (start, end) = (addr as usize, addr as usize + len);
        let mut pieces = Vec::new();
        // Stock inside the range is already in place.
        let inside: Vec<(usize, usize)> = self
            .stock
            .range(..end)
            .filter(|&(&a, &l)| a + l > start)
            .map(|(&a, &l)| (a, l))
            .collect();
        let mut gaps = vec![(start, end)];
        for (a, l) in inside {
            self.take_piece(a, l);
            let (lo, hi) = (a.max(start), (a + l).min(end));
            // Whatever of the piece lies outside the range stays stock.
            if a < lo {
                self.put_piece(a, lo - a);
            }
            if a + l > hi {
                self.put_piece(hi, a + l - hi);
            }
            pieces.push((lo, hi - lo));
            gaps = gaps
                .into_iter()
                .flat_map(|(g0, g1)| {
                    [(g0, g1.min(lo)), (g0.max(hi), g1)]
                        .into_iter()
                        .filter(|(x, y)| x < y)
                })
                .collect();
        }
        for (g0, g1) in gaps {
            let mut at = g0;
            while at < g1 {
                let want = g1 - at;
                let Some((src, n)) = self.pick(want) else {
                    pieces.push((at, g1 - at)); // new memory
                    break;
                };
                let used = n.min(want);
                self.take_piece(src, n);
                if n > used {
                    self.put_piece(src + used, n - used);
                }
                // SAFETY: both ranges are the caller's (see above), disjoint (the stock inside
                // the range was taken out first).
                if unsafe { move_pages(src, at, used) }.is_err() {
                    // Left as it was: the source keeps its pages as stock, the target faults.
                    self.put_piece(src, used);
                    pieces.push((at, g1 - at));
                    break;
                }
                pieces.push((at, used));
                at += used;
            }
        }
        pieces.sort_unstable();
        self.attached += len as u64;
        Ok(Slot { pieces })
    }

    /// Makes `slot`'s pages stock, where they are.
    ///
    /// # Safety
    /// `slot` must be what [`PagePool::attach`] returned for this `addr`, with no reference into
    /// the range alive and no I/O into it in flight; the caller must not read the range again
    /// before attaching it.
    pub unsafe fn detach(&mut self, addr: *mut u8, slot: Slot) {
        debug_assert!(slot.pieces.first().is_none_or(|p| p.0 == addr as usize));
        self.attached -= slot.len() as u64;
        for (a, l) in slot.pieces {
            self.put_piece(a, l);
        }
    }

    /// Makes `[addr, addr + len)` stock now: its pages are faulted in (zeroed) here, ahead of
    /// the fills that will take them, so that no fill waits for new memory. Whole pages only.
    ///
    /// # Safety
    /// As for a range given to [`PagePool::detach`]: private anonymous memory the caller owns,
    /// not attached, which it does not read before attaching it.
    pub unsafe fn stock(&mut self, addr: *mut u8, len: usize) -> io::Result<()> {
        check_range(addr, len)?;
        // SAFETY: as the caller promised.
        unsafe { populate(addr, len) };
        self.put_piece(addr as usize, len);
        Ok(())
    }

    /// Empties the stock: its pieces, whose pages the caller may now give back to the kernel.
    pub fn drain_stock(&mut self) -> Vec<(*mut u8, usize)> {
        self.stock_bytes = 0;
        std::mem::take(&mut self.stock)
            .into_iter()
            .map(|(a, l)| (a as *mut u8, l))
            .collect()
    }

    /// The stock piece for `want` bytes: the smallest that covers them, else the largest.
    fn pick(&self, want: usize) -> Option<(usize, usize)> {
        let fit = self
            .stock
            .iter()
            .filter(|&(_, &l)| l >= want)
            .min_by_key(|&(&a, &l)| (l, a));
        fit.or_else(|| {
            self.stock
                .iter()
                .max_by_key(|&(&a, &l)| (l, std::cmp::Reverse(a)))
        })
        .map(|(&a, &l)| (a, l))
    }

    fn take_piece(&mut self, a: usize, l: usize) {
        self.stock.remove(&a);
        self.stock_bytes -= l as u64;
    }

    fn put_piece(&mut self, a: usize, l: usize) {
        self.stock.insert(a, l);
        self.stock_bytes += l as u64;
    }
}

/// Faults in every page of `[addr, addr + len)` for writing: one call where the kernel has
/// `MADV_POPULATE_WRITE` (5.14), else a write of one byte per page (the range is not read).
///
/// # Safety
/// Private anonymous memory the caller owns, with no reference into it alive.
unsafe fn populate(addr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: as the caller promised.
    if unsafe { libc::madvise(addr.cast(), len, libc::MADV_POPULATE_WRITE) } == 0 {
        return;
    }
    for page in (0..len).step_by(ALIGN) {
        // SAFETY: inside the caller's range; its bytes are stale by contract.
        unsafe { addr.add(page).write_volatile(0) };
    }
}

/// Moves the pages of `[src, src + len)` to `[dst, ...)`, leaving the source mapped and empty
/// (it reads zeros). A source that spans several mappings is moved in halves.
///
/// # Safety
/// Both ranges are private anonymous memory the caller owns, disjoint, with no reference into
/// either alive.
#[cfg(target_os = "linux")]
unsafe fn move_pages(src: usize, dst: usize, len: usize) -> io::Result<()> {
    // SAFETY: as the caller promised; MREMAP_FIXED replaces the target in one step.
    let p = unsafe {
        libc::mremap(
            src as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP,
            dst as *mut libc::c_void,
        )
    };
    if p != libc::MAP_FAILED {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EFAULT) && len > ALIGN {
        let half = (len / 2).next_multiple_of(ALIGN);
        // SAFETY: sub-ranges of the caller's.
        unsafe {
            move_pages(src, dst, half)?;
            return move_pages(src + half, dst + half, len - half);
        }
    }
    Err(e)
}

#[cfg(not(target_os = "linux"))]
unsafe fn move_pages(_src: usize, _dst: usize, _len: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "moving pages needs Linux",
    ))
}

/// Whether this kernel moves anonymous pages and leaves the source mapped.
fn probe_move() -> io::Result<()> {
    let mut r = Reservation::new(2 * ALIGN).ok_or_else(io::Error::last_os_error)?;
    // SAFETY: our own fresh mapping; the slice borrow ends before the move.
    unsafe { r.as_mut_slice()[0] = 1 };
    let base = r.as_ptr() as usize;
    // SAFETY: two disjoint pages of our own mapping, nothing borrowed.
    unsafe { move_pages(base, base + ALIGN, ALIGN) }
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
    fn a_detached_range_s_pages_move_to_the_next_range_with_their_bytes() {
        let r = Reservation::new(8 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let two = 2 * ALIGN;
        let a = unsafe { pool.attach(r.page(0), two) }.unwrap();
        r.fill(0, two, 7);
        assert_eq!(
            (pool.bytes(), pool.attached_bytes()),
            (two as u64, two as u64)
        );
        unsafe { pool.detach(r.page(0), a) };
        // Stock, in place.
        assert_eq!((pool.bytes(), pool.attached_bytes()), (two as u64, 0));
        let b = unsafe { pool.attach(r.page(4), two) }.unwrap();
        assert_eq!(pool.bytes(), two as u64, "no new pages");
        assert!(r.holds(4, two, 7), "the pages moved with their bytes");
        assert!(r.holds(0, two, 0), "the old range is empty");
        unsafe { pool.detach(r.page(4), b) };
    }

    #[test]
    fn a_range_attached_again_keeps_its_own_pages() {
        let r = Reservation::new(4 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let a = unsafe { pool.attach(r.page(1), 2 * ALIGN) }.unwrap();
        r.fill(1, 2 * ALIGN, 5);
        unsafe { pool.detach(r.page(1), a) };
        // Half of it again: the stock's other half stays stock.
        let b = unsafe { pool.attach(r.page(1), ALIGN) }.unwrap();
        assert!(r.holds(1, 2 * ALIGN, 5));
        assert_eq!(
            (pool.bytes(), pool.attached_bytes()),
            (2 * ALIGN as u64, ALIGN as u64)
        );
        unsafe { pool.detach(r.page(1), b) };
    }

    #[test]
    fn a_range_takes_stock_of_other_sizes_before_the_pool_grows() {
        let r = Reservation::new(16 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        let a = unsafe { pool.attach(r.page(0), ALIGN) }.unwrap();
        let b = unsafe { pool.attach(r.page(1), ALIGN) }.unwrap();
        let c = unsafe { pool.attach(r.page(2), 3 * ALIGN) }.unwrap();
        r.fill(0, ALIGN, 1);
        r.fill(1, ALIGN, 2);
        r.fill(2, 3 * ALIGN, 3);
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        unsafe { pool.detach(r.page(0), a) };
        unsafe { pool.detach(r.page(2), c) };
        // Four pages from the stock's three and one: no growth, and page 1 untouched.
        let d = unsafe { pool.attach(r.page(8), 4 * ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 5 * ALIGN as u64);
        assert!(r.holds(8, 3 * ALIGN, 3) && r.holds(11, ALIGN, 1));
        assert!(r.holds(1, ALIGN, 2));
        // One page more than the stock has: new memory, zeros.
        let e = unsafe { pool.attach(r.page(12), ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 6 * ALIGN as u64);
        assert!(r.holds(12, ALIGN, 0));
        unsafe { pool.detach(r.page(1), b) };
        unsafe { pool.detach(r.page(8), d) };
        unsafe { pool.detach(r.page(12), e) };
        assert_eq!(pool.attached_bytes(), 0);
    }

    #[test]
    fn stock_that_spans_several_mappings_still_moves() {
        let r = Reservation::new(16 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        // Page 9's pages moved to page 10: the reservation is now several mappings there.
        let s1 = unsafe { pool.attach(r.page(9), ALIGN) }.unwrap();
        r.fill(9, ALIGN, 9);
        unsafe { pool.detach(r.page(9), s1) };
        let s2 = unsafe { pool.attach(r.page(10), ALIGN) }.unwrap();
        assert!(r.holds(10, ALIGN, 9));
        unsafe { pool.detach(r.page(10), s2) };
        // Pages 8..12: page 10 in place, the rest new, across the mappings' boundaries.
        let big = unsafe { pool.attach(r.page(8), 4 * ALIGN) }.unwrap();
        r.fill(8, 4 * ALIGN, 4);
        unsafe { pool.detach(r.page(8), big) };
        assert_eq!(pool.bytes(), 4 * ALIGN as u64);
        // All four pages elsewhere, whichever mappings they lie in.
        let moved = unsafe { pool.attach(r.page(0), 4 * ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 4 * ALIGN as u64);
        assert!(r.holds(0, 4 * ALIGN, 4));
        assert!(r.holds(8, 4 * ALIGN, 0));
        unsafe { pool.detach(r.page(0), moved) };
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
                    unsafe { pool.detach(r.page(page), slot) };
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
    fn stocked_pages_are_taken_before_the_pool_grows() {
        let r = Reservation::new(12 * ALIGN).unwrap();
        let mut pool = PagePool::new().unwrap();
        unsafe { pool.stock(r.page(0), 2 * ALIGN) }.unwrap();
        unsafe { pool.stock(r.page(2), 2 * ALIGN) }.unwrap();
        assert_eq!((pool.bytes(), pool.attached_bytes()), (4 * ALIGN as u64, 0));
        let a = unsafe { pool.attach(r.page(6), 4 * ALIGN) }.unwrap();
        assert_eq!(pool.bytes(), 4 * ALIGN as u64, "no new pages");
        assert!(r.holds(6, 4 * ALIGN, 0));
        // Both stock ranges moved away.
        assert!(r.holds(0, 4 * ALIGN, 0));
        unsafe { pool.detach(r.page(6), a) };
        let e = unsafe { pool.stock(r.page(10), 100) }.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
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
