//! The streamer's fill path: submitting reads of a node's tensors and of the tensors within the
//! prefetch depth to the I/O pool, making room in the pool, waiting, and releasing memory.

use super::Streamer;
use crate::error::{Error, Result};
use std::time::Instant;

impl Streamer {
    /// Makes `need` (the streamed inputs of the node about to run) resident, reads ahead what
    /// the prefetch depth and the pool allow, and waits for `need` alone.
    pub(super) fn ensure(&mut self, need: &[usize]) -> Result<()> {
        for &i in need {
            if !self.slots[i].pinned {
                self.slots[i].pinned = true;
                self.pinned.push(i);
            }
            self.order.used(i);
        }
        let from = need[0];
        for &i in need {
            if self.slots[i].resident {
                self.stats.hits += 1;
            } else {
                self.make_room(i, from, None)?;
                self.submit(i, false);
            }
        }
        for j in self.order.ahead(from, self.io_opts.prefetch_depth) {
            if self.slots[j].resident || self.slots[j].pinned {
                continue;
            }
            let d = self.order.distance(from, j);
            if !self.make_room(j, from, Some(d))? {
                break;
            }
            self.submit(j, true);
        }
        let start = Instant::now();
        let mut r = Ok(());
        for &i in need {
            r = r.and(self.collect(i));
        }
        self.stats.io_wait_s += start.elapsed().as_secs_f64();
        r
    }

    /// Frees pool room for slot `i`, evicting the resident tensors needed furthest ahead of
    /// `from`. A read ahead (`ahead`: its distance from `from`) evicts only tensors needed
    /// later than itself and gets false when that is not enough; a node's own tensor waits for
    /// reads in flight to finish when nothing else can go.
    fn make_room(&mut self, i: usize, from: usize, ahead: Option<usize>) -> Result<bool> {
        let need = self.slots[i].t.reserved as u64;
        while self.resident_bytes + need > self.pool_bytes {
            let furthest = |s: &Streamer, in_flight: bool| {
                (0..s.slots.len())
                    .filter(|&j| {
                        let t = &s.slots[j];
                        t.resident && !t.pinned && t.fill.is_empty() != in_flight
                    })
                    .map(|j| (s.order.distance(from, j), j))
                    .max()
            };
            match (furthest(self, false), ahead) {
                (Some((d, j)), Some(limit)) if d > limit => self.evict(j),
                (_, Some(_)) => return Ok(false),
                (Some((_, j)), None) => self.evict(j),
                (None, None) => {
                    let Some((_, j)) = furthest(self, true) else {
                        return Err(Error::PoolTooSmall {
                            pool: self.pool_bytes,
                            need,
                            pinned: self.resident_bytes,
                            tensor: self.slots[i].t.name.clone(),
                        });
                    };
                    let start = Instant::now();
                    let r = self.collect(j);
                    self.stats.io_wait_s += start.elapsed().as_secs_f64();
                    r?;
                    self.evict(j);
                }
            }
        }
        Ok(true)
    }

    /// Starts reading slot `i` into its reserved memory.
    fn submit(&mut self, i: usize, ahead: bool) {
        let slot = &mut self.slots[i];
        // SAFETY: the slot's reserved pages belong to this tensor alone; no node reading it runs
        // before `collect` has waited for these reads, and nothing evicts it before that.
        slot.fill = unsafe {
            self.io.submit_read(
                &self.files[slot.file],
                &slot.t.name,
                slot.offset,
                slot.t.data,
                slot.t.bytes,
            )
        };
        slot.resident = true;
        self.resident_bytes += slot.t.reserved as u64;
        let resident = self.all_resident_bytes();
        self.stats.peak_resident_bytes = self.stats.peak_resident_bytes.max(resident);
        self.stats.fills += 1;
        self.stats.prefetches += ahead as u64;
    }

    /// Waits for slot `i`'s reads in flight; when one failed, releases its memory and returns
    /// the first error.
    pub(super) fn collect(&mut self, i: usize) -> Result<()> {
        let mut first = None;
        for h in std::mem::take(&mut self.slots[i].fill) {
            match h.wait() {
                Ok(n) => self.stats.bytes_read += n,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            None => Ok(()),
            Some(e) => {
                self.release(i);
                Err(e)
            }
        }
    }

    pub(super) fn evict(&mut self, j: usize) {
        self.release(j);
        self.stats.evictions += 1;
    }

    fn release(&mut self, j: usize) {
        let slot = &mut self.slots[j];
        // SAFETY: the range is whole pages reserved for this tensor only; it is not in use and
        // no read into it is in flight.
        unsafe {
            libc::madvise(slot.t.data.cast(), slot.t.reserved, libc::MADV_DONTNEED);
        }
        slot.resident = false;
        self.resident_bytes -= slot.t.reserved as u64;
    }
}
