//! The streamer's fill path: carrying out the pool's actions (reads submitted to the I/O pool,
//! waits, releases of memory) for a node's tensors and those within the prefetch depth.

use super::Streamer;
use crate::error::{Error, Result};
use policy::dense_pool::Action;
use std::time::Instant;

impl Streamer {
    /// Makes `need` (the streamed inputs of the node about to run) resident, reads ahead what
    /// the prefetch depth and the pool allow, and waits for `need` alone.
    pub(super) fn ensure(&mut self, need: &[usize]) -> Result<()> {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        let decided = self.pool.ensure(need, &mut actions);
        let done = self.carry_out(&actions);
        self.actions = actions;
        if let Err(e) = done {
            // A failed read leaves the pool's picture behind what memory holds: start over.
            self.release_everything();
            return Err(e);
        }
        debug_assert_eq!(self.resident_bytes, self.pool.used_bytes());
        decided.map_err(|e| Error::PoolTooSmall {
            pool: e.pool,
            need: e.need,
            pinned: e.pinned,
            tensor: self.slots[e.slot].t.name.clone(),
        })
    }

    /// Carries out `actions` in order; stops at the first failed read.
    pub(super) fn carry_out(&mut self, actions: &[Action]) -> Result<()> {
        for &a in actions {
            match a {
                Action::Hit(_) => self.stats.hits += 1,
                Action::Fill { slot, ahead } => self.submit(slot, ahead),
                Action::Collect(slot) => {
                    let start = Instant::now();
                    let r = self.collect(slot);
                    self.stats.io_wait_s += start.elapsed().as_secs_f64();
                    r?;
                }
                Action::Evict(slot) => {
                    self.release(slot);
                    self.stats.evictions += 1;
                }
            }
        }
        Ok(())
    }

    /// Starts reading slot `i` into its reserved memory (recycled pages where there are).
    fn submit(&mut self, i: usize, ahead: bool) {
        let slot = &mut self.slots[i];
        // SAFETY: the slot's reserved pages belong to this tensor alone and it is not resident
        // (the pool fills only what it evicted or never held), so nothing reads or writes them.
        slot.pages = unsafe { self.recycler.take(slot.t.data, slot.t.reserved) };
        // SAFETY: as above; no node reading it runs before `collect` has waited for these
        // reads, and nothing evicts it before that.
        slot.fill = unsafe {
            self.io.submit_read(
                &self.files[slot.file],
                &slot.t.name,
                slot.offset,
                slot.t.data,
                slot.t.bytes,
            )
        };
        self.resident_bytes += slot.t.reserved as u64;
        self.note_peaks();
        self.stats.fills += 1;
        self.stats.prefetches += ahead as u64;
    }

    /// Waits for slot `i`'s reads in flight; returns the first error.
    fn collect(&mut self, i: usize) -> Result<()> {
        let mut first = None;
        for h in std::mem::take(&mut self.slots[i].fill) {
            match h.wait() {
                Ok(n) => self.stats.bytes_read += n,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn release(&mut self, j: usize) {
        let slot = &mut self.slots[j];
        // SAFETY: the range is whole pages reserved for this tensor only; it is not in use and
        // no read into it is in flight.
        unsafe {
            self.recycler
                .give_back(slot.t.data, slot.t.reserved, slot.pages.take());
        }
        self.resident_bytes -= slot.t.reserved as u64;
    }

    /// After a failed read: waits for every read in flight and releases the memory of every
    /// tensor the pool held, so that the pool starts empty and nothing stale is computed on.
    pub(super) fn release_everything(&mut self) {
        for j in 0..self.slots.len() {
            for h in std::mem::take(&mut self.slots[j].fill) {
                let _ = h.wait();
            }
        }
        for slot in &mut self.slots {
            // SAFETY: no read is in flight (waited above) and no node runs during the callback.
            unsafe {
                self.recycler
                    .give_back(slot.t.data, slot.t.reserved, slot.pages.take());
            }
        }
        self.resident_bytes = 0;
        self.pool.clear();
    }
}
